"""Whose code is it: the user's app, or the framework, stdlib and packages around it.

The guard reports only the user's calls, the perturbed replay names the user's
lines, a failed activity or baseline points at the user's ``file:line``: they all
ask the same question of a frame or module, answered here once. Paths are shown
relative to the working directory when they are under it.
"""

from __future__ import annotations

import functools
import os
import sysconfig
from pathlib import Path
from types import FrameType, ModuleType

__all__ = ["FRAMEWORK_MODULES", "is_user_code", "is_user_module", "real_path", "shown_path",
           "user_frame"]

FRAMEWORK_MODULES: tuple[str, ...] = (
    "azure.durable_functions", "azure.functions", "agent_framework", "dafx_testing",
    "durabletask",   # the Durable Task SDK (and durabletask.azuremanaged): its worker reads the clock
    # stdlib modules that read the clock or files for their own bookkeeping
    "logging", "linecache", "tokenize", "traceback", "warnings", "inspect", "importlib",
    "zipimport", "encodings", "codecs",
)
"""Module prefixes that are never the user's code, whose calls the guard never reports (``agent_framework`` covers
``agent_framework_azurefunctions`` and the other Agent Framework packages)."""

_USER, _FRAMEWORK, _TRANSPARENT = 0, 1, 2
_SITE_DIRS = tuple({str(Path(p)) + os.sep for p in (sysconfig.get_paths()["purelib"],
                                                    sysconfig.get_paths()["platlib"])})
_STDLIB_DIRS = tuple({str(Path(p)) + os.sep for p in (sysconfig.get_paths()["stdlib"],
                                                      sysconfig.get_paths()["platstdlib"])})
_kinds: dict[tuple[str, str], int] = {}


def _frame_kind(filename: str, module: str) -> int:
    key = (filename, module)
    kind = _kinds.get(key)
    if kind is None:
        if module.startswith(FRAMEWORK_MODULES):
            kind = _FRAMEWORK
        elif filename.startswith(_SITE_DIRS) or "site-packages" in filename:
            kind = _TRANSPARENT   # third-party packages: look through to who called them
        elif filename.startswith(_STDLIB_DIRS) or filename.startswith("<frozen"):
            kind = _TRANSPARENT
        else:
            kind = _USER
        _kinds[key] = kind
    return kind


def user_frame(frame: FrameType | None) -> FrameType | None:
    """The user's frame responsible for a call made at ``frame``, or None for framework calls.

    Standard-library and third-party frames are looked through; the first
    frame that is neither decides: framework code (None) or the user's code.
    """
    while frame is not None:
        kind = _frame_kind(frame.f_code.co_filename, frame.f_globals.get("__name__") or "")
        if kind == _USER:
            return frame
        if kind == _FRAMEWORK:
            return None
        frame = frame.f_back
    return None


def is_user_module(module: ModuleType) -> bool:
    """True for modules of the project under test (not stdlib, packages or framework)."""
    filename = getattr(module, "__file__", None)
    if not filename:
        return False
    return _frame_kind(filename, module.__name__) == _USER


def is_user_code(frame: FrameType) -> bool:
    """True for a frame of the project under test (not stdlib, packages or framework)."""
    return _frame_kind(frame.f_code.co_filename, frame.f_globals.get("__name__") or "") == _USER


def shown_path(filename: str) -> str:
    """``filename`` relative to the working directory when it is under it, else as given."""
    try:
        return Path(filename).relative_to(Path.cwd()).as_posix()
    except ValueError:
        return filename


@functools.cache
def real_path(filename: str) -> str:
    """``filename`` with symlinks resolved, once per name: the simulator asks per unit of work."""
    return os.path.realpath(filename)
