"""The cronflow command end to end, as real processes with no terminal."""

from __future__ import annotations

import json
import os
import shlex
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
    """Each job's dates oldest first, each load after its extract (an extract of the next
    date may run beside a load: there is no barrier between dates)."""
    result = run_cli("run", "--date", "2026-01-30..2026-02-01", cwd=project)
    assert result.returncode == 0
    lines = (project / "ran.txt").read_text().split("\n")[:-1]
    days = ["2026-01-30", "2026-01-31", "2026-02-01"]
    for job in ("extract", "load"):
        assert [line for line in lines if line.startswith(job)] == [f"{job} {d}" for d in days]
    for day in days:
        assert lines.index(f"extract {day}") < lines.index(f"load {day}")


def test_dry_run_prints_the_plan_and_runs_nothing(project):
    result = run_cli("run", "--date", "2026-01-14", "--dry-run", "--verbose", cwd=project)
    assert result.returncode == 0
    rows = [line.split() for line in result.stdout.splitlines()[3:] if line.strip()]
    assert rows == [
        ["extract", "2026-01-14", "06:00:00", "Europe/Berlin", "run", "never", "run"],
        ["load", "2026-01-14", "06:00:00", "Europe/Berlin", "run", "never", "run"],
    ]
    assert not (project / "ran.txt").exists()


def test_a_backfill_dry_run_sums_up_each_job_and_exclude_leaves_jobs_out(tmp_path):
    """A week of a minutely health check: one line per job (count, span, to run / done /
    skipped / not yet due), not 10,000 lines; --exclude leaves the health check out of plan and run."""
    (tmp_path / "jobs.toml").write_text(
        '[jobs.health]\ncommand = "true"\nschedule = "* * * * *"\n'
        "[jobs.report]\ncommand = 'echo \"$CRONFLOW_DATE\" >> ran.txt'\n"
        'schedule = "0 6 * * *"\n'
    )
    assert run_cli("run", "--date", "2026-01-03", "--job", "report", cwd=tmp_path).returncode == 0
    dry = run_cli("run", "--date", "2026-01-01..2026-01-07", "--dry-run", cwd=tmp_path)
    assert dry.returncode == 0, dry.stderr
    rows = {line.split()[0]: line.split() for line in dry.stdout.splitlines()[3:5]}
    assert rows["health"][:2] == ["health", "10080"]
    assert rows["health"][2:7] == ["2026-01-01", "00:00:00", "..", "2026-01-07", "23:59:00"]
    assert rows["health"][7:] == ["10080", "0", "0", "0"]  # to run, done, skipped, not yet due
    assert rows["report"][1] == "7" and rows["report"][7:] == ["6", "1", "0", "0"]
    assert len(dry.stdout.splitlines()) < 10 and "--verbose" in dry.stdout
    result = run_cli("run", "--date", "2026-01-01..2026-01-07", "--exclude", "health", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "health" not in result.stdout
    assert (tmp_path / "ran.txt").read_text().split() == [
        f"2026-01-0{d}" for d in (3, 1, 2, 4, 5, 6, 7)
    ]
    wrong = run_cli("run", "--date", "2026-01-01", "--exclude", "helth", cwd=tmp_path)
    assert wrong.returncode == 2 and 'did you mean "health"' in wrong.stderr
    everything = run_cli(
        "run", "--date", "2026-01-01", "--exclude", "health", "--exclude", "report", cwd=tmp_path
    )
    assert everything.returncode == 2 and "leaves no job to run" in everything.stderr


def test_days_are_words_or_counted_back_from_today_in_the_files_zone(tmp_path):
    from datetime import date, datetime, timedelta
    from zoneinfo import ZoneInfo

    from cronflow.cli.options import parse_dates

    today = date(2026, 3, 1)
    assert parse_dates("today", today) == [today]
    assert parse_dates("yesterday", today) == [date(2026, 2, 28)]
    assert parse_dates("-7d..today", today)[0] == date(2026, 2, 22)
    assert len(parse_dates("-7d..today", today)) == 8
    assert parse_dates("2026-02-27..yesterday", today) == [date(2026, 2, 27), date(2026, 2, 28)]
    # End to end, in a zone 14 hours ahead of UTC: "yesterday" is that zone's yesterday.
    (tmp_path / "jobs.toml").write_text(
        '[cronflow]\ntimezone = "Pacific/Kiritimati"\n'
        '[jobs.noon]\ncommand = "true"\nschedule = "0 12 * * *"\n'
    )
    zone = ZoneInfo("Pacific/Kiritimati")
    before = datetime.now(zone).date()
    dry = run_cli("run", "--date", "yesterday", "--dry-run", "--verbose", cwd=tmp_path)
    after = datetime.now(zone).date()
    assert dry.returncode == 0, dry.stderr
    shown = dry.stdout.splitlines()[3].split()[1]
    assert shown in {str(before - timedelta(days=1)), str(after - timedelta(days=1))}


def test_run_job_runs_it_now_as_a_manual_run_with_retries_and_its_downstream(project):
    """`cronflow run --job NAME`: now, kind manual, logical time this minute; upstreams not
    asked for are not consulted; --downstream brings what depends on it; asked twice, it
    runs twice; a failure exits 1 after its retries, and is recorded like any run."""
    from datetime import UTC, datetime

    (project / "jobs.toml").write_text(
        PIPELINE.replace("$CRONFLOW_DATE", "$CRONFLOW_RUN_KIND $CRONFLOW_LOGICAL_TIME")
    )
    alone = run_cli("run", "--job", "load", cwd=project)
    assert alone.returncode == 0, alone.stderr
    before = datetime.now(UTC).replace(second=0, microsecond=0)
    both = run_cli("run", "--job", "extract", "--downstream", cwd=project)
    after = datetime.now(UTC).replace(second=0, microsecond=0)
    assert both.returncode == 0, both.stderr
    lines = [line.split() for line in (project / "ran.txt").read_text().splitlines()]
    assert [(name, kind) for name, kind, _ in lines] == [
        ("load", "manual"),
        ("extract", "manual"),
        ("load", "manual"),
    ]
    logical = datetime.fromisoformat(lines[1][2])
    assert logical.second == 0 and before <= logical <= after
    assert lines[1][2] == lines[2][2]  # the downstream run stands for the same minute
    events = Store(project / ".cronflow").read().events
    assert {event.kind.value for event in events} == {"manual"}
    (project / "fail-load").touch()
    (project / "jobs.toml").write_text(
        (project / "jobs.toml").read_text() + 'retries = 1\nretry_delay = "0s"\n'
    )
    failed = run_cli("run", "--job", "load", cwd=project)
    assert failed.returncode == 1
    events = Store(project / ".cronflow").read().events
    tries = [e for e in events if e.job == "load" and e.event.value == "finished"][-2:]
    assert [(e.status.value, e.attempt) for e in tries] == [("failed", 1), ("failed", 2)]


@pytest.mark.parametrize(
    "args, words",
    [
        (["run", "--date", "2026-13-01"], "is not a day"),
        (["run", "--date", "tomorrow"], "is not a day"),
        (["run", "--date", "2026-02-01..2026-01-01"], "ends before it starts"),
        (["run", "--date", "2026-01-14", "--job", "lod"], 'did you mean "load"'),
        (["run", "--exclude", "load"], "Without them"),
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
    """Each job's runs in date order, each date's runs after their upstreams' (not every
    job of a date before any of the next: see the test of a job that retries)."""
    (tmp_path / "jobs.toml").write_text(GRAPH)
    (tmp_path / "bad-days").write_text("")
    result = run_cli("run", "--date", "2026-01-01..2026-01-31", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "124 runs: 124 success" in result.stdout
    lines = (tmp_path / "ran.txt").read_text().splitlines()
    assert len(lines) == 124
    days = [line.split()[0] for line in lines]
    for job in ("extract", "transform", "load", "audit"):
        own = [line.split()[0] for line in lines if line.split()[1] == job]
        assert len(own) == 31 and own == sorted(own), job
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
        ("early", "2024-11-03T02:30:00-05:00", "2024-11-03T07:30:00+00:00", False),
        ("nightly", "2024-11-04T01:30:00-05:00", "2024-11-04T06:30:00+00:00", False),
        ("early", "2024-11-04T02:30:00-05:00", "2024-11-04T07:30:00+00:00", False),
    ]  # soonest first, whichever job
    spring = run_cli(
        "next", "--job", "early", "--from", "2024-03-10T00:00-05:00", "-n", "1", cwd=tmp_path
    )
    [row] = [line for line in spring.stdout.splitlines() if line.startswith(" early ")]
    assert row.split()[:3] == [
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


def test_a_reader_that_goes_away_ends_each_command_quietly_and_a_run_goes_on(tmp_path):
    """`cronflow graph | head -1`, and the like: no BrokenPipe message, no traceback. A
    backfill whose reader goes away still runs and records every run, and its exit status
    still says how the runs went."""
    count = 400
    (tmp_path / "jobs.toml").write_text(
        '[jobs.job_0]\ncommand = "true"\nschedule = "0 6 * * *"\n'
        + "".join(
            f'[jobs.job_{n}]\ncommand = "true"\ndepends_on = ["job_{n - 1}"]\n'
            for n in range(1, count)
        )
    )
    environment = {key: value for key, value in os.environ.items() if key != "CRONFLOW_JOBS"}
    for arguments in (
        ["run", "--date", "2026-01-14"],
        ["graph"],
        ["graph", "--format", "dot"],
        ["status"],
        ["next", "-n", "20"],
        ["history", "--limit", "1000"],
        ["run", "--date", "2026-01-10..2026-01-13", "--dry-run", "--verbose"],
        ["export", "airflow", "--out", "-"],
    ):
        reader = subprocess.Popen(
            [sys.executable, "-m", "cronflow", *arguments],
            cwd=tmp_path,
            env={**environment, "NO_COLOR": "1"},
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        assert reader.stdout.read(10)  # the first bytes, then the reader goes away
        reader.stdout.close()
        status = reader.wait(timeout=300)
        complaint = reader.stderr.read().decode()
        assert "Broken" not in complaint and "Traceback" not in complaint, (arguments, complaint)
        assert status in (0, 1), (arguments, status)
        if arguments[0] == "run" and "--dry-run" not in arguments:
            assert status == 0
            finished = [e for e in Store(tmp_path / ".cronflow").read().events if e.ended_at]
            assert len(finished) == count


def test_ctrl_c_stops_a_backfill_records_it_and_prints_how_to_resume(tmp_path):
    """Ctrl-C: nothing more starts, the running job gets shutdown_grace (a second Ctrl-C
    stops it at once), it is recorded interrupted, the summary says what happened and the
    exact command that resumes; that command then finishes the range."""
    import signal
    import time

    (tmp_path / "jobs.toml").write_text(
        '[cronflow]\nshutdown_grace = "60s"\n'
        "[jobs.a]\ncommand = 'echo \"$CRONFLOW_DATE\" >> a.txt; test -e quick || sleep 120'\n"
        'schedule = "0 6 * * *"\n'
        '[jobs.b]\ncommand = \'echo "$CRONFLOW_DATE" >> b.txt\'\ndepends_on = ["a"]\n'
    )
    environment = {key: value for key, value in os.environ.items() if key != "CRONFLOW_JOBS"}
    backfill = subprocess.Popen(
        [sys.executable, "-m", "cronflow", "run", "--date", "2026-01-01..2026-01-05"],
        cwd=tmp_path,
        env=environment,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 60
    while not (tmp_path / "a.txt").exists():  # the first run of a has begun
        assert time.monotonic() < deadline and backfill.poll() is None
        time.sleep(0.02)
    backfill.send_signal(signal.SIGINT)
    said = ""
    while "stopping" not in said:  # the first Ctrl-C was taken in (EOF would end it too)
        line = backfill.stderr.readline()
        assert line, said
        said += line
    backfill.send_signal(signal.SIGINT)  # the second: stop it now, not after 60 s
    out, err = backfill.communicate(timeout=30)
    assert backfill.returncode == 130, err
    assert "Traceback" not in said + err
    assert "10 runs: 1 interrupted, 9 not started" in out
    [resume] = [line.split("resume with: ", 1)[1] for line in out.splitlines() if "resume" in line]
    assert "--date 2026-01-01..2026-01-05" in resume and str(tmp_path / "jobs.toml") in resume
    events = Store(tmp_path / ".cronflow").read().events
    assert [(e.job, e.status.value) for e in events if e.status.value != "running"] == [
        ("a", "interrupted"),  # the runs never started stay untouched: the resume runs them
    ]
    assert run_cli("status", "--check", cwd=tmp_path).returncode == 0  # not a failure
    (tmp_path / "quick").touch()
    resumed = subprocess.run(
        shlex.split(resume), cwd=tmp_path, env=environment, capture_output=True, text=True
    )
    assert resumed.returncode == 0, resumed.stderr
    assert (tmp_path / "b.txt").read_text().split() == [f"2026-01-0{d}" for d in range(1, 6)]


def test_a_job_that_retries_on_one_date_holds_back_only_its_own_flow(tmp_path):
    """One flaky job once slowed a whole range: each date waited for the previous date's
    retries. Now `flaky`'s retry on the 1st waits (its backoff) until an independent job
    has run all three dates (a handshake: it fails again otherwise), while its own later
    dates and its dependent keep their order."""
    (tmp_path / "jobs.toml").write_text(
        "[jobs.fast]\ncommand = 'echo \"fast $CRONFLOW_DATE\" >> ran.txt'\n"
        'schedule = "0 6 * * *"\n'
        "[jobs.flaky]\ncommand = '''\n"
        'if [ "$CRONFLOW_DATE" = 2026-01-01 ] && [ "$CRONFLOW_ATTEMPT" = 1 ]; then exit 1; fi\n'
        'if [ "$CRONFLOW_DATE" = 2026-01-01 ]; then\n'
        "  for i in $(seq 600); do grep -q 'fast 2026-01-03' ran.txt && break; sleep 0.1; done\n"
        "  grep -q 'fast 2026-01-03' ran.txt || exit 2\n"
        "fi\n"
        'echo "flaky $CRONFLOW_DATE" >> ran.txt\n'
        "'''\n"
        'schedule = "0 6 * * *"\nretries = 1\nretry_delay = "1s"\n'
        "[jobs.after]\ncommand = 'echo \"after $CRONFLOW_DATE\" >> ran.txt'\n"
        'depends_on = ["flaky"]\n'
    )
    result = run_cli("run", "--date", "2026-01-01..2026-01-03", cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    lines = (tmp_path / "ran.txt").read_text().splitlines()
    assert lines.index("fast 2026-01-03") < lines.index("flaky 2026-01-01")
    for job in ("fast", "flaky", "after"):
        own = [line for line in lines if line.startswith(job + " ")]
        assert own == [f"{job} 2026-01-0{day}" for day in (1, 2, 3)], lines
    for day in (1, 2, 3):
        assert lines.index(f"flaky 2026-01-0{day}") < lines.index(f"after 2026-01-0{day}")
