"""A run in the index: its latest event kept compactly in a row, and what each event counts
for (how a run ended, the tries it is owed, the alert facts of its job)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from cronflow.model import (
    AlertEvent,
    EventType,
    JobProcess,
    RunEvent,
    RunKind,
    RunStatus,
)
from cronflow.state.codec import event_to_json

# Run events that never change a run's state: deliveries about it.
NOT_ABOUT_A_RUN = (EventType.ALERT, EventType.PING)


@dataclass(slots=True)
class AlertFacts:
    """A row of the jobs table: where in the log a job's last delivered failure alert, last
    recovery alert and last success are (an event's number; 0: never), and when anything
    last happened to it."""

    failure_alerted_at: str | None = None  # UTC ISO-8601 of that failure alert
    failure_alert_seen: int = 0
    recovery_alert_seen: int = 0
    success_seen: int = 0
    last_activity: str | None = None  # UTC ISO-8601 of its newest event

    def take_alert(self, event: RunEvent, seen: int) -> None:
        if event.alert.get("on") == AlertEvent.FAILURE and event.alert.get("delivered"):
            self.failure_alerted_at = (
                (event.ended_at or event.logical_time).astimezone(UTC).isoformat()
            )
            self.failure_alert_seen = seen
        elif event.alert.get("on") == AlertEvent.RECOVERY:
            self.recovery_alert_seen = seen


# How a run can end, as `cronflow_job_runs_total{result=...}` counts it.
FINAL_RESULTS = (
    RunStatus.SUCCESS,
    RunStatus.FAILED,
    RunStatus.TIMED_OUT,
    RunStatus.UPSTREAM_FAILED,
    RunStatus.SKIPPED,
    RunStatus.MISSED,
    RunStatus.ABANDONED,
    RunStatus.INTERRUPTED,
)


@dataclass(frozen=True, slots=True)
class OutcomeCount:
    """How many of a job's runs ended one way, and the newest of them."""

    count: int
    last_ended: datetime | None
    last_duration: float | None
    last_exit: int | None


def final_result(event: RunEvent) -> RunStatus | None:
    """How the run ended, if this event ends it (for this invocation, at least): a success,
    a failure with no tries left, or a run that never ran (upstream failed, skipped,
    missed, abandoned, interrupted by cronflow's own stop). None for a start, a try that
    will be retried, a run still waiting, and deliveries about a run."""
    if event.event in (EventType.STARTED, EventType.WAITING, *NOT_ABOUT_A_RUN):
        return None
    if event.status.is_failed_try:
        return event.status if event.attempt >= event.max_attempts else None
    return event.status if event.status in FINAL_RESULTS else None


def tries_left(event: RunEvent) -> int:
    if (
        event.event is EventType.FINISHED
        and event.status.is_failed_try
        and not event.status.is_cut_short
    ):
        return max(0, event.max_attempts - event.attempt)
    return 0


def event_time(event: RunEvent) -> datetime:
    return event.ended_at or event.started_at or event.logical_time


def micros(instant: datetime) -> int:
    return round(instant.timestamp() * 1_000_000)


# An index row keeps a run's latest event as a JSON array of these fields, in this order,
# trailing empty ones left off; job, logical time and status are the row's own columns.
# Times are microseconds since the epoch (UTC); a run id made of the logical time and a
# suffix (as cronflow makes them) keeps only the suffix, as a one-element list.
_STORED = (
    "event",
    "run_id",
    "kind",
    "attempt",
    "max_attempts",
    "started_at",
    "ended_at",
    "duration_s",
    "exit_code",
    "signal",
    "reason",
    "missed_ticks",
    "host",
    "pid",
    "config_hash",
    "alert",
    "output",
    "process",
    "v",
)


_EMPTY_BY_DEFAULT = (
    *("attempt", "max_attempts", "reason", "missed_ticks", "host", "pid"),
    *("config_hash", "alert", "output"),
)


DURATION_SQL = f"json_extract(event, '$[{_STORED.index('duration_s')}]')"  # a row's duration_s

ROW = "job, at, status, event"  # what every query that decodes an event selects


EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def compact(event: RunEvent) -> str:
    """The event as an index row stores it: without what the index never needs (stderr,
    finished outputs, empty fields) or holds in columns, positionally."""
    record = event_to_json(event)
    if event.status is not RunStatus.RUNNING:
        record["output"] = None  # only an abandoned run copies its outputs
    prefix = f"{event.logical_time.astimezone(UTC):%Y%m%dT%H%M%SZ}-"
    if event.run_id.startswith(prefix):
        record["run_id"] = [event.run_id[len(prefix) :]]
    for name in ("started_at", "ended_at"):
        moment = getattr(event, name)
        record[name] = None if moment is None else micros(moment)
    record["v"] = None if event.v == 1 else event.v
    for name in _EMPTY_BY_DEFAULT:  # what expand gives back for null anyway
        if not record.get(name):
            record[name] = None
    values = [record.get(name) for name in _STORED]
    while values and values[-1] is None:
        values.pop()
    return json.dumps(values, separators=(",", ":"), ensure_ascii=False)


def expand(row: tuple[Any, ...]) -> RunEvent:
    """An index row (job, at, status, event) back into the event it keeps. The row was
    written from a validated event, so nothing is checked again."""
    job, at, status, text = row
    values = json.loads(text)
    record = dict(zip(_STORED, values + [None] * (len(_STORED) - len(values)), strict=True))
    logical_time = EPOCH + timedelta(microseconds=at)
    run_id = record["run_id"] or ""
    if isinstance(run_id, list):
        run_id = f"{logical_time:%Y%m%dT%H%M%SZ}-{run_id[0]}"
    process = record["process"]
    return RunEvent(
        v=record["v"] or 1,
        event=EventType(record["event"]),
        job=job,
        logical_time=logical_time,
        run_id=run_id,
        status=RunStatus(status),
        kind=RunKind(record["kind"]),
        attempt=record["attempt"] or 0,
        max_attempts=record["max_attempts"] or 0,
        started_at=from_micros(record["started_at"]),
        ended_at=from_micros(record["ended_at"]),
        duration_s=record["duration_s"],
        exit_code=record["exit_code"],
        signal=record["signal"],
        output=record["output"] or {},
        reason=record["reason"] or "",
        missed_ticks=record["missed_ticks"] or 0,
        alert=record["alert"] or {},
        host=record["host"] or "",
        pid=record["pid"] or 0,
        process=None if process is None else JobProcess(**process),
        config_hash=record["config_hash"] or "",
    )


def from_micros(micros: int | None) -> datetime | None:
    return None if micros is None else EPOCH + timedelta(microseconds=micros)
