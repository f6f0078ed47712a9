"""Which runs are due at `now`: the one decision a clock-driven tick makes (pure: `now`
and the records are arguments).

Catch-up policy, written down where the decision is made: each scheduled job keeps a
watermark, the newest tick already decided. A call decides the ticks in (watermark, now].
The newest of them, if at most LATE_AFTER old, runs as `scheduled`. Older ones were missed
(cronflow was not running): `catchup = "latest"` runs only the newest tick, `"all"` runs
them all oldest first (at most `max_catchup`), `"none"` runs none that are late. Ticks not
run are recorded `missed`. A job seen for the first time starts at now minus one minute, so
installing cronflow never replays history.

Calendars are the schedule's own (decide/calendar_days.py): a tick they skip never comes
here; the watermark counts them. Inside a [blackout] window nothing is decided at all: the
ticks wait, and when the window ends they are decided as ticks cronflow was not running
for (late: the catch-up policy applies).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

from cronflow.calendars import Blackout, held_until
from cronflow.clock import CLOCK_TOLERANCE
from cronflow.decide.calendar_days import skipped_ticks
from cronflow.decide.explain import Action, Verdict, not_due_verdict, run_verdicts
from cronflow.decide.jitter import start_of
from cronflow.decide.retries import retry_due, tries_owed
from cronflow.decide.schedule import schedule_of
from cronflow.decide.selection import with_unscheduled_downstream
from cronflow.model import (
    Boot,
    CatchUp,
    Job,
    JobFile,
    PlannedRun,
    RunKey,
    RunKind,
    RunStatus,
    Watermark,
)
from cronflow.records import RunRecords

FIRST_SIGHT = timedelta(minutes=1)


# A tick decided later than this after it happened is a catch-up, not an on-time run. Cron
# calls `cronflow run` each minute, so an on-time tick is seen within seconds.
LATE_AFTER = timedelta(minutes=2)


@dataclass(frozen=True, slots=True, kw_only=True)
class DueRuns:
    """The runs due at a moment, the ticks missed, the watermarks after, and (asked) why."""

    runs: list[PlannedRun]  # scheduled, catch-up, resumed, and the unscheduled runs after them
    missed: dict[str, list[datetime]] = field(default_factory=dict)  # job -> ticks not run
    watermarks: dict[str, Watermark] = field(default_factory=dict)
    verdicts: list[Verdict] = field(default_factory=list)  # only when asked to explain
    held: tuple[Blackout, datetime] | None = None  # the blackout holding every start, its end


def due_runs(
    jobfile: JobFile,
    history: RunRecords,
    watermarks: Mapping[str, Watermark],
    now: datetime,
    explain: bool = False,
    boot: Boot | None = None,
) -> DueRuns:
    """The runs due at `now`, given each job's watermark and what the log already holds,
    and the @reboot runs of this `boot` not yet tried (once per boot: no catch-up).

    With `explain`, also say for every job why it does or does not run (for --dry-run).
    """
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    held = held_until(jobfile.blackouts, now, jobfile.settings.timezone)
    if held is not None:
        return DueRuns(
            runs=[],
            watermarks=dict(watermarks),
            verdicts=held_verdicts(jobfile, held) if explain else [],
            held=held,
        )
    roots: list[PlannedRun] = []
    missed: dict[str, list[datetime]] = {}
    new_watermarks = dict(watermarks)
    verdicts: list[Verdict] = []
    for job in jobfile.jobs.values():
        if job.schedule is None or not job.enabled:
            continue
        fingerprint = job.cadence.fingerprint
        mark = watermarks.get(job.name)
        if mark and mark.schedule == fingerprint and mark.next_tick and mark.next_tick > now:
            if explain:
                verdicts.append(not_due_verdict(jobfile, job, mark.next_tick))
            continue
        schedule = schedule_of(job.cadence)
        since = mark.decided if mark else now - FIRST_SIGHT
        first_seen = mark.first_seen if mark else since
        if first_seen is not None and since < first_seen:
            since = first_seen  # rewound behind the job's first decision: never before it
        ticks = _started_by(jobfile, job, schedule.ticks(since, now), now)
        decided = ticks[-1] if ticks else min(since, now)  # never ahead: no clock event
        skipped = skipped_ticks(schedule, since, decided) if ticks else []
        new_watermarks[job.name] = Watermark(
            decided=decided,
            next_tick=schedule.next_after(decided),
            schedule=fingerprint,
            first_seen=first_seen,
            calendar_skipped=(mark.calendar_skipped if mark else 0) + len(skipped),
            last_skipped=skipped[-1].tick if skipped else mark.last_skipped if mark else None,
        )
        if not ticks:
            if explain:
                verdicts.append(not_due_verdict(jobfile, job, new_watermarks[job.name].next_tick))
            continue
        to_run, not_run = _apply_catchup(job, ticks, now - start_of(jobfile, job, ticks[-1]))
        if not_run:
            missed[job.name] = not_run
        if not_run and explain:
            verdicts.append(
                Verdict(
                    job=job.name,
                    logical_time=not_run[-1],
                    action=Action.MISSED,
                    detail=f"{len(not_run)} tick(s) not run (catchup = {job.catchup})",
                )
            )
        for tick in to_run:
            key = RunKey(job.name, tick)
            if history.status(key) is RunStatus.SUCCESS:
                if explain:
                    verdicts.append(
                        Verdict(job=job.name, logical_time=tick, action=Action.ALREADY_DONE)
                    )
                continue
            on_time = tick == ticks[-1] and now - start_of(jobfile, job, tick) <= LATE_AFTER
            roots.append(
                PlannedRun(key=key, kind=RunKind.SCHEDULED if on_time else RunKind.CATCHUP)
            )
    for job in jobfile.jobs.values():
        if job.at_boot and job.enabled and boot is not None:
            key = RunKey(job.name, boot.time)
            if history.status(key) is None:
                roots.append(PlannedRun(key=key, kind=RunKind.SCHEDULED))
            elif explain:
                verdicts.append(
                    Verdict(
                        job=job.name,
                        logical_time=boot.time,
                        action=Action.ALREADY_DONE,
                        detail=f"@reboot: this boot's run is {history.status(key)}",
                    )
                )
    roots += _resumed(jobfile, history, now)
    runs = with_unscheduled_downstream(jobfile, roots, history)
    if explain:
        verdicts += run_verdicts(jobfile, runs, history)
    return DueRuns(runs=runs, missed=missed, watermarks=new_watermarks, verdicts=verdicts)


def held_verdicts(jobfile: JobFile, held: tuple[Blackout, datetime]) -> list[Verdict]:
    """The dry run's word on every job while a blackout window holds every start."""
    window, until = held
    detail = f"{window.describe()}: nothing starts until {until.astimezone(jobfile.settings.timezone):%Y-%m-%d %H:%M}"
    return [
        Verdict(job=job.name, logical_time=None, action=Action.HELD, detail=detail)
        for job in jobfile.jobs.values()
        if job.enabled and (job.schedule is not None or job.at_boot)
    ]


def clock_set_back(watermarks: Mapping[str, Watermark], now: datetime) -> datetime | None:
    """The newest decided tick when the clock has since gone back behind it (beyond
    CLOCK_TOLERANCE), else None. Nothing would be due until the clock got there again, so
    the caller decides again from now: `rewound` drops the watermarks ahead of it, and runs
    that already succeeded are still never run twice (they are `already done`)."""
    newest = max((mark.decided for mark in watermarks.values()), default=None)
    if newest is None or newest - now <= CLOCK_TOLERANCE:
        return None
    return newest


def rewound(watermarks: Mapping[str, Watermark], now: datetime) -> dict[str, Watermark]:
    """The watermarks not ahead of `now`; a job ahead starts again at now (as at first
    sight, FIRST_SIGHT), but never before its first decision (`first_seen` is kept)."""
    return {
        job: mark
        if mark.decided <= now
        else replace(mark, decided=now - FIRST_SIGHT, next_tick=None, schedule="")
        for job, mark in watermarks.items()
    }


def watermarks_to_decide_from(
    watermarks: dict[str, Watermark], now: datetime
) -> tuple[dict[str, Watermark], datetime | None]:
    """The watermarks a decision at `now` starts from, and the newest tick decided before
    when the clock has since gone back behind it (None when it has not)."""
    reached = clock_set_back(watermarks, now)
    return (watermarks, None) if reached is None else (rewound(watermarks, now), reached)


def _apply_catchup(
    job: Job, ticks: list[datetime], newest_late_by: timedelta
) -> tuple[list[datetime], list[datetime]]:
    """Split due ticks into (run, missed) by the job's catch-up policy."""
    newest_on_time = newest_late_by <= LATE_AFTER
    if job.catchup is CatchUp.ALL:
        return ticks[-job.max_catchup :], ticks[: -job.max_catchup]
    if job.catchup is CatchUp.NONE and not newest_on_time:
        return [], ticks
    return ticks[-1:], ticks[:-1]


def _started_by(jobfile: JobFile, job: Job, ticks: list[datetime], now: datetime) -> list[datetime]:
    """The ticks whose runs have started by `now` (see start_of), oldest first, stopping at
    the first that has not: a later tick never starts before an earlier one."""
    started = []
    for tick in ticks:
        if start_of(jobfile, job, tick) > now:
            break
        started.append(tick)
    return started


def _resumed(jobfile: JobFile, history: RunRecords, now: datetime) -> list[PlannedRun]:
    """Runs to take up again: abandoned or interrupted ones with tries left, failed ones
    whose next try is due (their cronflow died before it), and ones waiting for upstreams."""
    resumed = [
        PlannedRun(key=event.key, kind=event.kind)
        for event in history.unfinished(RunStatus.WAITING)
        if event.job in jobfile.jobs
    ]
    for job, event in tries_owed(jobfile, history):
        if retry_due(job, event, now):
            resumed.append(
                PlannedRun(
                    key=event.key,
                    kind=event.kind,
                    first_attempt=event.attempt + 1,
                    run_id=event.run_id,
                )
            )
    return resumed
