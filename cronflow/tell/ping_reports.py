"""Pings about runs to each job's monitor (`ping_url`), and cronflow's own heartbeat.

The executor tells the Pinger when a try starts and when it ends; the Pinger decides what
to say (ping_requests.PingKind), sends it in the background and records each delivery as a `ping`
event in the log, the way alert deliveries are recorded. A ping never blocks a run and
never changes its outcome. Pings about one run go out in the order they were decided (a
fast job's end never overtakes its start), so the monitor pairs them right.

Retried tries: every try pings `start` (the monitor's "started but not finished" timer
then measures one try, which `timeout` bounds, not tries and backoff delays together), a
try that will be retried pings `log` (Healthchecks keeps its output without changing the
check's state), and only the run's final outcome pings success or failure.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from concurrent.futures import Future
from pathlib import Path

from cronflow.clock import Clock
from cronflow.decide.overdue import Overdue
from cronflow.decide.schedule import schedule_of
from cronflow.load import monitors
from cronflow.load.env_files import secrets_of_job
from cronflow.masking import redact
from cronflow.model import (
    AlertEvent,
    EventType,
    Job,
    JobFile,
    RunEvent,
    RunKey,
    RunKind,
    RunStatus,
    delivery_about,
)
from cronflow.records import RunRecords
from cronflow.state.outputs import tail_bytes
from cronflow.state.store import Store
from cronflow.tell import ping_requests
from cronflow.tell.background import Background, Ticket
from cronflow.tell.deliveries import DeliveryStatus

_RID_NAMESPACE = "6f1c2a57-3f0e-4c1b-9a53-63726f6e666c"  # run ids -> rids (uuid5)


class Pinger:
    """Sends and records the pings of one jobs file's runs, and its heartbeat."""

    def __init__(self, *, jobfile: JobFile, store: Store, clock: Clock) -> None:
        self.jobfile = jobfile
        self.store = store
        self.clock = clock
        self.timeout = jobfile.settings.ping_timeout.total_seconds()
        self._guard = threading.Lock()
        self._background = Background("cronflow-ping")
        self._last_of_run: dict[str, Future[None]] = {}  # run id -> its newest ping
        self._limits: dict[str, int] = {}  # ping URL -> the body limit its server announced

    # ---- what the executor tells it -----------------------------------------------------------

    def started(self, event: RunEvent) -> None:
        """A try started (its `started` event)."""
        job = self.jobfile.jobs.get(event.job)
        if job is not None and job.ping_url and live(job, event):
            self._send(job, event, kind=ping_requests.PingKind.START)

    def finished(self, event: RunEvent) -> None:
        """A try ended (`finished`), or a run was settled as abandoned."""
        job = self.jobfile.jobs.get(event.job)
        if job is None or not job.ping_url or not live(job, event):
            return
        if event.status is RunStatus.INTERRUPTED:
            return  # cronflow's own stop: the run is taken up again, and pings `start` then
        if event.status is RunStatus.SUCCESS:
            self._send(job, event, kind=ping_requests.PingKind.SUCCESS, output=True, last=True)
        elif event.attempt < event.max_attempts:
            self._send(job, event, kind=ping_requests.PingKind.LOG, output=True)
        else:
            code = event.exit_code if event.event is EventType.FINISHED else None
            self._send(
                job,
                event,
                kind=ping_requests.PingKind.FAIL,
                exit_code=code if code is not None and 1 <= code <= 255 else None,
                output=True,
                last=True,
            )

    def overdue(self, episode: Overdue, history: RunRecords) -> None:
        """A run went slow: Healthchecks logs it (`/log`, the check's state unchanged; the
        run's rid pairs it). Cronitor has no such event; lateness, each monitor sees for
        itself from its own schedule."""
        job = self.jobfile.jobs.get(episode.job)
        if episode.on is not AlertEvent.SLOW or job is None or not job.ping_url:
            return
        run = history.latest(RunKey(job.name, episode.logical_time))
        if run is not None and run.status is RunStatus.RUNNING and live(job, run):
            note = f"slow: {episode.detail}\n".encode()
            self._send(job, run, kind=ping_requests.PingKind.LOG, note=note)

    def heartbeat(self) -> None:
        """cronflow decided what was due: tell its own monitor, if it has one."""
        settings = self.jobfile.settings
        if settings.heartbeat_url:
            url = settings.heartbeat_url
            protocol = monitors.protocol_for(url, settings.heartbeat_protocol)
            state_dir = str(self.store.state_dir)

            def ping(ticket: Ticket) -> None:
                sent = ping_requests.deliver(
                    url,
                    protocol,
                    ping_requests.Ping(kind=ping_requests.PingKind.SUCCESS),
                    timeout=self.timeout,
                )
                if ticket.claim():
                    ping_requests.record_heartbeat(state_dir, sent, time.time())

            def abandoned(started: bool) -> None:
                delivery = _abandoned(url, ping_requests.PingKind.SUCCESS, started)
                ping_requests.record_heartbeat(state_dir, delivery, time.time())

            self._background.submit(ping, abandoned)

    def idle(self) -> bool:
        """True when no ping is in flight."""
        return self._background.idle()

    def wait(self, stopping: threading.Event | None = None) -> None:
        """Wait for every ping in flight to be delivered (or given up) and recorded; once
        `stopping` is set, those still in flight after background.STOP_GRACE are abandoned
        (and recorded so)."""
        self._background.wait(stopping)

    # ---- sending ------------------------------------------------------------------------------

    def _send(
        self,
        job: Job,
        event: RunEvent,
        *,
        kind: ping_requests.PingKind,
        exit_code: int | None = None,
        output: bool = False,
        last: bool = False,
        note: bytes = b"",
    ) -> None:
        assert job.ping_url is not None
        url, protocol = job.ping_url, monitors.protocol_for(job.ping_url, job.ping_protocol)
        with self._guard:
            before = self._last_of_run.get(event.run_id)

            def ping(ticket: Ticket) -> None:
                if before is not None:
                    before.result()  # the run's earlier ping first (it was submitted first)
                limit = self._limits.get(url, ping_requests.DEFAULT_BODY_LIMIT)
                body = _body(event, kind, limit, secrets_of_job(job)) if output else note
                rid = _rid(event.run_id)
                sent = ping_requests.deliver(
                    url,
                    protocol,
                    ping_requests.Ping(
                        kind=kind, exit_code=exit_code, run=rid, body=body, limit=limit
                    ),
                    timeout=self.timeout,
                )
                if sent.body_limit is not None:
                    self._limits[url] = sent.body_limit
                if ticket.claim():
                    self._record(job, event, sent, protocol)

            def abandoned(started: bool) -> None:
                if ping_requests.request_for(url, protocol, ping_requests.Ping(kind=kind)):
                    self._record(job, event, _abandoned(url, kind, started), protocol)

            ticket = self._background.submit(ping, abandoned)
            if last:
                self._last_of_run.pop(event.run_id, None)
            else:
                self._last_of_run[event.run_id] = ticket.done

    def _record(
        self, job: Job, about: RunEvent, delivery: ping_requests.PingDelivery, protocol: str
    ) -> None:
        if delivery.tries == 0:
            return  # nothing to say in this protocol (Cronitor has no `log`)
        self.store.append(
            delivery_about(
                about,
                EventType.PING,
                ended_at=self.clock.now(),
                reason=f"{delivery.kind} ping: {delivery}",
                ping={
                    "signal": delivery.kind,  # the log's name for a ping's kind, kept
                    "protocol": protocol,
                    "target": delivery.target,
                    "delivery": str(delivery),
                    "tries": delivery.tries,
                },
                config_hash=job.config_hash,
            )
        )


def live(job: Job, event: RunEvent) -> bool:
    """Whether a run's pings go to its monitor, which watches the live schedule: scheduled
    runs, a catch-up run of the newest tick when its try started, and manual runs (`run
    --job`: the job's work, done now). A backfill, or a catch-up of an older tick, would
    tell the monitor about the past as if it were now (a week-old failure turning today's
    check red): they never ping."""
    if event.kind in (RunKind.SCHEDULED, RunKind.MANUAL):
        return True
    if event.kind is RunKind.BACKFILL or event.started_at is None:
        return False
    newest = schedule_of(job.cadence).latest_at_or_before(event.started_at)
    return newest is not None and event.logical_time >= newest


def _rid(run_id: str) -> str:
    """The UUID a run's pings carry (Healthchecks' rid): the same for all of its tries."""
    import uuid  # only when a ping goes out

    return str(uuid.uuid5(uuid.UUID(_RID_NAMESPACE), run_id))


def _abandoned(url: str, kind: ping_requests.PingKind, started: bool) -> ping_requests.PingDelivery:
    """A ping that a stopping cronflow gave up on (see background.Background.wait)."""
    why = "cronflow stopped while it was being sent" if started else "cronflow stopped first"
    return ping_requests.PingDelivery(
        target=redact(url),
        kind=kind,
        status=DeliveryStatus.ABANDONED,
        why=why,
        tries=int(started),
    )


def _body(
    event: RunEvent, kind: ping_requests.PingKind, limit: int, secrets: Sequence[str]
) -> bytes:
    """What the ping carries: for a failure, why (first line), then the try's output
    (stdout, then stderr), its newest bytes kept within `limit`, the job's secrets masked
    (again: whoever settled the run, nothing secret leaves in a ping)."""
    head = b""
    if kind is ping_requests.PingKind.LOG:
        head = f"try {event.attempt} of {event.max_attempts}: {event.reason}; retrying\n".encode()
    elif kind is ping_requests.PingKind.FAIL and event.reason:
        head = f"{event.reason}\n".encode()
    room = max(0, limit - len(head))
    stdout = _tail(event.output.get("stdout"), room, secrets)
    stderr = _tail(event.output.get("stderr"), room, secrets)
    if len(stdout) + len(stderr) > room:  # share the room; stderr gets at least half
        keep = min(len(stderr), max(room // 2, room - len(stdout)))
        stderr = stderr[len(stderr) - keep :]
        stdout = stdout[len(stdout) - (room - keep) :]
    return (head + stdout + stderr)[-limit:] if limit else b""


def _tail(path: str | None, size: int, secrets: Sequence[str]) -> bytes:
    return tail_bytes(Path(path), size, secrets) if path and size > 0 else b""
