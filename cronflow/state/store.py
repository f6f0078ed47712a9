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
import socket
import sqlite3
import stat
import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from typing import TypeVar

from cronflow.errors import StoreError
from cronflow.model import Boot, LogEvent, Pause, RunEvent, RunKey, Watermark
from cronflow.state.codec import (
    LogContents,
    line_to_json,
    parse_log,
    pauses_from_json,
    pauses_to_json,
    time_from_json,
    time_to_json,
    watermarks_from_json,
    watermarks_to_json,
)
from cronflow.state.files import NO_LINKS, private_dir, read_bytes, replace_whole, write_private
from cronflow.state.index import RunIndex
from cronflow.state.layout import (
    BOOTS_NAME,
    EXPOSURE_WARNED,
    INDEX_NAME,
    LOCK_DIR,
    LOG_NAME,
    OUTPUT_DIR,
    OVERDUE_NAME,
    PAUSED_NAME,
    RESERVE_NAME,
    SEGMENT_GLOB,
    STALE_ALERTED_NAME,
    WATERMARKS_NAME,
)

# runs.jsonl rolls over into runs-000001.jsonl, runs-000002.jsonl, ... at this size; all kept.
SEGMENT_BYTES = 64 * 1024 * 1024
KEEP_BOOTS = 50
# Space held back in the state directory and given up when the disk is full, so the records
# that end runs still fit: an outcome that happened is never lost for want of a few blocks.
RESERVE_BYTES = 1024 * 1024

Line = TypeVar("Line", bound=LogEvent)
Answer = TypeVar("Answer")


class Store:
    """One state directory."""

    def __init__(self, state_dir: Path, segment_bytes: int = SEGMENT_BYTES) -> None:
        self.state_dir = state_dir
        self.segment_bytes = segment_bytes
        self.log_path = state_dir / LOG_NAME
        self.output_dir = state_dir / OUTPUT_DIR
        self.lock_dir = state_dir / LOCK_DIR
        self.watermarks_path = state_dir / WATERMARKS_NAME
        self.index_path = state_dir / INDEX_NAME
        self._index: RunIndex | None = None  # opened on first use
        self._index_guard = threading.Lock()
        self._output_dirs_made: set[str] = set()
        self._segments: tuple[int | None, list[Path]] | None = None  # see log_files()
        self._segments_guard = threading.Lock()

    def prepare(self) -> None:
        """Create the state directory (0700: run output often holds secrets) if missing. It and
        the folders in it must be real directories of ours, never links (as root: root's)."""
        for directory in (self.state_dir, self.output_dir, self.lock_dir):
            try:
                if directory == self.state_dir:
                    directory.parent.mkdir(parents=True, exist_ok=True)
                private_dir(directory)
            except OSError as error:
                raise StoreError(
                    f"cannot use {directory} as (part of) the state directory: "
                    f"{error.strerror}. Check what is there and its permissions, or set "
                    "state_dir in [cronflow]"
                ) from None
        if not os.access(self.state_dir, os.W_OK):
            raise StoreError(
                f"cannot write the state directory {self.state_dir}: it is "
                "read-only to this user. cronflow records every run there; fix "
                "its permissions (or mount), or set state_dir in [cronflow]"
            )
        self.keep_reserve()

    def keep_reserve(self) -> None:
        """Make sure the reserve exists. Once given up (to end a run's record or to let the
        index take in the log on a full disk), it is taken back only when twice its size is
        free: as much again stays free for the index and the stamps."""
        path = self.state_dir / RESERVE_NAME
        if path.exists():
            return
        if self._free_bytes() < 2 * RESERVE_BYTES:
            return  # not yet: space has not really come back
        try:
            descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | NO_LINKS, 0o600)
        except OSError:
            return
        try:
            os.posix_fallocate(descriptor, 0, RESERVE_BYTES)
        except OSError:
            path.unlink(missing_ok=True)  # still no room: try again next time
        finally:
            os.close(descriptor)

    def _free_bytes(self) -> int:
        try:
            disk = os.statvfs(self.state_dir)
        except OSError:
            return 0
        return disk.f_bavail * disk.f_frsize

    def _give_up_reserve(self) -> bool:
        try:
            (self.state_dir / RESERVE_NAME).unlink()
        except OSError:
            return False
        return True

    def append(self, event: Line) -> Line:
        """Append one event (a run's or the host's) as a single line and make it durable before returning. The event
        is stamped with the host and pid of the cronflow writing it (unless it names them);
        the stamped event is returned."""
        if not event.host:
            event = replace(event, host=socket.gethostname(), pid=os.getpid())
        line = (
            json.dumps(line_to_json(event), ensure_ascii=False, separators=(",", ":")) + "\n"
        ).encode("utf-8")
        try:
            self._append_line(line)
        except OSError as error:
            if error.errno not in (errno.ENOSPC, errno.EDQUOT) or not self._give_up_reserve():
                raise self._write_error(error) from None
            try:
                self._append_line(line)  # into the space the reserve held
            except OSError as error:
                raise self._write_error(error) from None
        return event

    def _append_line(self, line: bytes) -> None:
        while True:
            descriptor = os.open(
                self.log_path, os.O_RDWR | os.O_APPEND | os.O_CREAT | NO_LINKS, 0o600
            )
            try:
                fcntl.flock(descriptor, fcntl.LOCK_EX)
                if self._appended(descriptor, line):
                    # Written whole under the lock; synced after it, so that writers ending
                    # together share the disk's flushes instead of queueing for them.
                    fcntl.flock(descriptor, fcntl.LOCK_UN)
                    os.fsync(descriptor)
                    return
            finally:
                os.close(descriptor)  # also releases the flock

    def _appended(self, descriptor: int, line: bytes) -> bool:
        """Write `line` to the locked log (the caller syncs it); False if it was rolled into
        a segment meanwhile (or is now), so the caller opens the new log and tries again."""
        try:
            if os.stat(self.log_path).st_ino != os.fstat(descriptor).st_ino:
                return False  # another writer rolled it while we waited for the lock
        except FileNotFoundError:
            return False
        size = os.fstat(descriptor).st_size
        if size and size + len(line) > self.segment_bytes:
            os.rename(self.log_path, self._new_segment_path())
            return False
        if size and os.pread(descriptor, 1, size - 1) != b"\n":
            line = b"\n" + line  # end a line torn by a killed writer; readers skip it
        try:
            if os.write(descriptor, line) != len(line):
                raise OSError(errno.ENOSPC, "short write (disk full?)")
        except OSError:
            # A part of a line (the disk filled up in its middle) would stay for good, read
            # as an unreadable line ever after: cut the log back to where this line began.
            with suppress(OSError):
                os.ftruncate(descriptor, size)
            raise
        return True

    def segments(self) -> list[Path]:
        """The rolled-over parts of the log, oldest first (runs.jsonl itself comes after)."""
        return sorted(self.state_dir.glob(SEGMENT_GLOB))

    def _new_segment_path(self) -> Path:
        """The next segment's name: numbered, so their order never depends on a clock."""
        numbers = [int(path.stem.split("-")[1]) for path in self.segments()]
        return self.state_dir / f"runs-{max(numbers, default=0) + 1:06d}.jsonl"

    def read(self) -> LogContents:
        """Every readable event of every segment and the log, oldest first, and the lines
        that had to be skipped."""
        events, host_events, skipped = [], [], []
        for path in [*self.segments(), self.log_path]:
            try:
                contents = parse_log(read_bytes(path))
            except FileNotFoundError:
                continue
            except OSError as error:
                raise StoreError(
                    f"cannot read the run log {path}: {error.strerror}. Check its permissions"
                ) from None
            events += contents.events
            host_events += contents.host_events
            skipped += contents.skipped
        return LogContents(events, host_events, skipped)

    def read_pauses(self) -> dict[str, Pause]:
        """The jobs paused now (expired pauses included, until a tick ends them); {} if
        none. A file that cannot be read is an error: running a paused job is not a cache
        miss."""
        try:
            document = json.loads(read_bytes(self.state_dir / PAUSED_NAME))
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as error:
            raise StoreError(
                f"cannot read {self.state_dir / PAUSED_NAME} ({error}): which jobs are "
                "paused cannot be told. Fix or remove it (then pause them again)"
            ) from None
        try:
            return pauses_from_json(document)
        except (KeyError, TypeError, ValueError, AttributeError) as error:
            raise StoreError(
                f"{self.state_dir / PAUSED_NAME} is damaged ({error!r}). Fix or remove it "
                "(then pause the jobs again)"
            ) from None

    def write_pauses(self, pauses: dict[str, Pause]) -> None:
        """Replace the paused jobs durably; call under the @plan lock."""
        text = json.dumps(pauses_to_json(pauses), indent=1)
        _write_durably(self.state_dir / PAUSED_NAME, text.encode())

    def read_watermarks(self) -> dict[str, Watermark]:
        """How far the scheduler got with each job; {} if the file is missing or unreadable.

        An unreadable file costs no run twice: the planner never runs a tick the log says
        succeeded, and a job without a watermark starts again at now minus one minute.
        """
        try:
            return watermarks_from_json(json.loads(read_bytes(self.watermarks_path)))
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            return {}

    def write_watermarks(self, watermarks: dict[str, Watermark]) -> None:
        """Replace the watermarks file atomically (temporary file, fsync, rename)."""
        text = json.dumps(watermarks_to_json(watermarks), indent=1)
        _write_durably(self.watermarks_path, text.encode())

    def boot(self, seen: Boot) -> Boot:
        """This boot as first recorded: its id with the time first estimated for it (an
        NTP step after boot changes later estimates, never a recorded one), recording `seen`
        if it is new. The @reboot runs of a boot take that time as their logical time, so
        it is durable before any of them starts. Call under the @plan lock."""
        known = self._boots()
        for boot in known:
            if boot.id == seen.id:
                return boot
        first = Boot(seen.id, seen.time.replace(microsecond=0))
        lines = [f"{b.id} {time_to_json(b.time)}" for b in [*known, first][-KEEP_BOOTS:]]
        _write_durably(self.state_dir / BOOTS_NAME, ("\n".join(lines) + "\n").encode())
        return first

    def stale_alerted(self) -> set[str]:
        """The assets alerted as stale and not fresh again since (one name a line)."""
        try:
            text = read_bytes(self.state_dir / STALE_ALERTED_NAME).decode()
        except (OSError, ValueError):
            return set()
        return {line for line in text.splitlines() if line}

    def write_stale_alerted(self, names: set[str]) -> None:
        """Replace that set durably (under the @plan lock: one decision at a time)."""
        content = "".join(f"{name}\n" for name in sorted(names))
        _write_durably(self.state_dir / STALE_ALERTED_NAME, content.encode())

    def overdue(self) -> dict[str, dict[str, str | None]]:
        """The slow and late episodes under way at the last decision, by key ({} if none,
        or if the file cannot be read: each then begins again, and is said once more)."""
        try:
            records = json.loads(read_bytes(self.state_dir / OVERDUE_NAME))
        except (OSError, ValueError):
            return {}
        return records if isinstance(records, dict) else {}

    def write_overdue(self, records: dict[str, dict[str, str | None]]) -> None:
        """Replace them durably (under the @plan lock: one decision at a time)."""
        content = json.dumps(records, indent=1, sort_keys=True, ensure_ascii=False) + "\n"
        _write_durably(self.state_dir / OVERDUE_NAME, content.encode())

    def known_boot(self, seen: Boot) -> Boot:
        """This boot as recorded, or as it would be recorded now (for a dry run)."""
        recorded = [boot for boot in self._boots() if boot.id == seen.id]
        return recorded[0] if recorded else Boot(seen.id, seen.time.replace(microsecond=0))

    def _boots(self) -> list[Boot]:
        try:
            return [
                Boot(boot_id, time_from_json(moment))
                for boot_id, _, moment in (
                    line.partition(" ")
                    for line in read_bytes(self.state_dir / BOOTS_NAME).decode().splitlines()
                )
            ]
        except (OSError, ValueError):
            return []  # none recorded (or damaged): this boot's @reboot runs are decided again

    def write_stamp(self, name: str, now: datetime) -> None:
        """Remember when something last happened (layout.LAST_TICK, LAST_PRUNE, ...)."""
        _write_private(self.state_dir / name, now.isoformat() + "\n")

    def read_text_stamp(self, name: str) -> str:
        """A small text the state directory keeps (layout.HOUSEKEEPING_ALERTED), "" if none."""
        return (_read_text(self.state_dir / name) or "").strip()

    def write_text_stamp(self, name: str, text: str) -> None:
        _write_private(self.state_dir / name, text.strip() + "\n")

    def exposure_warning(self) -> str | None:
        """A warning the first time the state directory is found open to group or others
        (for each mode it is found with): run output often holds secrets. cronflow never
        changes the permissions of a directory that already exists."""
        try:
            mode = stat.S_IMODE(self.state_dir.stat().st_mode)
        except OSError:
            return None
        stamp = self.state_dir / EXPOSURE_WARNED
        if not mode & 0o077 or _read_text(stamp) == f"{mode:04o}":
            return None
        _write_private(stamp, f"{mode:04o}")
        return (
            f"the state directory {self.state_dir} is open to group or others (mode "
            f"{mode:04o}), and run output and the log often hold secrets; cronflow leaves "
            f"permissions you set alone. Fix: chmod 700 {self.state_dir}"
        )

    def read_stamp(self, name: str) -> datetime | None:
        try:
            return time_from_json((_read_text(self.state_dir / name) or "").strip())
        except ValueError:
            return None

    def index(self) -> RunIndex:
        """The index of the log, brought up to date (only new lines are read)."""
        if not self.state_dir.exists():
            return RunIndex()

        def synced(index: RunIndex) -> RunIndex:
            index.sync(self.log_files)
            return index

        return self._on_index(synced)

    def latest(self, key: RunKey) -> RunEvent | None:
        """The last recorded event of a run, as the log says now (see RunIndex.latest_in_log)."""
        if not self.state_dir.exists():
            return None
        return self._on_index(lambda index: index.latest_in_log(key, self.log_files))

    def forgotten_through(self, job: str) -> datetime | None:
        """The newest logical time of the job's runs that retention forgot (see
        IndexQueries.forgotten_through): only retention changes it, so the log is not read."""
        if not self.state_dir.exists():
            return None
        return self._on_index(lambda index: index.forgotten_through(job))

    def note_first_seen(self, kind: str, names: Iterable[str], now: datetime) -> None:
        """See RunIndex.note_first_seen (a decision, under the @plan lock, tells it)."""
        self._on_index(lambda index: index.note_first_seen(kind, names, now))

    def _on_index(self, action: Callable[[RunIndex], Answer]) -> Answer:
        """`action` on the opened index. On a full disk (SQLite cannot grow its files), the
        reserve is given up and `action` tried once more: what the log already holds can
        always be taken into the index (then the reserve is taken back when room returns,
        see keep_reserve)."""
        with self._index_guard, self._index_errors():
            try:
                return action(self._opened_index())
            except sqlite3.OperationalError as error:
                # SQLite says "disk is full", or, when its shared memory cannot grow on a
                # full tmpfs, "disk I/O error".
                short = _disk_full(error) or self._free_bytes() < RESERVE_BYTES
                if not short or not self._give_up_reserve():
                    raise
                self._forget_opened_index()
                return action(self._opened_index())

    def _forget_opened_index(self) -> None:
        if self._index is not None:
            with suppress(sqlite3.Error):
                self._index.close()
            self._index = None

    def _opened_index(self) -> RunIndex:
        if self._index is None:
            self._index = RunIndex.open(self.index_path, self.log_files)
        return self._index

    def reindex(self) -> RunIndex:
        """Build the index again from the whole log, aside, and swap it in."""
        with self._index_guard, self._index_errors():
            if self._index is not None:
                self._index.close()
            self._index = RunIndex.rebuild(self.index_path, self.log_files)
            return self._index

    def log_files(self) -> list[Path]:
        """The segments, oldest first, then the log being written. The folder is listed again
        only when runs.jsonl is another file than last time: a segment appears only when the
        log rolls over (the index asks after every run)."""
        try:
            inode = os.stat(self.log_path).st_ino
        except FileNotFoundError:
            inode = None
        with self._segments_guard:
            if self._segments is None or self._segments[0] != inode:
                self._segments = (inode, self.segments())
            return [*self._segments[1], self.log_path]

    @contextmanager
    def _index_errors(self) -> Iterator[None]:
        try:
            yield
        except (sqlite3.Error, OSError) as error:
            raise StoreError(
                f"cannot bring the run index {self.index_path} up to date "
                f"({error}). The log is untouched; free disk space or fix "
                "permissions, then run again"
            ) from None

    def prune(self, keep: set[str], older_than: datetime) -> int:
        """Delete output files last written before `older_than`, except those of the run ids
        in `keep`, and the one-file-per-run locks cronflow made before run locks became a
        byte of the job's `JOB@runs.lock` (never removed: a job may hold it); return how many
        files went. Streams the folders (a week of an every-minute job is 30,000 files: a
        list of them all was a daemon's highest memory)."""
        cutoff = older_than.timestamp()
        removed = 0
        for folder in _subfolders(self.output_dir):
            removed += _remove_older(folder, cutoff, keep, _is_output_name)
        return removed + _remove_older(str(self.lock_dir), cutoff, keep, _is_legacy_run_lock)

    def forget_before(self, cutoff: datetime) -> tuple[int, int]:
        """Retention: forget the runs older than `cutoff` that nothing needs any more (see
        RunIndex.forget_older_than), snapshot the index, then delete the log segments
        written wholly before `cutoff`. (runs forgotten, segments deleted). Call it under
        the retention lock.

        Crash-safe in any order of events: the snapshot is in place, complete and durable,
        before any segment goes, and it says where in the log it stopped; so a kill -9 at
        any point leaves either the old segments (still readable, no longer needed) or the
        snapshot that replaces them. A segment is found old by its mtime, the time of its
        last append: nothing is read to find it."""
        index = self.index()
        forgotten = index.forget_older_than(cutoff)
        reading = index.reads_from()
        old = [
            path
            for path in self.segments()
            if (stat := _stat_or_none(path)) is not None
            and stat.st_mtime < cutoff.timestamp()
            and str(stat.st_ino) != reading  # (never: the index reads the newest file)
        ]
        if forgotten or old:
            index.snapshot()
        for path in old:
            path.unlink(missing_ok=True)
        if old:
            with self._segments_guard:
                self._segments = None  # listed again on next use
        return forgotten, len(old)

    def output_paths(self, key: RunKey, run_id: str, attempt: int) -> dict[str, Path]:
        """Where an attempt's stdout and stderr go, and the exit status its wrapper writes:
        output/<job>/<run_id>.<attempt>.<stdout|stderr|exit>."""
        if key.job not in self._output_dirs_made:
            try:
                private_dir(self.output_dir / key.job)
            except OSError as error:
                raise StoreError(
                    f"cannot use {self.output_dir / key.job} for the output of {key.job}: "
                    f"{error.strerror}. Check what is there, or remove it"
                ) from None
            self._output_dirs_made.add(key.job)
        return self.attempt_files(key.job, run_id, attempt)

    def attempt_files(self, job: str, run_id: str, attempt: int) -> dict[str, Path]:
        """Where an attempt's output files are (or were), creating nothing."""
        directory = self.output_dir / job
        return {
            name: directory / f"{run_id}.{attempt}.{name}" for name in ("stdout", "stderr", "exit")
        }

    def _write_error(self, error: OSError) -> StoreError:
        return StoreError(
            f"cannot write the run log {self.log_path}: {error.strerror}. "
            "Nothing already recorded was changed; free disk space or fix "
            "permissions, then run again"
        )


def _write_private(path: Path, text: str) -> None:
    """Replace a small state file, readable by its owner only, whatever the umask."""
    with suppress(OSError):  # stamps only steer warnings and how often to prune
        write_private(str(path), text.encode())


def _disk_full(error: sqlite3.OperationalError) -> bool:
    return getattr(error, "sqlite_errorcode", None) == sqlite3.SQLITE_FULL or "disk is full" in str(
        error
    )


def _stat_or_none(path: Path) -> os.stat_result | None:
    try:
        return path.stat()
    except FileNotFoundError:
        return None


def _read_text(path: Path) -> str | None:
    try:
        return read_bytes(path).decode()
    except (OSError, UnicodeDecodeError):
        return None


def new_run_id(logical_time: datetime) -> str:
    """A unique id for one execution of a run; its retries share it, a rerun gets a new one."""
    return f"{logical_time:%Y%m%dT%H%M%SZ}-{os.urandom(3).hex()}"  # as secrets.token_hex


def _write_durably(path: Path, content: bytes) -> None:
    """Replace a state file atomically and durably (temporary file, fsync, rename)."""
    try:
        replace_whole(path, content, durable=True)
    except OSError as error:
        raise StoreError(
            f"cannot write {path}: {error.strerror}. Free disk space or fix permissions, "
            "then run again"
        ) from None


def _subfolders(directory: Path) -> list[str]:
    try:
        with os.scandir(directory) as entries:
            return [entry.path for entry in entries if entry.is_dir(follow_symlinks=False)]
    except OSError:
        return []


def _is_output_name(name: str) -> bool:
    return name.endswith((".stdout", ".stderr", ".exit"))


def _is_legacy_run_lock(name: str) -> bool:
    """JOB@20260114T060000Z.lock: a run's own lock file, as cronflow made them before."""
    job, at, rest = name.partition("@")
    return bool(job and at and rest[:1].isdigit() and rest.endswith("Z.lock"))


def _remove_older(folder: str, cutoff: float, keep: set[str], wanted: Callable[[str], bool]) -> int:
    """Remove the files of `folder` whose names are `wanted`, last written before `cutoff`,
    unless their run id (the name up to its first dot) is in `keep`."""
    removed = 0
    try:
        with os.scandir(folder) as entries:
            for entry in entries:
                if not wanted(entry.name) or entry.name.split(".", 1)[0] in keep:
                    continue
                try:
                    if entry.stat(follow_symlinks=False).st_mtime < cutoff:
                        os.unlink(entry.path)
                        removed += 1
                except OSError:
                    continue  # gone already, or not ours to remove: try again next time
    except OSError:
        pass  # no such folder (yet)
    return removed
