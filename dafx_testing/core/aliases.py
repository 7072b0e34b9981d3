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
    modules: Sequence[ModuleType]           # the caller's list, held so its id stays its own
    namespaces: list[dict[str, Any]]
    sizes: tuple[int, ...] = ()
    sites: list[tuple[ModuleType, str]] = field(default_factory=list)


_scans: dict[Hashable, _Scan] = {}


def alias_sites(key: Hashable, modules: Sequence[ModuleType],
                ids: Container[int]) -> list[tuple[ModuleType, str]]:
    """(module, name) for each global of ``modules`` bound to an object whose id is in ``ids``.

    The answer is kept under ``key`` (one per seam and patched object) and read
    again only when ``modules`` is another list or one of them gained or lost a
    name. ``ids`` is read when the modules are: a caller whose objects change
    identity between blocks passes a key per identity. Check each site's value
    before patching it: a name may be rebound without changing the size.
    """
    scan = _scans.get(key)
    if scan is None or scan.modules is not modules:
        scan = _scans[key] = _Scan(modules, [vars(module) for module in modules])
    sizes = tuple(map(len, scan.namespaces))
    if sizes != scan.sizes:
        scan.sites = [(module, name)
                      for module, namespace in zip(modules, scan.namespaces, strict=True)
                      for name, value in list(namespace.items()) if id(value) in ids]
        scan.sizes = sizes
    return scan.sites
