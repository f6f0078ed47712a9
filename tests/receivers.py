"""A real HTTP receiver on 127.0.0.1 for apprise's json:// and form:// alerts."""

from __future__ import annotations

import json
import queue
import threading
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

    @property
    def port(self) -> int:
        return self.server.server_address[1]

    def url(self, scheme: str = "json", path: str = "hook") -> str:
        return f"{scheme}://127.0.0.1:{self.port}/{path}"

    def messages(self) -> list[Received]:
        found = []
        while not self.received.empty():
            found.append(self.received.get_nowait())
        return found


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
            if receiver.mode == "hang":
                receiver.release.wait(30)
                return
            self.send_response(500 if receiver.mode == "error" else 200)
            self.end_headers()

        def log_message(self, *args) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    receiver = Receiver(server)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return receiver
