"""Where the user's modules hold a patched function under their own name, found once.

A seam that patches ``time.sleep`` or ``uuid.uuid4`` where it lives misses the
modules that imported it first (``from time import sleep``): those names must be
patched too. Finding them means reading every global of every user module, and
the seams open a block for every episode and activity the simulator runs: read
each time, that search was a tenth of a test suite's time.

:func:`alias_sites` reads the modules once and keeps what it found while the
list of modules is the same object and no namespace changed size (a new global
name, an import run later): the common case is one ``len`` per module, in C.
"""

from __future__ import annotations

from collections.abc import Container, Hashable, Sequence
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

__all__ = ["alias_sites"]


@dataclass
class _Scan:
    """One seam's sites in one list of modules, with the namespace sizes they were gathered at."""

    modules: Sequence[ModuleType]           # the caller's list, held so no other list takes its id
    namespaces: list[dict[str, Any]]
    sizes: tuple[int, ...] = ()
    sites: list[tuple[ModuleType, str]] = field(default_factory=list)


_scans: dict[Hashable, _Scan] = {}
_names: dict[tuple[Hashable, int], tuple[ModuleType, int, list[str]]] = {}
"""Per (key, module id): the module (held, so the id stays its), its size when read, the names."""


def alias_sites(key: Hashable, modules: Sequence[ModuleType],
                ids: Container[int]) -> list[tuple[ModuleType, str]]:
    """(module, name) for each global of ``modules`` bound to an object whose id is in ``ids``.

    The answer is kept under ``key`` (one per seam); a module is read again only
    when its namespace gained or lost a name, and the sites gathered again only
    when ``modules`` is another list or a module was read. So ``ids`` counts when
    a module is read: the names found then stay its sites, whatever object a
    later block patches (a seam nested in another finds the same names bound to
    the outer one's replacement). Check each site's value before patching it.
    """
    scan = _scans.get(key)
    if scan is None or scan.modules is not modules:
        scan = _scans[key] = _Scan(modules, [vars(module) for module in modules])
    sizes = tuple(map(len, scan.namespaces))
    if sizes != scan.sizes:
        scan.sites = [(module, name)
                      for module, namespace, size in zip(modules, scan.namespaces, sizes, strict=True)
                      for name in _names_in(key, module, namespace, size, ids)]
        scan.sizes = sizes
    return scan.sites


def _names_in(key: Hashable, module: ModuleType, namespace: dict[str, Any], size: int,
              ids: Container[int]) -> list[str]:
    """The names of ``module`` a seam patches: read again only when its size is not ``size``."""
    known = _names.get((key, id(module)))
    if known is None or known[1] != size:
        known = _names[key, id(module)] = (module, size, [
            name for name, value in list(namespace.items()) if id(value) in ids])
    return known[2]
