"""How a try's exit status is judged: 0 and a job's success_exit_codes succeed, its
no_retry_exit_codes fail with no retry, and the words a run's reason says it in."""

from __future__ import annotations

from cronflow.model import Job, RunStatus


def judged(job: Job | None, exit_code: int | None) -> RunStatus:
    """A try's outcome by its exit status: 0 and the job's success_exit_codes succeed (for
    a job no longer in the file, only 0)."""
    if exit_code == 0 or (job and exit_code in job.success_exit_codes):
        return RunStatus.SUCCESS
    return RunStatus.FAILED


def fails_fast(job: Job | None, exit_code: int | None) -> bool:
    """A failed try whose exit status forbids another (no_retry_exit_codes)."""
    return job is not None and exit_code in job.no_retry_exit_codes


def exit_words(job: Job | None, exit_code: int) -> str:
    """Why an exit status ended a try as it did, as the run's reason says it."""
    if job and exit_code in job.success_exit_codes:
        return f"exit status {exit_code}, a success (success_exit_codes)"
    if job and exit_code in job.no_retry_exit_codes:
        return f"exit status {exit_code}, not retried (no_retry_exit_codes)"
    return f"exit status {exit_code}"
