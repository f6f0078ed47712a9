"""The state directory: runs.jsonl (the record of every run) and the per-attempt output files.

Writing: every event is one JSON line, written with a single write() on an O_APPEND
descriptor under a short flock, then fsynced, so concurrent writers never interleave and a
line is on disk before the next step starts. Reading: tolerant; a torn last line (a writer
killed mid-write) or a garbage line is skipped and counted, never rewritten.
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import secrets
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from cronflow.errors import StoreError
from cronflow.model import EventType, RunEvent, RunKey, RunKind, RunStatus, Watermark

LOG_NAME = "runs.jsonl"
WATERMARKS_NAME = "watermarks.json"
STDERR_TAIL_LINES = 20
STDERR_TAIL_BYTES = 4096
# Each output file is cut to this size after its attempt ends, keeping its head and tail.
OUTPUT_LIMIT_BYTES = 10 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class SkippedLine:
    """A line of the log that could not be read, and why."""

    offset: int  # byte offset of the line's start
    reason: str


@dataclass(frozen=True, slots=True)
class LogContents:
    events: list[RunEvent]
    skipped: list[SkippedLine] = field(default_factory=list)


class Store:
    """One state directory."""

    def __init__(self, state_dir: Path) -> None:
        self.state_dir = state_dir
        self.log_path = state_dir / LOG_NAME
        self.output_dir = state_dir / "output"
        self.lock_dir = state_dir / "locks"
        self.watermarks_path = state_dir / WATERMARKS_NAME
        self.heartbeat_path = state_dir / "last-tick"
        self._history = History([])
        self._history_read_up_to = (None, 0)  # (inode, byte offset) already in _history
        self._history_guard = threading.Lock()
        self._output_dirs_made: set[str] = set()

    def prepare(self) -> None:
        """Create the state directory (0700: run output often holds secrets) if missing."""
        try:
            for directory in (self.state_dir, self.output_dir, self.lock_dir):
                directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        except OSError as error:
            raise StoreError(f"cannot create the state directory {self.state_dir}: "
                             f"{error.strerror}. Check its permissions, or set state_dir in "
                             f"[cronflow]") from None

    def append(self, event: RunEvent) -> None:
        """Append one event as a single line and make it durable before returning."""
        line = (json.dumps(event_to_json(event), ensure_ascii=False, separators=(",", ":"))
                + "\n").encode("utf-8")
        try:
            descriptor = os.open(self.log_path,
                                 os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o600)
        except OSError as error:
            raise self._write_error(error) from None
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX)
            size = os.fstat(descriptor).st_size
            if size and os.pread(descriptor, 1, size - 1) != b"\n":
                line = b"\n" + line  # end a line torn by a killed writer; readers skip it
            if os.write(descriptor, line) != len(line):
                raise OSError(errno.ENOSPC, "short write (disk full?)")
            os.fsync(descriptor)
        except OSError as error:
            raise self._write_error(error) from None
        finally:
            os.close(descriptor)  # also releases the flock

    def read(self) -> LogContents:
        """Every readable event, oldest first, and the lines that had to be skipped."""
        try:
            data = self.log_path.read_bytes()
        except FileNotFoundError:
            return LogContents([])
        except OSError as error:
            raise StoreError(f"cannot read the run log {self.log_path}: {error.strerror}. "
                             "Check its permissions") from None
        return parse_log(data)

    def read_watermarks(self) -> dict[str, Watermark]:
        """How far the scheduler got with each job; {} if the file is missing or unreadable.

        An unreadable file costs no run twice: the planner never runs a tick the log says
        succeeded, and a job without a watermark starts again at now minus one minute.
        """
        try:
            document = json.loads(self.watermarks_path.read_bytes())
            return {job: Watermark(decided=_time_from_json(mark["decided"]),
                                   next_tick=_optional_time(mark["next"]),
                                   schedule=str(mark["schedule"]))
                    for job, mark in document["jobs"].items()}
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            return {}

    def write_watermarks(self, watermarks: dict[str, Watermark]) -> None:
        """Replace the watermarks file atomically (temporary file, fsync, rename)."""
        document = {"v": 1, "jobs": {
            job: {"decided": _time_to_json(mark.decided), "next": _time_to_json(mark.next_tick),
                  "schedule": mark.schedule}
            for job, mark in sorted(watermarks.items())}}
        temporary = self.watermarks_path.with_suffix(f".tmp.{os.getpid()}")
        try:
            descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC,
                                 0o600)
            try:
                os.write(descriptor, json.dumps(document, indent=1).encode())
                os.fsync(descriptor)
            finally:
                os.close(descriptor)
            os.replace(temporary, self.watermarks_path)
        except OSError as error:
            temporary.unlink(missing_ok=True)
            raise StoreError(f"cannot write {self.watermarks_path}: {error.strerror}. Free disk "
                             "space or fix permissions, then run again") from None

    def record_heartbeat(self, now: datetime) -> None:
        """Note that cronflow decided what was due at `now` (status warns when this gets old)."""
        try:
            self.heartbeat_path.write_text(now.isoformat() + "\n")
        except OSError:
            pass  # only status's staleness warning depends on it

    def last_heartbeat(self) -> datetime | None:
        try:
            return _time_from_json(self.heartbeat_path.read_text().strip())
        except (OSError, ValueError):
            return None

    def history(self) -> History:
        """The history as the log says now; reads only what was appended since the last call."""
        with self._history_guard:
            try:
                with open(self.log_path, "rb") as log:
                    inode = os.fstat(log.fileno()).st_ino
                    known_inode, offset = self._history_read_up_to
                    if inode != known_inode or os.fstat(log.fileno()).st_size < offset:
                        self._history, offset = History([]), 0  # a new or replaced log
                    log.seek(offset)
                    data = log.read()
            except FileNotFoundError:
                return History([])
            except OSError as error:
                raise StoreError(f"cannot read the run log {self.log_path}: {error.strerror}. "
                                 "Check its permissions") from None
            complete = data.rfind(b"\n") + 1  # a line still being written is read next time
            for event in parse_log(data[:complete]).events:
                self._history.add(event)
            self._history_read_up_to = (inode, offset + complete)
            return self._history

    def output_paths(self, key: RunKey, run_id: str, attempt: int) -> dict[str, Path]:
        """Where an attempt's stdout and stderr go: output/<job>/<run_id>.<attempt>.<stream>."""
        directory = self.output_dir / key.job
        if key.job not in self._output_dirs_made:
            directory.mkdir(mode=0o700, parents=True, exist_ok=True)
            self._output_dirs_made.add(key.job)
        return {stream: directory / f"{run_id}.{attempt}.{stream}" for stream in ("stdout", "stderr")}

    def _write_error(self, error: OSError) -> StoreError:
        return StoreError(f"cannot write the run log {self.log_path}: {error.strerror}. "
                          "Nothing already recorded was changed; free disk space or fix "
                          "permissions, then run again")


def new_run_id(logical_time: datetime) -> str:
    """A unique id for one execution of a run; its retries share it, a rerun gets a new one."""
    return f"{logical_time:%Y%m%dT%H%M%SZ}-{secrets.token_hex(3)}"


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
        "logical_time": _time_to_json(event.logical_time),
        "run_id": event.run_id,
        "status": event.status.value,
        "kind": event.kind.value,
        "attempt": event.attempt,
        "max_attempts": event.max_attempts,
        "started_at": _time_to_json(event.started_at),
        "ended_at": _time_to_json(event.ended_at),
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
        logical_time=_time_from_json(record["logical_time"]),
        run_id=str(record["run_id"]),
        status=RunStatus(record["status"]),
        kind=RunKind(record["kind"]),
        attempt=int(record.get("attempt", 0)),
        max_attempts=int(record.get("max_attempts", 0)),
        started_at=_optional_time(record.get("started_at")),
        ended_at=_optional_time(record.get("ended_at")),
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


def _time_to_json(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def _time_from_json(value: Any) -> datetime:
    parsed = datetime.fromisoformat(value)
    if parsed.tzinfo is None:
        raise ValueError(f"time {value!r} has no offset")
    return parsed


def _optional_time(value: Any) -> datetime | None:
    return None if value is None else _time_from_json(value)


UNFINISHED = frozenset({RunStatus.RUNNING, RunStatus.WAITING, RunStatus.ABANDONED,
                        RunStatus.INTERRUPTED})


class History:
    """What the log says about each run: the latest event per (job, logical time)."""

    def __init__(self, events: Iterable[RunEvent]) -> None:
        self.latest_by_key: dict[RunKey, RunEvent] = {}
        self._newest_time: dict[str, datetime] = {}
        self._unfinished: dict[RunKey, RunEvent] = {}  # latest status running/waiting/abandoned
        self._failure_alerted_at: dict[str, datetime] = {}  # in the job's current failing streak
        self._owes_recovery: set[str] = set()  # succeeded after a failure alert, not yet told
        self._times_by_job: dict[str, set[datetime]] = {}
        self.last_activity: datetime | None = None  # when anything was last recorded
        for event in events:
            self.add(event)

    def add(self, event: RunEvent) -> None:
        """Take in the next event of the log."""
        if event.event is EventType.ALERT:
            self._add_alert(event)
            return
        if event.event is EventType.FINISHED and event.status is RunStatus.SUCCESS:
            if self._failure_alerted_at.pop(event.job, None) is not None:
                self._owes_recovery.add(event.job)
            else:
                self._owes_recovery.discard(event.job)
        self.latest_by_key[event.key] = event
        self._times_by_job.setdefault(event.job, set()).add(event.logical_time)
        when = event.ended_at or event.started_at
        if when and (self.last_activity is None or when > self.last_activity):
            self.last_activity = when
        if event.status in UNFINISHED:
            self._unfinished[event.key] = event
        else:
            self._unfinished.pop(event.key, None)
        newest = self._newest_time.get(event.job)
        if newest is None or event.logical_time > newest:
            self._newest_time[event.job] = event.logical_time

    def latest(self, key: RunKey) -> RunEvent | None:
        """The last recorded event of this run, or None if it never ran."""
        return self.latest_by_key.get(key)

    def status(self, key: RunKey) -> RunStatus | None:
        event = self.latest(key)
        return None if event is None else event.status

    def _add_alert(self, event: RunEvent) -> None:
        if event.alert.get("on") == "failure" and event.alert.get("delivered"):
            self._failure_alerted_at[event.job] = event.ended_at or event.logical_time
            self._owes_recovery.discard(event.job)
        elif event.alert.get("on") == "recovery":
            self._owes_recovery.discard(event.job)

    def failure_alerted_at(self, job: str) -> datetime | None:
        """When a failure alert about the job's current failing streak last reached someone."""
        return self._failure_alerted_at.get(job)

    def owes_recovery(self, job: str) -> bool:
        """True when the job succeeded after a failure alert and no recovery alert followed."""
        return job in self._owes_recovery

    def unfinished(self, *statuses: RunStatus) -> list[RunEvent]:
        """Runs whose latest event has one of `statuses` (running, waiting or abandoned)."""
        return [event for event in self._unfinished.values() if event.status in statuses]

    def recent_runs(self, job: str, count: int) -> list[RunEvent]:
        """The latest event of each of the job's `count` newest runs, oldest first."""
        times = sorted(self._times_by_job.get(job, ()))[-count:]
        return [self.latest_by_key[RunKey(job, when)] for when in times]

    def last_run(self, job: str) -> RunEvent | None:
        """The latest event of the job's run with the newest logical time."""
        newest = self._newest_time.get(job)
        return None if newest is None else self.latest_by_key[RunKey(job, newest)]
