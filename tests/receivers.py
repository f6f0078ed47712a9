"""A real HTTP receiver on 127.0.0.1 for apprise's json:// and form:// alerts."""

from __future__ import annotations

import json
import queue
import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: dict


@dataclass
class Receiver:
    """Records every request; `mode` decides the answer: ok, error (HTTP 500) or hang."""

    server: ThreadingHTTPServer
    mode: str = "ok"
    received: queue.Queue = field(default_factory=queue.Queue)
    release: threading.Event = field(default_factory=threading.Event)
    taken: list[Received] = field(default_factory=list)  # what messages() has handed out

    @property
    def port(self) -> int:
        return self.server.server_address[1]

    def url(self, scheme: str = "json", path: str = "hook") -> str:
        return f"{scheme}://127.0.0.1:{self.port}/{path}"

    def messages(self) -> list[Received]:
        found = []
        while not self.received.empty():
            found.append(self.received.get_nowait())
        self.taken.extend(found)
        return found

    def everything(self) -> list[Received]:
        """Every message received so far, including those messages() already handed out."""
        self.messages()
        return list(self.taken)


def start_receiver() -> Receiver:
    receiver: Receiver

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            data = self.rfile.read(int(self.headers.get("Content-Length", 0))).decode()
            if self.headers.get("Content-Type", "").startswith("application/json"):
                body = json.loads(data)
            else:
                body = {key: values[0] for key, values in parse_qs(data).items()}
            receiver.received.put(Received(self.path, dict(self.headers), body))
            if receiver.mode == "trickle":
                trickle(self, receiver.release)
                return
            if receiver.mode == "hang":
                receiver.release.wait(30)
                return
            self.send_response(500 if receiver.mode == "error" else 200)
            self.end_headers()

        def log_message(self, *args) -> None:
            pass

    receiver = Receiver(_serve(Handler))
    return receiver


TRICKLE_SECONDS = 0.1  # between two bytes of a trickling answer


def trickle(handler: BaseHTTPRequestHandler, release: threading.Event) -> None:
    """Answer a byte at a time, one every TRICKLE_SECONDS, for as long as anyone listens
    (or until released): every read gets something, so only a bound on the whole exchange
    ends it."""
    answer = b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n" + b"x" * 100_000
    for byte in answer:
        if release.wait(TRICKLE_SECONDS):
            return
        try:
            handler.wfile.write(bytes([byte]))
            handler.wfile.flush()
        except OSError:
            return  # the client hung up: what a bound on the exchange does


def _serve(handler: type[BaseHTTPRequestHandler]) -> ThreadingHTTPServer:
    """A server on a free port of 127.0.0.1, answering in threads of its own."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def serving(started: Receiver | Monitor) -> Iterator[Receiver | Monitor]:
    """A fixture's life of a server: yield it, then release whoever hangs and stop it."""
    yield started
    started.release.set()
    started.server.shutdown()
    started.server.server_close()


# ---- a monitor: the Healthchecks and Cronitor ping protocols -----------------------------


@dataclass
class PingSeen:
    """One ping a Monitor took: which check, what it said, and what it carried."""

    protocol: str  # healthchecks | cronitor
    check: str  # the check's UUID, or Cronitor's monitor key
    signal: str  # start | success | fail | log | an exit status; Cronitor: its state
    run: str  # rid, or Cronitor's series
    body: bytes
    query: dict[str, str]
    status: int  # the HTTP status the monitor answered
    authorization: str = ""  # the Authorization header, if one came


@dataclass
class Monitor:
    """A Healthchecks server (POST /ping/<uuid>[/start|/fail|/log|/<0-255>]?rid=) and a
    Cronitor one (GET /p/<key>/<monitor>?state=run|complete|fail&series=...), in one. Only
    the checks it was told of exist (404 for others, as Healthchecks answers); it announces
    `body_limit` in Ping-Body-Limit; mode "hang" answers nothing until released."""

    server: ThreadingHTTPServer
    checks: set[str] = field(default_factory=set)
    body_limit: int = 10_000
    mode: str = "ok"
    redirect_to: str = ""  # answer every ping with a 302 to this URL
    seen: list[PingSeen] = field(default_factory=list)
    release: threading.Event = field(default_factory=threading.Event)
    guard: threading.Lock = field(default_factory=threading.Lock)

    @property
    def port(self) -> int:
        return self.server.server_address[1]

    def check_url(self, check: str) -> str:
        self.checks.add(check)
        return f"http://127.0.0.1:{self.port}/ping/{check}"

    def cronitor_url(self, key: str, monitor: str) -> str:
        self.checks.add(monitor)
        return f"http://127.0.0.1:{self.port}/p/{key}/{monitor}"

    def pings(self, check: str | None = None) -> list[PingSeen]:
        with self.guard:
            return [ping for ping in self.seen if check is None or ping.check == check]


HEALTHCHECKS_SIGNALS = {"start", "fail", "log"}


def start_monitor() -> Monitor:
    monitor: Monitor

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self._take(self.rfile.read(int(self.headers.get("Content-Length", 0))))

        def do_GET(self) -> None:
            self._take(b"")

        def _take(self, body: bytes) -> None:
            path, _, query_text = self.path.partition("?")
            query = {key: values[0] for key, values in parse_qs(query_text).items()}
            parts = path.strip("/").split("/")
            if parts[:1] == ["ping"] and len(parts) in (2, 3):
                check = parts[1]
                signal = parts[2] if len(parts) == 3 else "success"
                valid = signal in HEALTHCHECKS_SIGNALS | {"success"} or (
                    signal.isdigit() and 0 <= int(signal) <= 255
                )
                # A slug holds a-z, 0-9, hyphens and underscores (Healthchecks' rule);
                # another name matches no check's URL.
                slug = re.fullmatch(r"[a-z0-9_-]+", check) is not None
                status = 200 if check in monitor.checks and valid and slug else 404
                seen = PingSeen(
                    "healthchecks", check, signal, query.get("rid", ""), body, query, status
                )
            elif parts[:1] == ["p"] and len(parts) == 3:
                check = parts[2]
                status = 200 if check in monitor.checks else 404
                seen = PingSeen(
                    "cronitor",
                    check,
                    query.get("state", ""),
                    query.get("series", ""),
                    body,
                    query,
                    status,
                )
            else:
                status, seen = 404, None
            if seen is not None:
                seen.authorization = self.headers.get("Authorization", "")
                with monitor.guard:
                    monitor.seen.append(seen)
            if monitor.mode == "trickle":
                trickle(self, monitor.release)
                return
            if monitor.mode == "hang":
                monitor.release.wait(30)
                return
            if monitor.redirect_to:
                self.send_response(302)
                self.send_header("Location", monitor.redirect_to)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            answer = b"OK" if status == 200 else b"not found"
            self.send_response(status)
            self.send_header("Ping-Body-Limit", str(monitor.body_limit))
            self.send_header("Content-Length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer)

        def log_message(self, *args) -> None:
            pass

    monitor = Monitor(_serve(Handler))
    return monitor
