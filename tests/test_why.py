"""`cronflow why`: a table of real situations (made by real runs: backfills, ticks of a real
engine on an injected clock, a cronflow killed during its retry wait, a pause), each told by
the real command and checked for the story's key facts."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from cronflow.model import EventType
from cronflow.state.store import Store
from tests.conftest import load, real_engine, run_cli
from tests.fakes import FakeClock
from tests.waiting import wait_for

SIX = datetime(2026, 1, 14, 6, 0, tzinfo=UTC)


def why(folder: Path, *args: str) -> dict[str, list[str]]:
    """The story as JSON, its facts by topic."""
    done = run_cli("why", *args, "--json", cwd=folder)
    assert done.returncode == 0 and "Traceback" not in done.stderr, done.stderr
    story = json.loads(done.stdout)
    facts: dict[str, list[str]] = {}
    for fact in story["facts"]:
        facts.setdefault(fact["topic"], []).append(fact["text"])
    facts["logical_time"] = [story["logical_time"]]
    return facts


def cli(folder: Path, *args: str) -> None:
    done = run_cli(*args, cwd=folder)
    assert "Traceback" not in done.stderr, done.stderr


def write(folder: Path, text: str) -> Path:
    path = folder / "jobs.toml"
    path.write_text('[cronflow]\ntimezone = "UTC"\n' + text)
    return path


def succeeded(folder: Path) -> dict[str, list[str]]:
    write(folder, '[jobs.etl]\ncommand = "true"\nschedule = "0 6 * * *"\n')
    cli(folder, "run", "--date", "2026-01-14")
    return why(folder, "etl", "--date", "2026-01-14")


def upstream_failed(folder: Path) -> dict[str, list[str]]:
    write(
        folder,
        '[jobs.extract]\ncommand = "exit 3"\nschedule = "0 6 * * *"\n'
        '[jobs.load]\ncommand = "true"\ndepends_on = ["extract"]\n',
    )
    cli(folder, "run", "--date", "2026-01-14")
    return why(folder, "load", "--date", "2026-01-14")


def paused(folder: Path) -> dict[str, list[str]]:
    write(folder, '[jobs.etl]\ncommand = "true"\nschedule = "0 6 * * *"\n')
    cli(folder, "pause", "etl", "--reason", "warehouse migration")
    return why(folder, "etl")


def not_a_tick(folder: Path) -> dict[str, list[str]]:
    write(folder, '[jobs.etl]\ncommand = "true"\nschedule = "30 6 * * 1-5"\n')
    return why(folder, "etl", "--at", "2026-01-17T07:30")  # a Saturday, at 07:30


def in_a_dst_gap(folder: Path) -> dict[str, list[str]]:
    write(
        folder,
        '[jobs.etl]\ncommand = "true"\nschedule = "30 2 * * *"\ntimezone = "Europe/Berlin"\n',
    )
    return why(folder, "etl", "--date", "2026-03-29")


def jittered(folder: Path) -> dict[str, list[str]]:
    write(folder, '[jobs.etl]\ncommand = "true"\nschedule = "0 6 * * *"\nrandom_delay = "30m"\n')
    return why(folder, "etl", "--at", "2026-01-14T06:00")


def missed(folder: Path) -> dict[str, list[str]]:
    """Hourly; cronflow decides at 06:00 and next at 09:00: catchup = latest runs 09:00,
    records 07:00 and 08:00 missed."""
    path = write(folder, '[jobs.etl]\ncommand = "true"\nschedule = "0 * * * *"\n')
    clock = FakeClock(SIX + timedelta(seconds=30))
    real_engine(load(path), clock).tick()
    clock.advance(timedelta(hours=3))
    real_engine(load(path), clock).tick()
    return why(folder, "etl", "--at", "2026-01-14T07:00")


def overlapping(folder: Path) -> dict[str, list[str]]:
    """The 06:00 run is still running when the 07:00 tick comes: overlap = skip."""
    (folder / "hold").touch()
    path = write(
        folder,
        '[jobs.etl]\ncommand = "while [ -e hold ]; do sleep 0.02; done"\nschedule = "0 * * * *"\n',
    )
    clock = FakeClock(SIX + timedelta(seconds=30))
    first = threading.Thread(target=real_engine(load(path), clock).tick)
    first.start()
    store = Store(folder / ".cronflow")
    wait_for(lambda: any(e.event is EventType.STARTED for e in store.read().events), "start")
    clock.advance(timedelta(hours=1))
    real_engine(load(path), clock).tick()
    try:
        return why(folder, "etl", "--at", "2026-01-14T07:00")
    finally:
        (folder / "hold").unlink()
        first.join(timeout=60)


def retry_owed(folder: Path) -> dict[str, list[str]]:
    """A cronflow killed (-9) while it waits an hour to retry: the try stays owed."""
    write(
        folder,
        '[jobs.etl]\ncommand = "exit 1"\nschedule = "0 6 * * *"\nretries = 2\nretry_delay = "1h"\n',
    )
    waiting = subprocess.Popen(
        [sys.executable, "-m", "cronflow", "run", "--date", "2026-01-14"],
        cwd=folder,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={**os.environ, "CI": "true"},
    )
    store = Store(folder / ".cronflow")
    wait_for(lambda: any(e.event is EventType.FINISHED for e in store.read().events), "try 1")
    os.kill(waiting.pid, signal.SIGKILL)
    waiting.wait()
    return why(folder, "etl", "--date", "2026-01-14")


def future(folder: Path) -> dict[str, list[str]]:
    write(folder, '[jobs.etl]\ncommand = "true"\nschedule = "0 6 * * *"\n')
    return why(folder, "etl", "--at", "2099-01-14T06:00")


SITUATIONS: dict[str, tuple[Callable[[Path], dict[str, list[str]]], dict[str, str]]] = {
    "succeeded": (succeeded, {"run": "already done: run 20260114T060000Z-", "day": "1 success"}),
    "upstream failed": (
        upstream_failed,
        {
            "upstreams": "extract @ 2026-01-14T06:00:00+00:00 failed",
            "run_if": "run_if = all_success: not met, upstream_failed",
            "to do": "cronflow run --date 2026-01-14 --job extract --downstream",
        },
    ),
    "paused": (paused, {"pause": "until resumed: warehouse migration"}),
    "not a tick": (
        not_a_tick,
        {
            "schedule": "minute 30 matches, hour 6 does not match, day-of-month * matches, "
            "month * matches, day-of-week 1-5 does not match",
            "logical_time": "2026-01-16T06:30:00+00:00",  # Friday's
        },
    ),
    "DST gap": (in_a_dst_gap, {"zone": "did not exist (clocks jumped forward)"}),
    "jitter": (jittered, {"jitter": "(random_delay)"}),
    "missed": (missed, {"run": "missed: one of the 2 tick(s) recorded missed up to 2026-01-14T08"}),
    "overlap": (
        overlapping,
        {"run": "skipped", "overlap": "holds the job's lock; overlap = skip"},
    ),
    "retry owed": (retry_owed, {"retry": "try 2 of 3 is owed, at 2026-"}),
    "future": (future, {"run": "not yet: it is in the future"}),
}


@pytest.mark.parametrize("situation", SITUATIONS)
def test_why_tells_the_key_facts_of_each_situation(situation, tmp_path):
    make, expected = SITUATIONS[situation]
    facts = make(tmp_path)
    for topic, words in expected.items():
        assert topic in facts, f"no {topic} fact in {facts}"
        assert any(words in text for text in facts[topic]), f"{words!r} not in {facts[topic]}"


def test_why_in_plain_words_and_its_errors(tmp_path):
    write(tmp_path, '[jobs.etl]\ncommand = "true"\nschedule = "0 6 * * *"\n')
    told = run_cli("why", "etl", "--at", "2026-01-14T06:00", cwd=tmp_path)
    assert told.returncode == 0
    assert told.stdout.startswith("etl @ 2026-01-14T06:00:00+00:00\n")
    assert "  schedule  2026-01-14T06:00:00+00:00 is one of its ticks" in told.stdout
    unknown = run_cli("why", "etx", cwd=tmp_path)
    assert unknown.returncode == 2 and "etl" in unknown.stderr and "Traceback" not in unknown.stderr
    bad = run_cli("why", "etl", "--at", "yesterday", cwd=tmp_path)
    assert bad.returncode == 2 and "2026-01-14T06:00" in bad.stderr
