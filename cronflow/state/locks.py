"""File locks in the state directory, so two invocations never run one job (or run) at once.

Each lock is a plain flock() on a descriptor of our own, opened for each hold: the kernel
drops it when its holder exits or is killed, so a lock is never stale and never needs
cleaning up, and another thread of this process sees it as busy, as another process does.

Names: a job's own name (held while it runs, for `overlap = skip | queue`) and `@plan` (held
while an invocation decides what is due), among others starting with "@". Job names cannot
contain "@", so these never clash.

A run's lock (held while it runs, whatever `overlap` says) is not a file of its own: it is
one byte of the job's file `JOB@runs.lock`, at an offset given by the run's logical time,
locked with an open file description lock (Linux's F_OFD_SETLK: owned by the descriptor, not
the process, and shared by whoever inherits it). So a run costs no new file (creating one
was a sixth of a run's cost, and a per-minute job left 43,000 of them), and the job's
processes inherit the lock, as with flock(1): the run stays locked while any of them lives,
even after cronflow itself was killed; releasing it only closes our copy. The descriptor
handed to the job is read-only, so it cannot write into the file. (filelock's FileLock,
which cronflow used before, cannot hand a lock on, and cost 12 ms of import, 5.6 MiB of
memory and 0.25 ms per hold for what is here a few system calls.)
"""

from __future__ import annotations

import errno
import fcntl
import os
import struct
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from cronflow.errors import StoreError
from cronflow.model import RunKey
from cronflow.state.files import NO_LINKS, private_dir


def run_lock_name(key: RunKey) -> str:
    """How errors name a run's lock."""
    return f"{key.job}@{key.logical_time:%Y%m%dT%H%M%SZ}"


RUN_LOCKS_SUFFIX = "@runs.lock"  # JOB@runs.lock: one byte per logical time (see the docstring)
_SECONDS_BIAS = 2**36  # keeps the byte of any logical time since the year 1 at a positive offset
FLOCK_FORMAT = "hhqqi4x"  # struct flock: l_type, l_whence, l_start, l_len, l_pid (0 for OFD locks)


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
        """Hold one run's lock for the block, never waiting; yields the locked read-only
        descriptor (to hand to the job's processes), or None when the run is locked
        elsewhere: by another invocation running it, or by the processes of a run whose
        cronflow died."""
        path = self.directory / f"{key.job}{RUN_LOCKS_SUFFIX}"
        offset = int(key.logical_time.timestamp()) + _SECONDS_BIAS
        try:
            descriptor = lock_byte(path, offset)
        except OSError as error:
            raise self._error(run_lock_name(key), error) from None
        try:
            yield descriptor
        finally:
            if descriptor is not None:
                os.close(descriptor)  # never F_UNLCK: whoever inherited it keeps it locked

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
        descriptor = open_current(path, os.O_RDONLY)  # flock needs no more
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX if wait else fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(descriptor)
            return None
        except BaseException:
            os.close(descriptor)
            raise
        if _is_current(path, descriptor):
            return descriptor
        os.close(descriptor)


def lock_byte(path: Path, offset: int) -> int | None:
    """A read-only descriptor of the file now at `path` holding a read lock on byte
    `offset`, that nobody else held any lock on; None if somebody does.

    Exclusive, although what is handed on is a read lock (a write lock needs a writable
    descriptor, and a job must not write into the file): the byte is first taken with a
    write lock through a read-write descriptor of our own, which excludes every other lock
    on it; that lock becomes a read lock, the read-only descriptor takes a read lock beside
    it, and the writable one is closed. Whoever tries meanwhile asks for a write lock too,
    and finds the byte busy all along."""
    while True:
        claim = open_current(path, os.O_RDWR)
        try:
            if not _ofd_lock(claim, fcntl.F_WRLCK, offset):
                return None
            if not _is_current(path, claim):
                continue  # removed or replaced meanwhile: nobody else looks at this one
            held = os.open(path, os.O_RDONLY | NO_LINKS)
            try:
                if os.fstat(held).st_ino != os.fstat(claim).st_ino:
                    os.close(held)
                    continue
                _ofd_lock(claim, fcntl.F_RDLCK, offset)  # a conversion: never refused
                if not _ofd_lock(held, fcntl.F_RDLCK, offset):
                    raise OSError(errno.EDEADLK, "a run lock could not be handed on")
            except BaseException:
                os.close(held)
                raise
            return held
        finally:
            os.close(claim)


def open_current(path: Path, mode: int) -> int:
    while True:
        try:
            return os.open(path, mode | os.O_CREAT | NO_LINKS, 0o600)
        except FileNotFoundError:  # the lock directory was removed: make it again
            private_dir(path.parent)


def _is_current(path: Path, descriptor: int) -> bool:
    try:
        return os.stat(path).st_ino == os.fstat(descriptor).st_ino
    except FileNotFoundError:
        return False


def _ofd_lock(descriptor: int, kind: int, offset: int) -> bool:
    """Lock one byte with an open file description lock, never waiting; False if busy."""
    try:
        fcntl.fcntl(
            descriptor,
            fcntl.F_OFD_SETLK,
            struct.pack(FLOCK_FORMAT, kind, os.SEEK_SET, offset, 1, 0),
        )
    except OSError as error:
        if error.errno in (errno.EAGAIN, errno.EACCES):
            return False
        raise
    return True
