"""Retention (issue 18): history older than keep_history_days is forgotten and its log
segments deleted, without changing what cronflow decides or shows, even when killed midway."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from cronflow.model import EventType, RunEvent, RunKey, RunKind, RunStatus
from cronflow.state.index import RunIndex
from cronflow.state.layout import LAST_RETENTION, SNAPSHOT_NAME
from cronflow.state.store import Store
from tests.conftest import run_cli

START = datetime(2026, 1, 1, tzinfo=UTC)
CUTOFF = START + timedelta(days=60)
SEGMENT_BYTES = 20_000


def day(n: float) -> datetime:
    return START + timedelta(days=n)


def event(job: str, n: int, status: RunStatus, **fields) -> RunEvent:
    kind = EventType.FINISHED if status in (RunStatus.SUCCESS, RunStatus.FAILED) else status
    return RunEvent(
        event=EventType(kind),
        job=job,
        logical_time=day(n),
        run_id=f"{job}-{n}",
        status=status,
        kind=RunKind.SCHEDULED,
        attempt=1,
        max_attempts=fields.pop("max_attempts", 1),
        ended_at=day(n) + timedelta(minutes=5),
        host="h",
        pid=1,
        **fields,
    )


def history() -> list[RunEvent]:
    """100 days of four jobs, each kind of thing retention must keep among them."""
    events = []
    for n in range(100):
        events.append(event("daily", n, RunStatus.SUCCESS if n < 95 else RunStatus.FAILED))
        events.append(event("failing", n, RunStatus.FAILED))  # never succeeded: one streak
        if n % 10 == 0:
            events.append(event("rare", n, RunStatus.SUCCESS))  # 10 runs: all in the strip
    # A try still owed since day 3, and a run abandoned on day 4: both outlive retention.
    events.append(event("owed", 3, RunStatus.FAILED, max_attempts=3))
    events.append(event("owed", 4, RunStatus.ABANDONED))
    for n in range(5, 100):
        events.append(event("owed", n, RunStatus.SUCCESS))
    return events


def write_aged(state: Path) -> Store:
    """The history written as cronflow writes it, each line at its own time: segments get
    the mtime of their last line, as they would have."""
    store = Store(state, segment_bytes=SEGMENT_BYTES)
    store.prepare()
    for recorded in sorted(history(), key=lambda e: e.ended_at):
        store.append(recorded)
        stamp = recorded.ended_at.timestamp()  # a segment keeps its last line's time
        os.utime(store.log_path, (stamp, stamp))
    return store


def answers(index: RunIndex) -> dict:
    """Everything status, the planner and backfills ask the index, for every job."""
    jobs = ["daily", "failing", "rare", "owed"]
    return {
        "runs": {job: index.job_runs(job, 12) for job in jobs},
        "owed": sorted(e.run_id for e in index.owed_retries()),
        "unfinished": sorted(e.run_id for e in index.unfinished(*RunStatus)),
        "recent": {
            (job, n): index.latest(RunKey(job, day(n))) for job in jobs for n in range(60, 100)
        },
    }


@pytest.fixture(scope="module")
def aged(tmp_path_factory) -> Path:
    state = tmp_path_factory.mktemp("aged") / "state"
    write_aged(state).index()
    return state


def test_retention_forgets_old_runs_and_segments_but_nothing_cronflow_decides_or_shows(
    aged, tmp_path
):
    state = tmp_path / "state"
    shutil.copytree(aged, state)
    store = Store(state, segment_bytes=SEGMENT_BYTES)
    before = answers(store.index())
    segments_before = store.segments()
    forgotten, deleted = store.forget_before(CUTOFF)
    assert forgotten > 100 and deleted >= 1
    assert len(store.segments()) == len(segments_before) - deleted
    after = answers(store.index())
    assert after == before
    assert before["runs"]["failing"].failing_streak == 100  # a streak is never cut
    index = store.index()
    assert index.latest(RunKey("daily", day(10))) is None  # forgotten (only --rerun all reruns it)
    assert index.latest(RunKey("owed", day(3))) is not None  # a try is owed: kept
    assert index.latest(RunKey("owed", day(4))) is not None  # abandoned: kept
    assert len(index.job_runs("rare", 12).recent) == 10  # within the strip: kept
    # Rebuilt from scratch, the index comes back the same (from the snapshot, then the log).
    assert (state / SNAPSHOT_NAME).exists()
    assert answers(Store(state).reindex()) == before
    (state / "index.sqlite3").unlink()
    assert answers(Store(state).index()) == before
    import sqlite3

    freed = sqlite3.connect(state / "index.sqlite3").execute("PRAGMA freelist_count").fetchone()
    assert freed == (0,)  # the pages of forgotten runs went back to the disk
    # Nothing more is due: a second pass deletes and rewrites nothing.
    snapshot_written = (state / SNAPSHOT_NAME).stat().st_mtime_ns
    assert Store(state).forget_before(CUTOFF) == (0, 0)
    assert (state / SNAPSHOT_NAME).stat().st_mtime_ns == snapshot_written


def test_every_command_works_on_a_state_retention_thinned(aged, tmp_path):
    state = tmp_path / ".cronflow"
    shutil.copytree(aged, state)
    Store(state).forget_before(CUTOFF)
    (tmp_path / "jobs.toml").write_text(
        "".join(
            f'[jobs.{job}]\ncommand = "true"\nschedule = "0 0 * * *"\n'
            for job in ("daily", "failing", "rare", "owed")
        )
    )
    for command in (["status", "--json"], ["history"], ["logs", "daily"], ["reindex"]):
        result = run_cli(*command, cwd=tmp_path)
        assert result.returncode in (0, 1, 2) and "Traceback" not in result.stderr, command
    document = json.loads(run_cli("status", "--json", cwd=tmp_path).stdout)
    streaks = {row["job"]: row["failing_streak"] for row in document["jobs"]}
    assert streaks == {"daily": 5, "failing": 100, "rare": 0, "owed": 0}


KILLED_AT = """
import os, shutil, signal, sys
from datetime import datetime
from pathlib import Path
import cronflow.state.index as index_module
from cronflow.state.store import Store

calls = [0]
target = int(sys.argv[2])

def stepping(function):
    def step(*args, **kwargs):
        calls[0] += 1
        if calls[0] == target:
            os.kill(os.getpid(), signal.SIGKILL)
        return function(*args, **kwargs)
    return step

for module, name in ((os, "replace"), (os, "unlink"), (os, "fsync"), (shutil, "copyfile")):
    setattr(module, name, stepping(getattr(module, name)))
for name in ("forget_older_than", "snapshot", "sync"):
    setattr(index_module.RunIndex, name, stepping(getattr(index_module.RunIndex, name)))
Store(Path(sys.argv[1]), segment_bytes=20_000).forget_before(datetime.fromisoformat(sys.argv[3]))
print("finished", calls[0])
"""


def test_a_retention_pass_killed_at_any_step_loses_nothing_kept(aged, tmp_path):
    """kill -9 before each step of a retention pass in turn (each fsync, rename, unlink,
    index write), until a pass runs to its end: after every one, every command works, every
    answer about what is kept is the same, and a later pass finishes the job."""
    reference = tmp_path / "reference"
    shutil.copytree(aged, reference)
    Store(reference).forget_before(CUTOFF)
    expected = answers(Store(reference).index())
    step = 1
    while True:
        state = tmp_path / f"killed-{step}"
        shutil.copytree(aged, state)
        child = subprocess.run(
            [sys.executable, "-c", KILLED_AT, str(state), str(step), CUTOFF.isoformat()],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert child.returncode in (0, -9), child.stderr
        assert answers(Store(state).index()) == expected, f"killed before step {step}"
        assert answers(Store(state).reindex()) == expected, f"killed before step {step}"
        Store(state).forget_before(CUTOFF)  # the next pass completes what this one began
        assert answers(Store(state).index()) == expected
        assert sorted(p.name for p in Store(state).segments()) == sorted(
            p.name for p in Store(reference).segments()
        )
        shutil.rmtree(state)
        if child.returncode == 0:
            break
        step += 1
    assert step > 5  # it was killed at several points before it could finish


def test_every_tick_applies_retention_once_a_day_and_the_daemon_loop_too(aged, tmp_path):
    """Not only when some job runs: a one-shot tick with nothing due forgets old history
    (once a day), and so does each loop of the daemon. The days are counted from the newest
    record (day 99 here), never beyond now: while nothing new is recorded, nothing more is
    forgotten."""
    from cronflow.load import jobs_toml
    from tests.conftest import real_engine
    from tests.fakes import FakeClock
    from tests.test_daemon import DaemonProcess

    shutil.copytree(aged, tmp_path / ".cronflow")
    jobs = tmp_path / "jobs.toml"
    jobs.write_text(
        "[cronflow]\nkeep_history_days = 40\n"
        '[jobs.daily]\ncommand = "true"\nschedule = "0 0 1 1 *"\n'
    )
    clock = FakeClock(day(120) + timedelta(hours=1))
    engine = real_engine(jobs_toml.load(jobs), clock)
    assert engine.tick() == []  # nothing due
    index = Store(tmp_path / ".cronflow").index()
    assert index.latest(RunKey("daily", day(40))) is None  # 40 days before day 99: forgotten
    assert index.latest(RunKey("daily", day(70))) is not None
    forgotten_at = Store(tmp_path / ".cronflow").read_stamp(LAST_RETENTION)
    clock.advance(timedelta(hours=23))
    assert engine.tick() == []
    assert Store(tmp_path / ".cronflow").read_stamp(LAST_RETENTION) == forgotten_at  # once a day
    clock.advance(timedelta(days=15))
    assert engine.tick() == []
    index = Store(tmp_path / ".cronflow").index()
    assert index.latest(RunKey("daily", day(70))) is not None  # nothing new recorded since
    assert Store(tmp_path / ".cronflow").read_stamp(LAST_RETENTION) > forgotten_at
    # The daemon, by the real clock (months after this history): its first loop forgets.
    daemon_state = tmp_path / "daemon"
    shutil.copytree(aged, daemon_state / ".cronflow")
    (daemon_state / "jobs.toml").write_text(jobs.read_text())
    daemon = DaemonProcess(daemon_state)
    daemon.expect("cronflow daemon started")
    deadline = time.monotonic() + 60
    while not (daemon_state / ".cronflow" / SNAPSHOT_NAME).exists():
        assert time.monotonic() < deadline, "the daemon never applied retention"
        time.sleep(0.05)  # polling for a condition under a deadline
    daemon.process.send_signal(signal.SIGTERM)
    assert daemon.finish() == 0
    kept = Store(daemon_state / ".cronflow").index().job_runs("daily", 12)
    assert len(kept.recent) == 12  # the strip survives however old it is


def test_logs_finds_a_run_through_the_index_without_reading_the_log(tmp_path, monkeypatch, capsys):
    """`cronflow logs` asks the index, whatever the log's size; only a run id that a rerun
    replaced (the index keeps a run's latest execution) is looked for in the log."""
    import contextlib

    from cronflow.cli.main import app

    (tmp_path / "jobs.toml").write_text(
        '[jobs.flaky]\ncommand = \'echo "try $CRONFLOW_ATTEMPT of $CRONFLOW_DATE"; '
        'test "$CRONFLOW_ATTEMPT" = 2\'\nschedule = "0 6 * * *"\n'
        'retries = 1\nretry_delay = "0s"\n'
    )
    for date in ("2026-01-13", "2026-01-14"):
        assert run_cli("run", "--date", date, cwd=tmp_path).returncode == 0
    replaced = (
        Store(tmp_path / ".cronflow").index().latest(RunKey("flaky", day(12) + timedelta(hours=6)))
    )
    assert run_cli("run", "--date", "2026-01-13", "--rerun", "all", cwd=tmp_path).returncode == 0

    def shown(*arguments: str) -> str:
        capsys.readouterr()
        with contextlib.suppress(SystemExit):
            app(["logs", "flaky", "--stdout", "--jobs", str(tmp_path / "jobs.toml"), *arguments])
        return capsys.readouterr().out

    monkeypatch.setattr(Store, "read", lambda self: pytest.fail("logs read the whole log"))
    assert shown() == "try 2 of 2026-01-14\n"
    assert shown("--attempt", "1") == "try 1 of 2026-01-14\n"
    assert shown("--date", "2026-01-13", "--attempt", "1") == "try 1 of 2026-01-13\n"
    monkeypatch.undo()
    assert shown("--run", replaced.run_id, "--attempt", "2") == "try 2 of 2026-01-13\n"


def test_the_hourly_prune_sweeps_what_writers_killed_mid_write_left(write_jobs, tmp_path):
    """A writer killed between creating its temporary file and renaming it leaves
    `.NAME.PID.THREAD.RANDOM` behind. The prune removes those of gone processes, an hour old
    or more, in the state directory and beside metrics_file and html_file, and nothing else."""
    from cronflow.act.assemble import assemble
    from tests.conftest import load
    from tests.fakes import FakeClock

    (tmp_path / "www").mkdir()
    jobfile = load(
        write_jobs(
            '[cronflow]\nhtml_file = "www/index.html"\nmetrics_file = "www/cronflow.prom"\n'
            '[jobs.a]\ncommand = "true"\n'
        )
    )
    state = jobfile.settings.state_dir
    Store(state).prepare()
    gone = subprocess.run(["sh", "-c", "echo $$"], capture_output=True, text=True).stdout.strip()
    old = time.time() - 7200
    names = {
        state / f".watermarks.json.{gone}.140123.0badf00d": "swept",
        tmp_path / "www" / f".index.html.{gone}.140123.deadbeef": "swept",
        tmp_path / "www" / f".cronflow.prom.{gone}.1.0123abcd": "swept",
        tmp_path / "www" / f".other.html.{gone}.1.0123abcd": "kept: not ours to sweep",
        state / f".watermarks.json.{os.getpid()}.1.0badf00d": "kept: its writer lives",
        state / f".boots.{gone}.1.12345678": "kept: too recent",
        state / "watermarks.json.1.2.0badf00d": "kept: not a temporary name",
    }
    for path, fate in names.items():
        path.write_text("left\n")
        if "recent" not in fate:
            os.utime(path, (old, old))
    clock = FakeClock(datetime.now(UTC))
    assemble(jobfile, clock=clock).prune()
    assert {path.name: path.exists() for path in names} == {
        path.name: fate.startswith("kept") for path, fate in names.items()
    }


def hourly_history(write_jobs, tmp_path, keep_history_days: int):
    """An hourly job backfilled over five days, by a clock at noon of 2026-01-20."""
    from datetime import date

    from cronflow.act.assemble import assemble
    from cronflow.decide import selection
    from tests.conftest import load
    from tests.fakes import FakeClock

    effects = tmp_path / "effects"
    jobfile = load(
        write_jobs(f"""
            [cronflow]
            keep_history_days = {keep_history_days}
            [jobs.hourly]
            command = 'echo "$CRONFLOW_LOGICAL_TIME" >> {effects}'
            schedule = "0 * * * *"
        """)
    )
    clock = FakeClock(datetime(2026, 1, 20, 12, 0, 30, tzinfo=UTC))
    days = [date(2026, 1, 10) + timedelta(days=n) for n in range(5)]

    def backfill(rerun, dry_run=False) -> list:
        chosen = selection.backfill(jobfile, ["hourly"], days, clock.now())
        engine = assemble(jobfile, clock=clock)
        return engine.backfill_preview(chosen, rerun) if dry_run else engine.backfill(chosen, rerun)

    def ran() -> int:
        return len(effects.read_text().splitlines())

    return jobfile, clock, backfill, ran


def test_a_clock_far_ahead_for_one_tick_forgets_nothing_recent(write_jobs, tmp_path):
    """One tick with the clock 730 days ahead (a bad RTC, a VM restored with a wrong clock)
    once forgot nearly every run, and a backfill then ran 287 of them again. Retention
    counts from the newest record made before the tick, by the clock that made it."""
    from cronflow.act.assemble import assemble
    from cronflow.model import Rerun

    jobfile, clock, backfill, ran = hourly_history(write_jobs, tmp_path, 400)
    backfill(Rerun.FAILED)
    assert ran() == 5 * 24
    clock.advance(timedelta(days=730))
    assemble(jobfile, clock=clock).tick()  # retention is due: never done
    assert Store(jobfile.settings.state_dir).read_stamp(LAST_RETENTION) is not None
    assert Store(jobfile.settings.state_dir).index().run_count() == 5 * 24 + 1  # + its tick
    clock.advance(timedelta(days=-730))
    before = ran()
    outcomes = backfill(Rerun.FAILED)
    assert ran() == before and {outcome.reason for outcome in outcomes} == {"already success"}


def test_a_run_retention_forgot_is_never_run_again_unasked(write_jobs, tmp_path):
    """Forgotten, a run has no record: a backfill cannot tell whether it ran, so it runs
    it only when asked to (--rerun all); the dry run says so."""
    from cronflow.act.assemble import assemble
    from cronflow.decide.explain import FORGOTTEN
    from cronflow.model import Rerun

    jobfile, clock, backfill, ran = hourly_history(write_jobs, tmp_path, 1)
    backfill(Rerun.FAILED)
    clock.advance(timedelta(days=3))
    assemble(jobfile, clock=clock).tick()  # runs its tick: a record of three days later
    clock.advance(timedelta(days=1))
    assemble(jobfile, clock=clock).tick()  # forgets all but the newest runs
    assert Store(jobfile.settings.state_dir).index().run_count() < 20
    before = ran()
    outcomes = backfill(Rerun.FAILED)
    assert ran() == before  # nothing ran again
    reasons = [outcome.reason for outcome in outcomes]
    assert set(reasons) == {FORGOTTEN, "already success"}  # the newest runs were kept
    assert reasons.count(FORGOTTEN) > 100
    preview = backfill(Rerun.FAILED, dry_run=True)
    assert [verdict.detail for verdict in preview].count(FORGOTTEN) == reasons.count(FORGOTTEN)
    backfill(Rerun.ALL)  # asked for: every run again
    assert ran() == before + 5 * 24
