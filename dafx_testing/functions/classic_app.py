"""Load a classic (v1, ``function.json``) Functions app the way the host and the Python worker do.

A classic app is a folder with ``host.json`` and one subfolder per function,
each with a ``function.json`` (its bindings) and a script (``__init__.py``
with ``main``, or ``scriptFile``/``entryPoint``). The rules followed, and
where they were read:

* Functions are the subfolders holding a ``function.json``; the folder name is
  the function name and must match ``^[a-z][a-z0-9_\\-]{0,127}$`` (not
  ``host``), case-insensitively; at least one binding, one of them a trigger
  (a type ending in ``Trigger``). The script is ``scriptFile`` resolved in the
  function folder, else the folder's only file, else ``__init__.py``
  (azure-functions-host ``HostFunctionMetadataProvider.ParseFunctionMetadata``
  and ``DeterminePrimaryScriptFile``, ``Utility.IsValidFunctionName``,
  ``FunctionDescriptorProvider``: "No trigger binding specified").
* The worker imports the script as ``__app__.<Folder>`` (``__app__`` is a
  namespace package over the app folder, so ``from ..shared import x`` and
  ``from .helper import y`` work) with the app folder on ``sys.path`` (plain
  ``import shared`` works), and takes ``entryPoint`` (default ``main``)
  (azure-functions-python-worker ``loader.load_function`` and PR #726).
* The entry point's parameters must be exactly the bindings' names, except
  ``$return`` and an unbound ``context`` (then a ``func.Context``); ``out``
  bindings get a ``func.Out`` (worker ``functions.Registry.add_function``).
* An HTTP route defaults to the function name (host
  ``WebScriptHostHttpRoutesManager``); ``durableClient`` and its old name
  ``orchestrationClient`` pass the client binding JSON string.
* A function is disabled by the app setting ``AzureWebJobs.<name>.Disabled``
  (or ``AzureWebJobs_<name>_Disabled``) set to ``true``/``1`` (WebJobs SDK
  ``FunctionIndexer.IsDisabled``, docs "How to disable functions"), read from
  the environment and ``local.settings.json``. The v2+ host no longer reads a
  ``disabled`` property in ``function.json`` (only 1.x did): such a function
  still runs, with a warning.
"""

from __future__ import annotations

import functools
import hashlib
import importlib
import importlib.machinery
import importlib.util
import inspect
import itertools
import json
import os
import re
import sys
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import azure.functions as func

from ..core.errors import AppLoadError
from .app import ACTIVITY, ENTITY, HTTP, ORCHESTRATOR, FunctionInfo

_KINDS = {"orchestrationtrigger": ORCHESTRATOR, "activitytrigger": ACTIVITY,
          "entitytrigger": ENTITY, "httptrigger": HTTP}
_ALIASES = {ORCHESTRATOR: "orchestration", ACTIVITY: "activity", ENTITY: "entityName"}
_CLIENT_TYPES = ("durableclient", "orchestrationclient")
_VALID_NAME = re.compile(r"^[a-z][a-z0-9_\-]{0,127}$(?<!^host$)", re.IGNORECASE)
_NAMESPACE = "__app__"


@dataclass
class ClassicApp:
    """A loaded classic app: its folder and its functions as the host registers them."""

    folder: Path
    functions: list[FunctionInfo] = field(default_factory=list)
    sources: dict[str, str] = field(default_factory=dict)   # function name -> its function.json
    disabled: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def function_folders(folder: Path) -> list[Path]:
    """The subfolders holding a ``function.json``, by name (the host's enumeration order)."""
    if not folder.is_dir():
        return []
    return sorted((p for p in folder.iterdir() if (p / "function.json").is_file()),
                  key=lambda p: (p.name.lower(), p.name))


def load_classic(folder: Path, shown: str) -> ClassicApp:
    """Import every function of the classic app in ``folder`` (``shown`` as the user named it)."""
    folder = folder.resolve()
    folders = function_folders(folder)
    if not (folder / "host.json").is_file():
        raise AppLoadError(
            f"{shown!r} has function folders ({', '.join(p.name for p in folders[:5])}) but no "
            "host.json; a classic Functions app is a folder with host.json and one subfolder "
            "per function (function.json + __init__.py). Add host.json, or pass the folder "
            "that has it")
    app = ClassicApp(folder)
    namespace = _namespace(folder)
    settings = _app_settings(folder)
    for function_folder in folders:
        info = _load_function(app, function_folder, namespace, settings)
        if info is not None:
            app.functions.append(info)
            app.sources[info.name] = f"{function_folder.name}/function.json"
    return app


def _load_function(app: ClassicApp, folder: Path, namespace: str,
                   settings: dict[str, str]) -> FunctionInfo | None:
    name = folder.name
    where = f"{name}/function.json"
    if not _VALID_NAME.match(name):
        raise AppLoadError(
            f"{name!r} is not a valid function name (folder {folder}); the host requires "
            "^[a-z][a-z0-9_-]{0,127}$, not 'host', and skips the folder")
    config = _read_json(folder / "function.json", where)
    bindings = config.get("bindings") if isinstance(config, dict) else None
    if not isinstance(bindings, list) or not bindings or \
            not all(isinstance(b, dict) and isinstance(b.get("name"), str) for b in bindings):
        raise AppLoadError(
            f"{where}: 'bindings' must be a non-empty list of objects, each with a 'name' (the "
            "host: 'At least one binding must be declared.')")
    triggers = [b for b in bindings if str(b.get("type", "")).lower().endswith("trigger")]
    if not triggers:
        types = ", ".join(repr(b.get("type")) for b in bindings)
        raise AppLoadError(
            f"{where} has no trigger binding (types: {types}); the host: 'No trigger binding "
            "specified. A function must have a trigger input binding.' Triggers dafx-testing "
            "runs: orchestrationTrigger, activityTrigger, entityTrigger, httpTrigger")
    if _is_disabled(name, settings):
        app.disabled.append(name)
        return None
    trigger = triggers[0]
    if any(flag not in (None, False, "false", "False") for flag in
           (config.get("disabled"), trigger.get("disabled"))):
        app.warnings.append(
            f"{where} sets 'disabled'; the Functions host v2+ ignores that property (only 1.x "
            f"read it), so {name!r} still runs. Disable it with the app setting "
            f"AzureWebJobs.{name}.Disabled=true (environment or local.settings.json Values)")
    script = _script_file(folder, config.get("scriptFile"), where)
    main = _entry_point(app.folder, namespace, script, config.get("entryPoint") or "main", where)
    kind = _KINDS.get(str(trigger["type"]).lower(), str(trigger["type"]))
    client = next((b["name"] for b in bindings
                   if str(b.get("type", "")).lower() in _CLIENT_TYPES), None)
    handler = main
    if kind in (ACTIVITY, HTTP):
        handler = _bind_extras(app, main, bindings, trigger, client, name, where)
    else:
        _check_params(main, bindings, where)
    route = None
    if kind == HTTP:
        route = (trigger.get("route") or "").strip("/") or name
    return FunctionInfo(
        name=trigger.get(_ALIASES.get(kind, ""), None) or name,
        kind=kind,
        handler=handler,
        trigger_param=trigger["name"],
        client_param=client,
        route=route,
        methods=tuple(str(m).upper() for m in trigger.get("methods") or ()),
    )


# --- files and settings ------------------------------------------------------------


def _read_json(file: Path, where: str) -> Any:
    try:
        return json.loads(file.read_text(encoding="utf-8-sig"))
    except json.JSONDecodeError as exc:
        raise AppLoadError(f"{where} is not valid JSON: {exc.msg} at line {exc.lineno}, column "
                           f"{exc.colno}") from None


def _app_settings(folder: Path) -> dict[str, str]:
    """App settings: ``local.settings.json`` ``Values`` (as Core Tools loads them), then the environment."""
    settings: dict[str, str] = {}
    local = folder / "local.settings.json"
    if local.is_file():
        try:
            values = json.loads(local.read_text(encoding="utf-8-sig")).get("Values") or {}
            settings.update({str(k): str(v) for k, v in values.items()})
        except (json.JSONDecodeError, AttributeError):
            pass                      # Core Tools reports it; disabling is all it is read for here
    settings.update(os.environ)
    return settings


def _is_disabled(name: str, settings: dict[str, str]) -> bool:
    values = (settings.get(f"AzureWebJobs.{name}.Disabled"),
              settings.get(f"AzureWebJobs_{name}_Disabled"))
    return any(str(v).strip().lower() in ("true", "1") for v in values if v is not None)


def _script_file(folder: Path, script_file: Any, where: str) -> Path:
    if script_file:
        path = (folder / str(script_file)).resolve()
        if not path.is_file():
            raise AppLoadError(
                f"{where}: scriptFile {script_file!r} does not exist (looked for {path}); it is "
                "resolved in the function's folder. The host: 'Invalid script file name "
                "configuration. The 'scriptFile' property is set to a file that does not exist.'")
        return path
    files = [p for p in folder.iterdir() if p.is_file() and p.name.lower() != "function.json"]
    if len(files) == 1:
        return files[0].resolve()
    if (folder / "__init__.py").is_file():
        return (folder / "__init__.py").resolve()
    listing = ", ".join(sorted(p.name for p in files)) or "none"
    raise AppLoadError(
        f"{where}: no script to load (files: {listing}); the host takes scriptFile, else the "
        "folder's only file, else __init__.py. Add __init__.py or set scriptFile")


# --- importing, as the worker does ---------------------------------------------------


def _namespace(folder: Path) -> str:
    """The ``__app__`` namespace package over ``folder`` (another app gets a hashed name)."""
    name = _NAMESPACE
    existing = sys.modules.get(name)
    if existing is not None and list(getattr(existing, "__path__", [])) != [str(folder)]:
        name = f"{_NAMESPACE}{hashlib.sha1(str(folder).encode()).hexdigest()[:10]}"
    if name not in sys.modules:
        spec = importlib.machinery.ModuleSpec(name, None, is_package=True)
        spec.submodule_search_locations = [str(folder)]
        sys.modules[name] = importlib.util.module_from_spec(spec)
    if str(folder) not in sys.path:
        sys.path.insert(0, str(folder))
    return name


def _entry_point(root: Path, namespace: str, script: Path, entry: str, where: str) -> Any:
    try:
        relative = script.relative_to(root)
    except ValueError:
        raise AppLoadError(f"{where}: scriptFile {script} is outside the app folder {root}; the "
                           "worker imports scripts as modules of the app folder") from None
    if relative.suffix != ".py":
        raise AppLoadError(f"{where}: {relative.as_posix()} is not a Python file (.py)")
    parts = [namespace, *relative.parts[:-1]]
    if relative.stem.lower() != "__init__":
        parts.append(relative.stem)
    module_name = ".".join(parts)
    try:
        module = importlib.import_module(module_name)
    except Exception as exc:
        raise AppLoadError(f"importing {relative.as_posix()} (as {module_name}) for {where} "
                           f"failed: {type(exc).__name__}: {exc}") from exc
    main = getattr(module, entry, None)
    if not callable(main):
        raise AppLoadError(f"{where}: function {entry}() is not present in "
                           f"{relative.as_posix()} (entryPoint, default 'main')")
    return main


def _check_params(main: Callable[..., Any], bindings: list[dict[str, Any]], where: str,
                  ) -> bool:
    """The worker's check that parameters and bindings match; True if ``context`` is wanted."""
    params = set(inspect.signature(main).parameters)
    bound = {b["name"] for b in bindings if b["name"] != "$return"}
    wants_context = "context" in params and "context" not in bound
    if wants_context:
        params.discard("context")
    for extra, side, other in ((params - bound, "Python", "function.json"),
                               (bound - params, "function.json", "Python")):
        if extra:
            raise AppLoadError(
                f"{where}: the parameters {sorted(extra)} are declared in {side} but not in "
                f"{other}; the worker requires the entry point's parameters to be exactly the "
                "bindings' names (besides '$return' and an unbound 'context')")
    return wants_context


# --- calling: what the worker passes besides the trigger and the client ---------------


class _Out(func.Out[Any]):
    """The worker's holder for an ``out`` binding: the function ``set``s the value."""

    def __init__(self) -> None:
        self.value: Any = None

    def set(self, val: Any) -> None:
        self.value = val

    def get(self) -> Any:
        return self.value


_invocations = itertools.count(1)


class _Context(func.Context):
    """The invocation context the worker passes to an unbound ``context`` parameter."""

    def __init__(self, name: str, directory: str) -> None:
        self._name, self._directory = name, directory
        self._id = str(uuid.UUID(int=next(_invocations)))    # deterministic, unlike the host's

    invocation_id = property(lambda self: self._id)
    function_name = property(lambda self: self._name)
    function_directory = property(lambda self: self._directory)
    thread_local_storage = property(lambda self: None)
    trace_context = property(lambda self: None)
    retry_context = property(lambda self: None)


def _bind_extras(app: ClassicApp, main: Callable[..., Any], bindings: list[dict[str, Any]],
                 trigger: dict[str, Any], client: str | None, name: str,
                 where: str) -> Callable[..., Any]:
    """Wrap ``main`` so the simulator passes only the trigger (and client) as for decorator apps.

    ``out`` bindings get a :class:`_Out`; a named HTTP ``out`` binding's value is
    the response; ``context`` gets a :class:`_Context`; input bindings the
    simulator does not provide get None, with a warning.
    """
    wants_context = _check_params(main, bindings, where)
    given = {trigger["name"], client}
    outs = [b["name"] for b in bindings
            if str(b.get("direction", "")).lower() == "out" and b["name"] != "$return"]
    missing = [b for b in bindings if b["name"] not in given and b["name"] not in outs
               and b["name"] != "$return"]
    for binding in missing:
        app.warnings.append(
            f"{where}: binding {binding['name']!r} (type {binding.get('type')!r}) is not "
            f"simulated; {name!r} gets None for it")
    response = next((b["name"] for b in bindings if b["name"] in outs
                     and str(b.get("type", "")).lower() == "http"), None)
    if not outs and not missing and not wants_context:
        return main

    def extras() -> dict[str, Any]:
        added: dict[str, Any] = {out: _Out() for out in outs}
        added.update({b["name"]: None for b in missing})
        if wants_context:
            added["context"] = _Context(name, str(app.folder / name))
        return added

    def outcome(returned: Any, added: dict[str, Any]) -> Any:
        return added[response].get() if response is not None else returned

    if inspect.iscoroutinefunction(main):
        async def call_async(**kwargs: Any) -> Any:
            added = extras()
            return outcome(await main(**kwargs, **added), added)
        wrapper: Callable[..., Any] = call_async
    else:
        def call(**kwargs: Any) -> Any:
            added = extras()
            return outcome(main(**kwargs, **added), added)
        wrapper = call
    functools.update_wrapper(wrapper, main)
    signature = inspect.signature(main)
    wrapper.__signature__ = signature.replace(  # type: ignore[attr-defined]
        parameters=[p for n, p in signature.parameters.items() if n in given])
    return wrapper
