"""A run's output files (state_dir/output/JOB/<run>.<attempt>.{out,err}): how large they may
grow and how their tails are read."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from cronflow.masking import mask_bytes
from cronflow.state.files import no_links

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
        with open(path, "r+b", opener=no_links) as file:
            file.seek(size - half)
            tail = file.read(half)
            file.seek(half)
            file.write(f"\n[cronflow: {size - 2 * half} bytes cut here]\n".encode() + tail)
            file.truncate()
    except OSError:
        pass  # the output is a convenience; never fail a run because it could not be trimmed


def finish(path: Path, limit: int, secrets: Sequence[str]) -> None:
    """What becomes of an attempt's output file once the attempt has ended, whoever settles
    it: cut to `limit`, then every secret masked (before any tail of it is taken)."""
    cap_file(path, limit)
    mask_file(path, secrets)


def mask_file(path: Path, secrets: Sequence[str]) -> None:
    """Replace every secret in an output file (already capped in size) by ***, in place."""
    if not secrets:
        return
    try:
        with open(path, "r+b", opener=no_links) as file:
            data = file.read()
            masked = mask_bytes(data, secrets)
            if masked != data:
                file.seek(0)
                file.write(masked)
                file.truncate()
    except OSError:
        pass  # as for capping: never fail a run over its captured output


def tail_bytes(path: Path, size: int, secrets: Sequence[str] = ()) -> bytes:
    """The last `size` bytes of a file ("" if it cannot be read), with `secrets` masked,
    also one the window's start would cut: it is read whole first, then masked."""
    longest = max((len(secret.encode()) for secret in secrets), default=0)
    try:
        with open(path, "rb", opener=no_links) as file:
            file.seek(max(0, os.fstat(file.fileno()).st_size - size - longest))
            data = file.read()
    except OSError:
        return b""
    return mask_bytes(data, secrets)[-size:] if size > 0 else b""


def tail_of(
    path: Path,
    lines: int = STDERR_TAIL_LINES,
    limit: int = STDERR_TAIL_BYTES,
    secrets: Sequence[str] = (),
) -> str:
    """The last `lines` lines of a file, at most `limit` bytes, decoded leniently, with
    `secrets` masked."""
    data = tail_bytes(path, limit, secrets)
    text = data.decode("utf-8", errors="replace")
    return "\n".join(text.rstrip("\n").split("\n")[-lines:])
