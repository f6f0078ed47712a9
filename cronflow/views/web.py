"""`cronflow serve`: the status page, live, with a page per job and per run, the timeline of
the last 24 hours and the assets; and the same data as JSON under /api/v1/ (OpenAPI at
/api/v1/openapi.json). Starlette on uvicorn, imported only by this command.

Read-only unless started with --allow-actions. Then each action (run now, rerun, pause,
resume: the commands a person would type, views/actions.py) needs the token kept in the
state directory (mode 0600, `cronflow serve --show-token`), sent as `Authorization: Bearer
TOKEN` or a form's `token` field, and a request a browser marks as coming from another site
(`Origin` or `Sec-Fetch-Site`) is refused before the token is even looked at.

The handlers are coroutines that read through one Reader on the event loop's thread (the
run index's SQLite connection belongs to one thread); an action's command runs in a thread.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import re
import secrets
import socket
from collections.abc import AsyncIterator
from dataclasses import asdict
from html import escape, unescape
from pathlib import Path
from typing import Any
from urllib.parse import quote

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from cronflow.act.processes import describe_running
from cronflow.state.files import read_bytes, replace_whole
from cronflow.tell import graphs, overview, status_page
from cronflow.tell.page_assets import POLICY as STATUS_POLICY
from cronflow.tell.page_assets import digest
from cronflow.views import actions, web_pages
from cronflow.views.openapi import OPENAPI
from cronflow.views.reading import Reader

TOKEN_NAME = "serve-token"  # in the state directory, mode 0600
EVENT_SECONDS = 1.0  # how often the live page's stream looks for something recorded
HEARTBEAT_SECONDS = 15.0  # a comment down the stream, so proxies keep it open
# Swaps in a fresh header and grid when the server says something was recorded; the page's
# own script (tell/page_assets.py) then filters and binds the new rows.
LIVE_SCRIPT = """
(function () {
  "use strict";
  // From what the page shows: a change between its drawing and the stream is not lost (a
  // stream that reconnects goes on from the last event's id, which the browser sends).
  var events = new EventSource("/events?since=" + encodeURIComponent(document.body.dataset.seen));
  events.addEventListener("recorded", function () {
    fetch("/", {headers: {"Accept": "text/html"}, credentials: "same-origin"})
      .then(function (answer) { return answer.text(); })
      .then(function (html) {
        var fresh = new DOMParser().parseFromString(html, "text/html");
        ["header", "main"].forEach(function (tag) {
          var old = document.querySelector(tag), now = fresh.querySelector(tag);
          if (old && now) { old.replaceWith(now); }
        });
        document.body.dataset.updates = String(Number(document.body.dataset.updates || 0) + 1);
        document.dispatchEvent(new Event("cronflow:updated"));
      });
  });
})();
"""
NAVIGATION = (
    '<nav><a href="/timeline">timeline</a> · <a href="/assets">assets</a> · '
    '<a href="/api/v1/openapi.json">API</a></nav>'
)
LIVE_POLICY = (
    STATUS_POLICY.replace("script-src ", f"script-src {digest(LIVE_SCRIPT)} ")
    + "; connect-src 'self'"
)


def token_of(state_dir: Path, create: bool) -> str | None:
    """The actions' token, made (32 random bytes, URL-safe) when asked to and missing."""
    path = state_dir / TOKEN_NAME
    try:
        return read_bytes(path).decode().strip()
    except FileNotFoundError:
        if not create:
            return None
    token = secrets.token_urlsafe(32)
    replace_whole(path, token.encode() + b"\n", mode=0o600, durable=True)
    return token


class Site:
    """The handlers of one served jobs file."""

    def __init__(
        self, reader: Reader, command: list[str], jobs_file: Path, token: str | None
    ) -> None:
        self.reader, self.command, self.jobs_file = reader, command, jobs_file
        self.token = token  # None: read-only

    # ---- pages -------------------------------------------------------------------------------

    async def status(self, request: Request) -> Response:
        jobfile, store = self.reader.jobfile, self.reader.store
        now, seen = self.reader.now(), self.reader.signature()
        data = status_page.gather(jobfile, store, now, who_runs=describe_running)
        html = status_page.page_from(jobfile, store, data, now)
        html = re.sub(
            r'<b class="name">([^<]*)</b>',
            lambda m: (
                f'<b class="name"><a href="/jobs/{quote(unescape(m[1]), safe="")}">{m[1]}</a></b>'
            ),
            html,
        )
        html = html.replace(STATUS_POLICY, LIVE_POLICY).replace(
            "</body>", f"<script>{LIVE_SCRIPT}</script></body>"
        )
        html = html.replace("<body>", f'<body data-seen="{seen}">{NAVIGATION}', 1).replace(
            "This page loads nothing: everything on it is in this one file.",
            "This page keeps itself current (cronflow serve).",
        )
        return _html(html, LIVE_POLICY)

    async def job(self, request: Request) -> Response:
        name = request.path_params["job"]
        job = self.reader.jobfile.jobs.get(name)
        if job is None:
            return _html(web_pages.page("not found", f"<p>No job {escape(name)}.</p>"), status=404)
        runs = self.reader.runs(name)
        return _html(web_pages.job_page(name, job.description, runs, self._forms(name)))

    async def run(self, request: Request) -> Response:
        name, run_id = request.path_params["job"], request.path_params["run_id"]
        run = next((r for r in self.reader.runs(name) if r.run_id == run_id), None)
        if run is None or name not in self.reader.jobfile.jobs:
            return _html(web_pages.page("not found", "<p>No such run.</p>"), status=404)
        streams = []
        if run.attempts:
            started = self.reader.started(name, run_id)
            for stream in ("stdout", "stderr"):
                streams.append((stream, self.reader.output(started, stream, 0)[0]))
        return _html(web_pages.run_page(run, streams))

    async def timeline(self, request: Request) -> Response:
        now = self.reader.now().astimezone(self.reader.jobfile.settings.timezone)
        runs = self.reader.recent_runs(web_pages.TIMELINE_HOURS)
        return _html(web_pages.timeline_page(runs, now, list(self.reader.jobfile.jobs)))

    async def assets(self, request: Request) -> Response:
        zone = self.reader.jobfile.settings.timezone
        rows = []
        for state in self.reader.assets():
            producer = web_pages.job_link(state.producer) if state.producer else "(external)"
            fresh = (
                f"{state.fresh_as_of.astimezone(zone):%Y-%m-%d %H:%M}" if state.fresh_as_of else "-"
            )
            rows.append(
                f"<tr><td>{escape(state.name)}</td><td>{producer}</td><td>{fresh}</td>"
                f"<td>{escape(str(state.state))}</td><td>{escape(state.why)}</td></tr>"
            )
        head = (
            "<tr><th>asset</th><th>producer</th><th>fresh as of</th><th>state</th><th>why</th></tr>"
        )
        table = f"<table>{head}{''.join(rows)}</table>" if rows else "<p>No assets.</p>"
        return _html(web_pages.assets_page(graphs.assets_text(self.reader.jobfile), table))

    async def events(self, request: Request) -> Response:
        """Server-sent events: `recorded` whenever something was recorded since what the
        client saw last (`Last-Event-ID` on a reconnection, else `?since=`, else now). Each
        stream keeps its own last signature, so any number of pages are told."""
        seen = request.headers.get("last-event-id") or request.query_params.get("since")
        seen = seen or self.reader.signature()  # before the answer's headers go out

        async def stream() -> AsyncIterator[str]:
            quiet, last = 0.0, seen
            while not await request.is_disconnected():
                if (now := self.reader.signature()) != last:
                    last = now
                    yield f"id: {now}\nevent: recorded\ndata: {{}}\n\n"
                    quiet = 0.0
                elif quiet >= HEARTBEAT_SECONDS:
                    yield ": still here\n\n"
                    quiet = 0.0
                await asyncio.sleep(EVENT_SECONDS)
                quiet += EVENT_SECONDS

        return StreamingResponse(stream(), media_type="text/event-stream")

    # ---- the API -----------------------------------------------------------------------------

    async def api_status(self, request: Request) -> Response:
        jobfile, now = self.reader.jobfile, self.reader.now()
        data = status_page.gather(jobfile, self.reader.store, now, who_runs=describe_running)
        return JSONResponse(overview.status_json(jobfile, data.rows, data.summary, now))

    async def api_runs(self, request: Request) -> Response:
        name = request.path_params["job"]
        if name not in self.reader.jobfile.jobs:
            return _problem(404, f"no job {name}")
        return JSONResponse({"v": 1, "runs": [asdict(run) for run in self.reader.runs(name)]})

    async def api_output(self, request: Request) -> Response:
        name, run_id = request.path_params["job"], request.path_params["run_id"]
        stream = request.path_params["stream"]
        if name not in self.reader.jobfile.jobs or stream not in ("stdout", "stderr"):
            return _problem(404, "no such job or stream")
        try:
            started = self.reader.started(name, run_id)
        except Exception:  # noqa: BLE001 - a run that never started, or unknown: no output
            return _problem(404, f"no output of run {run_id}")
        text, _ = self.reader.output(started, stream, 0)
        return Response(text, media_type="text/plain; charset=utf-8")

    async def api_assets(self, request: Request) -> Response:
        from cronflow.decide import freshness

        now = self.reader.now()
        states = [freshness.as_json(state, now) for state in self.reader.assets()]
        return JSONResponse({"v": 1, "assets": states})

    async def api_timeline(self, request: Request) -> Response:
        runs = self.reader.recent_runs(web_pages.TIMELINE_HOURS)
        return JSONResponse({"v": 1, "runs": [asdict(run) for run in runs]})

    async def openapi(self, request: Request) -> Response:
        return JSONResponse(OPENAPI)

    # ---- actions -----------------------------------------------------------------------------

    async def act(self, request: Request) -> Response:
        """POST /api/v1/actions/{run|run-downstream|rerun|pause|resume}: a JSON body or a
        form with `job` (and `date` for rerun); the token; never from another site."""
        if self.token is None:
            return _problem(403, "read-only: start cronflow serve with --allow-actions")
        if _cross_site(request):
            return _problem(403, "refused: the request comes from another site")
        form = await _fields(request)
        given = request.headers.get("authorization", "").removeprefix("Bearer ").strip()
        given = given or str(form.get("token", ""))
        if not hmac.compare_digest(given.encode(), self.token.encode()):
            return _problem(401, "a valid token is needed (cronflow serve --show-token)")
        job = str(form.get("job", ""))
        if job not in self.reader.jobfile.jobs:
            return _problem(400, f"no job {job!r}")
        chosen = _action(request.path_params["action"], job, form, self.reader)
        if chosen is None:
            return _problem(400, "unknown action, or a rerun without its date")
        said = await asyncio.to_thread(actions.carry_out, self.command, chosen, self.jobs_file)
        command = ["cronflow", *chosen.arguments]
        if "application/json" in request.headers.get("accept", "") or not form.get("token"):
            return JSONResponse({"v": 1, "command": command, "said": said})
        body = f"<p>{escape(' '.join(command))}: {escape(said)}</p>"
        return _html(web_pages.page("cronflow: done", body + web_pages.job_link(job)))

    def _forms(self, job: str) -> str:
        """The job page's action buttons (with --allow-actions), each asking for the token."""
        if self.token is None:
            return "<p><small>Read-only (cronflow serve without --allow-actions).</small></p>"
        forms = []
        for action, label in (
            ("run", "run now"),
            ("run-downstream", "run with the jobs after"),
            ("pause", "pause"),
            ("resume", "resume"),
        ):
            forms.append(
                f'<form class="act" method="post" action="/api/v1/actions/{action}">'
                f'<input type="hidden" name="job" value="{escape(job)}">'
                '<input type="password" name="token" placeholder="token" required '
                f'autocomplete="off"> <button>{label}</button></form>'
            )
        return "".join(forms)

    def routes(self) -> list[Route]:
        return [
            Route("/", self.status),
            Route("/favicon.ico", lambda request: Response(status_code=204)),
            Route("/events", self.events),
            Route("/jobs/{job}", self.job),
            Route("/jobs/{job}/runs/{run_id}", self.run),
            Route("/timeline", self.timeline),
            Route("/assets", self.assets),
            Route("/api/v1/status", self.api_status),
            Route("/api/v1/jobs/{job}/runs", self.api_runs),
            Route("/api/v1/jobs/{job}/runs/{run_id}/output/{stream}", self.api_output),
            Route("/api/v1/assets", self.api_assets),
            Route("/api/v1/timeline", self.api_timeline),
            Route("/api/v1/openapi.json", self.openapi),
            Route("/api/v1/actions/{action}", self.act, methods=["POST"]),
        ]


def make_app(site: Site) -> Starlette:
    return Starlette(routes=site.routes())


def listening(host: str, port: int) -> socket.socket:
    """The server's socket, bound now: a port in use is said before anything starts."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(2048)  # connections wait in the queue until the server takes them
    sock.set_inheritable(False)
    return sock


def serve(site: Site, sock: socket.socket) -> None:
    """Serve on `sock` until SIGINT or SIGTERM (uvicorn's own handling)."""
    import uvicorn

    config = uvicorn.Config(
        make_app(site),
        log_level="warning",
        access_log=False,
        lifespan="off",
        server_header=False,
    )
    asyncio.run(uvicorn.Server(config).serve(sockets=[sock]))


def _action(name: str, job: str, form: dict[str, Any], reader: Reader) -> actions.Action | None:
    if name in ("run", "run-downstream"):
        return actions.run_now(job, downstream=name == "run-downstream")
    if name == "rerun":
        day = str(form.get("date", ""))
        return actions.rerun(job, day, "failed") if re.fullmatch(r"\d{4}-\d\d-\d\d", day) else None
    if name in ("pause", "resume"):
        return actions.pause_or_resume(job, paused=name == "resume")
    return None


def _cross_site(request: Request) -> bool:
    """A request a browser says comes from another site (a form posted from a page
    elsewhere): Sec-Fetch-Site other than same-origin/none, or an Origin not this host."""
    fetched = request.headers.get("sec-fetch-site")
    if fetched is not None and fetched not in ("same-origin", "none"):
        return True
    origin = request.headers.get("origin")
    if origin is None:
        return False  # not a browser's cross-site request (curl, scripts)
    return origin.split("://", 1)[-1] != request.headers.get("host", "")


async def _fields(request: Request) -> dict[str, Any]:
    if request.headers.get("content-type", "").startswith("application/json"):
        try:
            body = json.loads(await request.body() or b"{}")
        except ValueError:
            return {}
        return body if isinstance(body, dict) else {}
    form = await request.form()
    return {key: value for key, value in form.items() if isinstance(value, str)}


def _html(text: str, policy: str = web_pages.POLICY, status: int = 200) -> HTMLResponse:
    return HTMLResponse(text, status_code=status, headers=_headers(policy))


def _headers(policy: str) -> dict[str, str]:
    return {
        "Content-Security-Policy": policy,
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "no-referrer",
        "Cache-Control": "no-store",
    }


def _problem(status: int, detail: str) -> JSONResponse:
    return JSONResponse({"v": 1, "error": detail}, status_code=status)
