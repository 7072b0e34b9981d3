"""The package's layout rules, read from the imports themselves so they stay kept.

The folders are the architecture (README, "Layout"): ``core/`` under everything, the
``functions/`` host and ``agents/`` on it, ``checks/`` and ``reports/`` above them, the
front ends (``simulator.py``, ``cli.py``, ``pytest_plugin/``) on top. A module may import
its own part and the parts listed for it here; every import counts, including those inside
functions and under ``TYPE_CHECKING``.
"""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

import pytest

import dafx_testing

PACKAGE = Path(dafx_testing.__file__).parent
README = PACKAGE.parent / "README.md"

# part -> the other parts it may import ("llm" is the fake model, usable on its own).
ALLOWED = {
    "core": set(),
    "functions": {"core"},
    "agents": {"core"},
    "llm": {"core"},
    "checks": {"core", "functions", "agents", "llm"},
    "reports": {"core", "functions", "agents", "checks"},
    "simulator": {"core", "functions", "agents", "checks", "llm"},
    # the durabletask host: its engine is the Functions one, its simulator extends the facade
    "durabletask": {"core", "functions", "agents", "checks", "simulator"},
    "cli": {"core", "functions", "agents", "checks", "reports", "simulator"},
    "pytest_plugin": {"core", "functions", "agents", "checks", "reports", "simulator", "llm",
                      "durabletask"},
    "__init__": {"core", "functions", "agents", "checks", "simulator", "durabletask"},
}
ENGINE_FREE_AT_PLUGIN_START = ("azure", "openai", "agent_framework", "httpx", "respx")


def _part(module: str) -> str:
    """``dafx_testing.checks.sweep`` -> ``checks``; the package itself -> ``__init__``."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def _imports(path: Path) -> list[tuple[int, str, list[str]]]:
    """Every import in a module file: (line, absolute module, names imported from it)."""
    relative = path.relative_to(PACKAGE.parent).with_suffix("").parts
    here = list(relative[:-1]) if path.name == "__init__.py" else list(relative)
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = here[: len(here) - node.level] if path.name != "__init__.py" else (
                    here[: len(here) - node.level + 1])
                module = ".".join([*base, *([node.module] if node.module else [])])
            else:
                module = node.module or ""
            found.append((node.lineno, module, [alias.name for alias in node.names]))
        elif isinstance(node, ast.Import):
            found += [(node.lineno, alias.name, []) for alias in node.names]
    return found


def _modules() -> list[tuple[str, Path]]:
    return [(".".join(p.relative_to(PACKAGE.parent).with_suffix("").parts), p)
            for p in sorted(PACKAGE.rglob("*.py"))]


def _edges() -> list[tuple[str, str, str]]:
    """(importing part, imported part, where) for every import between two parts."""
    edges = []
    for module, path in _modules():
        source = _part(module.removesuffix(".__init__"))
        for line, target, names in _imports(path):
            if not target.startswith("dafx_testing"):
                continue
            where = f"{path.relative_to(PACKAGE.parent)}:{line}"
            if target == "dafx_testing":
                # `from dafx_testing import X`: the part X lives in (or the version string).
                for name in names:
                    if name == "__version__":
                        continue
                    home = dafx_testing._HOMES.get(name)
                    edges.append((source, _part(f"dafx_testing.{home or name}"), where))
            elif _part(target) != source:
                edges.append((source, _part(target), where))
    return edges


def test_every_module_belongs_to_a_known_part():
    unknown = {_part(m.removesuffix(".__init__")) for m, _ in _modules()} - set(ALLOWED)
    assert not unknown, f"modules outside the layout: {sorted(unknown)}; add them to ALLOWED"


def test_parts_import_only_what_the_layout_allows():
    broken = [f"{where}: {source} imports {target}" for source, target, where in _edges()
              if target not in ALLOWED[source]]
    assert not broken, "layout rules broken:\n" + "\n".join(broken)


def test_the_allowed_graph_has_no_cycles():
    # The rules themselves must be layered, or "not each other in a loop" means nothing.
    def reaches(start: str, goal: str, seen: frozenset = frozenset()) -> bool:
        return any(n == goal or (n not in seen and reaches(n, goal, seen | {n}))
                   for n in ALLOWED[start])

    assert not [part for part in ALLOWED if reaches(part, part)]


def test_the_host_simulators_the_facade_names_are_front_ends():
    # Simulator names them by path (they import it); each must be allowed to, and load.
    from dafx_testing.simulator import HOST_SIMULATORS, Simulator

    for host in HOST_SIMULATORS:
        assert "simulator" in ALLOWED[_part(host.path)], host
        module = __import__(host.path, fromlist=[host.name])
        assert issubclass(getattr(module, host.name), Simulator)


def test_only_the_plugin_imports_pytest():
    offenders = [f"{path.relative_to(PACKAGE.parent)}:{line}"
                 for module, path in _modules() if _part(module) != "pytest_plugin"
                 for line, target, _ in _imports(path)
                 if target.split(".")[0] in ("pytest", "_pytest")]
    assert not offenders, f"pytest imported outside pytest_plugin/: {offenders}"


def test_the_rule_check_sees_a_forbidden_import(tmp_path, monkeypatch):
    # The checker itself can fail: a core module that imports a host is reported.
    fake = tmp_path / "dafx_testing"
    (fake / "core").mkdir(parents=True)
    (fake / "__init__.py").write_text("")
    (fake / "core" / "__init__.py").write_text("")
    (fake / "core" / "bad.py").write_text("from ..functions.worker import Worker\n")
    monkeypatch.setattr(sys.modules[__name__], "PACKAGE", fake)
    assert ("core", "functions", "dafx_testing/core/bad.py:1") in _edges()


def test_loading_the_plugin_does_not_load_the_engine():
    code = ("import sys, dafx_testing.pytest_plugin.plugin\n"
            "print(' '.join(sorted(sys.modules)))")
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            check=True).stdout.split()
    ours = {m for m in loaded if m.startswith("dafx_testing")}
    assert ours <= {"dafx_testing", "dafx_testing.pytest_plugin",
                    "dafx_testing.pytest_plugin.plugin", "dafx_testing.pytest_plugin.config",
                    "dafx_testing.pytest_plugin.sweep_marker"}, sorted(ours)
    heavy = {m.split(".")[0] for m in loaded} & set(ENGINE_FREE_AT_PLUGIN_START)
    assert not heavy, f"the plugin's import loaded {sorted(heavy)}"


def test_the_public_face_lists_what_it_serves():
    assert sorted(dafx_testing.__all__) == sorted(dafx_testing._HOMES)
    assert len(set(dafx_testing.__all__)) == len(dafx_testing.__all__)
    for name in dafx_testing.__all__:
        value = getattr(dafx_testing, name)
        assert value is getattr(__import__(f"dafx_testing.{dafx_testing._HOMES[name]}",
                                           fromlist=[name]), name)


def test_an_unknown_public_name_is_an_attribute_error():
    with pytest.raises(AttributeError, match="no attribute 'Simulater'"):
        dafx_testing.Simulater  # noqa: B018


def test_the_readme_imports_only_the_public_modules():
    imports = re.findall(r"^\s*from (dafx_testing[\w.]*) import", README.read_text(), re.M)
    assert imports, "the README shows no imports"
    assert set(imports) <= {"dafx_testing", "dafx_testing.llm"}, sorted(set(imports))
