"""The index's files: opening SQLite as the index wants it (WAL, patient), and the file
facts the index follows the log by (inode, size, the unread tail)."""

from __future__ import annotations

import os
import sqlite3
import time
from pathlib import Path


def unread_tail(log: Path, inode: str | None, offset: int, limit: int) -> bytes | None:
    """The whole lines of `log` after `offset`, if it is the file of that inode (the index
    read it to there) and they are few; else None."""
    try:
        descriptor = os.open(log, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        return None
    try:
        stat = os.fstat(descriptor)
        if str(stat.st_ino) != inode or not offset <= stat.st_size <= offset + limit:
            return None
        data = os.pread(descriptor, stat.st_size - offset, offset)
    finally:
        os.close(descriptor)
    return data[: data.rfind(b"\n") + 1]  # a line still being written is not there yet


def use_wal(db: sqlite3.Connection, patience: float = 60) -> None:
    """Switch to WAL, waiting while another process does the same: SQLite answers "locked"
    at once there, without its busy handler."""
    deadline = time.monotonic() + patience
    while True:
        try:
            db.execute("PRAGMA journal_mode = WAL")
            return
        except sqlite3.OperationalError as error:
            if "locked" not in str(error) or time.monotonic() > deadline:
                raise
            time.sleep(0.01)


def sync_directory(folder: Path) -> None:
    descriptor = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def remove_index(path: Path) -> None:
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)


def stat_or_none(path: Path) -> os.stat_result | None:
    try:
        return path.stat()
    except FileNotFoundError:
        return None


def extent_of(path: Path) -> tuple[str, int] | None:
    """(inode, size) of a log file, as the index records how far it read it."""
    stat = stat_or_none(path)
    return None if stat is None else (str(stat.st_ino), stat.st_size)


def inode_of(path: Path) -> int | None:
    stat = stat_or_none(path)
    return None if stat is None else stat.st_ino
