"""What `status` shows, as data: one summary per job, built from the log. Pure."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from datetime import date

from cronflow.errors import UsageError
from cronflow.model import EventType, JobFile, RunEvent
from cronflow.store import History

STATUS_SCHEMA_VERSION = 1


@dataclass(frozen=True, slots=True, kw_only=True)
class JobStatus:
    job: str
    schedule: str  # the cron expression, "after <upstreams>", or "manual"
    timezone: str
    last_logical_time: str | None  # ISO-8601 in the job's zone
    status: str | None  # None: never run
    attempt: int
    max_attempts: int
    duration_s: float | None
    ended_at: str | None  # ISO-8601 in the job's zone
    reason: str


def summarise(jobfile: JobFile, history: History) -> list[JobStatus]:
    """One JobStatus per job, in the order the jobs file declares them."""
    rows = []
    for job in jobfile.jobs.values():
        last = history.last_run(job.name)
        zone = job.timezone
        rows.append(JobStatus(
            job=job.name,
            schedule=job.schedule or (f"after {', '.join(job.depends_on)}" if job.depends_on
                                      else "manual"),
            timezone=zone.key,
            last_logical_time=last and last.logical_time.astimezone(zone).isoformat(),
            status=last and last.status.value,
            attempt=last.attempt if last else 0,
            max_attempts=job.retry.attempts,
            duration_s=last and last.duration_s,
            ended_at=last and last.ended_at and last.ended_at.astimezone(zone).isoformat(),
            reason=last.reason if last else "",
        ))
    return rows


def status_json(jobfile: JobFile, rows: list[JobStatus]) -> dict[str, Any]:
    """The documented `cronflow status --json` document (schema version in "v")."""
    return {"v": STATUS_SCHEMA_VERSION, "jobs_file": str(jobfile.path),
            "jobs": [_row_json(row) for row in rows]}


def _row_json(row: JobStatus) -> dict[str, Any]:
    return {name: getattr(row, name) for name in JobStatus.__dataclass_fields__}


def attempt_output(jobfile: JobFile, events: list[RunEvent], job: str, day: date | None,
                   attempt: int | None) -> RunEvent:
    """The `started` event (it holds the output paths) of one attempt of a job's run.

    The run is the job's newest logical time, or the newest one on `day` (in the job's zone);
    the attempt is the last one unless `attempt` is given.
    """
    zone = jobfile.jobs[job].timezone
    started = [e for e in events if e.job == job and e.event is EventType.STARTED
               and (day is None or e.logical_time.astimezone(zone).date() == day)]
    if not started:
        when = f" on {day}" if day else ""
        raise UsageError(f'job "{job}" has no recorded output{when}. `cronflow status` shows '
                         "what ran.")
    newest = max(started, key=lambda e: e.logical_time).logical_time
    run_id = [e for e in started if e.logical_time == newest][-1].run_id
    tries = [e for e in started if e.run_id == run_id]
    if attempt is None:
        return tries[-1]
    for event in tries:
        if event.attempt == attempt:
            return event
    raise UsageError(f'run {run_id} of job "{job}" has attempts '
                     f"{', '.join(str(e.attempt) for e in tries)}, not {attempt}.")
