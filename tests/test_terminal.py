"""`status`, `history` and `next` as people read them: in a real terminal (tmux) of 80×24 and
132×40, and through a pipe."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from tests.conftest import run_cli
from tests.system_tools import installed

JOBS = """
[cronflow]
timezone = "Europe/Berlin"
[jobs.db_dump_production_nightly]
command = "echo dumping; exit 3"
schedule = "30 2 * * *"
[jobs.logrotate]
command = "true"
schedule = "0 * * * *"
timezone = "America/New_York"
[jobs.upload_to_offsite_storage]
command = "true"
depends_on = ["db_dump_production_nightly"]
"""
NAMES = ("db_dump_production_nightly", "logrotate", "upload_to_offsite_storage")
STATUSES = {
    "db_dump_production_nightly": "failed",
    "logrotate": "success",
    "upload_to_offsite_storage": "upstream_failed",
}
REASON = "upstream db_dump_production_nightly @ 2026-01-13T02:30:00+01:00 is failed"


def tmux_missing() -> str:
    """Why no tmux can be had here, or "" when it can."""
    return installed("tmux", "tmux")


@pytest.fixture(scope="module")
def history(tmp_path_factory) -> Path:
    """A jobs file with long names, two zones, a failure with a long reason, and history."""
    folder = tmp_path_factory.mktemp("terminal")
    (folder / "jobs.toml").write_text(JOBS)
    for day in ("2026-01-12", "2026-01-13"):
        run_cli("run", "--date", day, cwd=folder)
    return folder


def on_screen(folder: Path, columns: int, rows: int, command: str) -> list[str]:
    """What `cronflow COMMAND` leaves on a real terminal of that size, each line as the
    terminal shows it, and lines the terminal had to wrap joined back (so a line longer than
    the terminal shows as one)."""
    why = tmux_missing()
    if why:
        pytest.skip(why)
    server = f"cronflow-test-{uuid.uuid4().hex[:8]}"
    done = "__cronflow_done__"
    program = f"{shlex.quote(sys.executable)} -m cronflow {command}"
    script = f"cd {shlex.quote(str(folder))} && {program}; echo {done}; sleep 600"
    tmux = ["tmux", "-L", server, "-f", "/dev/null"]
    environment = {key: value for key, value in os.environ.items() if key not in ("NO_COLOR",)}
    environment.pop("COLUMNS", None)
    environment.pop("CRONFLOW_JOBS", None)
    subprocess.run(
        [*tmux, "new-session", "-d", "-x", str(columns), "-y", str(rows), script],
        check=True,
        env={**environment, "TERM": "xterm-256color"},
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            shown = subprocess.run(
                [*tmux, "capture-pane", "-p", "-J", "-S", "-", "-E", "-"],
                capture_output=True,
                text=True,
                check=True,
            ).stdout
            if done in shown:
                return shown[: shown.index(done)].splitlines()
            assert time.monotonic() < deadline, f"cronflow {command} did not finish:\n{shown}"
            time.sleep(0.05)  # polling the pane for a condition, under a deadline
    finally:
        subprocess.run([*tmux, "kill-server"], capture_output=True)


def row_of(lines: list[str], job: str) -> tuple[str, list[str]]:
    """A job's row and the detail lines under it (indented, before the next row)."""
    at = next(i for i, line in enumerate(lines) if line.startswith(f" {job} "))
    details = []
    for line in lines[at + 1 :]:
        if not line.startswith("      ") or not line.strip():
            break
        details.append(line.strip())
    return lines[at], details


def test_status_on_80_columns_shows_every_name_status_time_streak_strip_and_reason(history):
    lines = on_screen(history, 80, 24, "status")
    assert all(len(line) <= 80 for line in lines), [line for line in lines if len(line) > 80]
    for job in NAMES:
        row, details = row_of(lines, job)
        cells = row.split()
        assert cells[0] == job and STATUSES[job] in cells  # the full name and status word
        assert re.search(r"\d+(s|m|h\d\dm|d\d+h) ago", row), row  # when it last ran
        strip = "".join(details) + row
        assert "■" in strip  # the strip of recent runs (coloured cells in a terminal)
    dump_row, dump_details = row_of(lines, "db_dump_production_nightly")
    assert re.search(r"in \d+(s|m|h\d\dm|d\d+h)", dump_row)  # when it runs next
    assert dump_row.split()[-1] == "2"  # two failures in a row
    assert any("exit status 3" in line for line in dump_details)
    _, upload_details = row_of(lines, "upload_to_offsite_storage")
    assert REASON in " ".join(upload_details)  # the whole reason, wrapped or not


def test_status_on_132_columns_keeps_the_reason_on_the_row(history):
    lines = on_screen(history, 132, 40, "status")
    assert all(len(line) <= 132 for line in lines)
    header = next(line for line in lines if line.split()[:1] == ["job"])
    assert header.split()[-1] == "why"
    dump_row, _ = row_of(lines, "db_dump_production_nightly")
    assert dump_row.rstrip().endswith("exit status 3")


def test_one_zone_for_all_jobs_is_named_once_above_the_table(tmp_path):
    (tmp_path / "jobs.toml").write_text(
        '[cronflow]\ntimezone = "Asia/Kolkata"\n[jobs.a]\ncommand = "true"\nschedule = "@daily"\n'
    )
    lines = on_screen(tmp_path, 80, 24, "status")
    assert "(times in Asia/Kolkata)" in lines
    assert "Asia/Kolkata" not in next(line for line in lines if line.startswith(" a "))


def test_status_wide_shows_everything_on_one_line_per_job(history):
    lines = on_screen(history, 80, 24, "status --wide")
    dump_row, details = row_of(lines, "db_dump_production_nightly")
    assert details == []
    for cell in ("daily at 02:30", "Europe/Berlin", "2026-01-13 02:30:00", "1/1", "exit status 3"):
        assert cell in dump_row


def test_history_on_80_columns_keeps_status_and_run_id(history):
    lines = on_screen(history, 80, 24, "history --limit 100")  # all 52 runs
    assert all(len(line) <= 80 for line in lines)
    starts = [i for i, line in enumerate(lines) if line.startswith(" upload_to_offsite_storage ")]
    assert len(starts) == 2
    for start in starts:
        row, details = row_of(lines[start:], "upload_to_offsite_storage")
        assert "upstream_failed" in row.split()
        run_id = re.compile(r"\d{8}T\d{6}Z-[0-9a-f]{6}")  # on the row or the line under it
        assert run_id.search(row) or run_id.search(" ".join(details))


@pytest.mark.parametrize("command", [["status"], ["history"], ["next", "-n", "3"]])
def test_piped_output_honours_columns_and_ends_no_line_in_blanks(history, command):
    narrow = run_cli(*command, cwd=history, env={"COLUMNS": "80"})
    assert narrow.returncode == 0, narrow.stderr
    lines = narrow.stdout.splitlines()
    assert all(len(line) <= 80 for line in lines), [line for line in lines if len(line) > 80]
    assert all(line == line.rstrip() for line in lines)
    unlimited = run_cli(*command, cwd=history)
    lines = unlimited.stdout.splitlines()
    assert all(line == line.rstrip() for line in lines)
    if command == ["status"]:  # without COLUMNS: one stable line per job, for grep and awk
        row = next(line for line in lines if line.startswith(" upload_to_offsite_storage "))
        assert row.rstrip().endswith(REASON)
        assert "2026-01-13 02:30:00" in row
