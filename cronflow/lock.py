"""File locks in the state directory, so two invocations never run one job (or run) at once.

The locks are flock()s (filelock.FileLock): the kernel drops them when their holder exits or
is killed, so a lock is never stale and never needs cleaning up. flock belongs to an open
file, so this process keeps exactly one FileLock object per path. A lock is held per
thread: another thread of this process sees it as busy, like another process does.

Names: a job's own name (held while it runs, for `overlap = skip | queue`), `JOB@TICK` for
one run (held while it runs, for `overlap = allow`), and `@plan` (held while an invocation
decides what is due). Job names cannot contain "@", so these never clash.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from filelock import FileLock, Timeout

from cronflow.model import RunKey

PLAN_LOCK = "@plan"


def run_lock_name(key: RunKey) -> str:
    return f"{key.job}@{key.logical_time:%Y%m%dT%H%M%SZ}"


class Locks:
    """Named locks, one file each, in one directory (state_dir/locks)."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._locks: dict[str, FileLock] = {}
        self._guard = threading.Lock()

    @contextmanager
    def hold(self, name: str, wait: bool) -> Iterator[bool]:
        """Hold the lock for the block; yields False if `wait` is False and it is busy."""
        lock = self._lock_for(name)
        try:
            lock.acquire(timeout=-1 if wait else 0, poll_interval=0.05)
        except Timeout:
            yield False
            return
        try:
            yield True
        finally:
            lock.release()

    def is_free(self, name: str) -> bool:
        """True when nobody (no process, no other thread) holds the lock right now."""
        with self.hold(name, wait=False) as acquired:
            return acquired

    def _lock_for(self, name: str) -> FileLock:
        with self._guard:
            if name not in self._locks:
                self._locks[name] = FileLock(self.directory / f"{name}.lock", mode=0o600)
            return self._locks[name]
