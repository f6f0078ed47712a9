"""Per-job file locks in the state directory, so two invocations never run one job at once.

The locks are flock()s (filelock.FileLock): the kernel drops them when their holder exits or
is killed, so a lock is never stale and never needs cleaning up. flock belongs to an open
file, so this process keeps exactly one FileLock object per path.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from filelock import FileLock, Timeout


class JobLocks:
    """The lock of each job, in one directory (state_dir/locks).

    A lock is held per thread: two runs of one job in the same invocation also take turns.
    """

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._locks: dict[str, FileLock] = {}
        self._guard = threading.Lock()

    @contextmanager
    def hold(self, job: str, wait: bool) -> Iterator[bool]:
        """Hold the job's lock for the block; yields False if `wait` is False and it is busy."""
        lock = self._lock_for(job)
        try:
            lock.acquire(timeout=-1 if wait else 0, poll_interval=0.05)
        except Timeout:
            yield False
            return
        try:
            yield True
        finally:
            lock.release()

    def is_held_elsewhere(self, job: str) -> bool:
        """True when another process (or thread) holds the job's lock right now."""
        with self.hold(job, wait=False) as acquired:
            return not acquired

    def _lock_for(self, job: str) -> FileLock:
        with self._guard:
            if job not in self._locks:
                path = self.directory / f"{job}.lock"
                self._locks[job] = FileLock(path, mode=0o600)
            return self._locks[job]
