"""The clock: the one place cronflow asks what time it is, injected everywhere else."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from typing import Protocol

# A time cronflow recorded (a watermark, a try's end) is never ahead of the clock that wrote
# it. One ahead of now by more than this means the clock was set back (a small NTP step just
# delays the next decision a little).
CLOCK_TOLERANCE = timedelta(minutes=1)


class Clock(Protocol):
    def now(self) -> datetime:
        """The current instant, aware, in UTC."""
        ...

    def sleep_until(self, when: datetime, wake: threading.Event) -> None:
        """Wait until `when`, or less if `wake` is set (a stop or reload request)."""
        ...


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)

    def sleep_until(self, when: datetime, wake: threading.Event) -> None:
        # Event.wait uses a monotonic clock: a wall-clock jump neither cuts nor stretches it,
        # and the daemon wakes at least every minute to notice such jumps.
        wake.wait(timeout=max(0.0, (when - self.now()).total_seconds()))
