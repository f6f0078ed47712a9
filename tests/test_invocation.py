"""What is due by the clock: watermarks, catch-up, DST, overlap, waiting and abandoned runs.

2024 transitions in America/New_York (tz database):
  spring forward  2024-03-10 02:00 EST -> 03:00 EDT, at 07:00Z
  fall back       2024-11-03 02:00 EDT -> 01:00 EST, at 06:00Z
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
from collections import Counter
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from cronflow.decide import due, selection
from cronflow.model import ClockSetBack, EventType, RunKind, RunStatus, Watermark
from cronflow.state.index import RunIndex
from cronflow.state.store import Store
from tests.conftest import load, real_engine
from tests.fakes import FakeClock

NEW_YORK = ZoneInfo("America/New_York")

DST_JOBS = """
    [cronflow]
    timezone = "America/New_York"
    [jobs.fixed_in_gap]
    command = "true"
    schedule = "30 2 * * *"
    [jobs.fixed_in_repeat]
    command = "true"
    schedule = "30 1 * * *"
    [jobs.hourly]
    command = "true"
    schedule = "0 * * * *"
    [jobs.half_hourly]
    command = "true"
    schedule = "*/30 * * * *"
    [jobs.after_hourly]
    command = "true"
    depends_on = ["hourly"]
"""


@pytest.mark.parametrize(
    "day, expected",
    [
        (
            "2024-03-10",
            {
                "fixed_in_gap": 1,
                "fixed_in_repeat": 1,
                "hourly": 23,
                "half_hourly": 46,
                "after_hourly": 23,
            },
        ),
        (
            "2024-11-03",
            {
                "fixed_in_gap": 1,
                "fixed_in_repeat": 1,
                "hourly": 25,
                "half_hourly": 50,
                "after_hourly": 25,
            },
        ),
    ],
)
def test_minute_by_minute_across_a_dst_day_runs_each_job_as_cronie_does(write_jobs, day, expected):
    jobfile = load(write_jobs(DST_JOBS))
    start = datetime.fromisoformat(day).replace(tzinfo=NEW_YORK).astimezone(UTC)
    end = (datetime.fromisoformat(day) + timedelta(days=1)).replace(tzinfo=NEW_YORK)
    watermarks = {
        name: Watermark(decided=start - timedelta(seconds=1), next_tick=None, schedule="")
        for name in jobfile.jobs
    }
    counts, kinds = Counter(), Counter()
    now = start
    while now < end.astimezone(UTC):
        decided = due.due_runs(jobfile, RunIndex([]), watermarks, now)
        assert decided.missed == {}
        for run in decided.runs:
            counts[run.job] += 1
            kinds[run.kind] += 1
        watermarks = decided.watermarks
        now += timedelta(minutes=1)
    assert dict(counts) == expected
    assert set(kinds) == {RunKind.SCHEDULED}


@pytest.fixture
def engine_for(tmp_path):
    """An engine over a real state directory and real shell jobs, driven by a fake clock."""

    return real_engine


def events_of(jobfile, *types):
    events = Store(jobfile.settings.state_dir).read().events
    return [e for e in events if not types or e.event in types]


HOURLY = """
    [jobs.hourly]
    command = 'echo "$CRONFLOW_LOGICAL_TIME $CRONFLOW_RUN_KIND" >> {out}'
    schedule = "0 * * * *"
    catchup = "{policy}"
    max_catchup = {cap}
"""
T0 = datetime(2026, 1, 10, 12, 0, tzinfo=UTC)


def off_for_three_days(write_jobs, engine_for, tmp_path, policy, cap=100, minutes_past=0):
    """Run once at T0, 'switch off' for three days, run once more; return the second's lines."""
    out = tmp_path / "ran.txt"
    jobfile = load(write_jobs(HOURLY.format(out=out, policy=policy, cap=cap)))
    clock = FakeClock(T0)
    engine_for(jobfile, clock).tick()
    out.write_text("")
    clock.advance(timedelta(days=3, minutes=minutes_past))
    engine_for(jobfile, clock).tick()
    return jobfile, out.read_text().splitlines()


def test_catchup_latest_runs_the_newest_tick_and_records_the_rest_missed(
    write_jobs, engine_for, tmp_path
):
    jobfile, ran = off_for_three_days(write_jobs, engine_for, tmp_path, "latest")
    assert ran == ["2026-01-13T12:00:00+00:00 scheduled"]
    [missed] = events_of(jobfile, EventType.MISSED)
    assert missed.missed_ticks == 71 and missed.logical_time == T0 + timedelta(days=3, hours=-1)
    assert (
        "71 tick(s) not run, 2026-01-10T13:00:00+00:00 to 2026-01-13T11:00:00+00:00"
        in missed.reason
    )


def test_catchup_all_runs_every_missed_tick_oldest_first(write_jobs, engine_for, tmp_path):
    jobfile, ran = off_for_three_days(write_jobs, engine_for, tmp_path, "all")
    assert len(ran) == 72
    assert ran[0] == "2026-01-10T13:00:00+00:00 catchup"
    assert ran[-1] == "2026-01-13T12:00:00+00:00 scheduled"
    assert ran == sorted(ran)
    assert events_of(jobfile, EventType.MISSED) == []


def test_catchup_all_is_capped_by_max_catchup(write_jobs, engine_for, tmp_path):
    jobfile, ran = off_for_three_days(write_jobs, engine_for, tmp_path, "all", cap=10)
    assert len(ran) == 10 and ran[0] == "2026-01-13T03:00:00+00:00 catchup"
    assert [e.missed_ticks for e in events_of(jobfile, EventType.MISSED)] == [62]


def test_catchup_none_runs_an_on_time_tick(write_jobs, engine_for, tmp_path):
    jobfile, ran = off_for_three_days(write_jobs, engine_for, tmp_path, "none")
    assert ran == ["2026-01-13T12:00:00+00:00 scheduled"]
    assert [e.missed_ticks for e in events_of(jobfile, EventType.MISSED)] == [71]


def test_catchup_none_runs_no_late_tick(write_jobs, engine_for, tmp_path):
    jobfile, ran = off_for_three_days(write_jobs, engine_for, tmp_path, "none", minutes_past=30)
    assert ran == []
    assert [e.missed_ticks for e in events_of(jobfile, EventType.MISSED)] == [72]


def test_a_late_newest_tick_runs_as_catchup(write_jobs, engine_for, tmp_path):
    _, ran = off_for_three_days(write_jobs, engine_for, tmp_path, "latest", minutes_past=30)
    assert ran == ["2026-01-13T12:00:00+00:00 catchup"]


def test_first_sight_of_a_job_does_not_replay_history(write_jobs, engine_for, tmp_path):
    out = tmp_path / "ran.txt"
    jobfile = load(write_jobs(HOURLY.format(out=out, policy="all", cap=100)))
    clock = FakeClock(datetime(2026, 1, 10, 12, 59, tzinfo=UTC))
    assert engine_for(jobfile, clock).tick() == []
    assert not out.exists() and events_of(jobfile) == []
    clock.advance(timedelta(minutes=1))
    engine_for(jobfile, clock).tick()
    assert out.read_text() == "2026-01-10T13:00:00+00:00 scheduled\n"


def test_a_tick_is_never_decided_twice(write_jobs, engine_for, tmp_path):
    out = tmp_path / "ran.txt"
    jobfile = load(write_jobs(HOURLY.format(out=out, policy="all", cap=100)))
    clock = FakeClock(T0 - timedelta(seconds=30))
    engine_for(jobfile, clock).tick()
    clock.advance(timedelta(seconds=30))
    for _ in range(3):
        engine_for(jobfile, clock).tick()
        clock.advance(timedelta(seconds=10))
    assert out.read_text() == "2026-01-10T12:00:00+00:00 scheduled\n"


def test_the_clock_going_back_decides_again_from_now_and_runs_nothing_twice(
    write_jobs, engine_for, tmp_path
):
    out = tmp_path / "ran.txt"
    jobfile = load(write_jobs(HOURLY.format(out=out, policy="all", cap=100)))
    clock = FakeClock(T0 - timedelta(hours=1, minutes=30))
    engine_for(jobfile, clock).tick()  # 10:30: first decided
    clock.advance(timedelta(hours=1, minutes=30, seconds=30))
    engine_for(jobfile, clock).tick()  # 12:00:30: 11:00 (caught up) and 12:00 run
    clock.advance(timedelta(hours=-1))
    engine_for(jobfile, clock).tick()  # 11:00:30: the 11:00 tick is due again (succeeded)
    clock.advance(timedelta(hours=1))
    engine_for(jobfile, clock).tick()  # 12:00:30 again: 12:00 already succeeded
    assert out.read_text() == (
        "2026-01-10T11:00:00+00:00 catchup\n2026-01-10T12:00:00+00:00 scheduled\n"
    )
    [step] = Store(jobfile.settings.state_dir).read().host_events
    assert step == ClockSetBack(
        reached=T0,
        noticed_at=T0 - timedelta(minutes=59, seconds=30),
        reason=step.reason,
        host=socket.gethostname(),
        pid=os.getpid(),
    )
    assert "went back at least 0:59:30" in step.reason
    assert Store(jobfile.settings.state_dir).index().clock_set_back() == step


def test_the_clock_going_back_never_runs_ticks_from_before_the_job_was_first_decided(
    write_jobs, engine_for, tmp_path
):
    """First decided at 12:00:30, the clock then an hour back and forward again: with
    catchup = "all", 57-61 ticks dated before cronflow first saw the job once ran. A job's
    history starts at its first decision, kept beside its watermark."""
    out = tmp_path / "ran.txt"
    jobfile = load(
        write_jobs(f"""
            [jobs.minutely]
            command = 'echo "$CRONFLOW_LOGICAL_TIME" >> {out}'
            schedule = "* * * * *"
            catchup = "all"
        """)
    )
    clock = FakeClock(T0 + timedelta(seconds=30))
    engine_for(jobfile, clock).tick()  # first seen: 12:00 runs
    clock.advance(timedelta(hours=-1))
    engine_for(jobfile, clock).tick()  # 11:00:30: before the job was ever decided
    clock.advance(timedelta(hours=1, minutes=1))
    engine_for(jobfile, clock).tick()  # 12:01:30
    ran = [datetime.fromisoformat(line) for line in out.read_text().split()]
    assert ran == [T0, T0 + timedelta(minutes=1)]
    marks = Store(jobfile.settings.state_dir).read_watermarks()
    assert marks["minutely"].first_seen == T0 + timedelta(seconds=30) - timedelta(minutes=1)
    clock.advance(timedelta(hours=-1))
    engine_for(jobfile, clock).tick()
    assert len(Store(jobfile.settings.state_dir).read().host_events) == 2  # once per step
    engine_for(jobfile, clock).tick()  # still behind: no clock event every tick
    assert len(Store(jobfile.settings.state_dir).read().host_events) == 2


def test_a_small_step_back_of_the_clock_is_not_a_clock_event(write_jobs, engine_for, tmp_path):
    out = tmp_path / "ran.txt"
    jobfile = load(write_jobs(HOURLY.format(out=out, policy="all", cap=100)))
    clock = FakeClock(T0 - timedelta(seconds=30))
    engine_for(jobfile, clock).tick()
    clock.advance(timedelta(seconds=40))
    engine_for(jobfile, clock).tick()  # 12:00:10 runs 12:00
    clock.advance(timedelta(seconds=-50))  # an NTP step to 11:59:20
    engine_for(jobfile, clock).tick()
    clock.advance(timedelta(minutes=1))
    engine_for(jobfile, clock).tick()
    assert out.read_text() == "2026-01-10T12:00:00+00:00 scheduled\n"
    assert Store(jobfile.settings.state_dir).read().host_events == []


CROSS = """
    [jobs.hourly]
    command = 'test ! -e {flag}'
    schedule = "0 * * * *"
    [jobs.daily]
    command = 'echo "$CRONFLOW_LOGICAL_TIME" >> {out}'
    schedule = "30 5 * * *"
    depends_on = ["hourly"]
    [jobs.after_daily]
    command = 'echo after >> {out}'
    depends_on = ["daily"]
"""


def test_a_daily_job_waits_for_its_hourly_upstream_then_runs(write_jobs, engine_for, tmp_path):
    flag, out = tmp_path / "hourly-fails", tmp_path / "ran.txt"
    jobfile = load(write_jobs(CROSS.format(flag=flag, out=out)))
    clock = FakeClock(datetime(2026, 1, 14, 4, 59, 30, tzinfo=UTC))
    engine_for(jobfile, clock).tick()
    flag.touch()
    clock.advance(timedelta(seconds=30))
    engine_for(jobfile, clock).tick()  # hourly 05:00 fails
    clock.advance(timedelta(minutes=30))
    for _ in range(2):  # daily 05:30 waits, and says so once
        engine_for(jobfile, clock).tick()
        clock.advance(timedelta(minutes=1))
    waiting = events_of(jobfile, EventType.WAITING)
    assert [(e.job, e.logical_time.hour) for e in waiting] == [("daily", 5)]
    assert "upstream hourly @ 2026-01-14T05:00:00+00:00 is failed" in waiting[0].reason
    assert not out.exists()
    flag.unlink()  # someone fixes the source and re-runs hourly for 05:00
    from cronflow.model import Rerun

    executor = engine_for(jobfile, clock).executor
    executor.execute(
        selection.runs_for_date(jobfile, ["hourly"], clock.now().date(), RunKind.BACKFILL)[5:6],
        Rerun.FAILED,
    )
    engine_for(jobfile, clock).tick()
    assert out.read_text() == "2026-01-14T05:30:00+00:00\nafter\n"


def test_dry_run_says_why_each_job_runs_or_not(write_jobs, engine_for, tmp_path):
    flag, out = tmp_path / "hourly-fails", tmp_path / "ran.txt"
    flag.touch()
    jobfile = load(write_jobs(CROSS.format(flag=flag, out=out)))
    clock = FakeClock(datetime(2026, 1, 14, 4, 59, 30, tzinfo=UTC))
    engine_for(jobfile, clock).tick()
    clock.advance(timedelta(seconds=30))
    engine_for(jobfile, clock).tick()  # hourly 05:00 fails
    clock.advance(timedelta(minutes=30, seconds=30))
    recorded = events_of(jobfile)
    verdicts = {(v.job, v.action): v.detail for v in engine_for(jobfile, clock).preview().verdicts}
    assert verdicts == {
        ("hourly", "not due"): "next tick",
        ("daily", "waiting"): "for hourly @ 2026-01-14T05:00:00+00:00",
        ("after_daily", "run"): "scheduled",
    }
    assert events_of(jobfile) == recorded  # a preview writes nothing


def test_dry_run_names_missed_ticks(write_jobs, engine_for, tmp_path):
    jobfile = load(write_jobs(HOURLY.format(out=tmp_path / "ran.txt", policy="none", cap=1)))
    clock = FakeClock(T0)
    engine_for(jobfile, clock).tick()
    clock.advance(timedelta(hours=3, minutes=10))
    verdicts = [(v.action, v.detail) for v in engine_for(jobfile, clock).preview().verdicts]
    assert verdicts == [("missed", "3 tick(s) not run (catchup = none)")]


HOLD_LOCK = """
import fcntl, os, sys
descriptor = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT, 0o600)
fcntl.flock(descriptor, fcntl.LOCK_EX)  # as flock(1) would
print("held", flush=True)
sys.stdin.readline()
"""


@pytest.fixture
def lock_holder(tmp_path):
    """Another process holding a job's lock, as a still-running invocation would."""
    holders = []

    def hold(jobfile, job):
        path = jobfile.settings.state_dir / "locks" / f"{job}.lock"
        path.parent.mkdir(parents=True, exist_ok=True)
        holder = subprocess.Popen(
            [sys.executable, "-c", HOLD_LOCK, str(path)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert holder.stdout.readline() == "held\n"
        holders.append(holder)
        return holder

    yield hold
    for holder in holders:
        holder.kill()
        holder.wait()


OVERLAP = """
    [jobs.long]
    command = 'echo "$CRONFLOW_LOGICAL_TIME" >> {out}'
    schedule = "* * * * *"
    overlap = "{policy}"
"""


def test_overlap_skip_records_the_due_run_skipped(write_jobs, engine_for, lock_holder, tmp_path):
    out = tmp_path / "ran.txt"
    jobfile = load(write_jobs(OVERLAP.format(out=out, policy="skip")))
    lock_holder(jobfile, "long")
    [outcome] = engine_for(jobfile, FakeClock(T0)).tick()
    assert outcome.status is RunStatus.SKIPPED and not out.exists()
    [skipped] = events_of(jobfile, EventType.SKIPPED)
    assert "still running from another invocation" in skipped.reason


def test_overlap_queue_waits_for_the_other_run_to_end(
    write_jobs, engine_for, lock_holder, tmp_path
):
    out = tmp_path / "ran.txt"
    jobfile = load(write_jobs(OVERLAP.format(out=out, policy="queue")))
    holder = lock_holder(jobfile, "long")
    ticking = threading.Thread(target=engine_for(jobfile, FakeClock(T0)).tick)
    ticking.start()
    ticking.join(timeout=0.5)
    assert ticking.is_alive() and not out.exists()  # still queued behind the holder
    holder.stdin.write("release\n")
    holder.stdin.flush()
    ticking.join(timeout=30)
    assert out.read_text() == "2026-01-10T12:00:00+00:00\n"


def test_overlap_allow_runs_alongside(write_jobs, engine_for, lock_holder, tmp_path):
    out = tmp_path / "ran.txt"
    jobfile = load(write_jobs(OVERLAP.format(out=out, policy="allow")))
    lock_holder(jobfile, "long")
    [outcome] = engine_for(jobfile, FakeClock(T0)).tick()
    assert outcome.status is RunStatus.SUCCESS and out.exists()


def test_the_clock_never_runs_a_disabled_job(write_jobs, engine_for, tmp_path):
    out = tmp_path / "ran.txt"
    jobfile = load(
        write_jobs(HOURLY.format(out=out, policy="all", cap=100) + "    enabled = false\n")
    )
    clock = FakeClock(T0 - timedelta(seconds=30))
    engine_for(jobfile, clock).tick()
    clock.advance(timedelta(hours=3))
    assert engine_for(jobfile, clock).tick() == [] and not out.exists()


FIVE_MINUTES = """
    [jobs.five]
    command = 'echo "$CRONFLOW_LOGICAL_TIME $CRONFLOW_RUN_KIND" >> {out}'
    schedule = "*/5 * * * *"
"""


def test_a_backfill_of_today_leaves_ticks_still_to_come_to_the_scheduler(
    write_jobs, engine_for, tmp_path
):
    """At 23:04 a backfill of today runs the ticks up to 23:00; at 23:05 the engine runs
    23:05 itself, rather than finding it done hours early."""
    out = tmp_path / "ran.txt"
    jobfile = load(write_jobs(FIVE_MINUTES.format(out=out)))
    clock = FakeClock(datetime(2026, 1, 14, 23, 4, tzinfo=UTC))
    engine = engine_for(jobfile, clock)
    chosen = selection.backfill(jobfile, ["five"], [clock.now().date()], clock.now())
    engine.executor.execute(chosen.by_date[0])
    assert [run.logical_time.strftime("%H:%M") for run in chosen.not_yet_due] == [
        "23:05",
        "23:10",
        "23:15",
        "23:20",
        "23:25",
        "23:30",
        "23:35",
        "23:40",
        "23:45",
        "23:50",
        "23:55",
    ]
    ran = out.read_text().splitlines()
    assert len(ran) == 277 and ran[-1] == "2026-01-14T23:00:00+00:00 backfill"
    clock.advance(timedelta(minutes=1))
    engine_for(jobfile, clock).tick()
    assert out.read_text().splitlines()[-1] == "2026-01-14T23:05:00+00:00 scheduled"


def test_each_decision_takes_back_a_reserve_given_up_on_a_full_disk(write_jobs, engine_for):
    """The daemon prepares its state directory once; it still holds space back again."""
    jobfile = load(write_jobs(FIVE_MINUTES.format(out="/dev/null")))
    engine = engine_for(jobfile, FakeClock(datetime(2026, 1, 14, 23, 4, tzinfo=UTC)))
    reserve = jobfile.settings.state_dir / "reserve"
    reserve.unlink()  # as Store.append does when the disk is full
    engine.decide()
    assert reserve.stat().st_size == 1024 * 1024
