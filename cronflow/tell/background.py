"""Deliveries in the background (pings, the heartbeat, alerts), each recorded exactly once.

Each delivery has a bound of its own on the whole exchange (see ping_requests and
apprise_sender.AppriseNotifier). What this adds is stopping: a stopping cronflow gives the deliveries
in flight STOP_GRACE more, then abandons the rest and records each as abandoned, instead
of waiting out every bound (the workers are daemon threads, so nothing holds the process
once it is done). A delivery is recorded once, by whichever comes first: its worker when
the exchange ends, or the stop that abandons it (Ticket.claim decides).
"""

from __future__ import annotations

import contextlib
import queue
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any

STOP_GRACE = 3.0  # seconds a stopping cronflow still gives the deliveries in flight
_POLL = 0.1  # seconds between looks at the stop request while waiting


class Ticket:
    """One delivery: `done` ends when it was recorded, or abandoned (or had nothing to say)."""

    def __init__(
        self, work: Callable[[Ticket], object], abandoned: Callable[[bool], object]
    ) -> None:
        self.work = work  # sends, then records what happened if `claim()` says so
        self.abandoned = abandoned  # records the abandoning; given True once it had started
        self.done: Future[None] = Future()
        self._guard = threading.Lock()
        self._started = False
        self._claimed = False

    def claim(self) -> bool:
        """True once: to whoever records this delivery (its worker, or the stop)."""
        with self._guard:
            claimed, self._claimed = self._claimed, True
            return not claimed

    def start(self) -> bool:
        """The worker takes it up: False if the stop abandoned it first."""
        with self._guard:
            self._started = not self._claimed
            return self._started

    def abandon(self) -> None:
        """cronflow stops: record it as abandoned, unless it was recorded already."""
        with self._guard:
            started = self._started
        if self.claim():
            _never_raising(self.abandoned, started)
        _finish(self.done)


class Background:
    """A few daemon worker threads that run tickets in the order they were handed in."""

    def __init__(self, name: str, workers: int = 4) -> None:
        self.name = name
        self.workers = workers
        self._queue: queue.SimpleQueue[Ticket] = queue.SimpleQueue()
        self._threads: list[threading.Thread] = []
        self._pending: list[Ticket] = []
        self._guard = threading.Lock()

    def submit(
        self, work: Callable[[Ticket], object], abandoned: Callable[[bool], object]
    ) -> Ticket:
        ticket = Ticket(work, abandoned)
        with self._guard:
            self._pending = [*(t for t in self._pending if not t.done.done()), ticket]
            if len(self._threads) < self.workers:
                thread = threading.Thread(
                    target=self._work, name=f"{self.name}-{len(self._threads)}", daemon=True
                )
                self._threads.append(thread)
                thread.start()
        self._queue.put(ticket)
        return ticket

    def idle(self) -> bool:
        with self._guard:
            return all(ticket.done.done() for ticket in self._pending)

    def wait(self, stopping: threading.Event | None = None) -> None:
        """Wait for every delivery handed in so far to be recorded. Once `stopping` is set
        (now or while waiting), wait STOP_GRACE more at most, then abandon the rest."""
        with self._guard:
            pending, self._pending = self._pending, []
        deadline: float | None = None
        for ticket in pending:
            while deadline is None or time.monotonic() < deadline:
                if stopping is None:
                    ticket.done.result()
                    break
                if deadline is None and stopping.is_set():
                    deadline = time.monotonic() + STOP_GRACE
                left = _POLL if deadline is None else max(0.0, deadline - time.monotonic())
                with contextlib.suppress(TimeoutError):
                    ticket.done.result(timeout=min(left, _POLL))
                    break
            if not ticket.done.done():
                ticket.abandon()

    def _work(self) -> None:
        while True:
            ticket = self._queue.get()
            if ticket.start():
                _never_raising(ticket.work, ticket)
            _finish(ticket.done)


def _finish(done: Future[None]) -> None:
    with contextlib.suppress(Exception):  # InvalidStateError: it was finished already
        done.set_result(None)


def _never_raising(task: Callable[[Any], object], argument: Any) -> None:
    """A delivery must never take cronflow down with it (a full disk while recording, say)."""
    with contextlib.suppress(Exception):
        task(argument)
