"""Heartbeat pings: telling a monitor outside (Healthchecks, Cronitor) how runs go, and that
cronflow itself is alive, so that a job that did *not* run is noticed too.

Two protocols, told from the URL (or named by `ping_protocol`):

- Healthchecks (healthchecks.io or self-hosted): POST `URL/start` when a try starts, `URL` on
  success, `URL/<exit status>` on a final failure with one, `URL/fail` on one without (timed
  out, killed, could not start), `URL/log` for a try that will be retried; `?rid=<uuid>`
  pairs a run's start with its end. The body is the tail of the run's output, cut to the
  limit the server announces in its `Ping-Body-Limit` header (10,000 bytes until it has).
- Cronitor: GET `URL?state=run|complete|fail` with `series` (pairs them), `status_code`,
  `host`, and the output's tail as `message` (Cronitor keeps 2,000 characters).

A ping has a short timeout, is tried up to three times (not after an answer that says the
URL is wrong, such as 404), and never raises. This module imports nothing heavy: the idle
tick sends the heartbeat through it before the rest of cronflow loads.
"""

from __future__ import annotations

import contextlib
import functools
import os
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any
from urllib.parse import urlencode, urljoin, urlsplit

from cronflow import __version__
from cronflow.load.monitors import CRONITOR
from cronflow.masking import redact
from cronflow.state.files import no_links, replace_whole
from cronflow.state.layout import LAST_HEARTBEAT
from cronflow.tell.deliveries import DeliveryStatus

DEFAULT_BODY_LIMIT = 10_000  # bytes, until the server says otherwise (Healthchecks' own)
MAX_BODY_LIMIT = 1_000_000  # whatever a server announces, never read more output than this
CRONITOR_MESSAGE_LIMIT = 2_000
TRIES = 3
BACKOFF_SECONDS = (0.5, 1.0)  # before the second and the third try


class PingKind(StrEnum):
    """What a ping says."""

    START = "start"
    SUCCESS = "success"
    FAIL = "fail"
    LOG = "log"  # a try failed and will be retried: logged, the check's state unchanged


@dataclass(frozen=True, slots=True, kw_only=True)
class Ping:
    kind: PingKind
    exit_code: int | None = None  # on a final failure that has one: sent instead of `fail`
    run: str = ""  # pairs a start with its end: Healthchecks' rid (a UUID), Cronitor's series
    body: bytes = b""  # the tail of the run's output, or a line saying what happened
    limit: int = DEFAULT_BODY_LIMIT


@dataclass(frozen=True, slots=True, kw_only=True)
class PingDelivery:
    target: str  # scheme://host[:port], never the whole URL
    kind: PingKind
    status: DeliveryStatus
    why: str = ""  # for a failure: what the server said, or what went wrong
    tries: int = 1
    body_limit: int | None = None  # what the server announced (Ping-Body-Limit)

    @property
    def sent(self) -> bool:
        return self.status is DeliveryStatus.SENT

    def __str__(self) -> str:
        """As the log and the terminal show it: `sent`, `timeout`, `failed: HTTP 404 ...`."""
        return f"{self.status}: {self.why}" if self.why else self.status


def request_for(url: str, protocol: str, ping: Ping) -> tuple[str, str, bytes | None] | None:
    """(method, URL, body) of the request that says `ping`; None if the protocol has no
    such signal (Cronitor has no log-only event)."""
    base, _, query = url.partition("?")
    if protocol == CRONITOR:
        state = {PingKind.START: "run", PingKind.SUCCESS: "complete", PingKind.FAIL: "fail"}.get(
            ping.kind
        )
        if state is None:
            return None
        fields = [("state", state), ("host", socket.gethostname())]
        if ping.run:
            fields.append(("series", ping.run))
        if ping.exit_code is not None:
            fields.append(("status_code", str(ping.exit_code)))
        message = ping.body.decode("utf-8", "replace")[-CRONITOR_MESSAGE_LIMIT:]
        if message:
            fields.append(("message", message))
        return "GET", _with_query(base, query, fields), None
    suffix = {PingKind.START: "/start", PingKind.LOG: "/log", PingKind.SUCCESS: ""}.get(ping.kind)
    if suffix is None:
        suffix = f"/{ping.exit_code}" if ping.exit_code is not None else "/fail"
    fields = [("rid", ping.run)] if ping.run else []
    body = ping.body[-ping.limit :] if ping.limit > 0 else b""
    return "POST", _with_query(base.rstrip("/") + suffix, query, fields), body


def _with_query(base: str, query: str, fields: list[tuple[str, str]]) -> str:
    parts = [part for part in (query, urlencode(fields)) if part]
    return base + ("?" + "&".join(parts) if parts else "")


def deliver(
    url: str,
    protocol: str,
    ping: Ping,
    *,
    timeout: float,
    sleep: Callable[[float], None] = time.sleep,
) -> PingDelivery:
    """Send `ping`, trying again after a failure that may pass (no answer, a timeout, a
    5xx or 429 answer); never raises."""
    target = redact(url)
    request = request_for(url, protocol, ping)
    if request is None:
        return PingDelivery(target=target, kind=ping.kind, status=DeliveryStatus.SENT, tries=0)
    for attempt in range(1, TRIES + 1):
        status, why, limit, final = _send_once(*request, timeout=timeout)
        if status is DeliveryStatus.SENT or final or attempt == TRIES:
            break
        sleep(BACKOFF_SECONDS[attempt - 1])
    return PingDelivery(
        target=target, kind=ping.kind, status=status, why=why, tries=attempt, body_limit=limit
    )


def _send_once(
    method: str, url: str, body: bytes | None, *, timeout: float
) -> tuple[DeliveryStatus, str, int | None, bool]:
    """(status, why, announced body limit, final: trying again cannot help). `timeout`
    bounds the whole exchange, not each read: a server that answers a byte at a time is
    cut off when it is over (its connection shut from a timer)."""
    import http.client

    opener, cut = watched_opener()
    cut.start(timeout)
    try:
        outcome = _exchange(opener, method, url, body, timeout=timeout)
    except http.client.HTTPException as error:  # an answer cut short, by the timer or not
        outcome = DeliveryStatus.FAILED, type(error).__name__, None, False
    finally:
        cut.cancel()
    if cut.fired:
        return DeliveryStatus.TIMEOUT, f"no answer within {timeout:g}s", None, False
    return outcome


def _exchange(
    opener: Any, method: str, url: str, body: bytes | None, *, timeout: float
) -> tuple[DeliveryStatus, str, int | None, bool]:
    import urllib.error
    import urllib.request

    url, authorization = _without_credentials(url)
    headers = {"User-Agent": f"cronflow/{__version__}", "Content-Type": "text/plain"}
    if authorization:
        headers["Authorization"] = authorization
    request = urllib.request.Request(url, data=body, method=method, headers=headers)
    try:
        with opener.open(request, timeout=timeout) as response:
            response.read(1024)
            return (
                DeliveryStatus.SENT,
                "",
                _body_limit(response.headers.get("Ping-Body-Limit")),
                True,
            )
    except urllib.error.HTTPError as error:
        if 300 <= error.code < 400:  # never followed: a ping goes where it was told only
            where = error.headers.get("Location", "") if error.headers else ""
            target = redact(urljoin(url, where)) if where else "nowhere"
            return (
                DeliveryStatus.FAILED,
                f"HTTP {error.code}, to {target}: not followed",
                None,
                True,
            )
        limit = _body_limit(error.headers.get("Ping-Body-Limit") if error.headers else None)
        retry = error.code >= 500 or error.code == 429
        return DeliveryStatus.FAILED, f"HTTP {error.code} {error.reason}", limit, not retry
    except TimeoutError:
        return DeliveryStatus.TIMEOUT, f"no answer within {timeout:g}s", None, False
    except urllib.error.URLError as error:
        reason = error.reason
        if isinstance(reason, TimeoutError):
            return DeliveryStatus.TIMEOUT, f"no answer within {timeout:g}s", None, False
        return DeliveryStatus.FAILED, str(getattr(reason, "strerror", None) or reason), None, False
    except (OSError, ValueError) as error:  # a reset connection, a malformed URL
        return DeliveryStatus.FAILED, type(error).__name__, None, False


def _without_credentials(url: str) -> tuple[str, str]:
    """The URL without a `user:password@` part, and that part as a Basic Authorization
    header (as curl sends it), or "" when there is none."""
    parts = urlsplit(url)
    if parts.username is None:
        return url, ""
    import base64
    from urllib.parse import unquote

    host = parts.netloc.rpartition("@")[2]
    pair = f"{unquote(parts.username)}:{unquote(parts.password or '')}".encode()
    return parts._replace(netloc=host).geturl(), "Basic " + base64.b64encode(pair).decode()


def watched_opener() -> tuple[Any, Cut]:
    """An opener that follows no redirect (Healthchecks and Cronitor never redirect a ping,
    and a redirect to an inner address must not make cronflow send there), whose
    connections a timer (`opener.cut`, also returned) shuts when the exchange's time is up.
    Proxies from the environment are used as urllib uses them."""
    import urllib.request

    cut = Cut()
    no_redirects, watched_http, watched_https = _handler_classes()
    opener = urllib.request.build_opener(no_redirects, watched_http(cut), watched_https(cut))
    return opener, cut


class Cut:
    """Shuts an exchange's connections when its time is up, unless cancelled first."""

    def __init__(self) -> None:
        self.connections: list[Any] = []  # http.client connections opened for the exchange
        self.fired = False
        self.cancelled = False

    def start(self, seconds: float) -> None:
        _deadlines().add(seconds, self)

    def cancel(self) -> None:
        """The exchange ended: the timer, when it comes, does nothing (the deadline thread
        keeps this object until then, so it lets go of the connections now)."""
        self.cancelled = True
        self.connections = []

    def shut(self) -> None:
        if self.cancelled:
            return
        self.fired = True
        for connection in self.connections:
            if connection.sock is not None:
                with contextlib.suppress(OSError):
                    connection.sock.shutdown(socket.SHUT_RDWR)

    def watched(self, kind: Any) -> Any:
        def make(*args: Any, **kwargs: Any) -> Any:
            connection = kind(*args, **kwargs)
            self.connections.append(connection)
            return connection

        return make


@functools.cache
def _handler_classes() -> tuple[Any, Any, Any]:
    """urllib handlers that follow no redirect, and that register each connection they
    open with their Cut. Made once: a class made for every ping cost a daemon memory (four
    classes each, alive until the ping's deadline) and time."""
    import urllib.request

    class NoRedirects(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args: Any, **kwargs: Any) -> None:
            return None

    class WatchedHTTP(urllib.request.HTTPHandler):
        def __init__(self, cut: Cut) -> None:
            super().__init__()
            self.cut = cut

        def do_open(self, http_class: Any, req: Any, **kwargs: Any) -> Any:
            return super().do_open(self.cut.watched(http_class), req, **kwargs)

    class WatchedHTTPS(urllib.request.HTTPSHandler):
        def __init__(self, cut: Cut) -> None:
            super().__init__()
            self.cut = cut

        def do_open(self, http_class: Any, req: Any, **kwargs: Any) -> Any:
            return super().do_open(self.cut.watched(http_class), req, **kwargs)

    return NoRedirects, WatchedHTTP, WatchedHTTPS


def _body_limit(header: str | None) -> int | None:
    try:
        return None if header is None else max(0, min(int(header), MAX_BODY_LIMIT))
    except ValueError:
        return None


# ---- the heartbeat: cronflow itself is alive ------------------------------------------------


def heartbeat(
    url: str, protocol: str, state_dir: str, *, timeout: float, now: float | None = None
) -> PingDelivery:
    """Ping the heartbeat URL (a plain success ping) and record the delivery, with the last
    failed one kept, in state_dir/last-heartbeat for `status`."""
    delivery = deliver(url, protocol, Ping(kind=PingKind.SUCCESS), timeout=timeout)
    record_heartbeat(state_dir, delivery, time.time() if now is None else now)
    return delivery


def record_heartbeat(state_dir: str, delivery: PingDelivery, at: float) -> None:
    """Keep the last delivery and the last failure (a small private file, replaced whole;
    a cache for `status`, never a record: not fsynced)."""
    import json

    path = os.path.join(state_dir, LAST_HEARTBEAT)
    previous = read_heartbeat(state_dir)
    entry = {"at": at, "target": delivery.target, "delivery": str(delivery)}
    content = {"last": entry, "last_failed": previous.get("last_failed")}
    if not delivery.sent:
        content["last_failed"] = entry
    with contextlib.suppress(
        OSError
    ):  # the heartbeat went out (or not); only status's note is lost
        replace_whole(path, json.dumps(content).encode())


def read_heartbeat(state_dir: str) -> dict[str, Any]:
    """What record_heartbeat kept: {"last": {...}, "last_failed": {...} | None}, or {}."""
    import json

    try:
        with open(os.path.join(state_dir, LAST_HEARTBEAT), opener=no_links) as file:
            content = json.load(file)
    except (OSError, ValueError):
        return {}
    return content if isinstance(content, dict) else {}


class _Deadlines:
    """One thread that shuts the exchanges whose time is up (`watched_opener`'s cuts),
    soonest first. (A Timer each started a thread for every ping: a daemon pinging ten
    jobs a minute made 30,000 threads a day, which glibc's arenas paid for in memory.)"""

    def __init__(self) -> None:
        import itertools
        import threading

        self._waiting: list[tuple[float, int, Any]] = []  # a heap of (deadline, order, cut)
        self._order = itertools.count()
        self._changed = threading.Condition()
        threading.Thread(target=self._shut_in_time, name="cronflow-deadlines", daemon=True).start()

    def add(self, seconds: float, cut: Any) -> None:
        import heapq
        import time

        with self._changed:
            heapq.heappush(self._waiting, (time.monotonic() + seconds, next(self._order), cut))
            self._changed.notify()

    def _shut_in_time(self) -> None:
        import heapq
        import time

        while True:
            with self._changed:
                while not self._waiting or self._waiting[0][0] > time.monotonic():
                    left = self._waiting[0][0] - time.monotonic() if self._waiting else None
                    self._changed.wait(left)
                cut = heapq.heappop(self._waiting)[2]
            cut.shut()  # nothing if the exchange ended first


_the_deadlines: _Deadlines | None = None


def _deadlines() -> _Deadlines:
    global _the_deadlines
    if _the_deadlines is None:
        _the_deadlines = _Deadlines()
    return _the_deadlines
