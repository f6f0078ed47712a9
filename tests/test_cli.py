"""The cronflow command end to end, as real processes with no terminal."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from cronflow.state.store import Store
from tests.conftest import CHILD_TZ, run_cli

PIPELINE = """
[jobs.extract]
command = 'echo "extract $CRONFLOW_DATE" >> ran.txt'
schedule = "0 6 * * *"
timezone = "Europe/Berlin"
[jobs.load]
command = 'echo "load $CRONFLOW_DATE" >> ran.txt; test ! -e fail-load'
depends_on = ["extract"]
"""


@pytest.fixture
def project(tmp_path):
    (tmp_path / "jobs.toml").write_text(PIPELINE)
    return tmp_path


def test_a_successful_run_exits_0_and_is_recorded(project):
    result = run_cli("run", "--date", "2026-01-14", cwd=project)
    assert result.returncode == 0, result.stderr
    assert (project / "ran.txt").read_text() == "extract 2026-01-14\nload 2026-01-14\n"
    assert "2 runs: 2 success" in result.stdout
    events = Store(project / ".cronflow").read().events
    assert [(e.job, e.event.value, e.status.value) for e in events] == [
        ("extract", "started", "running"),
        ("extract", "finished", "success"),
        ("load", "started", "running"),
        ("load", "finished", "success"),
    ]


def test_a_failed_run_exits_1_and_a_second_run_resumes(project):
    (project / "fail-load").touch()
    assert run_cli("run", "--date", "2026-01-14", cwd=project).returncode == 1
    (project / "fail-load").unlink()
    second = run_cli("run", "--date", "2026-01-14", cwd=project)
    assert second.returncode == 0
    assert "extract @ 2026-01-14T06:00:00+01:00: not run, already success" in second.stdout
    assert (project / "ran.txt").read_text().splitlines() == [
        "extract 2026-01-14",
        "load 2026-01-14",
        "load 2026-01-14",
    ]


def test_a_date_range_runs_oldest_first(project):
    result = run_cli("run", "--date", "2026-01-30..2026-02-01", cwd=project)
    assert result.returncode == 0
    assert (project / "ran.txt").read_text().split("\n")[:-1] == [
        "extract 2026-01-30",
        "load 2026-01-30",
        "extract 2026-01-31",
        "load 2026-01-31",
        "extract 2026-02-01",
        "load 2026-02-01",
    ]


def test_dry_run_prints_the_plan_and_runs_nothing(project):
    result = run_cli("run", "--date", "2026-01-14", "--dry-run", cwd=project)
    assert result.returncode == 0
    rows = [line.split() for line in result.stdout.splitlines()[3:] if line.strip()]
    assert rows == [
        ["extract", "2026-01-14", "06:00:00", "Europe/Berlin", "run", "never", "run"],
        ["load", "2026-01-14", "06:00:00", "Europe/Berlin", "run", "never", "run"],
    ]
    assert not (project / "ran.txt").exists()


@pytest.mark.parametrize(
    "args, words",
    [
        (["run", "--date", "2026-13-01"], "is not a date"),
        (["run", "--date", "2026-02-01..2026-01-01"], "ends before it starts"),
        (["run", "--date", "2026-01-14", "--job", "lod"], 'did you mean "load"'),
        (["run", "--job", "load"], "Without --date"),
        (["run", "--date", "2026-01-14", "--rerun", "some"], "--rerun"),
        (["frobnicate"], "No such command"),
    ],
)
def test_bad_arguments_exit_2_without_a_traceback(project, args, words):
    result = run_cli(*args, cwd=project)
    assert result.returncode == 2
    assert words in result.stderr
    assert "Traceback" not in result.stderr
    assert not (project / "ran.txt").exists()


def test_status_json_reports_each_jobs_last_run(project):
    (project / "fail-load").touch()
    run_cli("run", "--date", "2026-01-14", cwd=project)
    result = run_cli("status", "--json", cwd=project)
    assert result.returncode == 0
    document = json.loads(result.stdout)
    assert document["v"] == 2
    rows = {row["job"]: row for row in document["jobs"]}
    assert rows["extract"]["status"] == "success"
    assert rows["extract"]["last_logical_time"] == "2026-01-14T06:00:00+01:00"
    assert rows["load"]["status"] == "failed" and rows["load"]["reason"] == "exit status 1"
    assert rows["load"]["schedule"] == "after extract" and rows["load"]["attempt"] == 1


def test_status_table_is_plain_text_without_a_terminal(project):
    run_cli("run", "--date", "2026-01-14", cwd=project)
    result = run_cli("status", cwd=project)
    assert result.returncode == 0
    assert "\x1b[" not in result.stdout
    [extract] = [
        line.split() for line in result.stdout.splitlines() if line.split()[:1] == ["extract"]
    ]
    assert extract[:9] == [
        "extract",
        "daily",
        "at",
        "06:00",
        "Europe/Berlin",
        "2026-01-14",
        "06:00:00",
        "success",
        "1/1",
    ]
    assert extract[-2:] == ["-", "."]  # no failing streak; one success in the strip


def test_status_of_a_job_that_never_ran(project):
    result = run_cli("status", "--json", cwd=project)
    assert [row["status"] for row in json.loads(result.stdout)["jobs"]] == [None, None]


def test_status_skips_damaged_log_lines_and_says_so(project):
    run_cli("run", "--date", "2026-01-14", cwd=project)
    with open(project / ".cronflow" / "runs.jsonl", "ab") as log:
        log.write(b'garbage\n{"half')
    result = run_cli("status", cwd=project)
    assert result.returncode == 0 and "success" in result.stdout
    # The line without a newline may still be being written: it counts once it is ended.
    assert "1 unreadable line(s)" in result.stderr


def test_validate_lists_the_jobs(project):
    result = run_cli("validate", cwd=project)
    assert result.returncode == 0
    assert "2 jobs, no problems" in result.stdout and "load: after extract" in result.stdout


def test_python_dash_m_and_help(project):
    result = run_cli("--help", cwd=project)
    assert result.returncode == 0 and "validate" in result.stdout and "status" in result.stdout


def test_two_invocations_at_once_run_each_run_only_once(tmp_path):
    (tmp_path / "jobs.toml").write_text(
        '[jobs.slow]\ncommand = "echo $$ >> ran.txt; sleep 0.5"\n'
        '[jobs.after]\ncommand = "echo after >> ran.txt"\ndepends_on = ["slow"]\n'
    )
    env = {"PATH": "/usr/bin:/bin", "TZ": CHILD_TZ}
    both = [
        subprocess.Popen(
            [sys.executable, "-m", "cronflow", "run", "--date", "2026-01-14"],
            cwd=tmp_path,
            env=env,
            stdout=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    outputs = "".join(process.communicate(timeout=60)[0] for process in both)
    assert [process.returncode for process in both] == [0, 0]
    ran = (tmp_path / "ran.txt").read_text().split()
    assert len(ran) == 2 and ran[1] == "after", ran
    assert outputs.count("already success") == 2  # each run was left to the other once


def test_a_failed_try_says_when_it_will_be_retried(tmp_path):
    (tmp_path / "jobs.toml").write_text(
        '[jobs.flaky]\ncommand = "exit 5"\nretries = 1\nretry_delay = "250ms"\n'
    )
    result = run_cli("run", "--date", "2026-01-14", cwd=tmp_path)
    assert result.returncode == 1
    assert "failed, attempt 1/2, 0.0s, exit status 5; retrying in 0.25s" in result.stdout
    assert "failed, attempt 2/2, 0.0s, exit status 5\n" in result.stdout


GRAPH = """
[jobs.extract]
command = 'echo "$CRONFLOW_DATE extract" >> ran.txt'
schedule = "0 2 * * *"
timezone = "Europe/Berlin"
[jobs.transform]
command = 'echo "$CRONFLOW_DATE transform" >> ran.txt; ! grep -qx "$CRONFLOW_DATE" bad-days'
depends_on = ["extract"]
[jobs.load]
command = 'echo "$CRONFLOW_DATE load" >> ran.txt'
depends_on = ["transform"]
[jobs.audit]
command = 'echo "$CRONFLOW_DATE audit" >> ran.txt'
schedule = "0 23 * * *"
timezone = "Europe/Berlin"
"""


def started_count(project) -> int:
    return sum(e.event.value == "started" for e in Store(project / ".cronflow").read().events)


def test_a_31_day_backfill_runs_124_runs_in_date_order_and_only_once(tmp_path):
    (tmp_path / "jobs.toml").write_text(GRAPH)
    (tmp_path / "bad-days").write_text("")
    result = run_cli("run", "--date", "2026-01-01..2026-01-31", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "124 runs: 124 success" in result.stdout
    lines = (tmp_path / "ran.txt").read_text().splitlines()
    assert len(lines) == 124
    days = [line.split()[0] for line in lines]
    assert days == sorted(days)
    for day in {d for d in days}:
        jobs = [line.split()[1] for line in lines if line.startswith(day)]
        assert jobs.index("extract") < jobs.index("transform") < jobs.index("load")
    again = run_cli("run", "--date", "2026-01-01..2026-01-31", cwd=tmp_path)
    assert again.returncode == 0 and started_count(tmp_path) == 124
    assert "124 runs: 124 not run" in again.stdout


def test_rerun_failed_runs_only_the_runs_that_did_not_succeed(tmp_path):
    (tmp_path / "jobs.toml").write_text(GRAPH)
    (tmp_path / "bad-days").write_text("2026-01-07\n2026-01-17\n")
    first = run_cli("run", "--date", "2026-01-01..2026-01-20", cwd=tmp_path)
    assert first.returncode == 1
    assert "2 failed" in first.stdout and "2 upstream_failed" in first.stdout
    (tmp_path / "bad-days").write_text("")
    (tmp_path / "ran.txt").write_text("")
    again = run_cli("run", "--date", "2026-01-01..2026-01-20", "--rerun", "failed", cwd=tmp_path)
    assert again.returncode == 0
    assert sorted((tmp_path / "ran.txt").read_text().splitlines()) == [
        "2026-01-07 load",
        "2026-01-07 transform",
        "2026-01-17 load",
        "2026-01-17 transform",
    ]
    everything = run_cli("run", "--date", "2026-01-01", "--rerun", "all", cwd=tmp_path)
    assert "4 runs: 4 success" in everything.stdout


def test_dry_run_without_a_date_explains_each_job(tmp_path):
    (tmp_path / "jobs.toml").write_text(GRAPH)
    result = run_cli("run", "--dry-run", cwd=tmp_path)
    assert result.returncode == 0
    rows = {line.split()[0]: line for line in result.stdout.splitlines()[3:] if line.strip()}
    assert set(rows) == {"extract", "audit"} and "not due" in rows["extract"]
    assert not (tmp_path / ".cronflow" / "watermarks.json").exists()


def test_run_without_a_date_is_silent_when_nothing_fails(tmp_path):
    (tmp_path / "jobs.toml").write_text(
        '[jobs.tick]\ncommand = "echo hi"\nschedule = "* * * * *"\n'
    )
    result = run_cli("run", cwd=tmp_path)
    assert result.returncode == 0 and result.stdout == "" and result.stderr == ""
    assert started_count(tmp_path) == 1


def test_run_without_a_date_reports_failures_on_stderr_and_exits_1(tmp_path):
    (tmp_path / "jobs.toml").write_text('[jobs.tick]\ncommand = "exit 3"\nschedule = "* * * * *"\n')
    result = run_cli("run", cwd=tmp_path)
    assert result.returncode == 1 and result.stdout == ""
    assert "tick @" in result.stderr and "failed, attempt 1/1" in result.stderr


def test_next_marks_dst_adjusted_ticks(tmp_path):
    (tmp_path / "jobs.toml").write_text(
        '[cronflow]\ntimezone = "America/New_York"\n'
        '[jobs.nightly]\ncommand = "true"\nschedule = "30 1 * * *"\n'
        '[jobs.early]\ncommand = "true"\nschedule = "30 2 * * *"\n'
        '[jobs.after]\ncommand = "true"\ndepends_on = ["nightly"]\n'
    )
    result = run_cli("next", "--from", "2024-11-03T04:00Z", "-n", "2", "--json", cwd=tmp_path)
    ticks = json.loads(result.stdout)["ticks"]
    assert [(t["job"], t["logical_time"], t["utc"], bool(t["dst"])) for t in ticks] == [
        ("nightly", "2024-11-03T01:30:00-04:00", "2024-11-03T05:30:00+00:00", True),
        ("nightly", "2024-11-04T01:30:00-05:00", "2024-11-04T06:30:00+00:00", False),
        ("early", "2024-11-03T02:30:00-05:00", "2024-11-03T07:30:00+00:00", False),
        ("early", "2024-11-04T02:30:00-05:00", "2024-11-04T07:30:00+00:00", False),
    ]
    spring = run_cli(
        "next", "--job", "early", "--from", "2024-03-10T00:00-05:00", "-n", "1", cwd=tmp_path
    )
    assert spring.stdout.split()[:3] == [
        "early",
        "2024-03-10T03:00:00-04:00",
        "2024-03-10T07:00:00+00:00",
    ]
    assert "clocks jumped forward" in spring.stdout
    bad = run_cli("next", "--from", "yesterday", cwd=tmp_path)
    assert bad.returncode == 2 and "is not a time" in bad.stderr


def test_a_backfill_never_runs_a_tick_still_to_come(tmp_path):
    from datetime import UTC, datetime, timedelta

    (tmp_path / "jobs.toml").write_text(
        "[jobs.noon]\ncommand = 'echo \"$CRONFLOW_LOGICAL_TIME\" >> ran.txt'\n"
        'schedule = "0 12 * * *"\n'
    )
    today = datetime.now(UTC).date()
    yesterday, tomorrow = today - timedelta(days=1), today + timedelta(days=1)
    dry = run_cli("run", "--date", f"{yesterday}..{tomorrow}", "--dry-run", cwd=tmp_path)
    assert dry.returncode == 0 and "not yet due" in dry.stdout
    result = run_cli("run", "--date", f"{yesterday}..{tomorrow}", cwd=tmp_path)
    finished = datetime.now(UTC)
    assert result.returncode == 0, result.stderr
    assert "not yet due: left to the scheduler" in result.stdout
    ran = [datetime.fromisoformat(line) for line in (tmp_path / "ran.txt").read_text().split()]
    assert ran[0] == datetime(yesterday.year, yesterday.month, yesterday.day, 12, tzinfo=UTC)
    assert all(tick <= finished for tick in ran) and len(ran) in (1, 2)
    future = run_cli("run", "--date", str(tomorrow), cwd=tmp_path)
    assert future.returncode == 2 and "Traceback" not in future.stderr
    assert f"its first tick, noon @ {tomorrow}T12:00:00+00:00, is" in future.stderr
    assert len((tmp_path / "ran.txt").read_text().split()) == len(ran)  # nothing more ran
