"""What the log says about each run: the latest event of every (job, logical time).

Kept in SQLite, so that `status` and the planner answer from an index instead of reading the
whole log. `RunIndex.open(path)` keeps one in the state directory (`index.sqlite3`) and
`sync()` brings it up to date by reading only what was appended to runs.jsonl since. The index
is derived data: missing, from another log, or corrupt, it is rebuilt from the log; the log
stays the record. `RunIndex(events)` builds a throwaway one in memory (for plans and tests).
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, BinaryIO

from cronflow.model import (
    ClockSetBack,
    EventType,
    HostEvent,
    RunEvent,
    RunKey,
    RunStatus,
)
from cronflow.state.codec import (
    event_to_json,
    line_to_json,
    parse_log,
)
from cronflow.state.files import NO_LINKS
from cronflow.state.index_queries import UNFINISHED_SQL, IndexQueries
from cronflow.state.index_rows import (
    FINAL_RESULTS,
    NOT_ABOUT_A_RUN,
    ROW,
    AlertFacts,
    compact,
    event_time,
    expand,
    final_result,
    micros,
    tries_left,
)
from cronflow.state.layout import SNAPSHOT_NAME
from cronflow.state.sqlite_files import (
    extent_of,
    inode_of,
    remove_index,
    stat_or_none,
    sync_directory,
    unread_tail,
    use_wal,
)

SCHEMA_VERSION = "5"
_SCHEMA = f"""
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS runs (
    job TEXT NOT NULL,
    at INTEGER NOT NULL,          -- logical time, microseconds since the epoch (UTC)
    status TEXT NOT NULL,
    ended INTEGER NOT NULL,       -- when its latest event happened (µs), for newest-first lists
    event TEXT NOT NULL,          -- the latest event of the run, compact JSON
    tries_left INTEGER NOT NULL,  -- > 0: it failed, and a try is still owed to it
    PRIMARY KEY (job, at)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS owed_tries ON runs (tries_left) WHERE tries_left > 0;
CREATE INDEX IF NOT EXISTS unfinished_runs ON runs (status) WHERE status IN ({UNFINISHED_SQL});
CREATE INDEX IF NOT EXISTS runs_by_end ON runs (ended);
CREATE TABLE IF NOT EXISTS jobs (
    job TEXT PRIMARY KEY,
    failure_alerted_at TEXT,      -- when a failure alert last reached someone (UTC ISO-8601)
    failure_alert_seen INTEGER NOT NULL DEFAULT 0,   -- where in the log (an event's number)
    recovery_alert_seen INTEGER NOT NULL DEFAULT 0,  -- the newest recovery alert
    success_seen INTEGER NOT NULL DEFAULT 0,         -- the newest success
    last_activity TEXT            -- UTC ISO-8601 of its newest event
);
CREATE TABLE IF NOT EXISTS outcomes (
    job TEXT NOT NULL,
    result TEXT NOT NULL,         -- how runs ended: success, failed, timed_out, skipped, ...
    count INTEGER NOT NULL,       -- how many ever did (retention forgets runs, not these)
    last_ended INTEGER,           -- the newest one's end (µs), duration and exit status
    last_duration REAL,
    last_exit INTEGER,
    PRIMARY KEY (job, result)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS forgotten (
    job TEXT PRIMARY KEY,
    through INTEGER NOT NULL      -- the newest logical time (µs) of a run retention forgot
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS last_pings (
    job TEXT PRIMARY KEY,
    event TEXT NOT NULL           -- the job's newest `ping` event (JSON, as logged)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS first_seen (
    kind TEXT NOT NULL,           -- job or asset
    name TEXT NOT NULL,
    since INTEGER NOT NULL,       -- when a decision first found it in the jobs file (µs)
    PRIMARY KEY (kind, name)
) WITHOUT ROWID;
"""
_CHUNK = 8 * 1024 * 1024  # bytes of log read at a time while catching up
KEEP_NEWEST = 12  # runs of each job retention never forgets (status's strip)
_TAIL_BYTES = 64 * 1024  # `latest_in_log` reads at most this much unindexed log, else syncs


class RunIndex(IndexQueries):
    """The latest event per run, the alert state per job, and when anything last happened,
    kept up to date with the log (the questions it answers are in IndexQueries)."""

    def __init__(self, events: Iterable[RunEvent] = (), *, path: Path | None = None) -> None:
        self.path = path
        self._synced_to: tuple[Any, ...] | None = None  # (inode, size) of the log last read
        self._lock = threading.RLock()
        self._db = connect(path)
        self._opened = None if path is None else inode_of(path)
        self._count_outcomes_once()
        self.add_all(events)

    @classmethod
    def open(cls, path: Path, log_files: Callable[[], list[Path]]) -> RunIndex:
        """The index at `path`; a corrupt or foreign file is rebuilt aside and swapped in, and
        a missing one, if retention left a snapshot, is built from it."""
        if not path.exists() and path.with_name(SNAPSHOT_NAME).exists():
            return cls.rebuild(path, log_files)
        try:
            index = cls(path=path)
            if index._meta("schema") not in (None, SCHEMA_VERSION):
                raise sqlite3.DatabaseError("index from another cronflow version")
            return index
        except sqlite3.DatabaseError as error:
            if isinstance(error, sqlite3.OperationalError):
                raise  # locked, read-only, disk full: not a damaged index
            return cls.rebuild(path, log_files)

    @classmethod
    def rebuild(cls, path: Path, log_files: Callable[[], list[Path]]) -> RunIndex:
        """Build the index from the whole log in a file of its own, then swap it in: nobody
        ever opens an empty or half-built index in its place. With a snapshot beside it (what
        retention kept of the log it deleted), start from the snapshot and read on from where
        it stopped."""
        aside = path.with_name(f"{path.name}.rebuild-{os.getpid()}-{threading.get_ident()}")
        remove_index(aside)
        snapshot = path.with_name(SNAPSHOT_NAME)
        if snapshot.exists():
            shutil.copyfile(snapshot, aside)
        built = cls(path=aside)
        if built._meta("schema") != SCHEMA_VERSION:  # a snapshot of another row format
            built.close()
            remove_index(aside)
            built = cls(path=aside)
        try:
            built.sync(log_files)
        finally:
            built.close()  # the last connection: SQLite folds the WAL into the file
        for suffix in ("-wal", "-shm"):  # the old file's; they must never meet the new one
            Path(f"{path}{suffix}").unlink(missing_ok=True)
        os.replace(aside, path)
        return cls(path=path)

    # ---- keeping up with the log --------------------------------------------------------------

    def sync(self, log_files: Callable[[], list[Path]]) -> None:
        """Take in what was appended since the last sync (all of it, the first time).

        `log_files()` lists the log's segments, oldest first, then the log being written; it
        is asked under the index's write lock, so a roll-over cannot hide a file from us.
        """
        with self._lock:
            self._follow_swapped_file()
            if self._synced_to is not None and self._synced_to == extent_of(log_files()[-1]):
                return  # nothing appended since our last look: no transaction needed
            try:
                with self._transaction():
                    self._catch_up(log_files)
            except sqlite3.DatabaseError as error:
                if self.path is None or isinstance(error, sqlite3.OperationalError):
                    raise  # locked, read-only, disk full: not a damaged index
                self._db.close()  # corrupt under our feet: build it again from the log
                rebuilt = RunIndex.rebuild(self.path, log_files)
                self._db, self._opened = rebuilt._db, rebuilt._opened
                self._synced_to = rebuilt._synced_to

    def _catch_up(self, log_files: Callable[[], list[Path]]) -> None:
        """Read on from where the index stopped, in one transaction: others see the index
        as it was or with all of this, and it only ever grows while the log does."""
        while True:
            files, stats, start = self._where_to_resume(log_files)
            if all(
                self._read_file(path, stat.st_ino)
                for path, stat in list(zip(files, stats, strict=False))[start:]
                if stat is not None
            ):
                break  # else a file rolled over under us: look again, and go on from there
        self._synced_to = (self._meta("log_inode"), int(self._meta("log_offset") or 0))

    def _where_to_resume(
        self, log_files: Callable[[], list[Path]]
    ) -> tuple[list[Path], list[os.stat_result | None], int]:
        """The log's files, their stats, and which of them to go on reading."""
        for _ in range(3):  # a roll-over between listing and looking: list again
            files = log_files()
            stats = [stat_or_none(path) for path in files]
            start = self._resume_point(stats)
            if start is not None:
                return files, stats, start
        if self.path is not None and self.path.with_name(SNAPSHOT_NAME).exists():
            # Retention deleted what the index last read: start again from the snapshot.
            raise sqlite3.DatabaseError("the index reads a log file retention has deleted")
        self._reset()  # another log, a rewritten one, or its files are gone: read it all again
        return files, stats, 0

    def _resume_point(self, stats: list[os.stat_result | None]) -> int | None:
        """Which file to go on reading: the one read last time; None if it is not there.

        Called under the write lock, so nobody took in more of the log since we looked: a
        file shorter than what was read of it really was rewritten."""
        known, offset = self._meta("log_inode"), int(self._meta("log_offset") or 0)
        if known is None:
            return 0  # a new index
        for position, stat in enumerate(stats):
            if stat is not None and str(stat.st_ino) == known and stat.st_size >= offset:
                return position
        return None

    def _read_file(self, path: Path, inode: int) -> bool:
        """Take in the whole lines of the file; False if `path` is no longer that file."""
        try:
            log = open(path, "rb")  # noqa: SIM115 (closed below; opening apart tells a roll-over)
        except FileNotFoundError:
            return False  # rolled over while we looked
        with log:
            if os.fstat(log.fileno()).st_ino != inode:
                return False  # rolled over, and a new log begun in its place
            if self._meta("log_inode") != str(inode):  # moving on to the next file
                self._set_meta("log_inode", str(inode))
                self._set_meta("log_offset", "0")
            while not self._apply_chunk(log):
                pass
        return True

    def _follow_swapped_file(self) -> None:
        """Reopen the index when another process swapped a rebuilt file in."""
        if self.path is not None and inode_of(self.path) != self._opened:
            self._db.close()
            self._db = connect(self.path)
            self._opened = inode_of(self.path)
            self._synced_to = None

    @contextmanager
    def _transaction(self) -> Iterator[None]:
        """A write transaction; IMMEDIATE, so that one process at a time catches up."""
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    def _apply_chunk(self, log: BinaryIO) -> bool:
        """Apply the next chunk of whole lines; True when the file holds no more of them."""
        offset = int(self._meta("log_offset") or 0)
        log.seek(offset)
        data = log.read(_CHUNK)
        whole = data.rfind(b"\n") + 1  # a line still being written is taken next time
        contents = parse_log(data[:whole])
        self._apply(contents.events)
        self._take_host_events(contents.host_events)
        if contents.skipped:
            self._set_meta("skipped", str(self.skipped_lines + len(contents.skipped)))
        self._set_meta("log_offset", str(offset + whole))
        return len(data) < _CHUNK or whole == 0

    # ---- taking in events -----------------------------------------------------------------

    def add_all(self, events: Iterable[RunEvent]) -> None:
        with self._lock, self._transaction():
            self._apply(events)

    def _apply(self, events: Iterable[RunEvent]) -> None:
        """Take in events, in log order, with one write per run and per job touched."""
        latest: dict[tuple[str, int], RunEvent] = {}
        jobs: dict[str, AlertFacts] = {}
        seen = int(self._meta("events_seen") or 0)
        for event in events:
            seen += 1
            if event.event is EventType.PING:
                self._db.execute(
                    "INSERT INTO last_pings VALUES (?, ?) "
                    "ON CONFLICT (job) DO UPDATE SET event = excluded.event",
                    (event.job, json.dumps(event_to_json(event))),
                )
                continue
            state = jobs.get(event.job) or jobs.setdefault(event.job, self.alert_facts(event.job))
            when = event.ended_at or event.started_at
            if when is not None:
                state.last_activity = max(
                    state.last_activity or "", when.astimezone(UTC).isoformat()
                )
            if event.event is EventType.ALERT:
                state.take_alert(event, seen)
                continue
            if event.event is EventType.FINISHED and event.status is RunStatus.SUCCESS:
                state.success_seen = seen
            result = final_result(event)
            if result is not None:
                self._count_outcome(event, result)
            latest[(event.job, micros(event.logical_time))] = event
        self._db.executemany(
            "INSERT OR REPLACE INTO runs VALUES (?, ?, ?, ?, ?, ?)",
            [
                (
                    job,
                    at,
                    event.status.value,
                    micros(event_time(event)),
                    compact(event),
                    tries_left(event),
                )
                for (job, at), event in latest.items()
            ],
        )
        self._db.executemany(
            "INSERT OR REPLACE INTO jobs VALUES (?, ?, ?, ?, ?, ?)",
            [
                (
                    job,
                    state.failure_alerted_at,
                    state.failure_alert_seen,
                    state.recovery_alert_seen,
                    state.success_seen,
                    state.last_activity,
                )
                for job, state in jobs.items()
            ],
        )
        self._set_meta("events_seen", str(seen))

    def _count_outcome(self, event: RunEvent, result: RunStatus) -> None:
        self._db.execute(
            "INSERT INTO outcomes VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (job, result) DO UPDATE "
            "SET count = count + excluded.count, last_ended = excluded.last_ended, "
            "last_duration = excluded.last_duration, last_exit = excluded.last_exit",
            (
                event.job,
                result.value,
                max(1, event.missed_ticks) if result is RunStatus.MISSED else 1,
                micros(event_time(event)),
                event.duration_s,
                event.exit_code,
            ),
        )

    def _count_outcomes_once(self) -> None:
        """An index made before outcomes were counted starts their counts from the runs it
        holds (once: it then counts each run as it ends)."""
        if self._meta("outcomes_counted") is not None:
            return
        with self._lock, self._transaction():
            if self._meta("outcomes_counted") is not None:
                return  # another process got here first
            finals = ", ".join(f"'{status.value}'" for status in FINAL_RESULTS)
            groups = self._db.execute(
                "SELECT job, status, count(*) FROM runs "
                f"WHERE tries_left = 0 AND status IN ({finals}) GROUP BY job, status"
            ).fetchall()
            for job, status, count in groups:
                row = self._db.execute(
                    f"SELECT {ROW} FROM runs WHERE job = ? AND status = ? ORDER BY at DESC LIMIT 1",
                    (job, status),
                ).fetchone()
                newest = expand(row)
                self._db.execute(
                    "INSERT OR REPLACE INTO outcomes VALUES (?, ?, ?, ?, ?, ?)",
                    (
                        job,
                        status,
                        count,
                        micros(event_time(newest)),
                        newest.duration_s,
                        newest.exit_code,
                    ),
                )
            self._set_meta("outcomes_counted", "1")

    def _take_host_events(self, events: Iterable[HostEvent]) -> None:
        """Of the events about no run, the index keeps only the newest clock set back."""
        clocks = [event for event in events if isinstance(event, ClockSetBack)]
        if clocks:
            self._set_meta("clock_set_back", json.dumps(line_to_json(clocks[-1])))

    # ---- a question the log itself answers ----------------------------------------------------

    def latest_in_log(self, key: RunKey, log_files: Callable[[], list[Path]]) -> RunEvent | None:
        """The last recorded event of this run as the log says now, like `sync()` then
        `latest()`, but without writing to the index: its answer, then whatever was appended
        since it last took in the log, read from the log itself. Every run asks this once
        under its locks, when the log has grown by a few lines (its own); a roll-over or a
        long unread tail falls back to a sync."""
        with self._lock:
            self._follow_swapped_file()
            self._db.execute("BEGIN")  # one snapshot: the answer and how far it reaches
            try:
                inode, offset = self._meta("log_inode"), int(self._meta("log_offset") or 0)
                latest = self.latest(key)
            finally:
                self._db.execute("COMMIT")
        tail = unread_tail(log_files()[-1], inode, offset, _TAIL_BYTES)
        if tail is None:
            self.sync(log_files)
            return self.latest(key)
        # Only the lines that name the job are decoded (written as Store.append writes them).
        named = b'"job":' + json.dumps(key.job, ensure_ascii=False).encode()
        lines = [line for line in tail.splitlines(keepends=True) if named in line]
        for event in parse_log(b"".join(lines)).events:
            if (
                event.job == key.job
                and event.logical_time == key.logical_time
                and event.event not in NOT_ABOUT_A_RUN
            ):
                latest = event
        return latest

    def note_first_seen(self, kind: str, names: Iterable[str], now: datetime) -> None:
        """Remember when a decision first found each job or asset (`kind`) in the jobs file,
        and forget those it no longer holds (added again, they are new again). Not derived
        from the log: a rebuilt index without a snapshot starts counting again."""
        wanted = set(names)
        with self._lock:
            known = dict(self._all("SELECT name, since FROM first_seen WHERE kind = ?", (kind,)))
            if known.keys() == wanted:
                return
            with self._transaction():
                self._db.executemany(
                    "INSERT OR IGNORE INTO first_seen VALUES (?, ?, ?)",
                    [(kind, name, micros(now)) for name in wanted - known.keys()],
                )
                self._db.executemany(
                    "DELETE FROM first_seen WHERE kind = ? AND name = ?",
                    [(kind, name) for name in known.keys() - wanted],
                )

    # ---- retention and snapshots --------------------------------------------------------------

    def forget_older_than(self, cutoff: datetime) -> int:
        """Retention: drop the runs whose latest event is older than `cutoff`, but never what
        the planner, `status` and alerts still need: each job's 12 newest runs, every run
        since its newest success (the failing streak), and runs unfinished or owed a try.
        Returns how many runs went."""
        limit = micros(cutoff)
        forgotten = 0
        with self._lock, self._transaction():
            for (job,) in self._db.execute("SELECT job FROM jobs").fetchall():
                newest = self._db.execute(
                    "SELECT at FROM runs WHERE job = ? ORDER BY at DESC LIMIT 1 OFFSET ?",
                    (job, KEEP_NEWEST - 1),
                ).fetchone()
                success = self._db.execute(
                    "SELECT at FROM runs WHERE job = ? AND status = 'success' "
                    "ORDER BY at DESC LIMIT 1",
                    (job,),
                ).fetchone()
                if newest is None or success is None:
                    continue  # fewer runs than the strip shows, or all of them one streak
                # The newest success stays too: it is where the streak count stops.
                below = min(newest[0], success[0])
                which = (
                    "FROM runs WHERE job = ? AND at < ? AND ended < ? AND tries_left = 0"
                    f" AND status NOT IN ({UNFINISHED_SQL})"
                )
                (through,) = self._db.execute(f"SELECT max(at) {which}", (job, below, limit))
                if through[0] is None:
                    continue
                self._db.execute(  # what a backfill must not run again unasked
                    "INSERT INTO forgotten VALUES (?, ?) ON CONFLICT (job) DO UPDATE "
                    "SET through = max(through, excluded.through)",
                    (job, through[0]),
                )
                forgotten += self._db.execute(f"DELETE {which}", (job, below, limit)).rowcount
        if forgotten:
            self._give_back_space()
        return forgotten

    def _give_back_space(self) -> None:
        """Return the pages forgetting freed to the disk, and empty the write-ahead log (as
        far as no reader holds it: then at a later pass)."""
        if self.path is None:
            return
        with self._lock:
            self._db.executescript("PRAGMA incremental_vacuum;")  # steps until all are freed
            self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()

    def snapshot(self) -> None:
        """Write what the index holds to SNAPSHOT_NAME beside it, replacing the old one at
        once (durable before it is in place): from it and the log files from where it stopped
        reading, the index can always be built again, whatever log retention deleted."""
        assert self.path is not None
        final = self.path.with_name(SNAPSHOT_NAME)
        aside = final.with_name(f"{final.name}.new-{os.getpid()}-{threading.get_ident()}")
        aside.unlink(missing_ok=True)
        try:
            with self._lock:
                self._db.execute("VACUUM INTO ?", (str(aside),))
            descriptor = os.open(aside, os.O_RDONLY)
            try:
                os.fchmod(descriptor, 0o600)
                os.fsync(descriptor)
            finally:
                os.close(descriptor)
            os.replace(aside, final)
        except BaseException:
            aside.unlink(missing_ok=True)  # a full disk, say: no half copy is left behind
            raise
        sync_directory(final.parent)

    def close(self) -> None:
        with self._lock:
            self._db.close()

    # ---- plumbing -----------------------------------------------------------------------------

    def _set_meta(self, key: str, value: str) -> None:
        self._db.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, value))

    def _reset(self) -> None:
        for table in ("runs", "jobs", "meta", "outcomes"):
            self._db.execute(f"DELETE FROM {table}")
        self._set_meta("schema", SCHEMA_VERSION)
        self._set_meta("outcomes_counted", "1")


def connect(path: Path | None) -> sqlite3.Connection:
    if path is not None:  # private, like the log; never a link (SQLite would follow it)
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | NO_LINKS, 0o600))
    db = sqlite3.connect(
        ":memory:" if path is None else str(path),
        timeout=60,
        isolation_level=None,
        check_same_thread=False,
    )
    if path is not None:
        # Pages freed by retention can go back to the disk (new index files only).
        db.execute("PRAGMA auto_vacuum = INCREMENTAL")
        use_wal(db)  # readers never wait for the one writer
        db.execute("PRAGMA synchronous = NORMAL")  # derived data: a lost tail is re-read
    db.executescript(_SCHEMA)
    db.execute("INSERT OR IGNORE INTO meta VALUES ('schema', ?)", (SCHEMA_VERSION,))
    return db
