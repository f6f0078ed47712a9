"""The questions the run index answers (state/index.RunIndex keeps it up to date with the
log): the latest event of a run, runs unfinished or owed a try, a job's newest runs and
failing streak, how its runs have ended, its alert facts. Reads only."""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Callable, Generator, Sequence
from contextlib import closing
from datetime import UTC, datetime, timedelta
from itertools import chain
from typing import Any

from cronflow.model import ClockSetBack, RunEvent, RunKey, RunStatus
from cronflow.records import JobRuns, failing_streak
from cronflow.state.codec import event_from_json, line_from_json
from cronflow.state.index_rows import (
    DURATION_SQL,
    EPOCH,
    ROW,
    AlertFacts,
    OutcomeCount,
    expand,
    from_micros,
    micros,
)

UNFINISHED_SQL = ", ".join(f"'{status.value}'" for status in RunStatus if status.is_unfinished)
_FEW_RUNS = 5000  # newest_first: up to this many runs of the jobs asked, sorting them is cheap


class IndexQueries:
    """Answers from the index's tables; the connection and its lock belong to RunIndex."""

    _db: sqlite3.Connection
    _lock: threading.RLock

    @property
    def skipped_lines(self) -> int:
        """How many lines of the log were unreadable (torn or not events)."""
        return int(self._meta("skipped") or 0)

    def outcomes(self, job: str) -> dict[RunStatus, OutcomeCount]:
        """How the job's runs have ended, ever: per result, how many and the newest one."""
        return {
            RunStatus(result): OutcomeCount(
                count=count,
                last_ended=from_micros(last_ended),
                last_duration=last_duration,
                last_exit=last_exit,
            )
            for result, count, last_ended, last_duration, last_exit in self._all(
                "SELECT result, count, last_ended, last_duration, last_exit FROM outcomes "
                "WHERE job = ?",
                (job,),
            )
        }

    def newest_success(self, job: str) -> datetime | None:
        """The logical time of the job's newest successful run (retention keeps it)."""
        row = self._one(
            "SELECT at FROM runs WHERE job = ? AND status = 'success' ORDER BY at DESC LIMIT 1",
            (job,),
        )
        return None if row is None else EPOCH + timedelta(microseconds=row[0])

    def success_times(self, job: str) -> list[datetime]:
        """The logical times of every successful run of the job the index holds, oldest
        first (what retention forgot is not among them)."""
        rows = self._all(
            "SELECT at FROM runs WHERE job = ? AND status = 'success' ORDER BY at", (job,)
        )
        return [EPOCH + timedelta(microseconds=row[0]) for row in rows]

    def oldest_run(self, job: str) -> datetime | None:
        """The logical time of the job's oldest run the index holds."""
        row = self._one("SELECT min(at) FROM runs WHERE job = ?", (job,))
        return None if row is None or row[0] is None else EPOCH + timedelta(microseconds=row[0])

    def success_durations(self, job: str, limit: int) -> list[float]:
        """How long the job's newest `limit` successful runs took (seconds, newest first):
        what its usual duration is learnt from (decide/overdue.py)."""
        rows = self._all(
            f"SELECT {DURATION_SQL} FROM runs WHERE job = ? AND status = 'success' "
            "ORDER BY at DESC LIMIT ?",
            (job, limit),
        )
        return [float(row[0]) for row in rows if row[0] is not None]

    def last_pings(self) -> dict[str, RunEvent]:
        """Each job's newest `ping` event: how its last ping went (for `status`)."""
        return {
            job: event_from_json(json.loads(text))
            for job, text in self._all("SELECT job, event FROM last_pings ORDER BY job", ())
        }

    def alert_facts(self, job: str) -> AlertFacts:
        """What the log says about the job's alerts and successes, in log order: the facts
        the alert policy (alerts.py) decides streaks and owed recoveries from."""
        row = self._one(
            "SELECT failure_alerted_at, failure_alert_seen, recovery_alert_seen, success_seen, "
            "last_activity FROM jobs WHERE job = ?",
            (job,),
        )
        return AlertFacts(*row) if row else AlertFacts()

    def latest(self, key: RunKey) -> RunEvent | None:
        """The last recorded event of this run, or None if it never ran."""
        row = self._one(
            f"SELECT {ROW} FROM runs WHERE job = ? AND at = ?",
            (key.job, micros(key.logical_time)),
        )
        return None if row is None else expand(row)

    def status(self, key: RunKey) -> RunStatus | None:
        row = self._one(
            "SELECT status FROM runs WHERE job = ? AND at = ?", (key.job, micros(key.logical_time))
        )
        return None if row is None else RunStatus(row[0])

    def unfinished(self, *statuses: RunStatus) -> list[RunEvent]:
        """Runs whose latest event has one of `statuses` (running, waiting, abandoned...)."""
        wanted = [status.value for status in statuses if status.is_unfinished]
        if not wanted:
            return []
        marks = ", ".join("?" * len(wanted))
        return [
            expand(row)
            for row in self._all(
                f"SELECT {ROW} FROM runs WHERE status IN ({UNFINISHED_SQL}) AND status IN ({marks})",
                wanted,
            )
        ]

    def owed_retries(self) -> list[RunEvent]:
        """Runs whose latest event is a failed try with tries left: normally retried by the
        invocation that ran it, unless that one died before the next try."""
        return [
            expand(row) for row in self._all(f"SELECT {ROW} FROM runs WHERE tries_left > 0", ())
        ]

    def recent_runs(self, job: str, count: int) -> list[RunEvent]:
        """The latest event of each of the job's `count` newest runs, oldest first."""
        rows = self._all(
            f"SELECT {ROW} FROM runs WHERE job = ? ORDER BY at DESC LIMIT ?", (job, count)
        )
        return [expand(row) for row in reversed(rows)]

    def newest_first(
        self,
        *,
        jobs: Sequence[str] = (),
        statuses: Sequence[str] = (),
        since: datetime | None = None,
        limit: int = 50,
    ) -> list[RunEvent]:
        """The latest event of runs, the most recently active first, filtered as asked."""
        where: list[str] = []
        parameters: list[Any] = []
        for column, values in (("job", list(jobs)), ("status", list(statuses))):
            if values:
                where.append(f"{column} IN ({', '.join('?' * len(values))})")
                parameters += values
        if since is not None:
            where.append("at >= ?")
            parameters.append(micros(since))
        sql = (
            f"SELECT {ROW} FROM runs{self._newest_first_plan(jobs)}"
            + (" WHERE " + " AND ".join(where) if where else "")
            + " ORDER BY ended DESC, job DESC, at DESC LIMIT ?"  # ties in a fixed order
        )
        return [expand(row) for row in self._all(sql, [*parameters, limit])]

    def _newest_first_plan(self, jobs: Sequence[str]) -> str:
        """For jobs with many runs (an every-minute job over months), walk runs by when they
        ended and stop at the limit, rather than sorting all of theirs; SQLite's own choice
        (their rows, then a sort) is right only while they are few."""
        if not jobs:
            return ""
        marks = ", ".join("?" * len(jobs))
        row = self._one(f"SELECT count(*) FROM runs WHERE job IN ({marks})", list(jobs))
        return " INDEXED BY runs_by_end" if row and row[0] > _FEW_RUNS else ""

    def run_ids_to_keep(self, newest: int) -> set[str]:
        """Run ids of each job's `newest` runs, and of every unfinished run."""
        rows = self._all(
            f"SELECT {ROW} FROM (SELECT {ROW}, row_number() OVER "
            "(PARTITION BY job ORDER BY at DESC) AS place FROM runs) "
            f"WHERE place <= ? OR status IN ({UNFINISHED_SQL})",
            (newest,),
        )
        return {expand(row).run_id for row in rows}

    def job_runs(self, job: str, strip: int) -> JobRuns:
        """The job's `strip` newest runs (logical time, status), the newest run's latest
        event (the only one decoded), and its exact failing streak: older runs' statuses are
        read only while the streak goes on."""
        with self._lock:
            rows = self._db.execute(
                f"SELECT {ROW} FROM runs WHERE job = ? ORDER BY at DESC LIMIT ?",
                (job, strip),
            ).fetchall()
            statuses = [RunStatus(status) for _, _, status, _ in rows]
            # Lazy: older runs are queried only if all of these leave the streak going.
            older = self._statuses_before(job, rows[-1][1] if rows else 0)
            with closing(older):
                streak = failing_streak(chain(statuses, older))
        return JobRuns(
            recent=[
                (datetime.fromtimestamp(at / 1_000_000, UTC), status)
                for (_, at, _, _), status in zip(reversed(rows), reversed(statuses), strict=True)
            ],
            last=expand(rows[0]) if rows else None,
            failing_streak=streak,
        )

    def _statuses_before(self, job: str, at: int) -> Generator[RunStatus, None, None]:
        cursor = self._db.execute(
            "SELECT status FROM runs WHERE job = ? AND at < ? ORDER BY at DESC", (job, at)
        )
        try:
            while batch := cursor.fetchmany(256):
                yield from (RunStatus(status) for (status,) in batch)
        finally:
            cursor.close()

    def newest_with(
        self,
        job: str,
        matches: Callable[[RunEvent], bool],
        between: tuple[datetime, datetime] | None = None,
    ) -> RunEvent | None:
        """The latest event of the job's newest run (with a logical time in `between`, if
        given) that `matches`: runs are decoded newest first, only until one matches."""
        low, high = (micros(between[0]), micros(between[1])) if between else (-(2**62), 2**62)
        with self._lock:
            cursor = self._db.execute(
                f"SELECT {ROW} FROM runs WHERE job = ? AND at >= ? AND at < ? ORDER BY at DESC",
                (job, low, high),
            )
            try:
                while batch := cursor.fetchmany(64):
                    for row in batch:
                        event = expand(row)
                        if matches(event):
                            return event
            finally:
                cursor.close()
        return None

    def forgotten_through(self, job: str) -> datetime | None:
        """The newest logical time of a run of `job` that retention forgot: for a run at or
        before it, no record means "cannot tell", not "never run"."""
        row = self._one("SELECT through FROM forgotten WHERE job = ?", (job,))
        return None if row is None else from_micros(row[0])

    def first_seen(self, kind: str, name: str) -> datetime | None:
        """When a decision first found the job or asset (`kind`) in the jobs file."""
        row = self._one("SELECT since FROM first_seen WHERE kind = ? AND name = ?", (kind, name))
        return None if row is None else from_micros(row[0])

    def last_run(self, job: str) -> RunEvent | None:
        """The latest event of the job's run with the newest logical time."""
        recent = self.recent_runs(job, 1)
        return recent[0] if recent else None

    def clock_set_back(self) -> ClockSetBack | None:
        """The latest `clock` event: when the clock last went back behind decided ticks."""
        row = self._one("SELECT value FROM meta WHERE key = 'clock_set_back'", ())
        line = None if row is None else line_from_json(json.loads(row[0]))
        return line if isinstance(line, ClockSetBack) else None

    @property
    def last_activity(self) -> datetime | None:
        """When anything was last recorded."""
        row = self._one("SELECT max(last_activity) FROM jobs", ())
        return datetime.fromisoformat(row[0]) if row and row[0] else None

    def reads_from(self) -> str | None:
        """The inode of the log file the index read last (it goes on from there)."""
        with self._lock:
            return self._meta("log_inode")

    def run_count(self) -> int:
        row = self._one("SELECT count(*) FROM runs", ())
        return int(row[0]) if row else 0

    def _one(self, sql: str, parameters: Sequence[Any]) -> tuple[Any, ...] | None:
        with self._lock:
            row: tuple[Any, ...] | None = self._db.execute(sql, parameters).fetchone()
            return row

    def _all(self, sql: str, parameters: Sequence[Any]) -> list[tuple[Any, ...]]:
        with self._lock:
            return self._db.execute(sql, parameters).fetchall()

    def _meta(self, key: str) -> str | None:
        row = self._db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else row[0]
