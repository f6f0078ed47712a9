"""A stopping cronflow abandons the deliveries still in flight, and records each so.

Every delivery has a bound on its whole exchange (a receiver that trickles a byte at a time
cannot hold cronflow past it; see test_pings and test_alerts). These tests give the bound
room (30 s and more) and stop cronflow while a receiver trickles: it must end within
background.STOP_GRACE and a margin, record the delivery once, as abandoned, and leave no
sender behind. (The daemon's heartbeat: test_daemon.)"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

from cronflow.model import EventType, RunStatus
from cronflow.state.store import Store
from cronflow.tell.background import STOP_GRACE
from tests.conftest import CHILD_TZ
from tests.waiting import wait_for

MARGIN = 12.0  # seconds for Python to start and stop, on a loaded machine


def start_run(folder: Path, *args: str, marker: str = "") -> subprocess.Popen:
    """`cronflow run ARGS` in a real process, as cron would start it."""
    env = {**os.environ, "TZ": CHILD_TZ, "CI": "true", "NO_COLOR": "1"}
    env.pop("CRONFLOW_JOBS", None)
    if marker:
        env["CRONFLOW_TEST_MARKER"] = marker  # inherited by the alert sender's child
    return subprocess.Popen(
        [sys.executable, "-m", "cronflow", "run", *args],
        cwd=folder,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def stop_and_time(process: subprocess.Popen) -> tuple[float, str]:
    process.send_signal(signal.SIGTERM)
    began = time.monotonic()
    _, stderr = process.communicate(timeout=120)
    return time.monotonic() - began, stderr


def processes_marked(marker: str) -> list[int]:
    """Live processes whose environment carries `marker` (a zombie's environment is empty)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if marker.encode() in (entry / "environ").read_bytes():
                    found.append(int(entry.name))
            except OSError:
                continue
    return found


def test_a_stopped_run_abandons_a_trickling_ping_and_records_it_once(tmp_path, monitor):
    monitor.mode = "trickle"
    (tmp_path / "jobs.toml").write_text(
        '[cronflow]\nping_timeout = "30s"\nshutdown_grace = "1s"\n'
        f'[jobs.slow]\ncommand = "sleep 60"\nping_url = "{monitor.check_url("slow")}"\n'
    )
    process = start_run(tmp_path, "--job", "slow")  # a manual run pings (a backfill never)
    try:
        wait_for(lambda: monitor.pings("slow"), "the start ping")
    finally:
        took, stderr = stop_and_time(process)
    # Three tries of 30 s would be the bound; stopping gives the ping STOP_GRACE.
    assert took < 1 + STOP_GRACE + MARGIN, took
    assert "Traceback" not in stderr
    events = Store(tmp_path / ".cronflow").read().events
    [finished] = [e for e in events if e.event is EventType.FINISHED]
    assert finished.status is RunStatus.INTERRUPTED
    [ping] = [e for e in events if e.event is EventType.PING]
    assert ping.ping["signal"] == "start" and ping.ping["tries"] == 1
    assert ping.ping["delivery"] == "abandoned: cronflow stopped while it was being sent"
    assert ping.run_id == finished.run_id
    # Nothing is left to record it a second time: a new run reads the same single record.
    later = [e for e in Store(tmp_path / ".cronflow").read().events if e.event is EventType.PING]
    assert len(later) == 1


def test_a_stopped_run_abandons_a_trickling_alert_and_kills_its_sender(tmp_path, receiver):
    receiver.mode = "trickle"
    marker = uuid.uuid4().hex
    (tmp_path / "jobs.toml").write_text(
        f'[alerts]\nurls = ["{receiver.url()}"]\ntimeout = "60s"\n'
        '[jobs.broken]\ncommand = "exit 3"\n'
    )
    process = start_run(tmp_path, "--date", "2026-01-14", marker=marker)
    try:
        wait_for(lambda: not receiver.received.empty(), "the failure alert to arrive")
    finally:
        took, stderr = stop_and_time(process)
    assert took < STOP_GRACE + MARGIN, took
    assert "Traceback" not in stderr
    events = Store(tmp_path / ".cronflow").read().events
    [alert] = [e for e in events if e.event is EventType.ALERT]
    assert alert.alert["on"] == "failure" and alert.alert["delivered"] == 0
    assert alert.alert["targets"] == [
        {
            "target": "(every target)",
            "delivery": "abandoned: cronflow stopped while it was being sent",
        }
    ]
    # The sender (a child process that would trickle on for a minute) was stopped with it.
    wait_for(lambda: not processes_marked(marker), "the alert sender to end", within=30)
