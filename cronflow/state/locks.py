"""File locks in the state directory, so two invocations never run one job (or run) at once.

Each lock is a plain flock() on a descriptor of our own, opened for each hold: the kernel
drops it when its holder exits or is killed, so a lock is never stale and never needs
cleaning up, and another thread of this process sees it as busy, as another process does.

Names: a job's own name (held while it runs, for `overlap = skip | queue`), `JOB@TICK` for
one run (held while it runs, whatever `overlap` says), and `@plan` (held while an invocation
decides what is due). Job names cannot contain "@", so these never clash.

A run's lock is handed to the job's processes, which inherit it as with flock(1), so the run stays locked
while any of them lives, even after cronflow itself was killed; releasing it only closes our
copy. (filelock's FileLock, which cronflow used before, cannot hand a lock on, and cost 12 ms
of import, 5.6 MiB of memory and 0.25 ms per hold for what is here one system call.)
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from cronflow.errors import StoreError
from cronflow.model import RunKey
from cronflow.state.files import NO_LINKS, private_dir


def run_lock_name(key: RunKey) -> str:
    return f"{key.job}@{key.logical_time:%Y%m%dT%H%M%SZ}"


class Locks:
    """Named locks, one file each, in one directory (state_dir/locks)."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    @contextmanager
    def hold(self, name: str, wait: bool) -> Iterator[bool]:
        """Hold a lock (`@plan`, the daemon's, a job's own) for the block; yields False if
        `wait` is False and another invocation (or thread) holds it."""
        try:
            descriptor = _flock_current(self.directory / f"{name}.lock", wait=wait)
        except OSError as error:
            raise self._error(name, error) from None
        try:
            yield descriptor is not None
        finally:
            if descriptor is not None:
                os.close(descriptor)

    @contextmanager
    def hold_run(self, key: RunKey) -> Iterator[int | None]:
        """Hold one run's lock for the block, never waiting; yields the locked descriptor (to
        hand to the job's processes), or None when the run is locked elsewhere: by another
        invocation running it, or by the processes of a run whose cronflow died."""
        name = run_lock_name(key)
        try:
            descriptor = _flock_current(self.directory / f"{name}.lock", wait=False)
        except OSError as error:
            raise self._error(name, error) from None
        try:
            yield descriptor
        finally:
            if descriptor is not None:
                os.close(descriptor)  # never LOCK_UN: whoever inherited it keeps it locked

    def _error(self, name: str, error: OSError) -> StoreError:
        return StoreError(
            f"cannot take the lock {name!r} in {self.directory}: "
            f"{error.strerror}. cronflow needs to write its state directory; "
            "fix its permissions or free disk space, then run again"
        )

    def is_free(self, name: str) -> bool:
        """True when nobody (no process, no other thread) holds the lock right now."""
        with self.hold(name, wait=False) as acquired:
            return acquired


def _flock_current(path: Path, wait: bool) -> int | None:
    """A descriptor holding an exclusive flock on the file now at `path`; None if it is busy
    and `wait` is False (else it waits for it).

    Locking a file that was removed or replaced meanwhile would lock nothing anyone else
    looks at, so the lock is taken again on the current file."""
    while True:
        try:
            # Read-only (flock needs no more): a job that inherits it cannot write into it.
            descriptor = os.open(path, os.O_RDONLY | os.O_CREAT | NO_LINKS, 0o600)
        except FileNotFoundError:  # the lock directory was removed: make it again
            private_dir(path.parent)
            continue
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX if wait else fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(descriptor)
            return None
        except BaseException:
            os.close(descriptor)
            raise
        try:
            current = os.stat(path).st_ino == os.fstat(descriptor).st_ino
        except FileNotFoundError:
            current = False
        if current:
            return descriptor
        os.close(descriptor)
