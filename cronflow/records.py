"""What the decisions and reports read about recorded runs: the questions the run index
answers (state/index_queries.py), typed here so that the pure code (decide/) knows none of
its storage."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from cronflow.model import RunEvent, RunKey, RunStatus


def failing_streak(newest_first: Iterable[RunStatus]) -> int:
    """How many runs failed since the newest success (the job's runs, newest first; read
    only as far as that success). Runs neither failed nor successful (running, waiting,
    interrupted by cronflow's own stop, missed, skipped) leave the streak as it was."""
    streak = 0
    for status in newest_first:
        if status.ends_failing_streak:
            break
        streak += status.is_failure
    return streak


@dataclass(frozen=True, slots=True)
class JobRuns:
    """What `status` shows of one job's runs."""

    recent: list[tuple[datetime, RunStatus]]  # (logical time, status) of the newest, oldest first
    last: RunEvent | None  # the latest event of the newest run
    failing_streak: int  # exact, however long (see failing_streak)


class RunRecords(Protocol):
    """What the decisions and reports read about recorded runs (the run index answers it)."""

    def status(self, key: RunKey) -> RunStatus | None: ...

    def latest(self, key: RunKey) -> RunEvent | None: ...

    def unfinished(self, *statuses: RunStatus) -> list[RunEvent]: ...

    def owed_retries(self) -> list[RunEvent]: ...

    def job_runs(self, job: str, strip: int) -> JobRuns: ...

    def newest_success(self, job: str) -> datetime | None: ...

    def success_durations(self, job: str, limit: int) -> list[float]: ...

    def forgotten_through(self, job: str) -> datetime | None: ...

    def first_seen(self, kind: str, name: str) -> datetime | None: ...

    def last_pings(self) -> dict[str, RunEvent]: ...

    def newest_with(
        self,
        job: str,
        matches: Callable[[RunEvent], bool],
        between: tuple[datetime, datetime] | None = None,
    ) -> RunEvent | None: ...

    def newest_first(
        self,
        *,
        jobs: Sequence[str] = (),
        statuses: Sequence[str] = (),
        since: datetime | None = None,
        limit: int = 50,
    ) -> list[RunEvent]: ...
