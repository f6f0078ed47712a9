"""Stand-ins for cronflow's boundaries (never for its core)."""

from __future__ import annotations

import threading
from datetime import datetime, timedelta


class FakeClock:
    """A clock that only moves when told to, and records every wait asked of it."""

    def __init__(self, start: datetime) -> None:
        assert start.tzinfo is not None
        self._now = start
        self._lock = threading.Lock()
        self.sleeps: list[float] = []

    def now(self) -> datetime:
        with self._lock:
            return self._now

    def sleep(self, seconds: float) -> None:
        with self._lock:
            self.sleeps.append(seconds)
            self._now += timedelta(seconds=seconds)

    def advance(self, by: timedelta) -> None:
        with self._lock:
            self._now += by
