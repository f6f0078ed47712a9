"""The layers, enforced: what each module may import (read from the source, lazy imports
included), and that the core never loads the CLI or drawing libraries, nor apprise."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

CORE = [
    "model",
    "errors",
    "config",
    "schedule",
    "dag",
    "plan",
    "executor",
    "state.store",
    "state.locks",
    "state.codec",
    "state.index",
    "state.idle",
    "drawing",
    "interop.crontab",
    "clock",
    "runner",
    "report",
    "invocation",
    "alerts",
    "daemon",
    "interop.systemd",
    "pings",
    "pinger",
    "metrics",
    "refresh",
    "status_page",
    "assets",
]


@pytest.mark.parametrize("module", CORE)
def test_core_module_imports_neither_typer_rich_nor_apprise(module):
    code = (
        f"import sys, cronflow.{module}; "
        "print(sorted(m for m in ('typer', 'rich', 'apprise', 'click') if m in sys.modules))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "[]"


def test_running_a_date_does_not_load_rich_or_apprise(tmp_path):
    (tmp_path / "jobs.toml").write_text('[jobs.a]\ncommand = "true"\n')
    code = (
        "import sys; from cronflow.cli import main; sys.argv = ['cronflow', 'run', '--date', "
        "'2026-01-14']\ntry:\n    main()\nexcept SystemExit:\n    pass\n"
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


PACKAGE = Path(__file__).resolve().parent.parent / "cronflow"
# The decisions: pure, given their inputs. They import nothing that acts (runs processes,
# reads the kernel), records (the state directory) or draws (rich, typer).
CORE = {
    "cronflow.model",
    "cronflow.errors",
    "cronflow.schedule",
    "cronflow.dag",
    "cronflow.plan",
    "cronflow.report",
    "cronflow.assets",
}
# Third-party packages and the only modules allowed to import them.
OWNERS = {
    "typer": {"cronflow.cli"},
    "click": {"cronflow.cli"},
    "rich": {"cronflow.render", "cronflow.drawing"},
    "apprise": {"cronflow.alerts"},
    "croniter": {"cronflow.schedule"},
}


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


def test_the_layers_hold():
    modules = imports_of_every_module()
    ours = set(modules)
    broken = []
    for module, names in sorted(modules.items()):
        imported = {name for name in names if name in ours}
        if module in CORE:
            broken += [
                f"{module} -> {name} (the core decides; it acts, records and draws nothing)"
                for name in sorted(imported - CORE - {"cronflow"})
            ]
        if module == "cronflow.model":
            broken += [
                f"{module} -> {name} (the model knows no decision)"
                for name in sorted(imported - {"cronflow.model"})
            ]
        if module not in ("cronflow.cli", "cronflow.__main__"):
            broken += [
                f"{module} -> cronflow.cli (nothing imports the CLI)"
                for name in imported
                if name == "cronflow.cli"
            ]
        for package, owners in OWNERS.items():
            if module not in owners and any(name.split(".")[0] == package for name in names):
                broken.append(f"{module} -> {package} (only {', '.join(sorted(owners))})")
    assert broken == []


def test_the_layer_test_sees_lazy_imports():
    assert "cronflow.interop.crontab" in imports_of_every_module()["cronflow.cli"]
