"""The truth about a run whose cronflow died while it ran (kill -9, a crash, a reboot), once
none of its processes lives: its exit status if its wrapper wrote one (act/runner.py), else
that its command never began, else that it was abandoned. Its output is capped and masked
first, as the runner does when an attempt ends (Executor.settle records the event)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cronflow.act.runner import read_exit_status
from cronflow.decide import exit_codes
from cronflow.load.env_files import secrets_of_job
from cronflow.model import EventType, Job, RunEvent, RunStatus
from cronflow.state import outputs
from cronflow.state.outputs import tail_of


def ended(started: RunEvent, job: Job | None, output_limit: int, now: datetime) -> RunEvent:
    """The event that ends `started`, whose processes are all gone (`job`: None when it is
    no longer in the jobs file)."""
    exit_status = (
        read_exit_status(Path(started.output["exit"])) if "exit" in started.output else None
    )
    _finish_output(job, started, output_limit)
    who = f"cronflow (pid {started.pid}) stopped"
    common: dict[str, Any] = dict(
        job=started.job,
        logical_time=started.logical_time,
        run_id=started.run_id,
        kind=started.kind,
        max_attempts=started.max_attempts,
        started_at=started.started_at,
        output=started.output,
        config_hash=started.config_hash,
    )
    if isinstance(exit_status, int):
        at = _modified(Path(started.output["exit"])) or now
        status = exit_codes.judged(job, exit_status)
        if status is RunStatus.FAILED and exit_codes.fails_fast(job, exit_status):
            common["max_attempts"] = started.attempt  # its last try, as Executor._attempt records
        return RunEvent(
            event=EventType.FINISHED,
            status=status,
            attempt=started.attempt,
            ended_at=at,
            exit_code=exit_status,
            duration_s=round((at - started.started_at).total_seconds(), 3)
            if started.started_at
            else None,
            stderr_tail=tail_of(Path(started.output.get("stderr", ""))),
            reason=f"{who} while it ran; its shell recorded {exit_codes.exit_words(job, exit_status)}",
            **common,
        )
    if exit_status == "cancelled":
        return RunEvent(
            event=EventType.INTERRUPTED,
            status=RunStatus.INTERRUPTED,
            attempt=started.attempt - 1,
            ended_at=now,
            reason=f"{who} before try {started.attempt} began",
            **common,
        )
    return RunEvent(
        event=EventType.ABANDONED,
        status=RunStatus.ABANDONED,
        attempt=started.attempt,
        ended_at=now,
        reason=f"{who} while attempt {started.attempt} ran, and its "
        "processes ended without an exit status (killed, or the machine restarted)",
        **common,
    )


def _finish_output(job: Job | None, started: RunEvent, output_limit: int) -> None:
    """Cap the output and mask the job's secrets (as its env and env_files say now; a job
    gone from the file has none to mask)."""
    secrets = secrets_of_job(job) if job is not None else ()
    for stream in ("stdout", "stderr"):
        if stream in started.output:
            outputs.finish(Path(started.output[stream]), output_limit, secrets)


def _modified(path: Path) -> datetime | None:
    try:
        return datetime.fromtimestamp(path.stat().st_mtime, UTC)
    except OSError:
        return None
