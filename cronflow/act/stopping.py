"""Stopping gracefully, the one way cronflow stops (Ctrl-C or SIGTERM in a `cronflow run`,
`systemctl stop` of the daemon): nothing more starts, running jobs get shutdown_grace to
end, then they are stopped (their process groups get SIGTERM, and SIGKILL STOP_KILL_GRACE
later); a second request stops them at once. Every run is recorded (interrupted, if cut
short) by the executor that ran it."""

from __future__ import annotations

import threading
from collections.abc import Callable

from cronflow.act.runner import ProcessRunner
from cronflow.model import STOP_KILL_GRACE


class GracefulStop:
    """Stop requests for one runner. `request` is safe to call from a signal handler's
    thread: it sets an event and starts threads, and takes no lock of its own."""

    def __init__(
        self,
        runner: ProcessRunner,
        grace: float,
        say: Callable[[str], None],
        requested: threading.Event | None = None,
        again: str = "stop again",
    ) -> None:
        self.runner = runner
        self.grace = grace  # seconds; the daemon sets it again when the jobs file changes
        self.say = say
        self.requested = requested or threading.Event()  # set: start no more runs
        self.requests = 0
        self.again = again  # how a second request is made, as the user would say it
        self._timer: threading.Timer | None = None

    def request(self) -> None:
        """First call: start nothing more; stop the running jobs once the grace is over.
        Second call: stop them now."""
        self.requests += 1
        if self.requests == 1:
            self.requested.set()
            self._timer = threading.Timer(self.grace, self._stop_jobs, args=(False,))
            self._timer.daemon = True
            self._timer.start()
            self.say(
                f"stopping: nothing more starts; running jobs get {self.grace:g}s to end, "
                f"then are stopped ({self.again}: stop them now)"
            )
        else:
            self.cancel()
            threading.Thread(target=self._stop_jobs, args=(True,), daemon=True).start()

    def cancel(self) -> None:
        """Everything ended by itself: nothing is left to stop."""
        if self._timer is not None:
            self._timer.cancel()

    def _stop_jobs(self, at_once: bool) -> None:
        self.say("stopping the running jobs now" if at_once else "stopping the jobs still running")
        self.runner.interrupt(STOP_KILL_GRACE)
