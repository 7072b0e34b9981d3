"""The wall clock pointed at a frozen instant, at a cost that does not grow with the loaded modules.

``freezegun.freeze_time(...).start()`` reads every attribute of every loaded module
on each outermost start, to find the names that hold a time function or class
(``from datetime import datetime``, ``from time import time as now``): 3 ms with
the engine alone, 13 ms once the Agent Framework is imported (about 1,700
modules). The simulator binds its clock for every driving call, so that cost
was paid again and again while the modules did not change.

:func:`frozen_at` does what that start does, with freezegun's own fakes and its
stack of frozen times (so ``freeze_time`` blocks nest inside it and it nests
inside them, as freezegun's own starts do), except for the search:

* **an index of the names** that hold a real time object, per module, kept
  across blocks. A block first checks whether ``sys.modules`` changed since the
  last look (one dict comparison, in C); only modules that are new or were
  replaced since are read. A module imported halfway when it is looked at
  (``__spec__._initializing``) is read again next time.
* **patching** then touches ``time``, ``datetime`` and the indexed names only:
  a couple of hundred assignments however many modules are loaded.
* **modules imported inside a block** got the fakes (``from datetime import
  datetime`` while ``datetime.datetime`` is the fake): when the outermost block
  ends they are read, their names put back to the real objects and indexed, as
  freezegun's ``stop`` does for them.

The rest is freezegun's start and stop: ``datetime.datetime``/``date`` and
``time.time``/``monotonic``/``perf_counter``/``localtime``/``gmtime``/
``strftime`` (and the ``*_ns`` ones) become the fakes; ``uuid1`` takes its time
from them; pickling a datetime makes a fake one; modules in freezegun's ignore
list (``threading``, ``queue``...) keep the real functions and calls from them
read real time; asyncio's event loops keep real monotonic time
(``real_asyncio=True``).

The trade-off: freezegun notices a module whose names changed since its last
start; the index does not read a module again while it stays loaded, so a time
function bound to a new global name after the module was indexed (a function
running ``global now; from time import time as now``) keeps the real one. As
with freezegun, values held elsewhere than in module globals (a default
argument, a class attribute) keep what they hold.
"""

from __future__ import annotations

import asyncio
import contextlib
import copyreg
import datetime as _datetime
import sys
import threading
import time as _time
import uuid
import warnings
from collections.abc import Iterator
from datetime import timedelta
from types import ModuleType
from typing import Any

from freezegun import api as _fg
from freezegun import config as _fg_config

__all__ = ["Frozen", "freeze", "frozen_at", "modules_read", "unfreeze"]

Frozen = _fg.FrozenDateTimeFactory
"""What :func:`frozen_at` and :func:`freeze` give: ``move_to(instant)`` moves what the block reads."""


def _time_functions() -> list[tuple[str, Any, Any]]:
    """(name in ``time``, real function, freezegun's fake) for every clock freezegun fakes."""
    pairs = [("time", _fg.real_time, _fg.fake_time),
             ("monotonic", _fg.real_monotonic, _fg.fake_monotonic),
             ("perf_counter", _fg.real_perf_counter, _fg.fake_perf_counter),
             ("localtime", _fg.real_localtime, _fg.fake_localtime),
             ("gmtime", _fg.real_gmtime, _fg.fake_gmtime),
             ("strftime", _fg.real_strftime, _fg.fake_strftime)]
    for name, present in (("time_ns", "_TIME_NS_PRESENT"), ("monotonic_ns", "_MONOTONIC_NS_PRESENT"),
                          ("perf_counter_ns", "_PERF_COUNTER_NS_PRESENT")):
        if getattr(_fg, present, False):
            pairs.append((name, getattr(_fg, f"real_{name}"), getattr(_fg, f"fake_{name}")))
    return pairs


_TIME_FUNCTIONS = _time_functions()
_CLASSES: list[tuple[str, Any, Any]] = [("datetime", _fg.real_datetime, _fg.FakeDatetime), ("date", _fg.real_date, _fg.FakeDate)]
_FAKE_OF = {id(real): fake for _, real, fake in _TIME_FUNCTIONS + _CLASSES}
_REAL_OF = {id(fake): real for _, real, fake in _TIME_FUNCTIONS + _CLASSES}
_TIME_OBJECTS = set(_FAKE_OF) | set(_REAL_OF)
"""ids of every real time object and its fake (both kept alive by freezegun's module)."""

_PENDING = object()
"""Stands in the index's copy of ``sys.modules`` for a module not read yet (imported halfway)."""

_SKIPPED = frozenset({__name__, _fg.__name__})


class _ModuleIndex:
    """Per loaded module, the global names holding a real time object (or its fake)."""

    def __init__(self) -> None:
        self.seen: dict[str, Any] = {}      # sys.modules as of the last look
        self.sites: dict[str, tuple[Any, tuple[str, ...]]] = {}
        self.ignore: tuple[str, ...] = ()
        self.reads = 0                      # module namespaces read so far

    def refresh(self, ignore: tuple[str, ...]) -> list[tuple[Any, tuple[str, ...]]]:
        """Read the modules loaded or replaced since the last look; return those holding names."""
        if ignore != self.ignore:           # freezegun.configure changed the ignore list
            self.seen, self.sites, self.ignore = {}, {}, ignore
        modules = sys.modules
        if len(modules) == len(self.seen) and modules == self.seen:
            return []
        current: dict[str, Any] = dict(modules)
        fresh: list[tuple[Any, tuple[str, ...]]] = []
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            for name, module in current.items():
                if self.seen.get(name) is module:
                    continue
                namespace = _namespace(name, module, ignore)
                if namespace is None:
                    self.sites.pop(name, None)
                    continue
                spec = namespace.get("__spec__")
                if getattr(spec, "_initializing", False):
                    current[name] = _PENDING
                self.reads += 1
                names = tuple(key for key, value in list(namespace.items()) if id(value) in _TIME_OBJECTS)
                if names:
                    self.sites[name] = (module, names)
                    fresh.append((module, names))
                else:
                    self.sites.pop(name, None)
        for name in self.sites.keys() - current.keys():
            del self.sites[name]
        self.seen = current
        return fresh


def _namespace(name: Any, module: Any, ignore: tuple[str, ...]) -> dict[str, Any] | None:
    """The globals of a module whose names freezegun would patch, or None to leave it alone."""
    if not isinstance(name, str) or module is None or name in _SKIPPED:
        return None
    if name.startswith(ignore) or name.endswith(".six.moves"):
        return None
    try:
        if getattr(module, "__name__", None) in (None, "datetime", "time"):
            return None
        namespace = module.__dict__ if isinstance(module, ModuleType) else vars(module)
    except Exception:                       # an odd object in sys.modules
        return None
    return namespace if isinstance(namespace, dict) else None


_index = _ModuleIndex()
_lock = threading.RLock()
_undo: list[tuple[Any, str, Any, bool]] | None = None
"""What the outermost block changed (owner, name, value before, owned), while one is open."""

_loop_class: tuple[Any, type] | None = None     # (event loop policy, the class of its loops)


def _real_loop_time(loop: Any) -> float:
    return _fg.real_monotonic()


def modules_read() -> int:
    """How many module namespaces the index has read so far (each module once, while it stays)."""
    return _index.reads


@contextlib.contextmanager
def frozen_at(moment: _datetime.datetime) -> Iterator[Frozen]:
    """Inside the block, the wall clock reads ``moment`` (moved with the yielded ``move_to``).

    The outermost block (no ``frozen_at`` or freezegun block open) patches the
    time functions; a nested one only stacks its instant on top, which the code
    inside reads until it ends.
    """
    frozen = freeze(moment)
    try:
        yield frozen
    finally:
        unfreeze(frozen)


def freeze(moment: _datetime.datetime) -> Frozen:
    """Open a :func:`frozen_at` block by hand; end it with :func:`unfreeze`."""
    frozen = Frozen(_fg._parse_time_to_freeze(moment))
    ignore = tuple(_fg_config.settings.default_ignore_list)
    with _lock:
        outermost = not _fg.freeze_factories
        _fg.freeze_factories.append(frozen)
        _fg.tz_offsets.append(timedelta(0))
        _fg.ignore_lists.append(ignore)
        _fg.tick_flags.append(False)
        if outermost:
            try:
                _patch(ignore)
            except BaseException:
                _remove(frozen)
                _unpatch()
                raise
    return frozen


def unfreeze(frozen: Frozen) -> None:
    """End the block :func:`freeze` opened (again: nothing happens)."""
    with _lock:
        if _remove(frozen) and not _fg.freeze_factories:
            _unpatch()


def _remove(frozen: Frozen) -> bool:
    """Take ``frozen`` off freezegun's stacks, wherever it is (blocks may end out of order)."""
    for position in range(len(_fg.freeze_factories) - 1, -1, -1):
        if _fg.freeze_factories[position] is frozen:
            for stack in (_fg.freeze_factories, _fg.tz_offsets, _fg.ignore_lists, _fg.tick_flags):
                del stack[position]
            return True
    return False


def _patch(ignore: tuple[str, ...]) -> None:
    global _undo
    undo: list[tuple[Any, str, Any, bool]] = []
    _undo = undo

    def put(owner: Any, name: str, value: Any) -> None:
        undo.append((owner, name, getattr(owner, name, None), name in vars(owner)))
        setattr(owner, name, value)

    for name, _, fake in _CLASSES:
        put(_datetime, name, fake)
    for name, _, fake in _TIME_FUNCTIONS:
        put(_time, name, fake)
    if _fg.uuid_generate_time_attr:
        put(uuid, _fg.uuid_generate_time_attr, None)
    put(uuid, "_UuidCreate", None)
    uuid._last_timestamp = None  # type: ignore[attr-defined]
    copyreg.dispatch_table[_fg.real_datetime] = _fg.pickle_fake_datetime
    copyreg.dispatch_table[_fg.real_date] = _fg.pickle_fake_date

    _index.refresh(ignore)
    for module, names in _index.sites.values():
        for name in names:
            value = getattr(module, name, None)
            fake = _FAKE_OF.get(id(value))
            if fake is not None:
                undo.append((module, name, value, True))
                setattr(module, name, fake)
            elif id(value) in _REAL_OF:    # a fake left over (imported halfway at the last end)
                undo.append((module, name, _REAL_OF[id(value)], True))

    put(_event_loop_class(), "time", _real_loop_time)


def _unpatch() -> None:
    global _undo
    undo, _undo = _undo, None
    if undo is None:
        return
    for owner, name, value, owned in reversed(undo):
        if owned:
            setattr(owner, name, value)
        else:
            with contextlib.suppress(AttributeError):
                delattr(owner, name)
    copyreg.dispatch_table.pop(_fg.real_datetime, None)
    copyreg.dispatch_table.pop(_fg.real_date, None)
    uuid._last_timestamp = None  # type: ignore[attr-defined]
    # Modules imported inside the block took the fakes: give them the real objects back.
    for module, names in _index.refresh(_index.ignore):
        for name in names:
            real = _REAL_OF.get(id(getattr(module, name, None)))
            if real is not None:
                setattr(module, name, real)


def _event_loop_class() -> type:
    """The class of the event loops asyncio makes (freezegun makes one on every start to see)."""
    global _loop_class
    policy = asyncio.get_event_loop_policy()
    if _loop_class is None or _loop_class[0] is not policy:
        loop = asyncio.new_event_loop()
        loop.close()
        _loop_class = (policy, type(loop))
    return _loop_class[1]
