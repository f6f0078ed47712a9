"""The log's lines as JSON: writing one, and reading a log tolerantly.

Most lines are run events; a `clock` line and an `alert` about no run are host events
(model.HostEvent). Lines written before host events had a shape of their own (a run event
with `job` "") still read as host events."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from cronflow.model import (
    ClockSetBack,
    EventType,
    HostAlert,
    HostEvent,
    JobProcess,
    LogEvent,
    Pause,
    PauseAction,
    PauseChange,
    RunEvent,
    RunKind,
    RunStatus,
    Watermark,
)


@dataclass(frozen=True, slots=True)
class SkippedLine:
    """A line of the log that could not be read, and why."""

    offset: int  # byte offset of the line's start
    reason: str


@dataclass(frozen=True, slots=True)
class LogContents:
    events: list[RunEvent]  # the run events, in log order
    host_events: list[HostEvent] = field(default_factory=list)
    skipped: list[SkippedLine] = field(default_factory=list)


def parse_log(data: bytes) -> LogContents:
    """Parse the bytes of a log, skipping (and reporting) lines that are torn or not events."""
    events: list[RunEvent] = []
    host_events: list[HostEvent] = []
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
            line = line_from_json(json.loads(raw))
        except (ValueError, TypeError, KeyError) as error:
            skipped.append(SkippedLine(start, f"not a cronflow event ({error})"))
            continue
        if isinstance(line, RunEvent):
            events.append(line)
        else:
            host_events.append(line)
    return LogContents(events, host_events, skipped)


def line_from_json(record: Any) -> LogEvent:
    """The run or host event a log record stands for; ValueError/KeyError/TypeError if it
    is neither."""
    if not isinstance(record, dict):
        raise ValueError("not a JSON object")
    if record.get("event") == EventType.CLOCK:
        return _clock_from_json(record)
    if record.get("event") == EventType.PAUSE:
        return _pause_from_json(record)
    if record.get("event") == EventType.ALERT and ("about" in record or record.get("job") == ""):
        return _host_alert_from_json(record)
    return event_from_json(record)


def line_to_json(event: LogEvent) -> dict[str, Any]:
    if isinstance(event, RunEvent):
        return event_to_json(event)
    if isinstance(event, PauseChange):
        return {
            "v": event.v,
            "event": EventType.PAUSE.value,
            "job": event.job,
            "action": event.action.value,
            "by": event.by,
            "at": time_to_json(event.at),
            "until": time_to_json(event.until),
            "reason": event.reason,
            "host": event.host,
            "pid": event.pid,
        }
    if isinstance(event, ClockSetBack):
        return {
            "v": event.v,
            "event": EventType.CLOCK.value,
            "reached": time_to_json(event.reached),
            "noticed_at": time_to_json(event.noticed_at),
            "reason": event.reason,
            "host": event.host,
            "pid": event.pid,
        }
    return {
        "v": event.v,
        "event": EventType.ALERT.value,
        "about": event.about,
        "sent_at": time_to_json(event.sent_at),
        "reason": event.reason,
        "alert": event.alert,
        "host": event.host,
        "pid": event.pid,
    }


def _clock_from_json(record: dict[str, Any]) -> ClockSetBack:
    old = "reached" not in record  # written as a run event: logical_time, ended_at
    return ClockSetBack(
        v=_typed(record, "v", int),
        reached=time_from_json(_typed(record, "logical_time" if old else "reached", str)),
        noticed_at=time_from_json(_typed(record, "ended_at" if old else "noticed_at", str)),
        reason=_typed(record, "reason", str, ""),
        host=_typed(record, "host", str, ""),
        pid=_typed(record, "pid", int, 0),
    )


def _pause_from_json(record: dict[str, Any]) -> PauseChange:
    return PauseChange(
        v=_typed(record, "v", int),
        job=_typed(record, "job", str),
        action=PauseAction(_typed(record, "action", str)),
        by=_typed(record, "by", str, ""),
        at=time_from_json(_typed(record, "at", str)),
        until=optional_time(record.get("until")),
        reason=_typed(record, "reason", str, ""),
        host=_typed(record, "host", str, ""),
        pid=_typed(record, "pid", int, 0),
    )


def _host_alert_from_json(record: dict[str, Any]) -> HostAlert:
    old = "about" not in record  # written as a run event about job "": ended_at is when
    return HostAlert(
        v=_typed(record, "v", int),
        about=_typed(record, "host", str, "") if old else _typed(record, "about", str),
        sent_at=time_from_json(_typed(record, "ended_at" if old else "sent_at", str)),
        reason=_typed(record, "reason", str, ""),
        alert=_typed(record, "alert", dict, {}),
        host=_typed(record, "host", str, ""),
        pid=_typed(record, "pid", int, 0),
    )


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
    if event.ping:  # only on `ping` events: other lines stay as they were
        record["ping"] = event.ping
    if event.process is not None:
        process = event.process
        record["process"] = {
            "pid": process.pid,
            "pgid": process.pgid,
            "start_ticks": process.start_ticks,
            "boot_id": process.boot_id,
        }
    return record


def event_from_json(record: Any) -> RunEvent:
    """The run event a log record stands for; ValueError/KeyError/TypeError if it is not one.

    Every field's type is checked, so a damaged line is skipped here rather than crashing
    whoever reads the event later."""
    if not isinstance(record, dict):
        raise ValueError("not a JSON object")
    output = _typed(record, "output", dict, {})
    if not all(isinstance(value, str) for value in output.values()):
        raise TypeError('"output" holds a path that is not text')
    return RunEvent(
        v=_typed(record, "v", int),
        event=EventType(_typed(record, "event", str)),
        job=_typed(record, "job", str),
        logical_time=time_from_json(_typed(record, "logical_time", str)),
        run_id=_typed(record, "run_id", str),
        status=RunStatus(_typed(record, "status", str)),
        kind=RunKind(_typed(record, "kind", str)),
        attempt=_typed(record, "attempt", int, 0),
        max_attempts=_typed(record, "max_attempts", int, 0),
        started_at=optional_time(_typed(record, "started_at", str, None)),
        ended_at=optional_time(_typed(record, "ended_at", str, None)),
        duration_s=_typed(record, "duration_s", (int, float), None),
        exit_code=_typed(record, "exit_code", int, None),
        signal=_typed(record, "signal", int, None),
        output=output,
        stderr_tail=_typed(record, "stderr_tail", str, ""),
        reason=_typed(record, "reason", str, ""),
        missed_ticks=_typed(record, "missed_ticks", int, 0),
        alert=_typed(record, "alert", dict, {}),
        ping=_typed(record, "ping", dict, {}),
        host=_typed(record, "host", str, ""),
        pid=_typed(record, "pid", int, 0),
        process=_process(_typed(record, "process", dict, None)),
        config_hash=_typed(record, "config_hash", str, ""),
    )


_REQUIRED = object()


def _typed(
    record: dict[str, Any], key: str, kind: type | tuple[type, ...], default: Any = _REQUIRED
) -> Any:
    """record[key] if it has type `kind` (a missing or null value gives `default`)."""
    value = record.get(key)
    if value is None:
        if default is _REQUIRED:
            raise KeyError(key)
        return default
    if not isinstance(value, kind) or isinstance(value, bool):
        raise TypeError(f'"{key}" is {type(value).__name__} {value!r}')
    return value


def _process(record: dict[str, Any] | None) -> JobProcess | None:
    if record is None:
        return None
    return JobProcess(
        pid=_typed(record, "pid", int),
        pgid=_typed(record, "pgid", int),
        start_ticks=_typed(record, "start_ticks", int),
        boot_id=_typed(record, "boot_id", str),
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


# ---- the small state files: paused.json, watermarks.json ---------------------------------------


def pauses_to_json(pauses: dict[str, Pause]) -> dict[str, Any]:
    return {
        "v": 1,
        "jobs": {
            job: {
                "by": pause.by,
                "since": time_to_json(pause.since),
                "until": time_to_json(pause.until),
                "reason": pause.reason,
            }
            for job, pause in sorted(pauses.items())
        },
    }


def pauses_from_json(document: Any) -> dict[str, Pause]:
    """The pauses of a paused.json document (KeyError, TypeError, ...: it is damaged)."""
    return {
        job: Pause(
            job=job,
            by=str(mark["by"]),
            since=time_from_json(mark["since"]),
            until=optional_time(mark.get("until")),
            reason=str(mark.get("reason", "")),
        )
        for job, mark in document["jobs"].items()
    }


def watermarks_to_json(watermarks: dict[str, Watermark]) -> dict[str, Any]:
    """A watermarks.json document (a calendar's count only where there is one)."""
    jobs: dict[str, dict[str, Any]] = {}
    for job, mark in sorted(watermarks.items()):
        jobs[job] = {
            "decided": time_to_json(mark.decided),
            "next": time_to_json(mark.next_tick),
            "schedule": mark.schedule,
            "first": time_to_json(mark.first_seen),
        }
        if mark.calendar_skipped:
            jobs[job]["skipped"] = mark.calendar_skipped
            jobs[job]["last_skipped"] = time_to_json(mark.last_skipped)
    return {"v": 1, "jobs": jobs}


def watermarks_from_json(document: Any) -> dict[str, Watermark]:
    """The watermarks of a watermarks.json document (KeyError, ...: it is damaged)."""
    return {
        job: Watermark(
            decided=time_from_json(mark["decided"]),
            next_tick=optional_time(mark["next"]),
            schedule=str(mark["schedule"]),
            first_seen=optional_time(mark.get("first")),
            calendar_skipped=int(mark.get("skipped", 0)),
            last_skipped=optional_time(mark.get("last_skipped")),
        )
        for job, mark in document["jobs"].items()
    }
