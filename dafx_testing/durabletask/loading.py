"""Find the worker in a worker module: ``Simulator("worker.py")`` and ``dafx run worker.py``.

A durabletask program builds its worker in code, so a module names it one of
three ways, tried in order:

* ``"worker.py:build_worker"`` (or ``"pkg.worker:build_worker"``): the attribute is
  the worker (``TaskHubGrpcWorker``, ``DurableTaskSchedulerWorker``, a
  ``DurableAIAgentWorker``), or a function called with no arguments that returns one;
* ``"worker.py"`` holding exactly one worker object at module level;
* ``"worker.py"`` defining ``build_worker()``.

A file is imported under its own name (``worker``), never ``__main__``, with its
folder on ``sys.path``: the Agent Framework pickles workflow message types by
module name, and samples import their sibling modules.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

from ..core.errors import AppLoadError
from ..functions.app import import_file
from .registry import is_worker

__all__ = ["load_worker"]

BUILDER = "build_worker"


def load_worker(ref: str | Path) -> Any:
    """The worker ``ref`` names (see the module docstring for the forms)."""
    where, attribute = _split(str(ref))
    module = (import_file(Path(where), "worker", lambda path: path.stem) if where.endswith(".py")
              else _import_module(where))
    if attribute:
        if not hasattr(module, attribute):
            raise AppLoadError(f"{where} has no {attribute!r}; its workers and builders: "
                               f"{_candidates(module)}")
        return _worker_from(getattr(module, attribute), f"{where}:{attribute}")
    workers = [name for name, value in vars(module).items() if is_worker(value)]
    if len(workers) == 1:
        return getattr(module, workers[0])
    if callable(getattr(module, BUILDER, None)):
        return _worker_from(getattr(module, BUILDER), f"{where}:{BUILDER}")
    raise AppLoadError(
        f"{where} holds {'no' if not workers else 'several'} worker object(s) at module level "
        f"and defines no {BUILDER}(); name it: '{where}:NAME' with NAME a worker or a function "
        f"returning one (candidates: {_candidates(module)})")


def _split(ref: str) -> tuple[str, str]:
    """``("worker.py", "build_worker")`` from ``"worker.py:build_worker"``; a drive letter stays."""
    head, sep, tail = ref.rpartition(":")
    if sep and tail.isidentifier() and head and not head.endswith(("\\", "/")) and len(head) > 1:
        return head, tail
    return ref, ""


def _worker_from(value: Any, where: str) -> Any:
    if is_worker(value):
        return value
    if callable(value):
        try:
            built = value()
        except TypeError as exc:
            raise AppLoadError(f"{where}() could not be called with no arguments: {exc}") from exc
        if is_worker(built):
            return built
        value = built
    raise AppLoadError(f"{where} is a {type(value).__name__}, not a durabletask worker "
                       "(TaskHubGrpcWorker, DurableTaskSchedulerWorker, DurableAIAgentWorker) "
                       "or a function returning one")


def _import_module(name: str) -> Any:
    try:
        return importlib.import_module(name)
    except ImportError as exc:
        raise AppLoadError(f"cannot import {name!r}: {exc}") from exc


def _candidates(module: Any) -> str:
    found = [name for name, value in vars(module).items()
             if is_worker(value) or (callable(value) and "worker" in name.lower()
                                     and not isinstance(value, type))]
    return ", ".join(found) or "none"
