"""Run events as JSON lines: writing one, and reading a log tolerantly."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from cronflow.model import EventType, RunEvent, RunKind, RunStatus


@dataclass(frozen=True, slots=True)
class SkippedLine:
    """A line of the log that could not be read, and why."""

    offset: int  # byte offset of the line's start
    reason: str


@dataclass(frozen=True, slots=True)
class LogContents:
    events: list[RunEvent]
    skipped: list[SkippedLine] = field(default_factory=list)


def parse_log(data: bytes) -> LogContents:
    """Parse the bytes of a log, skipping (and reporting) lines that are torn or not events."""
    events: list[RunEvent] = []
    skipped: list[SkippedLine] = []
    offset = 0
    for raw in data.split(b"\n"):
        start, offset = offset, offset + len(raw) + 1
        if not raw.strip():
            continue
        if offset > len(data):  # no newline after it: a write still in progress or torn
            skipped.append(SkippedLine(start, "incomplete last line"))
            continue
        try:
            events.append(event_from_json(json.loads(raw)))
        except (ValueError, TypeError, KeyError) as error:
            skipped.append(SkippedLine(start, f"not a cronflow event ({error})"))
    return LogContents(events, skipped)


def event_to_json(event: RunEvent) -> dict[str, Any]:
    record: dict[str, Any] = {
        "v": event.v,
        "event": event.event.value,
        "job": event.job,
        "logical_time": time_to_json(event.logical_time),
        "run_id": event.run_id,
        "status": event.status.value,
        "kind": event.kind.value,
        "attempt": event.attempt,
        "max_attempts": event.max_attempts,
        "started_at": time_to_json(event.started_at),
        "ended_at": time_to_json(event.ended_at),
        "duration_s": event.duration_s,
        "exit_code": event.exit_code,
        "signal": event.signal,
        "output": event.output,
        "stderr_tail": event.stderr_tail,
        "reason": event.reason,
        "missed_ticks": event.missed_ticks,
        "alert": event.alert,
        "host": event.host,
        "pid": event.pid,
        "config_hash": event.config_hash,
    }
    return record


def event_from_json(record: Any) -> RunEvent:
    """The event a log record stands for; ValueError/KeyError/TypeError if it is not one."""
    if not isinstance(record, dict):
        raise ValueError("not a JSON object")
    return RunEvent(
        v=int(record["v"]),
        event=EventType(record["event"]),
        job=str(record["job"]),
        logical_time=time_from_json(record["logical_time"]),
        run_id=str(record["run_id"]),
        status=RunStatus(record["status"]),
        kind=RunKind(record["kind"]),
        attempt=int(record.get("attempt", 0)),
        max_attempts=int(record.get("max_attempts", 0)),
        started_at=optional_time(record.get("started_at")),
        ended_at=optional_time(record.get("ended_at")),
        duration_s=record.get("duration_s"),
        exit_code=record.get("exit_code"),
        signal=record.get("signal"),
        output=dict(record.get("output") or {}),
        stderr_tail=str(record.get("stderr_tail", "")),
        reason=str(record.get("reason", "")),
        missed_ticks=int(record.get("missed_ticks", 0)),
        alert=dict(record.get("alert") or {}),
        host=str(record.get("host", "")),
        pid=int(record.get("pid", 0)),
        config_hash=str(record.get("config_hash", "")),
    )


def time_to_json(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def time_from_json(value: Any) -> datetime:
    parsed = datetime.fromisoformat(value)
    if parsed.tzinfo is None:
        raise ValueError(f"time {value!r} has no offset")
    return parsed


def optional_time(value: Any) -> datetime | None:
    return None if value is None else time_from_json(value)
