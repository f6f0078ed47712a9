"""Small files of the state directory, written safely. Imports nothing heavy (the idle tick
uses it)."""

from __future__ import annotations

import os


def write_private(path: str, content: bytes) -> None:
    """Replace a small state file, readable by its owner only, whatever the umask."""
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
    with open(descriptor, "wb") as file:
        file.write(content)
