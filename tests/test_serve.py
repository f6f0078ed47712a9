"""`cronflow serve`: a real server process, asked with a real HTTP client (no proxy), and its
pages in a real headless Chromium: a failing job's output two clicks from the status page,
the timeline's bars where their runs' times put them, the page updated live without a
reload, actions refused read-only, without the token and from another site, and done (as
the jobs' own effects show) with it."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from tests.browser import Browser, chromium_missing
from tests.conftest import run_cli, spawn_cli
from tests.dashboards import filled
from tests.waiting import wait_for

LATER = """
[jobs.later]
command = 'echo later >> effects'
"""
SCREENSHOTS = Path(__file__).parent.parent / ".test-output"
OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # never through a proxy


@dataclass
class Server:
    url: str
    folder: Path
    process: subprocess.Popen

    def get(self, path: str) -> tuple[int, dict[str, str], str]:
        return self.ask(urllib.request.Request(self.url + path.lstrip("/")))

    def post(self, path: str, body: dict, headers: dict | None = None, form: bool = False):
        data = (
            "&".join(f"{k}={v}" for k, v in body.items()).encode()
            if form
            else json.dumps(body).encode()
        )
        kind = "application/x-www-form-urlencoded" if form else "application/json"
        request = urllib.request.Request(
            self.url + path.lstrip("/"),
            data=data,
            headers={"Content-Type": kind, **(headers or {})},
        )
        return self.ask(request)

    def ask(self, request: urllib.request.Request) -> tuple[int, dict[str, str], str]:
        try:
            with OPENER.open(request, timeout=120) as answer:
                return answer.status, dict(answer.headers), answer.read().decode()
        except urllib.error.HTTPError as error:
            return error.code, dict(error.headers), error.read().decode()


def start(folder: Path, *options: str) -> Server:
    process = spawn_cli(folder, "serve", "--listen", "127.0.0.1:0", *options)
    assert process.stdout is not None
    line = process.stdout.readline()
    found = re.search(r"(http://127\.0\.0\.1:\d+/)", line)
    assert found, line + (process.stderr.read() if process.stderr else "")
    return Server(found[1], folder, process)


@pytest.fixture
def world(tmp_path: Path) -> Path:
    return filled(tmp_path, LATER)


@pytest.fixture
def server(world: Path) -> Iterator[Server]:
    yield from _serving(world, "--allow-actions")


@pytest.fixture
def read_only(world: Path) -> Iterator[Server]:
    yield from _serving(world)


def _serving(world: Path, *options: str) -> Iterator[Server]:
    served = start(world, *options)
    try:
        yield served
    finally:
        served.process.terminate()
        served.process.wait(timeout=60)


def effects(folder: Path) -> list[str]:
    path = folder / "effects"
    return path.read_text().splitlines() if path.exists() else []


def token(folder: Path) -> str:
    done = run_cli("serve", "--show-token", "--jobs", "jobs.toml", cwd=folder)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


# ---- the API ------------------------------------------------------------------------------------


def test_the_api_gives_what_the_commands_json_gives(read_only):
    status, _, body = read_only.get("/api/v1/status")
    assert status == 200
    rows = {row["job"]: row for row in json.loads(body)["jobs"]}
    assert (rows["extract"]["status"], rows["load"]["status"]) == ("success", "failed")
    (run,) = json.loads(read_only.get("/api/v1/jobs/load/runs")[2])["runs"]
    assert run["status"] == "failed" and run["exit_code"] == 3
    path = f"/api/v1/jobs/load/runs/{run['run_id']}/output/stderr"
    status, headers, text = read_only.get(path)
    assert status == 200 and text == "token *** refused\n"  # masked as `logs` masks it
    assert headers["content-type"].startswith("text/plain")
    assert json.loads(read_only.get("/api/v1/assets")[2])["assets"][0]["asset"] == "raw"
    spec = json.loads(read_only.get("/api/v1/openapi.json")[2])
    assert spec["openapi"].startswith("3.") and "/api/v1/status" in spec["paths"]
    assert read_only.get("/api/v1/jobs/nobody/runs")[0] == 404
    assert read_only.get(f"/api/v1/jobs/load/runs/{run['run_id']}/output/env")[0] == 404


def test_pages_carry_their_policy_and_escape_what_they_show(read_only):
    status, headers, html = read_only.get("/")
    assert status == 200 and "default-src 'none'" in headers["content-security-policy"]
    assert "connect-src 'self'" in headers["content-security-policy"]
    assert '<a href="/jobs/load">load</a>' in html
    _, headers, job = read_only.get("/jobs/extract")
    assert "script-src" not in headers["content-security-policy"]  # these pages run nothing
    assert "Read-only" in job and 'class="durations"' in job
    assert read_only.get("/jobs/nobody")[0] == 404


# ---- actions ------------------------------------------------------------------------------------


def test_actions_are_refused_read_only_without_the_token_and_from_another_site(
    server, read_only, world
):
    assert read_only.post("/api/v1/actions/run", {"job": "later"})[0] == 403
    assert server.post("/api/v1/actions/run", {"job": "later"})[0] == 401
    wrong = {"Authorization": "Bearer not-the-token"}
    assert server.post("/api/v1/actions/run", {"job": "later"}, wrong)[0] == 401
    right = token(world)
    # a form posted from a page elsewhere, even with the token (a browser's cross-site post)
    forged = {"Origin": "http://elsewhere.example", "Sec-Fetch-Site": "cross-site"}
    status, _, said = server.post(
        "/api/v1/actions/run", {"job": "later", "token": right}, forged, form=True
    )
    assert status == 403 and "another site" in said
    assert "later" not in effects(world)
    status, _, said = server.post(
        "/api/v1/actions/run", {"job": "later"}, {"Authorization": f"Bearer {right}"}
    )
    assert status == 200, said
    assert json.loads(said)["command"] == ["cronflow", "run", "--job", "later"]
    assert effects(world)[-1] == "later"
    status, _, said = server.post(
        "/api/v1/actions/pause", {"job": "load"}, {"Authorization": f"Bearer {right}"}
    )
    assert (
        status == 200
        and "load" in json.loads((world / ".cronflow" / "paused.json").read_text())["jobs"]
    )
    assert os.stat(world / ".cronflow" / "serve-token").st_mode & 0o777 == 0o600


def test_listen_beyond_loopback_warns_and_bad_listen_is_a_usage_error(world):
    done = run_cli("serve", "--listen", "nonsense", "--jobs", "jobs.toml", cwd=world)
    assert done.returncode == 2 and "is not HOST:PORT" in done.stderr
    process = subprocess.Popen(
        [sys.executable, "-m", "cronflow", "serve", "--listen", "0.0.0.0:0", "--jobs", "jobs.toml"],
        cwd=world,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None and "http://0.0.0.0:" in process.stdout.readline()
    finally:
        process.terminate()
        _, said = process.communicate(timeout=60)
    assert "warning: listening on 0.0.0.0: whoever reaches it sees every job's runs" in said


# ---- in a browser -------------------------------------------------------------------------------

needs_chromium = pytest.mark.skipif(bool(chromium_missing()), reason=chromium_missing() or "-")


@needs_chromium
def test_a_failing_jobs_output_is_two_clicks_from_the_status_page(read_only):
    with Browser(loopback=True) as browser:
        browser.open(read_only.url)
        browser.click('a[href="/jobs/load"]')
        assert browser.evaluate("document.querySelector('h1').textContent") == "load"
        browser.click('table a[href^="/jobs/load/runs/"]')
        stderr = browser.evaluate("document.querySelector('#stderr + pre').textContent")
        assert stderr == "token *** refused\n"
        browser.evaluate("history.back()")  # the browser's back button: the job's page
        heading = "document.querySelector('h1') && document.querySelector('h1').textContent"
        wait_for(lambda: browser.evaluate(heading) == "load", "the job's page again")
        assert browser.console_errors() == []


@needs_chromium
def test_the_timeline_puts_each_run_where_its_times_say(tmp_path):
    """A seeded day: an hourly job's runs 20, 10 and 2 hours ago (the engine on a clock set
    back), drawn where their start times put them on the last 24 hours."""
    from cronflow.clock import SystemClock
    from tests.conftest import load, real_engine
    from tests.fakes import FakeClock

    (tmp_path / "jobs.toml").write_text(
        '[cronflow]\ntimezone = "UTC"\n[jobs.hourly]\ncommand = "true"\nschedule = "0 * * * *"\n'
        '[jobs.after]\ncommand = "true"\ndepends_on = ["hourly"]\n'
    )
    now = SystemClock().now()
    clock = FakeClock(now.replace(minute=0, second=20, microsecond=0) - timedelta(hours=20))
    engine = real_engine(load(tmp_path / "jobs.toml"), clock)
    for hours in (0, 10, 8):
        clock.advance(timedelta(hours=hours))
        engine.tick()
    served = start(tmp_path)
    try:
        runs = json.loads(served.get("/api/v1/jobs/hourly/runs")[2])["runs"]
        with Browser(loopback=True) as browser:
            browser.open(served.url + "timeline")
            bars = browser.evaluate(
                "Array.from(document.querySelectorAll('rect.run')).map(r => "
                "[r.dataset.job, Number(r.getAttribute('x')), Number(r.getAttribute('y'))])"
            )
            window = browser.evaluate("document.querySelector('p').textContent")
            SCREENSHOTS.mkdir(exist_ok=True)
            browser.screenshot(SCREENSHOTS / "serve-timeline.png", 1280)
    finally:
        served.process.terminate()
        served.process.wait(timeout=60)
    end = datetime.fromisoformat(re.search(r"to (\S+ \S+)", window)[1] + "+00:00")
    first = end - timedelta(hours=24)
    expected = sorted(
        160 + (datetime.fromisoformat(run["started_at"]) - first).total_seconds() * 800 / 86400
        for run in runs
        if run["started_at"]  # (the ticks between were recorded missed: catchup = latest)
    )
    drawn = sorted(x for job, x, _ in bars if job == "hourly")
    assert len(drawn) == len(expected) == 3
    assert all(abs(x - e) < 1.5 for x, e in zip(drawn, expected, strict=True))  # a pixel is 108 s
    lanes = {job: y for job, _, y in bars}
    assert lanes["hourly"] < lanes["after"]  # a lane a job, in the file's order


@needs_chromium
def test_screenshots_of_the_served_pages(read_only):
    """For the eye (and the README's pictures): .test-output/serve-*.png."""
    SCREENSHOTS.mkdir(exist_ok=True)
    with Browser(loopback=True) as browser:
        for name, path in (("status", ""), ("job", "jobs/load")):
            browser.open(read_only.url + path)
            shot = SCREENSHOTS / f"serve-{name}.png"
            browser.screenshot(shot, 1280)
            assert shot.stat().st_size > 5_000
        assert browser.console_errors() == []


def recorded_event(stream) -> str:
    """The id of the next `recorded` event down an open /events stream (heartbeats pass)."""
    event: list[str] = []
    while True:
        line = stream.readline().decode()
        assert line, "the stream ended"
        if line != "\n":
            event.append(line)
        elif "event: recorded\n" in event:
            return next(each[4:].strip() for each in event if each.startswith("id: "))
        else:
            event = []


def test_every_open_page_is_told_and_none_misses_what_came_before_it_listened(read_only, world):
    """Two pages open at once are both told of one run (each stream keeps its own last
    look); a page drawn before the run whose stream opens after it is told too (`since`, the
    signature the page was drawn at), as is a stream reconnecting with an older event id."""
    drawn = re.search(r'<body data-seen="([^"]+)"', read_only.get("/")[2])
    assert drawn
    streams = [OPENER.open(read_only.url + "events", timeout=60) for _ in range(2)]
    try:
        done = run_cli("run", "--job", "later", "--jobs", "jobs.toml", cwd=world)
        assert done.returncode == 0
        ids = [recorded_event(stream) for stream in streams]
        assert ids[0] == ids[1] != drawn[1]
        late = OPENER.open(f"{read_only.url}events?since={drawn[1]}", timeout=60)
        again = urllib.request.Request(
            read_only.url + "events", headers={"Last-Event-ID": drawn[1]}
        )
        streams += [late, OPENER.open(again, timeout=60)]
        assert [recorded_event(stream) for stream in streams[2:]] == ids
    finally:
        for stream in streams:
            stream.close()


@needs_chromium
def test_the_status_page_updates_itself_when_a_run_is_recorded(read_only, world):
    with Browser(loopback=True) as browser:
        browser.open(read_only.url)
        state = "document.querySelector('tr[data-job=\"later\"] .word').textContent"
        assert browser.evaluate(state) == "never run"
        done = run_cli("run", "--job", "later", "--jobs", "jobs.toml", cwd=world)
        assert done.returncode == 0
        wait_for(lambda: browser.evaluate(state) == "success", "the new status, live")
        assert int(browser.evaluate("document.body.dataset.updates")) >= 1
        loads = [e for e in browser.events if e["method"] == "Page.loadEventFired"]
        assert len(loads) == 1  # never reloaded
