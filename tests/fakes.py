"""Stand-ins for cronflow's boundaries (never for its core)."""

from __future__ import annotations

import threading
from datetime import datetime, timedelta


class FakeClock:
    """A clock that only moves when told to, and records every wait asked of it.

    A sleep returns at once, with the clock moved to its end (unless `wake` is set).
    """

    def __init__(self, start: datetime) -> None:
        assert start.tzinfo is not None
        self._now = start
        self._lock = threading.Lock()
        self.sleeps: list[float] = []  # seconds of each wait
        self.wake_times: list[datetime] = []  # the instant each wait was until

    def now(self) -> datetime:
        with self._lock:
            return self._now

    def sleep_until(self, when: datetime, wake: threading.Event) -> None:
        with self._lock:
            self.sleeps.append((when - self._now).total_seconds())
            self.wake_times.append(when)
            if not wake.is_set():
                self._now = max(self._now, when)

    def advance(self, by: timedelta) -> None:
        with self._lock:
            self._now += by
