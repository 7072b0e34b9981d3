"""``benchmarks/run.py`` for the section files beside it, however they are run.

A section (``fixed_cost.py``, ``durabletask_host.py``) takes ``Figure``, ``Target`` and the
timing helpers from ``run.py``: from ``__main__`` when ``run.py`` is the script running
(importing it again would make a second copy of its classes), else by importing it.
"""

from __future__ import annotations

import importlib
import os
import sys
from types import ModuleType


def run_module() -> ModuleType:
    main = sys.modules.get("__main__")
    if main is not None and os.path.basename(getattr(main, "__file__", "") or "") == "run.py" \
            and hasattr(main, "Figure"):
        return main
    folder = os.path.dirname(os.path.abspath(__file__))
    if folder not in sys.path:
        sys.path.insert(0, folder)
    return importlib.import_module("run")
