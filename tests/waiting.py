"""Waiting on a condition with a deadline: never on the wall clock."""

from __future__ import annotations

import time


def wait_for(condition, what: str, within: float = 120) -> None:
    """A handshake: poll `condition` until true, failing after `within` seconds. The
    deadline only bounds a failure (a pass returns as soon as the condition holds), so it
    is generous: a 2-core machine running the whole suite has taken 30 s for what takes 2."""
    deadline = time.monotonic() + within
    while not condition():
        assert time.monotonic() < deadline, f"no {what} within {within}s"
        time.sleep(0.01)
