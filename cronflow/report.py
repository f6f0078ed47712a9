"""What `status` shows, as data: one summary per job, built from the log. Pure."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from cronflow.model import JobFile
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
