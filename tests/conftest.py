from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import settings

from cronflow import JOBS_ENV_VAR
from cronflow.act.assemble import assemble
from cronflow.act.executor import Executor
from cronflow.load import jobs_toml
from cronflow.model import JobFile
from tests.fakes import FakeClock

# Under CI, property tests draw the same examples on every run: a failure there is one anybody
# can reproduce, never a coin toss (locally they explore anew each run, and keep what failed).
settings.register_profile("ci", derandomize=True, database=None)
if os.environ.get("CI"):
    settings.load_profile("ci")

# A zone with a 45-minute offset and its own DST: nothing may depend on the machine's zone.
CHILD_TZ = "Pacific/Chatham"


@pytest.fixture
def write_jobs(tmp_path: Path):
    """Write a jobs.toml (dedented) into tmp_path and return its path."""

    def write(text: str, name: str = "jobs.toml") -> Path:
        path = tmp_path / name
        path.write_text(textwrap.dedent(text))
        return path

    return write


def run_cli(
    *args: str, cwd: Path, env: dict[str, str] | None = None, timeout: float = 60, umask: int = -1
) -> subprocess.CompletedProcess:
    """`python -m cronflow ARGS` in a real process, with no terminal and a strange TZ."""
    # Not the terminal's size running the tests: a test that wants a width says COLUMNS.
    dropped = (JOBS_ENV_VAR, "COLUMNS", "LINES")
    inherited = {k: v for k, v in os.environ.items() if k not in dropped}
    child_env = {**inherited, "TZ": CHILD_TZ, "CI": "true", "NO_COLOR": "1", **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "cronflow", *args],
        cwd=cwd,
        env=child_env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=timeout,
        umask=umask,
    )


def spawn_cli(folder: Path, *args: str) -> subprocess.Popen:
    """`cronflow ARGS --jobs folder/jobs.toml` in a process of its own, as cron or a person
    starts it (a strange TZ, no terminal), its output piped."""
    environment = {**os.environ, "TZ": CHILD_TZ, "CI": "true", "NO_COLOR": "1"}
    environment.pop(JOBS_ENV_VAR, None)
    return subprocess.Popen(
        [sys.executable, "-m", "cronflow", *args, "--jobs", str(folder / "jobs.toml")],
        cwd=folder,
        env=environment,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def refused(folder: Path, text: str) -> str:
    """Write `text` as folder/jobs.toml and validate it with the real command: it must be
    refused with exit status 2 and a message, never a traceback. Returns the message."""
    (folder / "jobs.toml").write_text(text)
    checked = run_cli("validate", "--jobs", str(folder / "jobs.toml"), cwd=folder)
    assert checked.returncode == 2, checked.stderr
    assert "Traceback" not in checked.stderr
    return checked.stderr


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(datetime(2026, 1, 15, 3, 0, tzinfo=UTC))


@pytest.fixture
def make_executor(clock: FakeClock):
    """An Executor wired as cronflow runs for real (act/assemble.py), with a fake clock."""

    def make(jobfile: JobFile, events: list | None = None) -> Executor:
        return assemble(
            jobfile, clock=clock, on_event=None if events is None else events.append
        ).executor

    return make


def real_engine(jobfile: JobFile, clock):
    """An engine wired as cronflow runs for real (act/assemble.py), on a fake clock."""
    return assemble(jobfile, clock=clock)


def load(path: Path) -> JobFile:
    return jobs_toml.load(path)


@pytest.fixture
def monitor():
    """A real Healthchecks/Cronitor-speaking server on 127.0.0.1 (tests/receivers.py)."""
    from tests.receivers import serving, start_monitor

    yield from serving(start_monitor())


@pytest.fixture
def receiver():
    """A real HTTP server on 127.0.0.1 that records the alerts it receives."""
    from tests.receivers import serving, start_receiver

    yield from serving(start_receiver())
