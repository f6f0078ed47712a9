"""Reading a file cronflow is pointed at (the jobs file, an env_file, a crontab to import)
with bounds: only a regular file, and only up to a size no such file needs. A FIFO, a device
such as /dev/zero or a directory is refused before anything is read from it."""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path

MIB = 1024 * 1024


def read_regular(path: Path, limit: int) -> bytes:
    """The bytes of a regular file of at most `limit` bytes; else an OSError whose strerror
    says what is wrong (as every "cannot be read (...)" message shows it)."""
    descriptor = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    with open(descriptor, "rb") as file:
        if not stat.S_ISREG(os.fstat(descriptor).st_mode):
            raise OSError(errno.EINVAL, "not a regular file: a directory, a FIFO or a device")
        data = file.read(limit + 1)
    if len(data) > limit:
        raise OSError(errno.EFBIG, f"larger than {limit / MIB:g} MiB, far more than it needs")
    return data
