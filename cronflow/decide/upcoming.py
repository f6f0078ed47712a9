"""A job's next ticks, for `cronflow next`: when each runs, and what its calendars and the
blackout windows do to the ticks in between."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from itertools import groupby

from cronflow.calendars import blackout_of
from cronflow.decide.calendar_days import moved_from, skipped_ticks
from cronflow.decide.jitter import start_of
from cronflow.decide.schedule import schedule_of
from cronflow.model import Job, JobFile


@dataclass(frozen=True, slots=True, kw_only=True)
class UpcomingTick:
    """One of a job's next ticks, for `cronflow next`."""

    job: str
    at: datetime  # aware UTC
    local: datetime  # the same instant in the job's zone
    dst_note: str  # how daylight saving time shaped it, or ""
    starts: datetime  # when its run starts, in the job's zone (later by random_delay/offset)
    note: str = ""  # what a calendar or a blackout window does to it, or ""
    skipped: int = 0  # > 0: not a run: this many ticks of its day its calendars skip


def upcoming_ticks(
    jobfile: JobFile, jobs: Sequence[str], after: datetime, count: int
) -> list[UpcomingTick]:
    """The next `count` ticks after `after` of each scheduled job of `jobs`, soonest first
    (ticks at one instant in the order of `jobs`), with the days its calendars skip in
    between (one row a day)."""
    found = []
    for name in jobs:
        job = jobfile.jobs[name]
        if job.schedule is None:
            continue
        schedule = schedule_of(job.cadence)
        tick = after
        for _ in range(count):
            following = schedule.next_after(tick)
            if following is None:
                break
            tick = following
            found.append(_run(jobfile, job, tick))
        found += _skipped_days(job, after, tick if tick != after else None)
    return sorted(found, key=lambda tick: (tick.at, tick.skipped == 0))


def _run(jobfile: JobFile, job: Job, tick: datetime) -> UpcomingTick:
    schedule = schedule_of(job.cadence)
    starts = start_of(jobfile, job, tick)
    notes = [moved_from(schedule, tick)]
    window = blackout_of(jobfile.blackouts, starts, jobfile.settings.timezone)
    if window is not None:
        notes.append(f"held by {window.describe()}: decided when it ends (catchup = {job.catchup})")
    return UpcomingTick(
        job=job.name,
        at=tick,
        local=tick.astimezone(job.timezone),
        dst_note=schedule.dst_note(tick),
        starts=starts.astimezone(job.timezone),
        note="; ".join(note for note in notes if note),
    )


_MOST_SKIPPED_SCANNED = 50_000  # ticks of the cron expression: a minutely job's month


def _skipped_days(job: Job, after: datetime, last: datetime | None) -> list[UpcomingTick]:
    """One row for each day before `last` (the last run shown) whose ticks the calendars
    skip; none when the job has no calendar or no run to come."""
    schedule = schedule_of(job.cadence)
    if schedule.days is None or last is None:
        return []
    raw = schedule.raw.ticks(after, last)[:_MOST_SKIPPED_SCANNED]
    if not raw:
        return []
    skipped = skipped_ticks(schedule, after, raw[-1])
    rows = []
    for _, same_day in groupby(skipped, key=lambda s: s.tick.astimezone(job.timezone).date()):
        day = list(same_day)
        rows.append(
            UpcomingTick(
                job=job.name,
                at=day[0].tick,
                local=day[0].tick.astimezone(job.timezone),
                dst_note="",
                starts=day[0].tick.astimezone(job.timezone),
                note=f"skipped by calendar: {day[0].reason}"
                + (f" ({len(day)} ticks that day)" if len(day) > 1 else ""),
                skipped=len(day),
            )
        )
    return rows
