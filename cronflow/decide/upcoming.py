"""A job's next ticks, for `cronflow next`."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from cronflow.decide.jitter import start_of
from cronflow.decide.schedule import schedule_of
from cronflow.model import (
    JobFile,
)


@dataclass(frozen=True, slots=True, kw_only=True)
class UpcomingTick:
    """One of a job's next ticks, for `cronflow next`."""

    job: str
    at: datetime  # aware UTC
    local: datetime  # the same instant in the job's zone
    dst_note: str  # how daylight saving time shaped it, or ""
    starts: datetime  # when its run starts, in the job's zone (later by random_delay/offset)


def upcoming_ticks(
    jobfile: JobFile, jobs: Sequence[str], after: datetime, count: int
) -> list[UpcomingTick]:
    """The next `count` ticks after `after` of each scheduled job of `jobs`, soonest first
    (ticks at one instant in the order of `jobs`)."""
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
            found.append(
                UpcomingTick(
                    job=name,
                    at=tick,
                    local=tick.astimezone(job.timezone),
                    dst_note=schedule.dst_note(tick),
                    starts=start_of(jobfile, job, tick).astimezone(job.timezone),
                )
            )
    return sorted(found, key=lambda tick: tick.at)
