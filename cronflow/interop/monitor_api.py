"""`cronflow monitors sync`: each job's check set up in its monitor, through the monitor's
management API, as monitor_checks plans it (Healthchecks Management API v3,
Cronitor's Monitor API). Idempotent: a check is read first, then created, updated in the
fields that differ, or left alone; `dry_run` reads and says what it would do.

A new Healthchecks check gets every integration of its project (`channels: "*"`: by default
the API assigns none, and a check with none alerts nobody); an existing one keeps its own.
The API key never appears in what is printed or raised. Every exchange is bounded as a
whole (ping_requests.watched_opener), and no redirect is followed.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from cronflow import __version__
from cronflow.interop.monitor_checks import CheckPlan
from cronflow.load.monitors import CRONITOR
from cronflow.tell.ping_requests import watched_opener

TIMEOUT = 15.0  # seconds for one whole exchange with a management API


@dataclass(frozen=True, slots=True)
class Synced:
    job: str
    action: str  # created, updated, unchanged, skipped, failed (would ... with dry_run)
    detail: str = ""  # the fields changed, why skipped, what went wrong

    def __str__(self) -> str:
        return f"{self.job}: {self.action}" + (f" ({self.detail})" if self.detail else "")


class ApiError(Exception):
    """An answer the sync cannot go on with, in words fit to print."""


def sync(plan: CheckPlan, api_key: str, dry_run: bool = False) -> Synced:
    """Bring one job's check in line with its plan."""
    if plan.skipped:
        return Synced(plan.job, "skipped", plan.skipped)
    try:
        if plan.protocol == CRONITOR:
            return _sync_cronitor(plan, _Api(plan.api, api_key, cronitor=True), dry_run)
        return _sync_healthchecks(plan, _Api(plan.api, api_key, cronitor=False), dry_run)
    except ApiError as error:
        return Synced(plan.job, "failed", str(error))


def _sync_healthchecks(plan: CheckPlan, api: _Api, dry_run: bool) -> Synced:
    if plan.by == "uuid":
        status, found = api.call("GET", f"/checks/{plan.name}")
        if status == 404:
            raise ApiError(f"no check {plan.name[:8]}…: the ping URL names none in this project")
        current, update_path = found, f"/checks/{plan.name}"
    else:
        _, listed = api.call("GET", f"/checks/?slug={quote(plan.name)}")
        checks = listed.get("checks", []) if isinstance(listed, dict) else []
        if len(checks) > 1:
            raise ApiError(f'{len(checks)} checks have the slug "{plan.name}": keep one')
        if not checks:
            if not dry_run:
                api.call("POST", "/checks/", {**plan.fields, "channels": "*"}, expect=(201, 200))
            return Synced(plan.job, _done("created", dry_run), _listed(plan.fields))
        current = checks[0]
        update_path = "/checks/" + str(current.get("update_url", "")).rstrip("/").split("/")[-1]
    changed = {key: value for key, value in plan.fields.items() if current.get(key) != value}
    if not changed:
        return Synced(plan.job, "unchanged")
    if not dry_run:
        api.call("POST", update_path, changed, expect=(200,))
    return Synced(plan.job, _done("updated", dry_run), _listed(changed))


def _sync_cronitor(plan: CheckPlan, api: _Api, dry_run: bool) -> Synced:
    status, current = api.call("GET", f"/monitors/{quote(plan.name)}")
    if status == 404:
        if not dry_run:
            api.call("PUT", "/monitors", [plan.fields], expect=(200, 201))
        return Synced(plan.job, _done("created", dry_run), _listed(plan.fields))
    changed = {key: value for key, value in plan.fields.items() if current.get(key) != value}
    if not changed:
        return Synced(plan.job, "unchanged")
    if not dry_run:
        api.call("PUT", "/monitors", [{"key": plan.name, **changed}], expect=(200, 201))
    return Synced(plan.job, _done("updated", dry_run), _listed(changed))


def _done(action: str, dry_run: bool) -> str:
    return f"would be {action}" if dry_run else action


def _listed(fields: dict[str, Any]) -> str:
    return ", ".join(
        f"{key} {value!r}" if key != "tags" else f"tags {value}" for key, value in fields.items()
    )


class _Api:
    """JSON over HTTP with a management API, its key sent as it asks (Healthchecks: the
    X-Api-Key header; Cronitor: HTTP Basic, the key as user name)."""

    def __init__(self, base: str, key: str, *, cronitor: bool) -> None:
        self.base = base
        self.headers = {"User-Agent": f"cronflow/{__version__}", "Accept": "application/json"}
        if cronitor:
            token = base64.b64encode(f"{key}:".encode()).decode()
            self.headers["Authorization"] = f"Basic {token}"
        else:
            self.headers["X-Api-Key"] = key

    def call(
        self, method: str, path: str, body: Any = None, expect: tuple[int, ...] = (200, 404)
    ) -> tuple[int, Any]:
        """(status, the JSON answer) of one request; ApiError for any other status."""
        import urllib.error
        import urllib.request

        data = None if body is None else json.dumps(body).encode()
        headers = {**self.headers, **({"Content-Type": "application/json"} if data else {})}
        request = urllib.request.Request(
            self.base + path, data=data, method=method, headers=headers
        )
        opener, cut = watched_opener()
        cut.start(TIMEOUT)
        try:
            with opener.open(request, timeout=TIMEOUT) as response:
                status, text = response.status, response.read(1 << 20)
        except urllib.error.HTTPError as error:
            status, text = error.code, error.read(4096) if error.fp else b""
        except (OSError, ValueError) as error:
            why = "no answer in time" if cut.fired else type(error).__name__
            raise ApiError(f"{method} {self.base}: {why}") from None
        finally:
            cut.cancel()
        if status not in expect:
            raise ApiError(f"{method} {path.split('?')[0]}: HTTP {status} {_said(text)}".rstrip())
        try:
            return status, json.loads(text) if text else {}
        except ValueError:
            raise ApiError(f"{method} {path}: the answer is not JSON") from None


def _said(text: bytes) -> str:
    """What an error answer said, briefly: its `error` field, or its first line."""
    try:
        answer = json.loads(text)
        if isinstance(answer, dict) and "error" in answer:
            return str(answer["error"])[:200]
    except ValueError:
        pass
    return text.decode("utf-8", "replace").split("\n", 1)[0][:200]
