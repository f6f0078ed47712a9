"""The HTML status page, loaded from file:// in a real headless Chromium with its network
switched off (tests/browser.py): nothing requested but the file, no console error, one cell
per run with its letter, everything from jobs.toml and the runs shown as text, usable with
scripts off. Screenshots at 1280 and 390 pixels wide go to .test-output/ for people to look at.
"""

from __future__ import annotations

import os
import re
import sys
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from cronflow.act import idle_tick
from cronflow.model import EventType, RunEvent, RunStatus
from cronflow.state.store import Store
from cronflow.tell import status_page
from tests.browser import Browser, chromium_missing
from tests.conftest import load, real_engine, refused, run_cli
from tests.fakes import FakeClock

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "bench"))
from bench_page import state  # noqa: E402  (the generator lives with the benchmark)

SCREENSHOTS = Path(__file__).parent.parent / ".test-output"
PAYLOAD = '<script>window.pwned = 1</script><img src=x onerror="window.pwned = 2">'

JOBS = f"""
[jobs.extract]
command = "echo extracted"
schedule = "15 6 * * *"
timezone = "Europe/Berlin"
description = '{PAYLOAD} pulls rows'

[jobs.load]
command = '''echo '{PAYLOAD}' >&2; exit 3'''
depends_on = ["extract"]
retries = 1
retry_delay = "0s"

[jobs.report]
command = "true"
depends_on = ["load"]

[jobs.cleanup]
command = "true"
schedule = "0 */12 * * *"
"""


@pytest.fixture(scope="module")
def browser():
    why = chromium_missing()
    if why:
        pytest.skip(why)
    with Browser() as opened:
        yield opened


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory) -> Path:
    """Three days of real runs: extract succeeds, load fails (twice a day), report is held
    back, cleanup runs twice a day. Returns the page `cronflow status --html` wrote."""
    folder = tmp_path_factory.mktemp("page")
    (folder / "jobs.toml").write_text(JOBS)
    for day in ("2026-01-12", "2026-01-13", "2026-01-14"):
        ran = run_cli("run", "--date", day, cwd=folder)
        assert ran.returncode == 1, ran.stderr  # load fails
    written = run_cli("status", "--html", "status.html", cwd=folder)
    assert written.returncode == 0, written.stderr
    return folder / "status.html"


def latest_by_run(folder: Path) -> dict[str, list[RunStatus]]:
    """Each job's runs as the log says they ended, oldest first."""
    latest: dict[tuple[str, datetime], RunEvent] = {}
    for event in Store(folder / ".cronflow").read().events:
        if event.event not in (EventType.ALERT, EventType.PING):
            latest[(event.job, event.logical_time)] = event
    runs: dict[str, list[RunStatus]] = {}
    for (job, _), event in sorted(latest.items(), key=lambda item: item[0][1]):
        runs.setdefault(job, []).append(event.status)
    return runs


def test_the_page_loads_nothing_and_logs_no_error(browser, pipeline):
    seen = len(browser.events)
    browser.open(pipeline.as_uri())
    requests = [
        e["params"]["request"]["url"]
        for e in browser.events[seen:]
        if e["method"] == "Network.requestWillBeSent"
    ]
    assert requests == [pipeline.as_uri()]
    assert browser.console_errors() == []  # a script or style the policy blocks is an error
    policy = browser.evaluate(
        "document.querySelector('meta[http-equiv=Content-Security-Policy]').content"
    )
    assert "unsafe" not in policy and "script-src 'sha256-" in policy, policy
    assert "base-uri 'none'" in policy and "form-action 'none'" in policy, policy


def test_one_cell_per_run_with_its_letter_failing_jobs_first(browser, pipeline):
    browser.open(pipeline.as_uri())
    shown = browser.evaluate(
        """Array.from(document.querySelectorAll("tr[data-job]")).map(row => [
            row.dataset.job,
            Array.from(row.querySelectorAll(".cell")).map(cell => cell.textContent)])"""
    )
    expected = latest_by_run(pipeline.parent)
    assert [job for job, _ in shown] == ["load", "report", "extract", "cleanup"]
    for job, letters in shown:
        assert letters == [status.letter for status in expected[job]], job
    assert len(expected["cleanup"]) == 6 and set(expected["load"]) == {RunStatus.FAILED}


def test_what_jobs_and_runs_say_is_shown_as_text_never_run(browser, pipeline):
    browser.open(pipeline.as_uri())
    assert browser.evaluate("window.pwned") is None
    assert browser.evaluate("document.querySelectorAll('img, script').length") == 1  # its own
    description = browser.evaluate(
        "document.querySelector('tr[data-job=extract] .about').textContent"
    )
    assert description == f"{PAYLOAD} pulls rows"
    stderr = browser.evaluate("document.querySelector('tr[data-job=load] details pre').textContent")
    assert PAYLOAD in stderr


def test_a_job_name_holding_markup_is_text(browser, pipeline, tmp_path):
    """jobs.toml allows no `<` in a name, but the page escapes whatever it is given."""
    jobfile = load(pipeline.parent / "jobs.toml")
    store = Store(jobfile.settings.state_dir)
    now = datetime(2026, 1, 15, tzinfo=UTC)
    data = status_page.gather(jobfile, store, now, who_runs=lambda started: "running")
    name = "<script>window.pwned = 3</script>"
    rows = [replace(row, job=name) if row.job == "load" else row for row in data.rows]
    runs = {row.job: data.index.recent_runs(row.job, 30) for row in data.rows}
    runs[name] = [replace(run, job=name) for run in runs.pop("load")]
    page = tmp_path / "named.html"
    page.write_text(status_page.render(jobfile, rows, data.summary, runs, now))
    browser.open(page.as_uri())
    assert browser.evaluate("window.pwned") is None
    names = browser.evaluate(
        "Array.from(document.querySelectorAll('tr[data-job] .name')).map(b => b.textContent)"
    )
    assert name in names
    assert browser.console_errors() == []


def test_with_scripts_off_the_grid_and_each_runs_details_are_there(browser, pipeline):
    browser.open(pipeline.as_uri(), scripts=False)
    titles = browser.evaluate(
        "Array.from(document.querySelectorAll('tr[data-job=load] .cell')).map(c => c.title)"
    )
    assert len(titles) == 3
    for title in titles:
        facts, command = title.split("\n")
        assert re.fullmatch(
            r"2026-01-1\d 06:15\+0100 · failed · try 2/2 · \d+\.\ds · exit 3", facts
        )
        assert re.fullmatch(r"cronflow logs load --run 2026011\dT051500Z-\w+", command)
    assert browser.evaluate("document.getElementById('filters').hidden") is True
    times = browser.evaluate(
        "Array.from(document.querySelectorAll('td time')).map(t => t.textContent)"
    )
    assert times and all(re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d [+-]\d{4}", t) for t in times)


def test_with_scripts_on_filters_hover_details_and_relative_times(browser, pipeline):
    browser.open(pipeline.as_uri())
    assert browser.evaluate("document.getElementById('filters').hidden") is False
    visible = """Array.from(document.querySelectorAll("tr[data-job]"))
        .filter(row => !row.hidden).map(row => row.dataset.job)"""
    browser.evaluate(
        "var box = document.getElementById('filter-job'); box.value = 'LO';"
        "box.dispatchEvent(new Event('input'))"
    )
    assert browser.evaluate(visible) == ["load"]
    browser.evaluate(
        "box.value = ''; box.dispatchEvent(new Event('input'));"
        "var state = document.getElementById('filter-state'); state.value = 'healthy';"
        "state.dispatchEvent(new Event('change'))"
    )
    assert browser.evaluate(visible) == ["extract", "cleanup"]
    assert browser.evaluate("document.getElementById('shown').textContent") == "2 of 4 jobs"
    detail = browser.evaluate(
        "var cell = document.querySelector('tr[data-job=load] .cell');"
        "cell.dispatchEvent(new Event('mouseenter'));"
        "var d = document.getElementById('detail'); [d.hidden, d.textContent]"
    )
    assert detail[0] is False and "cronflow logs load --run" in detail[1]
    assert browser.evaluate("cell.tabIndex") == 0  # reached by the keyboard too
    times = browser.evaluate(
        "Array.from(document.querySelectorAll('td time')).map(t => t.textContent)"
    )
    assert all(re.fullmatch(r"(in )?\d+[smhd]\S*( ago)?", t) for t in times), times


def test_fifty_jobs_by_thirty_runs_screenshots(browser, tmp_path):
    jobs = state(tmp_path, 50)  # fifty jobs in flows of ten, thirty runs each
    written = run_cli("status", "--html", "status.html", "--jobs", str(jobs), cwd=tmp_path)
    assert written.returncode == 0, written.stderr
    page = tmp_path / "status.html"
    size = page.stat().st_size
    assert size < 350_000, size  # docs/operations.md states the size (about 300 KB); it stays small
    browser.open(page.as_uri())
    assert browser.evaluate("document.querySelectorAll('.cell').length") == 50 * 30
    assert browser.evaluate("document.querySelectorAll('svg .node').length") == 50
    assert browser.console_errors() == []
    SCREENSHOTS.mkdir(exist_ok=True)
    for width in (1280, 390):
        shot = SCREENSHOTS / f"status-page-{width}.png"
        browser.screenshot(shot, width)
        assert shot.stat().st_size > 10_000


def test_html_file_is_kept_by_ticks_and_renewed_by_idle_ticks(tmp_path):
    (tmp_path / "jobs.toml").write_text(
        '[cronflow]\nhtml_file = "www/status.html"\n'
        '[jobs.hourly]\ncommand = "true"\nschedule = "0 * * * *"\n'
    )
    (tmp_path / "www").mkdir()
    if os.geteuid() == 0:  # a directory given to a web server's group
        os.chown(tmp_path / "www", -1, 4242)
    path = tmp_path / "jobs.toml"
    clock = FakeClock(datetime(2026, 1, 10, 12, 0, 30, tzinfo=UTC))
    real_engine(load(path), clock).tick()
    page = tmp_path / "www" / "status.html"
    first = page.read_text()
    assert 'class="cell s-success"' in first
    assert os.stat(page).st_mode & 0o777 == 0o640
    assert os.stat(page).st_gid == os.stat(tmp_path / "www").st_gid
    later = clock.now() + timedelta(minutes=9)
    assert idle_tick.answer(str(path), later)
    renewed = page.read_text()
    tick = re.compile(r"<!--tick-->(.*)<!--/tick-->", re.S)
    assert "2026-01-10 12:00:30Z" in tick.search(first).group(1)
    assert "2026-01-10 12:09:30Z" in tick.search(renewed).group(1)
    assert tick.sub("", first) == tick.sub("", renewed)  # the rest as it was
    assert os.stat(page).st_mode & 0o777 == 0o640
    assert os.stat(page).st_gid == os.stat(tmp_path / "www").st_gid


def test_html_file_errors_are_clear_and_status_html_to_a_missing_folder_too(tmp_path):
    said = refused(
        tmp_path, '[cronflow]\nhtml_file = "nowhere/status.html"\n[jobs.a]\ncommand = "true"\n'
    )
    assert "html_file" in said and "does not exist" in said
    (tmp_path / "jobs.toml").write_text('[jobs.a]\ncommand = "true"\n')
    written = run_cli("status", "--html", "nowhere/status.html", cwd=tmp_path)
    assert written.returncode == 2 and "Traceback" not in written.stderr
    assert (
        "--html nowhere/status.html: " in written.stderr and "is not a directory" in written.stderr
    )
    assert not (tmp_path / ".cronflow").exists()  # refused before anything was read or made
    printed = run_cli("status", "--html", "-", cwd=tmp_path)
    assert printed.returncode == 0 and printed.stdout.startswith("<!doctype html>")


def test_the_page_shows_each_assets_freshness(browser, tmp_path):
    (tmp_path / "jobs.toml").write_text(
        '[assets."crm <contacts>"]\nexternal = true\n'
        '[jobs.extract]\ncommand = "true"\nschedule = "0 6 * * *"\nproduces = ["raw.orders"]\n'
        '[jobs.load]\ncommand = "exit 1"\nuses = ["raw.orders", "crm <contacts>"]\n'
        'produces = ["warehouse.sales"]\n'
    )
    run_cli("run", "--date", "2026-01-14", cwd=tmp_path)
    assert run_cli("status", "--html", "page.html", cwd=tmp_path).returncode == 0
    browser.open((tmp_path / "page.html").as_uri())
    shown = browser.evaluate(
        """Array.from(document.querySelectorAll("tr[data-asset]")).map(row =>
            [row.dataset.asset, row.querySelector(".word").textContent])"""
    )
    assert shown == [
        ["raw.orders", "stale"],  # fresh as of 2026-01-14: long ago by the real clock
        ["warehouse.sales", "new"],  # never produced, and no tick has found it yet
        ["crm <contacts>", "external"],
    ]
    assert browser.console_errors() == []
