"""The house rules, enforced by package (docs/architecture.md says why each holds): what each
package may import, read from the source with lazy imports included; which modules alone may
import each heavy library; no import circle; and that loading the core loads none of them."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "cronflow"
GROUND = {
    "cronflow",
    "cronflow.model",
    "cronflow.records",
    "cronflow.calendars",
    "cronflow.pools",
    "cronflow.errors",
    "cronflow.clock",
    "cronflow.masking",
}

# package -> the packages it must never import (and why).
FORBIDDEN = {
    "ground": ({"load", "decide", "state", "act", "tell", "cli", "interop"}, "the ground floor"),
    "load": ({"state", "act", "tell", "cli", "interop"}, "loading only reads the jobs file"),
    "decide": ({"load", "state", "act", "tell", "cli", "interop"}, "deciding is pure"),
    "state": ({"load", "decide", "act", "tell", "cli", "interop"}, "records know no policy"),
    "tell": ({"act", "cli", "interop"}, "telling never acts"),
    "act": ({"cli", "interop"}, "acting never parses a command line"),
    "interop": ({"act", "cli"}, "translations never run anything"),
    "views": ({"cli", "interop"}, "a view acts only through the commands a person would type"),
    "cli": (set(), ""),
}
# Third-party packages and the only modules allowed to import them.
OWNERS = {
    "typer": "cronflow.cli.",
    "click": "cronflow.cli.",
    "rich": "cronflow.tell.terminal",
    "apprise": "cronflow.tell.apprise_sender",
    "croniter": "cronflow.decide.schedule",
    "textual": "cronflow.views.top_",
    "starlette": "cronflow.views.web",
    "uvicorn": "cronflow.views.web",
    "holidays": "cronflow.calendars",
}


def package_of(module: str) -> str:
    if module in GROUND or module == "cronflow.__main__":
        return "ground" if module != "cronflow.__main__" else "main"
    return module.split(".")[1]


def imports_of_every_module() -> dict[str, set[str]]:
    """module -> every module it imports, anywhere in its source (functions included)."""
    found = {}
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        module = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        names = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module:
                names.add(node.module)
                names.update(f"{node.module}.{alias.name}" for alias in node.names)
        found[module] = names
    return found


def our_imports() -> dict[str, set[str]]:
    """module -> the modules of cronflow it imports (a package's `__init__` not counted)."""
    modules = imports_of_every_module()
    ours = set(modules)
    return {
        module: {name for name in names if name in ours and name != module}
        - {"cronflow", "cronflow.load", "cronflow.decide", "cronflow.state", "cronflow.act"}
        - {"cronflow.tell", "cronflow.cli", "cronflow.interop"}
        for module, names in modules.items()
    }


def test_every_package_imports_only_what_its_role_allows():
    broken = []
    for module, imported in sorted(our_imports().items()):
        role = package_of(module)
        if role == "main":
            continue
        forbidden, why = FORBIDDEN[role]
        broken += [
            f"{module} -> {name} ({why})"
            for name in sorted(imported)
            if package_of(name) in forbidden
        ]
    assert broken == []


def test_nothing_imports_the_cli_but_the_program_itself():
    broken = [
        f"{module} -> {name}"
        for module, imported in sorted(our_imports().items())
        for name in imported
        if package_of(name) == "cli" and package_of(module) not in ("cli", "main")
    ]
    assert broken == []


@pytest.mark.parametrize("library", sorted(OWNERS))
def test_each_heavy_library_has_one_owner(library):
    owner = OWNERS[library]
    users = sorted(
        module
        for module, names in imports_of_every_module().items()
        if any(name.split(".")[0] == library for name in names)
    )
    assert [module for module in users if not module.startswith(owner)] == []


def test_there_is_no_import_circle():
    graph = our_imports()
    circles = set()

    def visit(module: str, path: list[str]) -> None:
        for name in sorted(graph.get(module, ())):
            if name in path:
                circle = path[path.index(name) :]
                turn = circle.index(min(circle))
                circles.add(" -> ".join(circle[turn:] + circle[:turn]))
            elif name not in done:
                visit(name, [*path, name])
        done.add(module)

    done: set[str] = set()
    for module in sorted(graph):
        visit(module, [module])
    assert sorted(circles) == []


def test_the_layer_test_sees_lazy_imports():
    assert "cronflow.interop.crontab" in imports_of_every_module()["cronflow.cli.setting_up"]


CORE = [
    module
    for module in sorted(imports_of_every_module())
    if package_of(module) in ("ground", "load", "decide", "state", "act")
    or module == "cronflow.interop.crontab"
]


@pytest.mark.parametrize("module", CORE)
def test_core_module_loads_neither_typer_rich_nor_apprise(module):
    code = (
        f"import sys, {module}; "
        "print(sorted(m for m in ('typer', 'rich', 'apprise', 'click') if m in sys.modules))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "[]"


def test_running_a_date_does_not_load_rich_or_apprise(tmp_path):
    (tmp_path / "jobs.toml").write_text('[jobs.a]\ncommand = "true"\n')
    code = (
        "import sys; from cronflow.cli.main import main; sys.argv = ['cronflow', 'run', "
        "'--date', '2026-01-14']\ntry:\n    main()\nexcept SystemExit:\n    pass\n"
        "print('loaded:', sorted(m for m in ('rich', 'apprise') if m in sys.modules))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env={"PATH": "/usr/bin:/bin"},
    )
    assert "loaded: []" in result.stdout, result.stdout + result.stderr
