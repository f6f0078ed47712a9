"""`cronflow top`: every screen and action through Textual's headless pilot (keys in, what the
widgets show out), over a state directory real `cronflow` commands filled; and the real
program in tmux at 80x24 beside a real daemon. Actions are checked by their effects: the
jobs' own output files, the pauses file."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest
from textual.widgets import DataTable, RichLog, Static

from cronflow.clock import SystemClock
from cronflow.state.store import Store
from cronflow.views.reading import Reader
from cronflow.views.top_app import Confirm, TopApp
from cronflow.views.top_screens import (
    AssetsScreen,
    GraphScreen,
    JobsScreen,
    OutputScreen,
    RunsScreen,
)
from tests.conftest import CHILD_TZ, load, run_cli
from tests.dashboards import filled
from tests.system_tools import installed

SLOW = """
[jobs.slow]
command = 'echo first line; while [ ! -e go ]; do sleep 0.01; done; echo second line'
"""


@pytest.fixture
def world(tmp_path: Path) -> Path:
    return filled(tmp_path, SLOW)


def app_of(folder: Path, read_only: bool = False) -> TopApp:
    jobfile = load(folder / "jobs.toml")
    reader = Reader(jobfile, Store(jobfile.settings.state_dir), SystemClock().now)
    command = [sys.executable, "-m", "cronflow"]
    return TopApp(reader, command, folder / "jobs.toml", read_only=read_only)


def drive(app: TopApp, scenario: Callable[..., Awaitable[None]]) -> None:
    async def run() -> None:
        async with app.run_test(size=(120, 40)) as pilot:
            await pilot.pause()
            await scenario(pilot)

    asyncio.run(run())


async def until(pilot, condition: Callable[[], bool], what: str, within: float = 60) -> None:
    """Let the app run until `condition` holds (its timers and workers meanwhile)."""
    deadline = time.monotonic() + within
    while not condition():
        assert time.monotonic() < deadline, f"no {what} within {within}s"
        await pilot.pause(0.05)


def rows(screen) -> dict[str, list[str]]:
    table = screen.query_one(DataTable)
    return {str(key.value): [str(cell) for cell in table.get_row(key)] for key in table.rows}


def effects(folder: Path) -> list[str]:
    path = folder / "effects"
    return path.read_text().splitlines() if path.exists() else []


def test_the_jobs_screen_shows_each_job_and_the_header_what_failed(world):
    async def scenario(pilot) -> None:
        shown = rows(pilot.app.screen)
        assert shown["extract"][3] == "success" and shown["load"][3] == "failed"
        assert shown["load"][6] == "1"  # its failing streak
        assert shown["slow"][3] == "never run"
        summary = str(pilot.app.screen.query_one("#summary", Static).content)
        assert summary.startswith("1 failing, 0 running, 1 healthy, 1 never run")
        await pilot.press("slash", "l", "o", "a")
        assert list(rows(pilot.app.screen)) == ["load"]
        await pilot.press("escape")
        assert len(rows(pilot.app.screen)) == 3
        await pilot.press("question_mark")  # the keys
        help_text = str(pilot.app.screen.query_one("#help", Static).content)
        assert "enter  a job's runs" in help_text and "r  run it now" in help_text
        await pilot.press("escape")
        assert isinstance(pilot.app.screen, JobsScreen)

    drive(app_of(world), scenario)


def test_enter_twice_reaches_a_failed_runs_output_with_its_secret_masked(world):
    async def scenario(pilot) -> None:
        await pilot.press("down", "enter")  # load's runs
        assert isinstance(pilot.app.screen, RunsScreen)
        (run,) = rows(pilot.app.screen).values()
        assert run[:3] == ["2026-01-14 06:00", "failed", "1/1"] and run[4] == "3"
        await pilot.press("enter")  # its output
        assert isinstance(pilot.app.screen, OutputScreen)
        await pilot.press("e")  # stderr
        log = pilot.app.screen.query_one(RichLog)
        await until(pilot, lambda: len(log.lines) == 1, "the stderr line")
        assert log.lines[0].text == "token *** refused"
        await pilot.press("escape", "escape")
        assert isinstance(pilot.app.screen, JobsScreen)

    drive(app_of(world), scenario)


def test_a_running_runs_output_is_followed(world):
    running = subprocess.Popen(
        [sys.executable, "-m", "cronflow", "run", "--job", "slow", "--jobs", "jobs.toml"],
        cwd=world,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={**os.environ, "TZ": CHILD_TZ},
    )

    async def scenario(pilot) -> None:
        table = lambda: rows(pilot.app.screen)  # noqa: E731
        await until(pilot, lambda: table()["slow"][3] == "running", "slow running")
        await pilot.press("down", "down", "enter", "enter")
        log = pilot.app.screen.query_one(RichLog)
        await until(pilot, lambda: [s.text for s in log.lines] == ["first line"], "line 1")
        (world / "go").touch()
        await until(pilot, lambda: len(log.lines) == 2, "the line written after")
        assert log.lines[1].text == "second line"
        title = pilot.app.screen.query_one("#title", Static)
        await until(pilot, lambda: "(ended)" in str(title.content), "the run's end")

    try:
        drive(app_of(world), scenario)
    finally:
        (world / "go").touch()
        running.wait(timeout=60)


def test_the_graph_and_assets_screens(world):
    async def scenario(pilot) -> None:
        await pilot.press("g")
        assert isinstance(pilot.app.screen, GraphScreen)
        graph = str(pilot.app.screen.query_one("#graph", Static).content)
        assert "extract  [daily at 06:00 (UTC)]  (success)" in graph
        assert "└── load  [after extract]  (failed)" in graph
        await pilot.press("escape", "a")
        assert isinstance(pilot.app.screen, AssetsScreen)
        assert rows(pilot.app.screen)["raw"][:3] == ["raw", "extract", "2026-01-14 06:00"]

    drive(app_of(world), scenario)


def test_run_now_rerun_and_pause_ask_first_then_do_what_the_command_does(world):
    async def scenario(pilot) -> None:
        app = pilot.app
        await pilot.press("r")  # extract, run now
        assert isinstance(app.screen, Confirm)
        await pilot.press("n")  # no: nothing happens
        assert isinstance(app.screen, JobsScreen) and len(effects(world)) == 2
        await pilot.press("r", "y")
        await app.workers.wait_for_complete()
        assert len(effects(world)) == 3 and effects(world)[-1].startswith("extract ")
        assert app.said[-1].startswith("cronflow run: ")
        await pilot.press("down", "enter", "x", "y")  # load's failed run, again
        await app.workers.wait_for_complete()
        assert effects(world)[-1] == "load 2026-01-14T06:00:00+00:00"
        await pilot.press("escape", "p", "y")  # pause load
        await app.workers.wait_for_complete()
        paused = json.loads((world / ".cronflow" / "paused.json").read_text())["jobs"]
        assert list(paused) == ["load"]
        await until(pilot, lambda: rows(app.screen)["load"][0] == "load (paused)", "the mark")
        await pilot.press("p", "y")  # and resume it
        await app.workers.wait_for_complete()
        await until(pilot, lambda: rows(app.screen)["load"][0] == "load", "the mark gone")

    drive(app_of(world), scenario)


def test_read_only_asks_nothing_and_does_nothing(world):
    async def scenario(pilot) -> None:
        await pilot.press("r", "p")
        assert isinstance(pilot.app.screen, JobsScreen)
        assert pilot.app.said == ["read-only (cronflow top --read-only): no action"] * 2
        assert len(effects(world)) == 2

    drive(app_of(world, read_only=True), scenario)


def test_top_in_tmux_at_80_by_24_beside_a_real_daemon(tmp_path):
    missing = installed("tmux", "tmux")
    if missing:
        pytest.skip(missing)
    (tmp_path / "jobs.toml").write_text(
        '[cronflow]\ntimezone = "UTC"\n'
        "[jobs.tick]\ncommand = 'echo tick $CRONFLOW_LOGICAL_TIME >> effects'\n"
        'schedule = "* * * * *"\n'
        "[jobs.after]\ncommand = 'echo after'\ndepends_on = [\"tick\"]\n"
    )
    environment = {**os.environ, "TZ": CHILD_TZ, "CRONFLOW_JOBS": str(tmp_path / "jobs.toml")}
    daemon = subprocess.Popen(
        [sys.executable, "-m", "cronflow", "daemon"],
        cwd=tmp_path,
        env=environment,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    session = f"cronflow-top-{os.getpid()}"
    command = f"{sys.executable} -m cronflow top --read-only"
    tmux = ["tmux", "-L", session]
    try:
        subprocess.run(
            [*tmux, "new-session", "-d", "-s", session, "-x", "80", "-y", "24", command],
            cwd=tmp_path,
            env={k: v for k, v in environment.items() if k != "TMUX"},
            check=True,
        )

        def screen() -> str:
            shown = subprocess.run(
                [*tmux, "capture-pane", "-p", "-t", session], capture_output=True, text=True
            )
            return shown.stdout

        wait = lambda condition, what: _wait(condition, what)  # noqa: E731
        wait(lambda: "tick" in screen() and "after" in screen(), "the jobs on screen")
        wait(lambda: "success" in screen(), "a run by the daemon, shown")
        lines = screen().splitlines()
        assert len(lines) == 24 and max(map(len, lines)) <= 80
        subprocess.run([*tmux, "send-keys", "-t", session, "Enter"], check=True)
        wait(lambda: "runs of tick, newest first" in screen(), "tick's runs")
        subprocess.run([*tmux, "send-keys", "-t", session, "q"], check=True)
    finally:
        subprocess.run([*tmux, "kill-server"], capture_output=True)
        daemon.terminate()
        daemon.wait(timeout=60)


def _wait(condition: Callable[[], bool], what: str, within: float = 120) -> None:
    from tests.waiting import wait_for

    wait_for(condition, what, within)


def test_without_a_terminal_top_says_so_and_exits_2(world):
    done = run_cli("top", "--jobs", "jobs.toml", cwd=world)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert "cronflow top draws in a terminal, and this is none" in done.stderr
