"""Pool slots: at most `slots` runs of a `[pools.NAME]` at once, across every cronflow
process of the state directory (one-shot ticks, the daemon, backfills, `run --job`).

A slot is one byte of `locks/NAME@pool.lock`, locked the way a run's lock is (locks.py):
with an open file description lock on a read-only descriptor that the run's processes
inherit. So a slot stays taken while the job's processes live, even after its cronflow was
killed, and is free the moment the last of them ends: never counted twice, never leaked.
Who holds a slot is written beside it (`NAME@pool.slot-I`: the run, for `status`), read only
while the slot's byte is locked.

Runs that find too few slots free wait in line: each has a file in `NAME@pool.waiting/`,
named so that the line sorts by (logical time, highest pool_priority, arrival), and held
with flock while it waits (taken before the file joins the line by a rename). Only the first live waiter takes slots; a waiter whose process
died leaves an unlocked file, removed by whoever finds it. A run that finds no line and
enough slots free takes them at once.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import struct
import threading
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

from cronflow.pools import PoolState
from cronflow.state.files import NO_LINKS, private_dir
from cronflow.state.locks import FLOCK_FORMAT, lock_byte, open_current

POOL_SUFFIX = "@pool"
_PRIORITY_BIAS = 10**9  # pool_priority from -10**9 to 10**9: higher sorts first


class PoolSlots:
    """The pools of one state directory (their files live in state_dir/locks)."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def take(self, pool: str, slots: int, count: int, holder: str) -> list[int] | None:
        """Descriptors each holding one of the pool's `slots` slots, `count` of them, with
        `holder` written as who holds them; None (taking none) when fewer are free."""
        path = self._lock_path(pool)
        held: list[tuple[int, int]] = []
        for slot in range(slots):
            descriptor = lock_byte(path, slot)
            if descriptor is not None:
                held.append((slot, descriptor))
                if len(held) == count:
                    break
        if len(held) < count:
            for _, descriptor in held:
                os.close(descriptor)
            return None
        for slot, _ in held:
            _write_small(self._holder_path(pool, slot), holder)
        return [descriptor for _, descriptor in held]

    def state(self, pool: str, slots: int) -> PoolState:
        """Who holds the pool's slots and who waits for them, now."""
        path = self._lock_path(pool)
        holders = []
        if path.exists():
            descriptor = os.open(path, os.O_RDWR | NO_LINKS)
            try:
                for slot in range(slots):
                    if _is_locked(descriptor, slot):
                        holders.append(_read_small(self._holder_path(pool, slot)) or "a run")
            finally:
                os.close(descriptor)
        waiting = [_read_small(self._line(pool) / name) for name in self._live_waiters(pool)]
        return PoolState(pool, slots, tuple(holders), tuple(w or "a run" for w in waiting))

    @contextlib.contextmanager
    def in_line(
        self, pool: str, logical_time: datetime, priority: int, holder: str
    ) -> Iterator[str]:
        """Wait in the pool's line for the block; yields this waiter's name in it."""
        line = self._line(pool)
        private_dir(line)
        order = int(logical_time.timestamp() * 1000)
        rank = _PRIORITY_BIAS - max(-_PRIORITY_BIAS, min(priority, _PRIORITY_BIAS))
        name = f"{order:015d}.{rank:010d}.{time.time_ns():020d}.{os.getpid()}"
        # Locked before it joins the line under its name (a rename): a file seen in the line
        # and not locked is a dead waiter's, and is removed.
        joining = line / f".{name}.{threading.get_ident()}"
        descriptor = os.open(joining, os.O_RDWR | os.O_CREAT | os.O_EXCL | NO_LINKS, 0o600)
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX)
            os.write(descriptor, holder.encode())
            os.rename(joining, line / name)
            yield name
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(line / name)
            os.close(descriptor)

    def first_in_line(self, pool: str) -> str | None:
        """The name of the first live waiter of the pool (None: nobody waits)."""
        return next(iter(self._live_waiters(pool)), None)

    def _live_waiters(self, pool: str) -> list[str]:
        """The waiters whose process still waits, in line order; dead ones are removed."""
        line = self._line(pool)
        try:
            names = sorted(name for name in os.listdir(line) if not name.startswith("."))
        except FileNotFoundError:
            return []
        live = []
        for name in names:
            try:
                descriptor = os.open(line / name, os.O_RDONLY | NO_LINKS)
            except FileNotFoundError:
                continue  # its waiter is done
            try:
                fcntl.flock(descriptor, fcntl.LOCK_SH | fcntl.LOCK_NB)
            except BlockingIOError:
                live.append(name)  # its waiter holds it
            else:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(line / name)  # its waiter died without removing it
            finally:
                os.close(descriptor)
        return live

    def _lock_path(self, pool: str) -> Path:
        return self.directory / f"{pool}{POOL_SUFFIX}.lock"

    def _holder_path(self, pool: str, slot: int) -> Path:
        return self.directory / f"{pool}{POOL_SUFFIX}.slot-{slot}"

    def _line(self, pool: str) -> Path:
        return self.directory / f"{pool}{POOL_SUFFIX}.waiting"


def _is_locked(descriptor: int, slot: int) -> bool:
    """Whether anybody holds a lock on the slot's byte (F_OFD_GETLK: asks, takes nothing)."""
    asked = struct.pack(FLOCK_FORMAT, fcntl.F_WRLCK, os.SEEK_SET, slot, 1, 0)
    answer = fcntl.fcntl(descriptor, fcntl.F_OFD_GETLK, asked)
    kind: int = struct.unpack(FLOCK_FORMAT, answer)[0]
    return kind != fcntl.F_UNLCK


def _write_small(path: Path, text: str) -> None:
    descriptor = open_current(path, os.O_WRONLY)
    try:
        os.ftruncate(descriptor, 0)
        os.write(descriptor, text.encode()[:512])
    finally:
        os.close(descriptor)


def _read_small(path: Path) -> str:
    try:
        descriptor = os.open(path, os.O_RDONLY | NO_LINKS)
    except OSError as error:
        if error.errno in (errno.ENOENT, errno.ELOOP):
            return ""
        raise
    try:
        return os.read(descriptor, 512).decode(errors="replace")
    finally:
        os.close(descriptor)
