"""The run index: rebuilt when missing, damaged or from another log; equal to a full scan."""

from __future__ import annotations

import json
import random
import sys
from pathlib import Path

import pytest

from cronflow.model import RunStatus
from cronflow.records import failing_streak
from cronflow.state.index import RunIndex
from cronflow.state.store import Store
from tests.conftest import run_cli

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "bench"))
from make_log import JOBS, write_log  # noqa: E402  (the generator lives with the benchmarks)


def status_of(folder: Path) -> list[dict]:
    result = run_cli("status", "--json", "--jobs", "jobs.toml", cwd=folder)
    assert result.returncode == 0, result.stderr
    return [
        {k: v for k, v in row.items() if k != "next_due"}
        for row in json.loads(result.stdout)["jobs"]
    ]


@pytest.fixture
def logged(tmp_path):
    write_log(tmp_path / "state", 20_000)
    return tmp_path


@pytest.mark.parametrize("damage", ["delete", "truncate", "garbage", "other log"])
def test_a_lost_or_damaged_index_is_rebuilt_with_the_same_answers(logged, damage):
    before = status_of(logged)
    index = logged / "state" / "index.sqlite3"
    log = logged / "state" / "runs.jsonl"
    if damage == "delete":
        index.unlink()
    elif damage == "truncate":
        index.write_bytes(index.read_bytes()[: index.stat().st_size // 2])
    elif damage == "garbage":
        index.write_bytes(b"this is not a database" * 1000)
    else:  # the log was replaced by a copy: another inode, same lines
        copy = log.with_suffix(".copy")
        copy.write_bytes(log.read_bytes())
        copy.replace(log)
    assert status_of(logged) == before


def test_cronflow_reindex_rebuilds_it(logged):
    before = status_of(logged)
    result = run_cli("reindex", "--jobs", "jobs.toml", cwd=logged)
    assert result.returncode == 0 and "indexed" in result.stdout
    assert status_of(logged) == before


def test_the_index_follows_appends_without_rereading(logged):
    store = Store(logged / "state")
    history = store.index()
    write_log(logged / "more", 10)  # a separate log, to borrow its lines
    lines = (logged / "more" / "runs.jsonl").read_bytes()
    with open(store.log_path, "ab") as log:
        log.write(lines)
    offset = int(history._meta("log_offset"))
    assert store.index() is history
    assert int(history._meta("log_offset")) == offset + len(lines)


def test_a_log_read_in_many_chunks_gives_the_same_answers_as_a_full_scan(tmp_path, monkeypatch):
    """20,000 events read 64 KiB at a time (about 100 chunks); bench/bench_index.py checks
    200,000 events with the real 8 MiB chunks."""
    monkeypatch.setattr("cronflow.state.index._CHUNK", 64 * 1024)
    write_log(tmp_path / "state", 20_000)
    store = Store(tmp_path / "state")
    indexed = store.index()
    full = RunIndex(store.read().events)
    chance = random.Random(3)
    keys = [event.key for event in full.recent_runs(JOBS[0], 10_000)]
    for key in chance.sample(keys, 200):
        assert indexed.latest(key) == full.latest(key)
    for job in JOBS:
        assert indexed.recent_runs(job, 50) == full.recent_runs(job, 50)
        assert indexed.job_runs(job, 12) == full.job_runs(job, 12)
        runs = indexed.job_runs(job, 12)
        every_run = indexed.recent_runs(job, 100_000)
        assert runs.recent == [(e.logical_time, e.status) for e in every_run[-12:]]
        assert runs.last == every_run[-1]
        assert runs.failing_streak == failing_streak(e.status for e in reversed(every_run))
    assert indexed.unfinished(*RunStatus) == full.unfinished(*RunStatus)
    assert indexed.last_activity == full.last_activity


def test_retention_prunes_old_output_but_keeps_what_status_needs(write_jobs, tmp_path):
    import os
    from datetime import UTC, datetime, timedelta

    from cronflow.load import jobs_toml
    from tests.conftest import real_engine
    from tests.fakes import FakeClock

    path = write_jobs("""
        [cronflow]
        keep_days = 7
        keep_runs = 2
        [jobs.daily]
        command = "echo hello"
    """)
    jobfile = jobs_toml.load(path)
    clock = FakeClock(datetime(2026, 1, 20, tzinfo=UTC))
    engine = real_engine(jobfile, clock)
    store = engine.store
    from cronflow.decide import selection
    from cronflow.model import RunKind

    for day in range(1, 6):
        engine.executor.execute(
            selection.runs_for_date(
                jobfile, ["daily"], datetime(2026, 1, day).date(), RunKind.BACKFILL
            )
        )
    outputs = sorted((store.output_dir / "daily").iterdir())
    assert len(outputs) == 15  # 5 runs x stdout, stderr, exit status
    month_ago = (clock.now() - timedelta(days=30)).timestamp()
    for output in outputs:
        os.utime(output, (month_ago, month_ago))
    before = json.loads(run_cli("status", "--json", cwd=tmp_path).stdout)
    assert engine.tick() == []  # nothing due; the first tick prunes
    kept = {path.name.split(".")[0] for path in (store.output_dir / "daily").iterdir()}
    assert len(kept) == 2 and kept == {e.run_id for e in store.index().recent_runs("daily", 2)}
    after = json.loads(run_cli("status", "--json", cwd=tmp_path).stdout)
    assert after["jobs"] == before["jobs"]
    engine.executor.execute(
        selection.runs_for_date(jobfile, ["daily"], datetime(2026, 1, 6).date(), RunKind.BACKFILL)
    )
    for output in (store.output_dir / "daily").iterdir():
        os.utime(output, (month_ago, month_ago))
    clock.advance(timedelta(minutes=59))
    engine.tick()
    assert len(list((store.output_dir / "daily").iterdir())) == 9  # at most once an hour
    clock.advance(timedelta(minutes=2))
    engine.tick()
    assert len(list((store.output_dir / "daily").iterdir())) == 6  # an hour on: pruned
    gone = run_cli("logs", "daily", "--date", "2026-01-01", cwd=tmp_path)
    assert "is gone" in gone.stdout


def test_an_index_that_cannot_be_opened_is_a_clear_error_and_the_log_is_untouched(logged):
    log = logged / "state" / "runs.jsonl"
    before = log.read_bytes()
    (logged / "state" / "index.sqlite3").mkdir()  # something cronflow cannot replace
    result = run_cli("status", "--jobs", "jobs.toml", cwd=logged)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert "cannot bring the run index" in result.stderr and "log is untouched" in result.stderr
    assert log.read_bytes() == before


def test_the_log_rolls_into_segments_and_nothing_is_lost(tmp_path):
    from datetime import UTC, datetime

    from cronflow.model import EventType, RunEvent, RunKind

    store = Store(tmp_path / "state", segment_bytes=4096)
    store.prepare()
    start = datetime(2026, 1, 1, tzinfo=UTC)
    written = []
    for minute in range(200):
        event = RunEvent(
            event=EventType.FINISHED,
            job="tick",
            run_id=str(minute),
            logical_time=start.replace(hour=minute // 60, minute=minute % 60),
            status=RunStatus.SUCCESS,
            kind=RunKind.SCHEDULED,
        )
        written.append(store.append(event))  # as recorded: stamped with host and pid
        if minute == 100:
            halfway = store.index()  # an index that has seen part of it, then goes on
            assert halfway.run_count() == 101
    segments = store.segments()
    assert len(segments) >= 5 and all(p.stat().st_size <= 4096 for p in segments)
    assert store.read().events == written
    assert store.index().run_count() == 200
    assert [e.run_id for e in store.index().recent_runs("tick", 3)] == ["197", "198", "199"]
    rebuilt = Store(tmp_path / "state").reindex()
    assert rebuilt.run_count() == 200


APPEND_MANY = """
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from cronflow.model import EventType, RunEvent, RunKind, RunStatus
from cronflow.state.store import Store
store = Store(Path(sys.argv[1]), segment_bytes=20_000)
name = sys.argv[2]
for i in range(500):
    store.append(RunEvent(event=EventType.FINISHED, job=name, run_id=str(i),
                          logical_time=datetime(2026, 1, 1, tzinfo=UTC) + timedelta(minutes=i),
                          status=RunStatus.SUCCESS, kind=RunKind.SCHEDULED))
"""


def test_writers_racing_a_roll_over_lose_nothing(tmp_path):
    import subprocess

    writers = [
        subprocess.Popen([sys.executable, "-c", APPEND_MANY, str(tmp_path), name])
        for name in ("a", "b", "c")
    ]
    for writer in writers:
        assert writer.wait(timeout=120) == 0
    contents = Store(tmp_path).read()
    assert contents.skipped == []
    for name in ("a", "b", "c"):
        assert sorted(int(e.run_id) for e in contents.events if e.job == name) == list(range(500))
    assert len(Store(tmp_path).segments()) > 3


APPEND_AND_ASK = """
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from cronflow.model import EventType, RunEvent, RunKind, RunStatus
from cronflow.state.store import Store
store = Store(Path(sys.argv[1]), segment_bytes=int(sys.argv[3]))
name = sys.argv[2]
for i in range(400):
    key_time = datetime(2026, 1, 1, tzinfo=UTC) + timedelta(minutes=i)
    store.append(RunEvent(event=EventType.FINISHED, job=name, run_id=str(i),
                          logical_time=key_time, status=RunStatus.SUCCESS,
                          kind=RunKind.SCHEDULED))
    history = store.index()
    for j in range(i + 1):  # what this process appended, the index must always know
        latest = history.status(RunEvent(event=EventType.FINISHED, job=name, run_id="",
            logical_time=datetime(2026, 1, 1, tzinfo=UTC) + timedelta(minutes=j),
            status=RunStatus.SUCCESS, kind=RunKind.SCHEDULED).key)
        if latest is not RunStatus.SUCCESS:
            sys.exit(f"{name}: run {j} succeeded, the index said {latest}")
"""


@pytest.mark.parametrize("segment_bytes", [64 * 1024 * 1024, 30_000], ids=["one file", "rolling"])
def test_processes_syncing_side_by_side_never_see_the_index_shrink(tmp_path, segment_bytes):
    """Five processes append and sync at once (on a log that rolls over, too) while a reader
    polls the index: its run count never goes down, and no process is ever told a run it
    saw succeed never ran."""
    import sqlite3
    import subprocess

    state = tmp_path / "state"
    store = Store(state)
    store.prepare()
    store.index()  # the index exists before the race starts
    writers = [
        subprocess.Popen(
            [sys.executable, "-c", APPEND_AND_ASK, str(state), f"w{n}", str(segment_bytes)],
            stderr=subprocess.PIPE,
            text=True,
        )
        for n in range(5)
    ]
    reader = sqlite3.connect(f"file:{state / 'index.sqlite3'}?mode=ro", uri=True, timeout=60)
    counts = []
    while any(writer.poll() is None for writer in writers):
        counts.append(reader.execute("SELECT count(*) FROM runs").fetchone()[0])
    errors = [writer.stderr.read() for writer in writers]
    assert [writer.returncode for writer in writers] == [0] * 5, errors
    drops = [
        (before, after) for before, after in zip(counts, counts[1:], strict=False) if after < before
    ]
    assert drops == [] and len(counts) > 10
    assert Store(state).index().run_count() == 5 * 400


@pytest.mark.parametrize("segment_bytes", [64 * 1024 * 1024, 6_000], ids=["one file", "rolling"])
def test_the_latest_event_of_a_run_read_past_the_index_equals_a_full_scan(tmp_path, segment_bytes):
    """`Store.latest` answers from the index plus the log's unread tail, without syncing:
    three stores on one state directory (three processes' views) append run events, alerts
    and clock events, sync now and then, and roll the log over; after every step each of
    them names, for every run, the event a full scan of the log names."""
    from datetime import UTC, datetime, timedelta

    from cronflow.model import ClockSetBack, EventType, RunEvent, RunKey, RunKind

    state = tmp_path / "state"
    stores = [Store(state, segment_bytes=segment_bytes) for _ in range(3)]
    stores[0].prepare()
    start = datetime(2026, 1, 1, tzinfo=UTC)
    keys = [("a", start), ("a", start + timedelta(days=1)), ("b", start), ("b\u00e9 x", start)]
    randomly = random.Random(7)
    for step in range(250):
        store = randomly.choice(stores)
        job, at = randomly.choice(keys)
        kind = randomly.choice([EventType.STARTED, EventType.FINISHED, EventType.ALERT])
        if step % 37 == 0:  # a line about no run in between
            store.append(ClockSetBack(reached=at, noticed_at=start, reason="test"))
        store.append(
            RunEvent(
                event=kind,
                job=job,
                logical_time=at,
                run_id=str(step),
                status=RunStatus.RUNNING if kind is EventType.STARTED else RunStatus.FAILED,
                kind=RunKind.SCHEDULED,
            )
        )
        if randomly.random() < 0.1:
            randomly.choice(stores).index()
        if step in (90, 200):  # a long unread tail (> 64 KiB): the answer comes from a sync
            for _ in range(400):
                store.append(
                    RunEvent(
                        event=EventType.FINISHED,
                        job="filler",
                        logical_time=start,
                        run_id="filler",
                        status=RunStatus.SUCCESS,
                        kind=RunKind.SCHEDULED,
                    )
                )
        scanned = {}
        for event in stores[0].read().events:
            if event.event is not EventType.ALERT:
                scanned[event.key] = event
        for asking in stores:
            for key in [RunKey(job, at) for job, at in keys]:
                assert asking.latest(key) == scanned.get(key), (step, key)
    if segment_bytes < 10_000:
        assert len(stores[0].segments()) > 3


def test_an_index_row_gives_back_the_event_it_keeps():
    """The compact row format (fields by position, times in µs, run ids by their suffix)
    gives back every field the index keeps: all but stderr and a finished run's outputs."""
    from dataclasses import replace
    from datetime import UTC, datetime, timedelta, timezone

    from cronflow.model import EventType, JobProcess, RunEvent, RunKind

    at = datetime(2026, 3, 29, 1, 30, tzinfo=UTC)
    base = RunEvent(
        event=EventType.FINISHED,
        job="j.ob-1",
        logical_time=at,
        run_id="20260329T013000Z-a1b2c3",
        status=RunStatus.SUCCESS,
        kind=RunKind.BACKFILL,
    )
    variants = [
        base,
        replace(base, exit_code=0, duration_s=0.0),  # zeros that are not "empty"
        replace(base, run_id="made-by-hand", v=2, missed_ticks=3, reason="é ✓"),
        replace(
            base,
            event=EventType.STARTED,
            status=RunStatus.RUNNING,
            attempt=2,
            max_attempts=3,
            started_at=at.astimezone(timezone(timedelta(hours=2))) + timedelta(microseconds=7),
            output={"stdout": "/o/x.2.stdout"},
            process=JobProcess(pid=5, pgid=5, start_ticks=99, boot_id="b"),
            host="h",
            pid=12,
            config_hash="abc",
        ),
        replace(base, status=RunStatus.FAILED, exit_code=3, signal=None, alert={"on": "x"}),
    ]
    for event in variants:
        kept = RunIndex([event]).latest(event.key)
        expected = event if event.status is RunStatus.RUNNING else replace(event, output={})
        assert kept == replace(expected, stderr_tail=""), event
    shown = RunIndex([replace(base, stderr_tail="boom", output={"stdout": "/x"})])
    assert shown.latest(base.key) == base  # what the index never needs is not kept


def test_the_newest_runs_of_a_busy_job_are_the_same_whichever_way_they_are_found(
    tmp_path, monkeypatch
):
    """`history --job` of a job with many runs walks runs by end time instead of sorting
    them: the same runs, in the same order, as the sort gives."""
    write_log(tmp_path / "state", 4_000)
    index = Store(tmp_path / "state").index()
    sorted_runs = index.newest_first(jobs=[JOBS[0], JOBS[1]], limit=30)
    monkeypatch.setattr("cronflow.state.index_queries._FEW_RUNS", 10)  # now they count as many
    assert index._newest_first_plan([JOBS[0]]) == " INDEXED BY runs_by_end"
    assert index.newest_first(jobs=[JOBS[0], JOBS[1]], limit=30) == sorted_runs
    assert len(sorted_runs) == 30
