"""Owed tries: runs cut short or failed with tries left, and when each next try is due."""

from __future__ import annotations

from datetime import datetime

from cronflow.clock import CLOCK_TOLERANCE
from cronflow.model import Job, JobFile, RunEvent, RunStatus, try_owed
from cronflow.records import RunRecords


def tries_owed(jobfile: JobFile, history: RunRecords) -> list[tuple[Job, RunEvent]]:
    """Runs cut short (abandoned, interrupted) or failed by a cronflow that died before the
    retry, with tries left, each with its job."""
    owed = []
    for event in [
        *history.unfinished(*(status for status in RunStatus if status.is_cut_short)),
        *history.owed_retries(),
    ]:
        job = jobfile.jobs.get(event.job)
        if job is not None and try_owed(event, job.retry.attempts):
            owed.append((job, event))
    return owed


def retry_due(job: Job, event: RunEvent, now: datetime) -> bool:
    """A failed try is retried once its retry delay has passed; a cut-off one at once, and so
    is one that ended "later" than now (the clock went back: the delay cannot be measured)."""
    return now >= retry_at(job, event, now)


def retry_at(job: Job, event: RunEvent, now: datetime) -> datetime:
    """When the next try of a run cut short or failed is due (see retry_due)."""
    if event.status.is_cut_short or event.ended_at is None:
        return now
    if event.ended_at - now > CLOCK_TOLERANCE:
        return now
    return event.ended_at + job.retry.delay_before(event.attempt + 1)
