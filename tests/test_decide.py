"""Properties of the decisions (decide/), over generated jobs files, zones and moments:
deciding twice decides nothing new, no decision runs a tick after `now`, a backfill of a
range is the union of its days, and the next wake-up is never later than the next run due."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from cronflow.decide import jitter, selection
from cronflow.decide.due import due_runs
from cronflow.decide.tick import Housekeeping, decide_tick, next_wake
from cronflow.load import jobs_toml
from cronflow.model import JobFile, RunKind
from cronflow.state.index import RunIndex

SCHEDULES = ["* * * * *", "*/5 * * * *", "0 * * * *", "30 2 * * *", "0 6 * * 1-5", "0 0 1 * *"]
ZONES = ["UTC", "Europe/Berlin", "America/New_York", "Pacific/Chatham", "Asia/Kolkata"]


@st.composite
def jobfiles(draw) -> JobFile:
    """Up to six jobs, each scheduled in a zone (after up to two earlier jobs, or none), or
    unscheduled after one earlier job (no cycle)."""
    count = draw(st.integers(1, 6))
    lines = ['[cronflow]\ntimezone = "UTC"\nkeep_days = 0\nkeep_history_days = 0\n']
    for index in range(count):
        lines.append(f'[jobs.j{index}]\ncommand = "true"\n')
        upstreams = (
            draw(st.lists(st.integers(0, index - 1), max_size=2, unique=True)) if index else []
        )
        if upstreams:
            listed = ", ".join(f'"j{u}"' for u in upstreams)
            lines.append(f"depends_on = [{listed}]\n")
        if upstreams and len(upstreams) == 1 and draw(st.booleans()):
            pass  # unscheduled: runs after its one upstream, on its cadence
        else:
            lines.append(f'schedule = "{draw(st.sampled_from(SCHEDULES))}"\n')
            lines.append(f'timezone = "{draw(st.sampled_from(ZONES))}"\n')
            if draw(st.booleans()):
                lines.append('random_delay = "10m"\n')
        lines.append(f'catchup = "{draw(st.sampled_from(["latest", "all", "none"]))}"\n')
    return jobs_toml.parse("".join(lines), Path("/nonexistent/jobs.toml"))


moments = st.datetimes(
    min_value=datetime(2024, 1, 1), max_value=datetime(2027, 12, 31), timezones=st.just(UTC)
)


def decided_later(jobfile: JobFile, start: datetime, minutes: int):
    """(now, the decision at now) for jobs first seen at `start`, `minutes` before."""
    history = RunIndex([])
    first = due_runs(jobfile, history, {}, start)
    now = start + timedelta(minutes=minutes)
    return now, due_runs(jobfile, history, first.watermarks, now)


@settings(max_examples=60, deadline=None)
@given(jobfiles(), moments, st.integers(0, 3 * 24 * 60))
def test_deciding_twice_at_one_moment_decides_nothing_new(jobfile, start, minutes):
    now, second = decided_later(jobfile, start, minutes)
    again = due_runs(jobfile, RunIndex([]), second.watermarks, now)
    assert again.runs == [] and again.missed == {}
    assert again.watermarks == second.watermarks


@settings(max_examples=60, deadline=None)
@given(jobfiles(), moments, st.integers(0, 3 * 24 * 60))
def test_no_decision_runs_a_tick_after_now_nor_starts_one_early(jobfile, start, minutes):
    now, decided = decided_later(jobfile, start, minutes)
    for run in decided.runs:
        assert run.logical_time <= now
        job = jobfile.jobs[run.job]
        if job.schedule is not None:
            assert jitter.start_of(jobfile, job, run.logical_time) <= now
    for ticks in decided.missed.values():
        assert all(tick <= now for tick in ticks)


@settings(max_examples=60, deadline=None)
@given(jobfiles(), moments, st.integers(0, 2 * 24 * 60))
def test_the_next_wake_up_is_never_after_the_next_run_due(jobfile, start, minutes):
    """Asleep until `wake.at`, nothing comes due before it: deciding one second before
    finds nothing to run (the daemon and the idle stamp trust this)."""
    history = RunIndex([])
    decided = decide_tick(
        jobfile,
        history=history,
        watermarks=due_runs(jobfile, history, {}, start).watermarks,
        now=start,
        boot=None,
        stale_alerted=set(),
        asset_states=(),
        housekeeping=Housekeeping(last_prune=None, last_retention=None),
    )
    wake = next_wake(jobfile, history, decided.watermarks, start)
    if wake.at is None:
        return
    assert wake.at >= start
    before = min(wake.at - timedelta(seconds=1), start + timedelta(minutes=minutes))
    if before > start:
        assert due_runs(jobfile, history, decided.watermarks, before).runs == []


days = st.dates(min_value=date(2025, 1, 1), max_value=date(2026, 12, 31))


@settings(max_examples=40, deadline=None)
@given(jobfiles(), days, st.integers(0, 4))
def test_a_backfill_of_a_range_is_the_union_of_its_days(jobfile, first, length):
    dates = [first + timedelta(days=offset) for offset in range(length + 1)]
    now = datetime(2030, 1, 1, tzinfo=UTC)  # every tick of the range has come
    jobs = selection.select_jobs(jobfile, [], downstream=False)
    whole = selection.backfill(jobfile, jobs, dates, now)
    one_by_one = [selection.backfill(jobfile, jobs, [day], now).by_date[0] for day in dates]
    assert whole.by_date == one_by_one
    expected = {
        (run.key, run.kind)
        for day in dates
        for run in selection.runs_for_date(jobfile, jobs, day, RunKind.BACKFILL)
    }
    assert {(run.key, run.kind) for runs in whole.by_date for run in runs} == expected
    assert whole.not_yet_due == []


@settings(max_examples=60, deadline=None)
@given(st.sampled_from(SCHEDULES), st.sampled_from(ZONES), moments)
def test_the_latest_tick_at_or_before_an_instant_is_the_last_of_the_ticks_before_it(
    expression, zone, instant
):
    """What an upstream on another cadence is waited for by (searched by whole UTC days,
    shared by a backfill's runs), against the plain list of the ticks of the days before."""
    from zoneinfo import ZoneInfo

    from cronflow.decide.schedule import compile_schedule

    schedule = compile_schedule(expression, ZoneInfo(zone))
    days = {"0 0 1 * *": 40, "0 6 * * 1-5": 5}.get(expression, 2)  # at least one tick
    plainly = schedule.ticks(instant - timedelta(days=days), instant)
    assert schedule.latest_at_or_before(instant) == plainly[-1]
    assert schedule.latest_at_or_before(plainly[-1]) == plainly[-1]  # at: included


def test_the_next_wake_up_counts_an_owed_try_housekeeping_and_a_fresh_asset_going_stale():
    """What the daemon now wakes for (it slept until the next tick alone before): the retry
    of a try whose cronflow died, the next prune, an asset turning stale; and `settled`
    tells one-shot ticks to come back while a run still runs."""
    from cronflow.model import EventType, RunEvent, RunStatus

    jobfile = jobs_toml.parse(
        '[cronflow]\nkeep_days = 7\n[jobs.nightly]\ncommand = "true"\nschedule = "0 3 * * *"\n'
        'retries = 2\nretry_delay = "10m"\nproduces = ["table"]\n'
        '[assets.table]\nfresh_within = "90m"\n',
        Path("/nonexistent/jobs.toml"),
    )
    now = datetime(2026, 1, 14, 3, 5, tzinfo=UTC)
    tick = datetime(2026, 1, 14, 3, 0, tzinfo=UTC)
    marks = due_runs(jobfile, RunIndex([]), {}, tick).watermarks
    failed = RunEvent(
        event=EventType.FINISHED,
        job="nightly",
        logical_time=tick,
        run_id="20260114T030000Z-abcdef",
        kind=RunKind.SCHEDULED,
        status=RunStatus.FAILED,
        attempt=1,
        max_attempts=3,
        ended_at=now,
    )
    recently = Housekeeping(last_prune=now, last_retention=now)
    owed = next_wake(jobfile, RunIndex([failed]), marks, now, (), recently)
    assert owed.at == now + timedelta(minutes=10) and owed.settled  # the retry's delay
    quiet = next_wake(
        jobfile,
        RunIndex([]),
        marks,
        now,
        (),
        Housekeeping(last_prune=now - timedelta(minutes=50), last_retention=now),
    )
    assert quiet.at == now + timedelta(minutes=10)  # the hourly prune comes first
    from cronflow.decide.freshness import states

    succeeded = replace(failed, status=RunStatus.SUCCESS, logical_time=now - timedelta(hours=1))
    fresh = states(jobfile, RunIndex([succeeded]), now)
    asset = next_wake(jobfile, RunIndex([]), marks, now, fresh, recently)
    assert asset.at == now + timedelta(minutes=30)  # produced for 02:05, fresh within 90m
    started = replace(failed, event=EventType.STARTED, status=RunStatus.RUNNING, ended_at=None)
    assert not next_wake(jobfile, RunIndex([started]), marks, now).settled
