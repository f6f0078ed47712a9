"""Virtual environments of other tools the tests prove our output with (Apache Airflow, and
others to come), built once per machine in a cache outside the checkout, keyed by their pinned
requirements and the Python that runs them: a fresh clone reuses them, a new pin builds anew.

The cache is $TEST_VENV_CACHE (not a CRONFLOW_ name: jobs see those), else
$XDG_CACHE_HOME/cronflow-tests, else ~/.cache/cronflow-tests. Test workers that want one at
once take turns under a file lock; an environment is used only once its `complete` mark is
written, so one cut short by a kill is built again from scratch."""

from __future__ import annotations

import fcntl
import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

INSTALL_TIMEOUT = 1200  # seconds: Airflow and its dependencies on a slow mirror


class Unreachable(Exception):
    """The package index cannot be reached: the environment cannot be built here."""


def cache_dir() -> Path:
    if os.environ.get("TEST_VENV_CACHE"):
        return Path(os.environ["TEST_VENV_CACHE"])
    base = os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache")
    return Path(base) / "cronflow-tests"


def cached_venv(name: str, requirements: Path) -> Path:
    """The Python of the environment `name` with `requirements` installed, built when this
    machine has none for these exact pins. Unreachable when PyPI cannot be reached;
    RuntimeError (with pip's words) when the install fails for another reason."""
    wanted = requirements.read_bytes()
    key = hashlib.sha256(wanted + sys.version.encode()).hexdigest()[:16]
    home = cache_dir()
    home.mkdir(parents=True, exist_ok=True)
    venv = home / f"{name}-{key}"
    python = venv / "bin" / "python"
    with open(home / f"{name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if (venv / "complete").exists():
            return python
        shutil.rmtree(venv, ignore_errors=True)
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        install = subprocess.run(
            [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
            + ["-r", str(requirements)],
            capture_output=True,
            text=True,
            timeout=INSTALL_TIMEOUT,
        )
        if install.returncode != 0:
            probe = subprocess.run(
                [str(python), "-m", "pip", "index", "versions", "pip"],
                capture_output=True,
                text=True,
                timeout=120,
            )
            shutil.rmtree(venv, ignore_errors=True)
            if probe.returncode != 0:
                raise Unreachable(probe.stderr[-300:])
            raise RuntimeError(install.stderr[-3000:])
        (venv / "complete").write_bytes(wanted)
        for old in home.glob(f"{name}-*"):  # environments of older pins
            if old != venv:
                shutil.rmtree(old, ignore_errors=True)
        return python


def python_for_the_proof(name: str, requirements: Path, tool: str, to_do: str) -> Path:
    """cached_venv for a test: skipped (saying why) when PyPI cannot be reached, failed when
    the install fails for another reason. `tool` and `to_do` make the reason read: "PyPI
    cannot be reached, so Dagster cannot be installed to load and run the export"."""
    import pytest

    try:
        return cached_venv(name, requirements)
    except Unreachable as error:
        pytest.skip(f"PyPI cannot be reached, so {tool} cannot be installed to {to_do}: {error}")
    except RuntimeError as error:
        pytest.fail(f"installing {tool} failed:\n{error}")
