"""Index a Functions app once: its orchestrators, activities, entities and HTTP routes.

The index reads the app's function builders (never ``get_functions()`` twice,
which the SDK forbids) and resolves names the way the Durable extension does:
an orchestrator is registered under its trigger alias (``orchestration=``),
else its ``@app.function_name``, else the Python name, and lookups ignore case.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import inspect
import json
import sys
import warnings
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..core.errors import AppLoadError, DafxWarning, UnknownFunctionError
from ..core.user_code import real_path

ORCHESTRATOR = "orchestrator"
ACTIVITY = "activity"
ENTITY = "entity"
HTTP = "http"

_TRIGGER_KINDS = {
    "orchestrationTrigger": ORCHESTRATOR,
    "activityTrigger": ACTIVITY,
    "entityTrigger": ENTITY,
    "httpTrigger": HTTP,
}


@dataclass(frozen=True)
class FunctionInfo:
    """One function of the app, as the host would register it.

    Attributes:
        name: the name the host registers (alias, ``function_name`` or ``__name__``).
        kind: ``"orchestrator"``, ``"activity"``, ``"entity"``, ``"http"`` or the
            trigger type for anything else.
        handler: what the Python worker calls: the SDK-generated handle for
            orchestrators and entities, the user function for activities, the
            durable-client middleware for HTTP starters.
        trigger_param: the parameter the trigger binds to.
        client_param: the durable client binding's parameter, if any.
        route: the HTTP route template (HTTP functions only).
        methods: allowed HTTP methods, upper-case; empty means all.
    """

    name: str
    kind: str
    handler: Callable[..., Any]
    trigger_param: str
    client_param: str | None = None
    route: str | None = None
    methods: tuple[str, ...] = ()

    @property
    def user_function(self) -> Callable[..., Any]:
        """The code the user wrote (unwrapping the SDK's handles and middleware)."""
        for attr in ("orchestrator_function", "entity_function", "client_function"):
            inner = getattr(self.handler, attr, None)
            if inner is not None:
                return inner
        return self.handler


@dataclass
class AppIndex:
    """The functions of one app, by kind, with host name resolution.

    Build it with :func:`index_app`.
    """

    app: Any
    functions: list[FunctionInfo]
    warnings: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._by_kind: dict[str, dict[str, FunctionInfo]] = {}
        for info in self.functions:
            self._by_kind.setdefault(info.kind, {})[info.name.lower()] = info

    def names(self, kind: str) -> list[str]:
        """Registered names of one kind, in declaration order."""
        return [info.name for info in self._by_kind.get(kind, {}).values()]

    def find(self, kind: str, name: str) -> FunctionInfo | None:
        """The function of ``kind`` named ``name`` (case-insensitive), or None."""
        return self._by_kind.get(kind, {}).get(str(name).lower())

    def get(self, kind: str, name: str) -> FunctionInfo:
        """Like :meth:`find` but raises :class:`UnknownFunctionError` listing the known names."""
        info = self.find(kind, name)
        if info is None:
            known = self.names(kind)
            listing = ", ".join(repr(n) for n in known) if known else "none"
            plural = {ACTIVITY: "activities", ENTITY: "entities", HTTP: "HTTP functions"}
            raise UnknownFunctionError(
                f"the app has no {kind} named {name!r}; known {plural.get(kind, kind + 's')}: "
                f"{listing}"
            )
        return info


def unbound_parameters(function: Callable[..., Any], bound: Iterable[str]) -> list[str]:
    """Required parameters of ``function`` that ``bound`` does not supply: a call would fail."""
    given = set(bound)
    return [name for name, p in inspect.signature(function).parameters.items()
            if name not in given and p.default is inspect.Parameter.empty
            and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]


def index_app(app_ref: Any) -> AppIndex:
    """Load (if needed) and index an app.

    Args:
        app_ref: a ``FunctionApp``/``DFApp`` object, a ``"pkg.module:attr"``
            string, a module name, a path to a ``function_app.py``, an existing
            folder (``"."``, ``"blueprint"``: the ``function_app.py`` in it, or
            without one a classic app: ``host.json`` and ``function.json``
            subfolders, see :mod:`.classic_app`), or an :class:`AppIndex`
            already built (returned as is).
    """
    if isinstance(app_ref, AppIndex):      # already indexed: share it
        return app_ref
    app = load_app(app_ref)
    from .classic_app import ClassicApp

    described: list[tuple[FunctionInfo, str]] = []
    found_warnings: list[str] = []
    if isinstance(app, ClassicApp):        # loading built the infos; the worker checked them
        described = [(info, app.sources[info.name]) for info in app.functions]
        found_warnings.extend(app.warnings)
    else:
        for builder in app._function_builders:
            function = builder.build(getattr(app, "auth_level", None))
            described.append((_describe(function), function.get_user_function().__qualname__))
            found_warnings.extend(_pitfalls(described[-1][0]))
    functions: list[FunctionInfo] = []
    seen: dict[tuple[str, str], str] = {}
    for info, where in described:
        key = (info.kind, info.name.lower())
        if key in seen:
            raise AppLoadError(
                f"two {info.kind} functions are both named {info.name!r} "
                f"({seen[key]} and {where}); the host requires unique names"
            )
        seen[key] = where
        functions.append(info)
    for message in found_warnings:
        warnings.warn(message, DafxWarning, stacklevel=3)
    return AppIndex(app=app, functions=functions, warnings=found_warnings)


def _describe(function: Any) -> FunctionInfo:
    trigger = function.get_trigger()
    kind = _TRIGGER_KINDS.get(trigger.type, trigger.type)
    python_name = function.get_function_name()
    alias = {
        ORCHESTRATOR: getattr(trigger, "orchestration", None),
        ACTIVITY: getattr(trigger, "activity", None),
        ENTITY: getattr(trigger, "entity_name", None),
    }.get(kind)
    client_param = next(
        (b.name for b in function.get_bindings() if b.type == "durableClient"), None
    )
    route = methods = None
    if kind == HTTP:
        route = (trigger.route if trigger.route is not None else python_name).strip("/")
        methods = tuple(str(getattr(m, "value", m)).upper() for m in (trigger.methods or ()))
    return FunctionInfo(
        name=alias or python_name,
        kind=kind,
        handler=function.get_user_function(),
        trigger_param=trigger.name,
        client_param=client_param,
        route=route,
        methods=methods or (),
    )


def _pitfalls(info: FunctionInfo) -> list[str]:
    """Mistakes that run in plain Python but fail under the real host."""
    found = []
    if info.kind == ORCHESTRATOR and info.trigger_param != "context":
        found.append(
            f"orchestrator {info.name!r} binds its trigger to {info.trigger_param!r}; the "
            "SDK's generated handle takes a parameter named 'context', so the host cannot "
            "bind it. Use orchestration_trigger(context_name='context')."
        )
    if info.client_param and not inspect.iscoroutinefunction(info.user_function):
        found.append(
            f"function {info.name!r} uses a durable client but is not 'async def'; the "
            "SDK's client middleware awaits it, so the host fails every call. Make it async."
        )
    return found


# --- loading -----------------------------------------------------------------------


class HostJsonError(AppLoadError):
    """A ``host.json`` that is not JSON: the worker could not even import the Durable SDK."""


def load_app(app_ref: Any) -> Any:
    """Resolve ``app_ref`` to the app object (see :func:`index_app`).

    The ``host.json`` beside the app is checked (before importing a path, after
    importing a module), and the Durable SDK is imported first, so a broken
    ``host.json`` is reported as one, not as the app's first import failing.
    """
    from .classic_app import ClassicApp, function_folders, load_classic

    if hasattr(app_ref, "_function_builders") or isinstance(app_ref, ClassicApp):
        return app_ref
    path = _as_path(app_ref)
    if path is not None:
        if path.is_dir() and not (path / "function_app.py").is_file() and function_folders(path):
            _check_host_json(path, path)
            _import_sdk()
            return load_classic(path, str(app_ref))
        file = _entry_file(path)
        if file.is_file():         # else _import_path names the missing file
            _check_host_json(file.parent, path if file != path else path.parent)
        _import_sdk()
        return _find_app(_import_path(file), str(app_ref))
    if isinstance(app_ref, str):
        module_name, _, attr = app_ref.partition(":")
        _import_sdk()
        try:
            module = importlib.import_module(module_name)
        except ImportError as exc:
            raise AppLoadError(
                f"cannot import {module_name!r} for app {app_ref!r}: {exc}. Use "
                "'package.module:app' with the package importable, or a path to function_app.py."
            ) from exc
        except Exception as exc:  # the module's own code raised (or has a syntax error)
            raise AppLoadError(
                f"importing {module_name!r} failed: {type(exc).__name__}: {exc}") from exc
        if module_file := getattr(module, "__file__", None):
            _check_host_json(Path(module_file).parent, _from_cwd(Path(module_file).parent))
        if not attr:
            return _find_app(module, app_ref)
        try:
            app = getattr(module, attr)
        except AttributeError:
            raise AppLoadError(
                f"module {module_name!r} has no attribute {attr!r}; its apps: "
                f"{', '.join(_apps_in(module)) or 'none'}"
            ) from None
        if not hasattr(app, "_function_builders"):
            raise AppLoadError(f"{app_ref!r} is a {type(app).__name__}, not a FunctionApp")
        return app
    raise AppLoadError(
        f"cannot use a {type(app_ref).__name__} as an app; pass a FunctionApp/DFApp, "
        "'package.module:app', or a path to function_app.py"
    )


def _as_path(app_ref: Any) -> Path | None:
    """The path ``app_ref`` names, or None when it names a module.

    A string is a path when it looks like one (``.py``, a slash) or is an
    existing folder: ``"blueprint"`` and ``"."`` mean the app in that folder,
    ``"blueprint:app"`` or ``"pkg.module"`` are modules.
    """
    if isinstance(app_ref, Path):
        return app_ref
    if isinstance(app_ref, str) and (
        app_ref.endswith(".py") or "/" in app_ref or "\\" in app_ref or Path(app_ref).is_dir()
    ):
        return Path(app_ref)
    return None


def _entry_file(path: Path) -> Path:
    """The file to import: ``path`` itself, or for a folder its ``function_app.py``.

    ``function_app.py`` is the file the Python worker loads from the app folder.
    The error mentions the classic layout when the folder could be meant as one
    (it has ``host.json``, or no Python file at all).
    """
    if not path.is_dir():
        return path
    file = path / "function_app.py"
    if file.is_file():
        return file
    scripts = sorted(p.name for p in path.glob("*.py"))
    listing = ", ".join(scripts[:8]) + (", ..." if len(scripts) > 8 else "") if scripts else "none"
    example = next((f" (e.g. {str(path / name)!r})" for name in scripts if name != "__init__.py"), "")
    package = (f"'{path.name}:app' for the package"
               if (path / "__init__.py").is_file() and path.name.isidentifier()
               else "'package.module:app'")
    classic = ""
    if (path / "host.json").is_file() or not scripts:
        classic = (". A classic app (function.json model) is a folder with host.json and one "
                   "subfolder per function holding function.json and __init__.py; "
                   f"{str(path)!r} has no such subfolder")
    raise AppLoadError(
        f"app file not found: folder {str(path)!r} has no function_app.py (looked for "
        f"{file.resolve()}, the file the Python worker loads); its Python files: {listing}. "
        f"Pass the app's folder, its file{example}, or {package}{classic}"
    )


def _check_host_json(folder: Path, shown: Path | str) -> None:
    """Raise :class:`HostJsonError` if ``folder/host.json`` exists and is not JSON.

    ``shown`` is the folder as the user named it, so the error names the file
    the way they would (``host.json``, ``scenarios/app/host.json``).
    """
    file = folder / "host.json"
    if not file.is_file():
        return
    where = shown if isinstance(shown, str) else str(shown / "host.json")
    try:
        json.loads(file.read_text(encoding="utf-8"))
    except UnicodeDecodeError as exc:
        raise HostJsonError(
            f"{where} is not UTF-8 text (byte {exc.start} cannot be decoded); save it as UTF-8 "
            "JSON") from None
    except json.JSONDecodeError as exc:
        raise HostJsonError(
            f"{where} is not valid JSON: {exc.msg} at line {exc.lineno}, column {exc.colno} "
            "(the Durable SDK parses it with Python's json module: strict JSON, no comments, "
            "no trailing commas)") from None


def _import_sdk() -> None:
    """Import the Durable SDK before the app does, to name a broken ``./host.json`` as such.

    On its first import ``azure.durable_functions`` parses ``host.json`` in
    the current directory (``validate_extension_bundles``, skipped under
    pytest) and lets a ``JSONDecodeError`` escape, which would otherwise look
    like the app's own import failing.
    """
    if "azure.durable_functions" in sys.modules:
        return
    try:
        importlib.import_module("azure.durable_functions")
    except ValueError:       # JSONDecodeError or UnicodeDecodeError, if host.json is the cause
        _check_host_json(Path.cwd(), "host.json in the current directory")
        raise


def _from_cwd(folder: Path) -> Path:
    """``folder`` relative to the current directory when inside it, else as it is."""
    try:
        return folder.resolve().relative_to(Path.cwd().resolve())
    except ValueError:
        return folder


def _import_path(path: Path) -> Any:
    """Import a function_app.py the way the Python worker does.

    The worker puts the app folder on ``sys.path`` and imports the entry module
    as ``function_app``. Several apps in one process need distinct names in
    ``sys.modules`` (the Agent Framework re-imports classes by module name), so
    a second app gets ``function_app_<hash>``; loading the same file twice
    returns the module already loaded.
    """
    def name(resolved: Path) -> str:
        if "function_app" not in sys.modules:
            return "function_app"
        return f"function_app_{hashlib.sha1(str(resolved).encode()).hexdigest()[:10]}"

    return import_file(path, "app", name)


def import_file(path: Path, what: str, name: Callable[[Path], str]) -> Any:
    """Import a Python file as module ``name(path)``, its folder on ``sys.path``.

    A file already loaded (under any name) is returned as it is; a file that is
    missing, or whose code raises, is an :class:`AppLoadError` naming it (``what``:
    "app", "worker").
    """
    path = path.resolve()
    if not path.is_file():
        raise AppLoadError(f"{what} file not found: {path}")
    wanted = str(path)
    for module in list(sys.modules.values()):
        file = getattr(module, "__file__", None)
        if file and real_path(file) == wanted:
            return module
    module_name = name(path)
    folder = str(path.parent)
    if folder not in sys.path:
        sys.path.insert(0, folder)
    spec = importlib.util.spec_from_file_location(module_name, path)
    if spec is None or spec.loader is None:
        raise AppLoadError(f"cannot import {path}: Python has no loader for it")
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    try:
        spec.loader.exec_module(module)
    except Exception as exc:
        del sys.modules[module_name]
        raise AppLoadError(f"importing {path} failed: {type(exc).__name__}: {exc}") from exc
    return module


def _apps_in(module: Any) -> list[str]:
    return [
        name
        for name, value in vars(module).items()
        if hasattr(value, "_function_builders") and not isinstance(value, type)
    ]


def _find_app(module: Any, where: str) -> Any:
    names = _apps_in(module)
    if not names:
        raise AppLoadError(f"{where} defines no FunctionApp/DFApp object")
    if len(names) > 1 and "app" not in names:
        raise AppLoadError(
            f"{where} defines several apps ({', '.join(names)}); name one as 'module:attr'"
        )
    return getattr(module, "app" if "app" in names else names[0])
