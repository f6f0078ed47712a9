"""Several real cronflow processes at once, and one killed with SIGKILL mid-job."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

from cronflow.model import EventType, RunStatus
from cronflow.store import Store
from tests.conftest import CHILD_TZ, run_cli

EVERY_MINUTE = """
[jobs.a]
command = "echo a >> ran.txt"
schedule = "* * * * *"
[jobs.b]
command = "echo b >> ran.txt"
depends_on = ["a"]
[jobs.c]
command = "echo c >> ran.txt; sleep 0.2"
schedule = "* * * * *"
"""


def start_cli(*args: str, cwd: Path) -> subprocess.Popen:
    env = {"PATH": os.environ["PATH"], "TZ": CHILD_TZ}
    return subprocess.Popen([sys.executable, "-m", "cronflow", *args], cwd=cwd, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_ten_invocations_at_once_finish_each_run_exactly_once(tmp_path):
    (tmp_path / "jobs.toml").write_text(EVERY_MINUTE)
    invocations = [start_cli("run", cwd=tmp_path) for _ in range(10)]
    for invocation in invocations:
        _, stderr = invocation.communicate(timeout=120)
        assert invocation.returncode == 0, stderr
    events = Store(tmp_path / ".cronflow").read().events
    finished = Counter((e.job, e.logical_time) for e in events if e.event is EventType.FINISHED)
    assert finished and set(finished.values()) == {1}
    assert {job for job, _ in finished} == {"a", "b", "c"}
    lines = (tmp_path / "ran.txt").read_text().split()
    assert len(lines) == sum(finished.values())


KILLED = """
[jobs.slow]
command = '''
echo "$CRONFLOW_ATTEMPT $$" >> attempts.txt
[ "$CRONFLOW_ATTEMPT" -ge 2 ] || exec sleep 60
'''
schedule = "* * * * *"
retries = 2
"""


def test_a_run_whose_cronflow_was_killed_is_abandoned_then_retried(tmp_path):
    (tmp_path / "jobs.toml").write_text(KILLED)
    attempts = tmp_path / "attempts.txt"
    first = start_cli("run", cwd=tmp_path)
    while first.poll() is None and not attempts.exists():
        time.sleep(0.01)  # wait for the job to have started (a readiness handshake)
    orphan = int(attempts.read_text().split()[1])
    os.kill(first.pid, signal.SIGKILL)
    first.wait()
    try:
        second = run_cli("run", "--verbose", cwd=tmp_path)
        assert second.returncode == 0, second.stderr
    finally:
        os.kill(orphan, signal.SIGKILL)  # the job itself outlives a killed cronflow
    events = Store(tmp_path / ".cronflow").read().events
    killed_key = events[0].key
    trail = [(e.event.value, e.attempt) for e in events if e.key == killed_key]
    assert trail == [("started", 1), ("abandoned", 1), ("started", 2), ("finished", 2)]
    assert len({e.run_id for e in events if e.key == killed_key}) == 1
    abandoned = [e for e in events if e.event is EventType.ABANDONED][0]
    assert f"pid {first.pid}" in abandoned.reason
    assert [e.status for e in events if e.key == killed_key][-1] is RunStatus.SUCCESS
