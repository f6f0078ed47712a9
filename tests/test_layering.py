"""The core never loads the CLI or drawing libraries, nor apprise: a run pays for what it uses."""

from __future__ import annotations

import subprocess
import sys

import pytest

CORE = ["model", "errors", "config", "schedule", "dag", "plan", "executor", "state.store",
        "state.locks", "state.codec", "state.index", "drawing", "interop.crontab",
        "clock", "runner", "report", "invocation", "alerts", "daemon", "interop.systemd"]


@pytest.mark.parametrize("module", CORE)
def test_core_module_imports_neither_typer_rich_nor_apprise(module):
    code = (f"import sys, cronflow.{module}; "
            "print(sorted(m for m in ('typer', 'rich', 'apprise', 'click') if m in sys.modules))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            check=True)
    assert result.stdout.strip() == "[]"


def test_running_a_date_does_not_load_rich_or_apprise(tmp_path):
    (tmp_path / "jobs.toml").write_text('[jobs.a]\ncommand = "true"\n')
    code = ("import sys; from cronflow.cli import main; sys.argv = ['cronflow', 'run', '--date', "
            "'2026-01-14']\ntry:\n    main()\nexcept SystemExit:\n    pass\n"
            "print('loaded:', sorted(m for m in ('rich', 'apprise') if m in sys.modules))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            cwd=tmp_path, env={"PATH": "/usr/bin:/bin"})
    assert "loaded: []" in result.stdout, result.stdout + result.stderr
