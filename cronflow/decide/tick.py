"""What one tick decides, whole: the runs due, the ticks missed, whether the clock went
back, which assets to alert about, which housekeeping is due, and when the next tick is.

Pure: the records, the stamps and `now` are arguments. A one-shot `cronflow run` and every
loop of the daemon take this one decision (act/engine.py applies it under the @plan lock),
so they cannot disagree about what is due or when to look again.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence, Set
from dataclasses import dataclass
from datetime import datetime, timedelta

from cronflow.decide import overdue
from cronflow.decide.due import due_runs, watermarks_to_decide_from
from cronflow.decide.freshness import AssetState, Freshness
from cronflow.decide.jitter import start_of
from cronflow.decide.retries import retry_at, tries_owed
from cronflow.model import Boot, JobFile, PlannedRun, RunStatus, Watermark
from cronflow.records import RunRecords

PRUNE_EVERY = timedelta(hours=1)  # run output past keep_days is deleted at most this often
FORGET_EVERY = timedelta(days=1)  # history past keep_history_days is forgotten at most this often


@dataclass(frozen=True, slots=True, kw_only=True)
class Housekeeping:
    """When the state directory was last tidied (None: never), and when anything was last
    recorded before this tick (None: nothing yet)."""

    last_prune: datetime | None
    last_retention: datetime | None
    last_recorded: datetime | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class TickDecision:
    runs: list[PlannedRun]  # scheduled, catch-up, resumed, and the unscheduled runs after them
    missed: dict[str, list[datetime]]  # job -> ticks its catch-up policy does not run
    watermarks: dict[str, Watermark]  # each job's newest tick decided, after this decision
    clock_went_back_from: datetime | None  # the newest tick decided before the clock went back
    asset_alerts: list[AssetState]  # assets gone stale, or fresh again after a stale alert
    stale_alerted: frozenset[str]  # the assets a stale alert stands for, after this decision
    overdue_begun: list[overdue.Overdue]  # slow and late episodes that began (see overdue.py)
    overdue_ended: list[str]  # the keys of those that ended
    overdue: dict[str, dict[str, str | None]]  # the episodes that hold, after this decision
    prune_due: bool
    retention_cutoff: datetime | None  # due: forget what ended before it (see forget_cutoff)
    wake: Wake  # when the next tick is (given the records as they were decided from)


@dataclass(frozen=True, slots=True)
class Wake:
    """When something can next be due.

    `at`: the first instant at which a tick could find work: a job's next run starts, an
    owed try comes due, housekeeping comes due, a fresh asset turns stale, a run turns slow
    or a deadline comes (None: nothing ever will, as the records stand). `settled`: False while a run is running or waiting;
    its end (or its cronflow's death) can make something due sooner, which a process that
    does not run it itself must come back to see."""

    at: datetime | None
    settled: bool


def decide_tick(
    jobfile: JobFile,
    *,
    history: RunRecords,
    watermarks: Mapping[str, Watermark],
    now: datetime,
    boot: Boot | None,
    stale_alerted: Set[str],
    asset_states: Sequence[AssetState],
    housekeeping: Housekeeping,
    paused: Set[str] = frozenset(),
    overdue_before: Mapping[str, Mapping[str, str | None]] | None = None,
) -> TickDecision:
    """The whole decision of a tick at `now` (see the module's docstring)."""
    decide_from, went_back_from = watermarks_to_decide_from(dict(watermarks), now)
    watch = overdue.watch(jobfile, history, now, paused)
    begun, ended, episodes = overdue.changes(watch.current, overdue_before or {})
    due = due_runs(jobfile, history, decide_from, now, boot=boot)
    alerts, alerted = asset_alerts(asset_states, stale_alerted, set(jobfile.assets))
    prune_due, retention_due = housekeeping_due(jobfile, housekeeping, now)
    after = Housekeeping(  # as this tick leaves it
        last_prune=now if prune_due else housekeeping.last_prune,
        last_retention=now if retention_due else housekeeping.last_retention,
        last_recorded=housekeeping.last_recorded,
    )
    return TickDecision(
        runs=due.runs,
        missed=due.missed,
        watermarks=due.watermarks,
        clock_went_back_from=went_back_from,
        asset_alerts=alerts,
        stale_alerted=alerted,
        overdue_begun=begun,
        overdue_ended=ended,
        overdue=episodes,
        prune_due=prune_due,
        retention_cutoff=forget_cutoff(jobfile, housekeeping, now) if retention_due else None,
        wake=next_wake(
            jobfile,
            history,
            due.watermarks,
            now,
            asset_states,
            after,
            watch.wake,
            held_until=due.held[1] if due.held else None,
        ),
    )


def next_wake(
    jobfile: JobFile,
    history: RunRecords,
    watermarks: Mapping[str, Watermark],
    now: datetime,
    asset_states: Sequence[AssetState] = (),
    housekeeping: Housekeeping | None = None,
    overdue_at: datetime | None = None,
    held_until: datetime | None = None,
) -> Wake:
    """When a tick can next find something to do, as long as nothing is recorded and the
    jobs file stays as it is (see Wake). A job with no watermark for its schedule yet is
    due for a decision now. `overdue_at`: when a run can next turn slow or late (see
    overdue.watch). `held_until`: the end of the blackout window holding every start now
    (no job's time comes before it; alerts about slow and late runs still do)."""
    instants = []
    for job in jobfile.jobs.values():
        if job.schedule is None or not job.enabled:
            continue
        mark = watermarks.get(job.name)
        if mark is None or mark.schedule != job.cadence.fingerprint:
            instants.append(now)
        elif mark.next_tick is not None:
            instants.append(start_of(jobfile, job, mark.next_tick))
    instants += [retry_at(job, event, now) for job, event in tries_owed(jobfile, history)]
    if held_until is not None:
        instants = [max(instant, held_until) for instant in instants]
    instants += [] if overdue_at is None else [overdue_at]
    if housekeeping is not None:
        instants += [at for at in _housekeeping_times(jobfile, housekeeping, now) if at]
    instants += [state.stale_at for state in asset_states if state.stale_at is not None]
    settled = not history.unfinished(*(status for status in RunStatus if status.is_in_progress))
    return Wake(at=min(instants, default=None), settled=settled)


def asset_alerts(
    states: Sequence[AssetState], alerted: Set[str], assets: Set[str]
) -> tuple[list[AssetState], frozenset[str]]:
    """Alert once per staleness: when an asset goes stale, and when one alerted as stale is
    fresh again. An asset not produced yet does not alert until it is late (stale: see
    freshness). Returns the assets to alert about and the set a stale alert stands for
    afterwards."""
    now_alerted = set(alerted) & assets
    changed = []
    for state in states:
        if state.state is Freshness.STALE and state.name not in now_alerted:
            changed.append(state)
            now_alerted.add(state.name)
        elif state.state is Freshness.FRESH and state.name in now_alerted:
            changed.append(state)
            now_alerted.discard(state.name)
    return changed, frozenset(now_alerted)


def housekeeping_due(
    jobfile: JobFile, housekeeping: Housekeeping, now: datetime
) -> tuple[bool, bool]:
    """(prune run output, forget old history): each when its time has come (see
    _housekeeping_times)."""
    prune_at, forget_at = _housekeeping_times(jobfile, housekeeping, now)
    return (prune_at is not None and prune_at <= now, forget_at is not None and forget_at <= now)


def forget_cutoff(jobfile: JobFile, housekeeping: Housekeeping, now: datetime) -> datetime:
    """What retention forgets: runs that ended keep_history_days before now, or before the
    newest record, if that is earlier. A clock far ahead for a tick (a bad RTC, a VM
    restored with a wrong clock) then forgets nothing recent: it is counted from what was
    recorded before that tick, by the clock that recorded it."""
    recorded = housekeeping.last_recorded
    trusted = now if recorded is None else min(now, recorded)
    return trusted - timedelta(days=jobfile.settings.keep_history_days)


def housekeeping_settings(jobfile: JobFile) -> tuple[int, int]:
    """(days run output is kept, days history is kept); 0: for ever. Output is never kept
    longer than the history it belongs to."""
    settings = jobfile.settings
    kept = [days for days in (settings.keep_days, settings.keep_history_days) if days]
    return min(kept, default=0), settings.keep_history_days


def _housekeeping_times(
    jobfile: JobFile, housekeeping: Housekeeping, now: datetime
) -> tuple[datetime | None, datetime | None]:
    """When pruning run output and forgetting old history come due next: at most every
    PRUNE_EVERY and FORGET_EVERY after the last time; now if never done, or done "after"
    now (the clock went back); None when kept for ever."""

    def next_time(days: int, last: datetime | None, every: timedelta) -> datetime | None:
        if not days:
            return None
        return now if last is None or last > now else last + every

    output_days, history_days = housekeeping_settings(jobfile)
    return (
        next_time(output_days, housekeeping.last_prune, PRUNE_EVERY),
        next_time(history_days, housekeeping.last_retention, FORGET_EVERY),
    )
