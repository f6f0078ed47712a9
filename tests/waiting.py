"""Waiting on a condition with a deadline: never on the wall clock."""

from __future__ import annotations

import time


def wait_for(condition, what: str, within: float = 30) -> None:
    """A handshake: poll `condition` until true, failing after `within` seconds."""
    deadline = time.monotonic() + within
    while not condition():
        assert time.monotonic() < deadline, f"no {what} within {within}s"
        time.sleep(0.01)
