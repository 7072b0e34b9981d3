"""Replays under another ``PYTHONHASHSEED``, in child interpreters.

The iteration order of a ``set`` of strings follows the strings' hashes, and
those are salted per process (``PYTHONHASHSEED``). An orchestrator that loops
over such a set can schedule its activities in another order after a restart,
and the host then fails it. The salt cannot change inside a running
interpreter, so these replays run in child interpreters started with fixed,
different seeds. Two children are compared with the parent and with each other,
so a dependence on set order is found whatever the parent's own seed is.

Starting a child costs about a second (it imports the SDK and the app), so the
children are started once per test process, on first use, and serve every
replay after that over a JSON-lines pipe; :func:`may_depend_on_set_order` is
the cheap static test that decides whether an orchestrator needs them at all.

Run as ``python -m dafx_testing.checks.hashseed`` it is the child's serving loop.
"""

from __future__ import annotations

import atexit
import dis
import importlib.util
import inspect
import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from types import CodeType, FunctionType
from typing import Any

from ..core.user_code import is_user_module

CHILD_SEEDS: tuple[int, ...] = (1, 2)
"""The ``PYTHONHASHSEED`` of each child interpreter."""

_SET_OPCODES = {"BUILD_SET", "SET_ADD", "SET_UPDATE"}
_verdicts: dict[CodeType, bool] = {}


def may_depend_on_set_order(function: Callable[..., Any]) -> bool:
    """Whether ``function`` (or a function of yours it calls by name) touches sets.

    A static look at the bytecode: set displays and comprehensions, calls to
    ``set``/``frozenset``, constant sets (``for x in {"a", "b"}`` compiles to
    one) and module-level sets it reads. Sorting a set is safe but still counts:
    the answer means "may matter", and only decides whether the child replays run.
    """
    code = getattr(function, "__code__", None)
    if code is None:
        return False
    if code not in _verdicts:
        _verdicts[code] = False   # recursion guard for mutually calling functions
        _verdicts[code] = _scan(code, getattr(function, "__globals__", {}), set())
    return _verdicts[code]


def _scan(code: CodeType, namespace: dict[str, Any], seen: set[CodeType]) -> bool:
    if code in seen:
        return False
    seen.add(code)
    for instruction in dis.get_instructions(code):
        if instruction.opname in _SET_OPCODES:
            return True
        if instruction.opname in ("LOAD_GLOBAL", "LOAD_NAME"):
            name = instruction.argval
            value = namespace.get(name)
            if name in ("set", "frozenset") and value is None:
                return True
            if isinstance(value, (set, frozenset)):
                return True
            if isinstance(value, FunctionType) and _is_users(value) and _scan(
                    value.__code__, value.__globals__, seen):
                return True
    for constant in code.co_consts:
        if isinstance(constant, frozenset) and len(constant) > 1:
            return True
        if isinstance(constant, CodeType) and _scan(constant, namespace, seen):
            return True
    return False


def _is_users(function: FunctionType) -> bool:
    module = sys.modules.get(function.__module__)
    return module is not None and is_user_module(module)


# -- the parent's side ---------------------------------------------------------------


class ChildReplayError(Exception):
    """A child interpreter could not replay the episode (the reason says why)."""


def handle_reference(handle: Callable[..., Any]) -> dict[str, str]:
    """How a child finds the orchestrator: its module's file and name, and its qualname.

    Raises:
        ChildReplayError: the orchestrator cannot be imported by a fresh
            interpreter (defined inside a function, or in ``__main__``).
    """
    function = getattr(handle, "orchestrator_function", handle)
    module = sys.modules.get(function.__module__)
    filename = getattr(module, "__file__", None)
    if "<locals>" in function.__qualname__ or not filename:
        raise ChildReplayError(
            f"orchestrator {function.__qualname__!r} cannot be imported by a fresh interpreter "
            "(define it at module level in an importable file)")
    return {"file": filename, "module": function.__module__, "qualname": function.__qualname__}


class _Children:
    """The child interpreters, one per seed, started together on first use."""

    def __init__(self, seeds: tuple[int, ...]) -> None:
        self.seeds = seeds
        self.processes: dict[int, subprocess.Popen[str]] = {}

    def start(self) -> None:
        if self.processes:
            return
        environment = dict(os.environ)
        environment["PYTHONPATH"] = os.pathsep.join(p for p in sys.path if p)
        for seed in self.seeds:
            environment["PYTHONHASHSEED"] = str(seed)
            self.processes[seed] = subprocess.Popen(
                [sys.executable, "-m", __name__], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL, env=dict(environment), text=True, bufsize=1)
        atexit.register(self.close)

    def replay(self, reference: dict[str, str], body: str,
               now: str) -> list[tuple[int, dict[str, Any]]]:
        """Every child's OrchestratorState for ``body``, as ``(seed, state)`` pairs."""
        self.start()
        request = json.dumps({**reference, "body": body, "now": now}) + "\n"
        for process in self.processes.values():
            assert process.stdin is not None    # started with stdin=PIPE
            process.stdin.write(request)
            process.stdin.flush()
        results = []
        for seed, process in self.processes.items():
            assert process.stdout is not None   # started with stdout=PIPE
            line = process.stdout.readline()
            if not line:
                self.close()
                raise ChildReplayError(f"the child interpreter (PYTHONHASHSEED={seed}) exited")
            answer = json.loads(line)
            if "error" in answer:
                raise ChildReplayError(answer["error"])
            results.append((seed, answer["state"]))
        return results

    def close(self) -> None:
        processes, self.processes = self.processes, {}
        for process in processes.values():
            assert process.stdin is not None    # started with stdin=PIPE
            process.stdin.close()
        for process in processes.values():
            try:
                process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


_children: _Children | None = None


def replay_in_children(handle: Callable[..., Any], body: str,
                       now: str) -> list[tuple[int, dict[str, Any]]]:
    """Replay ``body`` through the same orchestrator in each child interpreter.

    ``now`` is the virtual time the episode ran at: the children's wall clock
    is frozen there, as the simulator's is, so framework code that stamps
    payloads with ``datetime.now()`` (the Agent Framework does) agrees.
    """
    global _children
    if _children is None:
        _children = _Children(CHILD_SEEDS)
    return _children.replay(handle_reference(handle), body, now)


# -- the child's side ----------------------------------------------------------------


def _load_handle(reference: dict[str, str], cache: dict[tuple[str, str], Any]) -> Any:
    key = (reference["file"], reference["qualname"])
    if key in cache:
        return cache[key]
    from ..functions.app import (
        ORCHESTRATOR,
        index_app,  # the child pays for the SDK import, not the parent's import
    )

    if reference["module"].startswith("__app__"):     # a classic app, as the worker loads it
        return _classic_handle(reference, cache, key)
    module = sys.modules.get(reference["module"])
    if getattr(module, "__file__", None) != reference["file"]:
        folder = os.path.dirname(reference["file"])     # the worker's rule: the app folder
        if folder not in sys.path:                       # is importable (its helper modules)
            sys.path.insert(0, folder)
        spec = importlib.util.spec_from_file_location(reference["module"], reference["file"])
        if spec is None or spec.loader is None:
            raise ImportError(f"cannot import {reference['file']} as module {reference['module']!r}")
        module = importlib.util.module_from_spec(spec)
        sys.modules[reference["module"]] = module
        try:
            spec.loader.exec_module(module)
        except BaseException:
            del sys.modules[reference["module"]]         # a later request may import it again
            raise
    for value in list(vars(module).values()):
        if hasattr(value, "_function_builders") and not inspect.isclass(value):
            for info in index_app(value).functions:
                if info.kind == ORCHESTRATOR and \
                        info.user_function.__qualname__ == reference["qualname"]:
                    cache[key] = info.handler
                    return info.handler
    raise LookupError(f"no app in {reference['file']} defines orchestrator "
                      f"{reference['qualname']!r}")


def _classic_handle(reference: dict[str, str], cache: dict[tuple[str, str], Any],
                    key: tuple[str, str]) -> Any:
    """The orchestrator of a classic (function.json) app: its folder loaded the worker's way."""
    from ..functions.app import ORCHESTRATOR, index_app

    root = Path(reference["file"]).parents[1]            # <app>/<Function>/<script>.py
    for info in index_app(str(root)).functions:
        code = getattr(info.user_function, "__code__", None)
        if info.kind == ORCHESTRATOR and info.user_function.__qualname__ == reference["qualname"] \
                and code is not None and os.path.samefile(code.co_filename, reference["file"]):
            cache[key] = info.handler
            return info.handler
    raise LookupError(f"the classic app in {root} defines no orchestrator "
                      f"{reference['qualname']!r} in {reference['file']}")


def _serve() -> None:
    import warnings

    import freezegun

    from ..core.history import parse_timestamp
    from ..functions.orchestrations import call_handle

    warnings.simplefilter("ignore")
    cache: dict[tuple[str, str], Any] = {}
    # Frozen for the child's whole life (starting freezegun scans every module),
    # and moved to each episode's time, backwards too: episodes come from many
    # simulators, each on its own virtual clock.
    frozen = freezegun.freeze_time("2025-01-01", real_asyncio=True).start()
    for line in sys.stdin:
        request = json.loads(line)
        frozen.move_to(parse_timestamp(request["now"]))
        _answer(request, cache, call_handle)


def _answer(request: dict[str, Any], cache: dict[tuple[str, str], Any],
            call_handle: Callable[[Any, str], dict[str, Any]]) -> None:
    try:
        answer: dict[str, Any] = {"state": call_handle(_load_handle(request, cache),
                                                       request["body"])}
    except Exception as exc:   # reported to the parent, which skips the check
        answer = {"error": f"{type(exc).__name__}: {exc}"}
    sys.stdout.write(json.dumps(answer) + "\n")
    sys.stdout.flush()


if __name__ == "__main__":
    _serve()
