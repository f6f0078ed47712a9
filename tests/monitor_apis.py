"""A real HTTP server on 127.0.0.1 that answers as the documented management APIs do:
Healthchecks' Management API v3 (https://healthchecks.io/docs/api/: list by slug, get,
create, update; X-Api-Key) and Cronitor's Monitor API (GET /monitors/KEY, PUT /monitors
with a list; HTTP Basic with the key as user name). Every field sent is checked against
what the documentation allows; a request that breaks a rule is answered 400 and kept in
`refused`, so a test sees it."""

from __future__ import annotations

import base64
import json
import re
import threading
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qs, urlsplit

from tests.receivers import _serve

KEY = "api-key-s3cret"
HC_FIELDS = {
    "name": str,
    "slug": str,
    "tags": str,
    "desc": str,
    "timeout": int,
    "grace": int,
    "schedule": str,
    "tz": str,
    "manual_resume": bool,
    "methods": str,
    "channels": str,
    "unique": list,
}
CRONITOR_FIELDS = {
    "key": str,
    "name": str,
    "type": str,
    "schedule": str,
    "timezone": str,
    "grace_seconds": int,
    "tags": list,
    "note": str,
}


@dataclass
class MonitorApis:
    server: Any
    checks: dict[str, dict] = field(default_factory=dict)  # Healthchecks: uuid -> check
    monitors: dict[str, dict] = field(default_factory=dict)  # Cronitor: key -> monitor
    writes: list[tuple[str, str, Any]] = field(default_factory=list)  # (method, path, body)
    refused: list[str] = field(default_factory=list)
    guard: threading.Lock = field(default_factory=threading.Lock)
    release: threading.Event = field(default_factory=threading.Event)  # for `serving`

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"


def start_monitor_apis() -> MonitorApis:
    apis: MonitorApis

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self._answer("GET")

        def do_POST(self) -> None:
            self._answer("POST")

        def do_PUT(self) -> None:
            self._answer("PUT")

        def _answer(self, method: str) -> None:
            length = int(self.headers.get("Content-Length", 0))
            raw = self.rfile.read(length) if length else b""
            parts = urlsplit(self.path)
            with apis.guard:
                try:
                    status, answer = _route(
                        apis, method, parts.path, parse_qs(parts.query), raw, self.headers
                    )
                except _Refused as refused:
                    apis.refused.append(str(refused))
                    status, answer = 400, {"error": str(refused)}
            data = json.dumps(answer).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args: Any) -> None:
            pass

    apis = MonitorApis(_serve(Handler))
    return apis


class _Refused(Exception):
    pass


def _route(apis, method, path, query, raw, headers):
    if path.startswith("/api/v3/"):
        if headers.get("X-Api-Key") != KEY:
            return 401, {"error": "missing api key"}
        return _healthchecks(apis, method, path.removeprefix("/api/v3"), query, raw)
    if path.startswith("/cronitor/"):
        expected = "Basic " + base64.b64encode(f"{KEY}:".encode()).decode()
        if headers.get("Authorization") != expected:
            return 401, {"error": "unauthorized"}
        return _cronitor(apis, method, path.removeprefix("/cronitor"), raw)
    return 404, {"error": "not found"}


def _healthchecks(apis, method, path, query, raw):
    if method == "GET" and path == "/checks/":
        slug = query.get("slug", [None])[0]
        found = [c for c in apis.checks.values() if slug is None or c["slug"] == slug]
        return 200, {"checks": [_shown(apis, c) for c in found]}
    code = path.removeprefix("/checks/")
    if method == "GET":
        return (200, _shown(apis, apis.checks[code])) if code in apis.checks else (404, {})
    body = _fields(raw, HC_FIELDS)
    apis.writes.append((method, path, body))
    if "slug" in body and not re.fullmatch(r"[a-z0-9_-]*", body["slug"]):
        raise _Refused(f"slug {body['slug']!r} holds other than a-z, 0-9, - and _")
    for key in ("grace", "timeout"):
        if key in body and not 60 <= body[key] <= 31_536_000:
            raise _Refused(f"{key} {body[key]} is out of 60..31536000")
    if "schedule" in body and not re.fullmatch(r"\S+( \S+){4}", body["schedule"]):
        raise _Refused(f"schedule {body['schedule']!r} is not a cron expression")
    if path == "/checks/":
        code = str(uuid.uuid4())
        apis.checks[code] = {
            "slug": "",
            "tags": "",
            "desc": "",
            "grace": 3600,
            "tz": "UTC",
            "timeout": 86400,
            "channels": "",
            **body,
        }
        return 201, _shown(apis, apis.checks[code])
    if code not in apis.checks:
        return 404, {}
    apis.checks[code].update(body)
    return 200, _shown(apis, apis.checks[code])


def _shown(apis, check):
    code = next(c for c, value in apis.checks.items() if value is check)
    return {
        **{k: v for k, v in check.items() if k != "unique"},
        "update_url": f"{apis.base}/api/v3/checks/{code}",
        "ping_url": f"{apis.base}/ping/{code}",
    }


def _cronitor(apis, method, path, raw):
    if method == "GET" and path.startswith("/monitors/"):
        key = path.removeprefix("/monitors/")
        return (200, apis.monitors[key]) if key in apis.monitors else (404, {})
    if method == "PUT" and path == "/monitors":
        monitors = json.loads(raw)
        if not isinstance(monitors, list):
            raise _Refused("PUT /monitors takes a list of monitors")
        apis.writes.append((method, path, monitors))
        for monitor in monitors:
            if set(monitor) - set(CRONITOR_FIELDS) or "key" not in monitor:
                raise _Refused(f"unknown fields {set(monitor) - set(CRONITOR_FIELDS)}")
            for key, value in monitor.items():
                if not isinstance(value, CRONITOR_FIELDS[key]):
                    raise _Refused(f"{key} must be {CRONITOR_FIELDS[key].__name__}")
            apis.monitors.setdefault(monitor["key"], {}).update(monitor)
        return 200, monitors
    return 404, {}


def _fields(raw, allowed):
    body = json.loads(raw)
    if not isinstance(body, dict):
        raise _Refused("the body is not a JSON object")
    unknown = set(body) - set(allowed)
    if unknown:
        raise _Refused(f"unknown fields {sorted(unknown)}")
    for key, value in body.items():
        if not isinstance(value, allowed[key]) or isinstance(value, bool) != (allowed[key] is bool):
            raise _Refused(f"{key} must be {allowed[key].__name__}")
    return body
