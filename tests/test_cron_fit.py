"""What a cron user gets from the crontab line `* * * * * cronflow run`: cron mails whatever
the line prints, so a quiet tick prints nothing and a failing one says what went wrong (the
run's stderr tail, masked), as plain cron's mail of the job's own output would; and a job
sees the environment cron would give it, nothing Python added."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

CRON_ENV = {  # what Debian's cron gives a job: no LANG, no LC_*
    "PATH": "/usr/bin:/bin",
    "HOME": "/root",
    "SHELL": "/bin/sh",
    "LOGNAME": "root",
}


def tick(folder: Path) -> subprocess.CompletedProcess:
    """A one-shot `cronflow run` as cron starts it (its environment, no terminal)."""
    return subprocess.run(
        [sys.executable, "-m", "cronflow", "run"],
        cwd=folder,
        env={**CRON_ENV, "PATH": f"{Path(sys.executable).parent}:{CRON_ENV['PATH']}"},
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=120,
    )


JOBS = """\
[cronflow]
{setting}
[jobs.broken]
command = 'env > env.txt; echo "password $DB_PASSWORD rejected" >&2; echo "giving up" >&2; exit 3'
schedule = "* * * * *"
env = {{ DB_PASSWORD = "hunter2-secret" }}
[jobs.quiet]
command = "echo all fine"
schedule = "* * * * *"
"""


def test_a_failing_tick_prints_the_stderr_tail_cron_mails_and_a_quiet_one_nothing(tmp_path):
    (tmp_path / "jobs.toml").write_text(JOBS.format(setting=""))
    failed = tick(tmp_path)
    assert failed.returncode == 1 and failed.stdout == ""
    lines = failed.stderr.splitlines()
    assert any("broken" in line and "exit status 3" in line for line in lines), lines
    assert "    | password *** rejected" in lines and "    | giving up" in lines
    assert "hunter2-secret" not in failed.stderr and "quiet" not in failed.stderr
    (tmp_path / "jobs.toml").write_text(
        JOBS.format(setting="show_stderr = false").replace("exit 3", "exit 0")
    )
    assert tick(tmp_path).stderr == ""  # nothing failed: nothing to mail


def test_the_tail_can_be_left_out(tmp_path):
    (tmp_path / "jobs.toml").write_text(JOBS.format(setting="show_stderr = false"))
    failed = tick(tmp_path)
    assert failed.returncode == 1 and "exit status 3" in failed.stderr
    assert "giving up" not in failed.stderr


def test_a_job_sees_the_environment_cron_gave_not_what_python_added(tmp_path):
    """Python sets LC_CTYPE=C.UTF-8 at start-up when the locale is C (PEP 538), as under
    cron; cron never does, and a job must not see it."""
    (tmp_path / "jobs.toml").write_text(JOBS.format(setting=""))
    tick(tmp_path)
    seen = dict(
        line.split("=", 1)
        for line in (tmp_path / "env.txt").read_text().splitlines()
        if "=" in line
    )
    assert "LC_CTYPE" not in seen and "LANG" not in seen
    assert seen["HOME"] == "/root" and seen["LOGNAME"] == "root"
    # One given on purpose is passed on.
    given = {**CRON_ENV, "LC_CTYPE": "de_DE.UTF-8", "PATH": os.environ["PATH"]}
    subprocess.run(
        [sys.executable, "-m", "cronflow", "run", "--job", "broken"],
        cwd=tmp_path,
        env=given,
        capture_output=True,
        timeout=120,
    )
    assert "LC_CTYPE=de_DE.UTF-8" in (tmp_path / "env.txt").read_text().splitlines()
