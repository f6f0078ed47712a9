"""A run's output files (state_dir/output/JOB/<run>.<attempt>.{out,err}): how large they may
grow and how their tails are read."""

from __future__ import annotations

import os
from pathlib import Path

STDERR_TAIL_LINES = 20
STDERR_TAIL_BYTES = 4096
# Each output file is cut to this size after its attempt ends, keeping its head and tail.
OUTPUT_LIMIT_BYTES = 10 * 1024 * 1024


def cap_file(path: Path, limit: int) -> None:
    """Cut a file larger than `limit` to its first and last limit/2 bytes, marking the cut."""
    try:
        size = path.stat().st_size
        if size <= limit:
            return
        half = limit // 2
        with open(path, "r+b") as file:
            file.seek(size - half)
            tail = file.read(half)
            file.seek(half)
            file.write(f"\n[cronflow: {size - 2 * half} bytes cut here]\n".encode() + tail)
            file.truncate()
    except OSError:
        pass  # the output is a convenience; never fail a run because it could not be trimmed


def tail_of(path: Path, lines: int = STDERR_TAIL_LINES, limit: int = STDERR_TAIL_BYTES) -> str:
    """The last `lines` lines of a file, at most `limit` bytes, decoded leniently."""
    try:
        with open(path, "rb") as file:
            file.seek(0, os.SEEK_END)
            size = file.tell()
            file.seek(max(0, size - limit))
            data = file.read()
    except OSError:
        return ""
    text = data.decode("utf-8", errors="replace")
    return "\n".join(text.rstrip("\n").split("\n")[-lines:])
