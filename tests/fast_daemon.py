"""A real daemon process on a fast clock, for tests that need the process itself (PID 1 in a
PID namespace, a child subreaper): `python -m tests.fast_daemon JOBS_TOML MINUTES`.

It is `cronflow daemon` but for the clock: each sleep lasts 0.1 s of real time and moves the
clock to the next wake-up, for MINUTES wake-ups; then it waits as the real one does (for
SIGTERM). Time starts at 2026-01-14 06:00:30Z.
"""

from __future__ import annotations

import sys
import threading
from datetime import UTC, datetime
from pathlib import Path

from cronflow.act.daemon import Daemon
from cronflow.act.runner import ShellRunner

START = datetime(2026, 1, 14, 6, 0, 30, tzinfo=UTC)


class FastClock:
    def __init__(self, start: datetime, wake_ups: int) -> None:
        self._now = start
        self._left = wake_ups

    def now(self) -> datetime:
        return self._now

    def sleep_until(self, when: datetime, wake: threading.Event) -> None:
        if self._left == 0:
            wake.wait()
            return
        self._left -= 1
        wake.wait(0.1)
        self._now = max(self._now, when)


def main(jobs: str, minutes: str) -> None:
    daemon = Daemon(
        jobs_path=Path(jobs).absolute(),
        clock=FastClock(START, int(minutes)),
        runner=ShellRunner(),
        log=lambda line: print(line, file=sys.stderr, flush=True),
    )
    daemon.take_over_process()
    daemon.serve()


if __name__ == "__main__":
    main(*sys.argv[1:])
