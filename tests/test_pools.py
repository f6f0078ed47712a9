"""Pools: `[pools.NAME] slots = N` and a job's `pool`. At most N slots are in use across
every cronflow process of the state directory, held by the runs' own processes (a kill -9
of cronflow frees nothing early); a run waits in line, oldest logical time first, then
higher `pool_priority`, and `pool_timeout` ends the wait. Everything here runs real
`cronflow` processes; concurrency is counted from the jobs' own effects."""

from __future__ import annotations

import json
import os
import signal
import subprocess
from pathlib import Path

import pytest

from tests.conftest import refused, run_cli, spawn_cli
from tests.waiting import wait_for

POOL = """
[cronflow]
timezone = "UTC"

[pools.db]
slots = {slots}
description = "the warehouse database: two connections to spare"
"""


def job(name: str, command: str, **keys: object) -> str:
    extra = "".join(f"{key} = {json.dumps(value)}\n" for key, value in keys.items())
    return f'[jobs.{name}]\ncommand = {json.dumps(command)}\nschedule = "0 6 * * *"\npool = "db"\n{extra}'


def finished(process: subprocess.Popen) -> str:
    out, err = process.communicate(timeout=120)
    assert "Traceback" not in err, err
    return out + err


def in_line(folder: Path) -> int:
    line = folder / ".cronflow" / "locks" / "db@pool.waiting"
    return len(os.listdir(line)) if line.exists() else 0


def started(folder: Path) -> list[str]:
    path = folder / "started"
    return path.read_text().split() if path.exists() else []


# A job that says it started, then waits for the test to let it go (no clock involved).
HELD = "echo {name} >> started; while [ ! -e go-{name} ]; do sleep 0.01; done"


def test_slots_are_never_exceeded_across_processes(tmp_path):
    # Six jobs of 0.2 s in a pool of 2, asked for by three processes at once. Each job
    # marks its start and end by creating and removing a file: the most present at any
    # moment, seen by each job at its start, is the concurrency.
    count = "mkdir -p live; touch live/$$; ls live | wc -l >> seen; sleep 0.2; rm live/$$"
    text = POOL.format(slots=2) + "".join(job(f"j{i}", count) for i in range(6))
    (tmp_path / "jobs.toml").write_text(text)
    runs = [spawn_cli(tmp_path, "run", "--job", f"j{i}", "--job", f"j{i + 3}") for i in range(3)]
    for process in runs:
        finished(process)
    seen = [int(line) for line in (tmp_path / "seen").read_text().split()]
    assert len(seen) == 6 and max(seen) <= 2
    assert (
        not (tmp_path / ".cronflow" / "locks" / "db@pool.waiting").exists()
        or in_line(tmp_path) == 0
    )


def test_the_line_goes_oldest_logical_time_first_then_by_priority(tmp_path):
    text = POOL.format(slots=1) + "".join(
        [
            job("blocker", HELD.format(name="blocker")),
            job("late", "echo late >> started"),
            job("early", "echo early >> started"),
            job("urgent", "echo urgent >> started", pool_priority=5),
        ]
    )
    (tmp_path / "jobs.toml").write_text(text)
    blocker = spawn_cli(tmp_path, "run", "--job", "blocker")
    wait_for(lambda: started(tmp_path) == ["blocker"], "blocker holding the slot")
    waiting = [spawn_cli(tmp_path, "run", "--date", "2026-01-02", "--job", "late")]
    wait_for(lambda: in_line(tmp_path) == 1, "late in line")
    waiting.append(spawn_cli(tmp_path, "run", "--date", "2026-01-01", "--job", "early"))
    wait_for(lambda: in_line(tmp_path) == 2, "early in line")
    waiting.append(spawn_cli(tmp_path, "run", "--date", "2026-01-01", "--job", "urgent"))
    wait_for(lambda: in_line(tmp_path) == 3, "urgent in line")
    status = json.loads(run_cli("status", "--json", cwd=tmp_path, env=_jobs(tmp_path)).stdout)
    said = {row["job"]: row["pool_wait"] for row in status["jobs"]}
    assert said["late"].startswith("waiting for pool db (1/1 in use by blocker @ ")
    assert said["blocker"] is None
    story = run_cli("why", "late", cwd=tmp_path, env=_jobs(tmp_path)).stdout
    assert "pool      takes 1 of pool db (1/1 in use by blocker @ " in story
    assert "its run waits, 3 of 3 in line" in story
    (tmp_path / "go-blocker").touch()
    for process in [blocker, *waiting]:
        finished(process)
    assert started(tmp_path) == ["blocker", "urgent", "early", "late"]


def test_a_kill_9_of_cronflow_keeps_the_slot_held_until_its_job_ends(tmp_path):
    text = POOL.format(slots=1) + job("blocker", HELD.format(name="blocker"))
    text += job("next", "echo next >> started")
    (tmp_path / "jobs.toml").write_text(text)
    blocker = spawn_cli(tmp_path, "run", "--job", "blocker")
    wait_for(lambda: started(tmp_path) == ["blocker"], "blocker holding the slot")
    blocker.send_signal(signal.SIGKILL)  # cronflow dies; its job goes on
    blocker.communicate(timeout=60)
    after = spawn_cli(tmp_path, "run", "--job", "next")
    wait_for(lambda: in_line(tmp_path) == 1, "next in line behind the orphaned job")
    assert started(tmp_path) == ["blocker"]
    (tmp_path / "go-blocker").touch()  # the orphaned job ends: its slot is free
    finished(after)
    assert started(tmp_path) == ["blocker", "next"]


def test_pool_timeout_ends_the_wait_as_a_failed_try_that_says_why(tmp_path):
    text = POOL.format(slots=1) + job("blocker", HELD.format(name="blocker"))
    text += job("impatient", "echo impatient >> started", pool_timeout="1s")
    (tmp_path / "jobs.toml").write_text(text)
    blocker = spawn_cli(tmp_path, "run", "--job", "blocker")
    wait_for(lambda: started(tmp_path) == ["blocker"], "blocker holding the slot")
    said = finished(spawn_cli(tmp_path, "run", "--job", "impatient"))
    (tmp_path / "go-blocker").touch()
    finished(blocker)
    assert started(tmp_path) == ["blocker"]  # it never started
    assert "impatient" in said and "failed" in said
    history = json.loads(run_cli("history", "--json", cwd=tmp_path, env=_jobs(tmp_path)).stdout)
    (failed,) = [run for run in history["runs"] if run["job"] == "impatient"]
    assert failed["status"] == "failed"
    assert "for pool db (1/1 in use by blocker @ " in failed["reason"]
    assert failed["reason"].endswith("pool_timeout = 0:00:01 ended the wait")


def _jobs(folder: Path) -> dict[str, str]:
    return {"CRONFLOW_JOBS": str(folder / "jobs.toml")}


@pytest.mark.parametrize(
    ("text", "said"),
    [
        ('[pools.db]\n[jobs.a]\ncommand = "true"\n', "has no slots"),
        (
            '[pools."../x"]\nslots = 1\n[jobs.a]\ncommand = "true"\n',
            'pool name "../x" is not allowed',
        ),
        ('[pools.db]\nslots = 0\n[jobs.a]\ncommand = "true"\n', "slots"),
        (
            '[pools.db]\nslots = 2\n[jobs.a]\ncommand = "true"\npool = "dbs"\n',
            '"dbs" is not a pool of this file. Did you mean "db"?',
        ),
        (
            '[pools.db]\nslots = 2\n[jobs.a]\ncommand = "true"\npool = "db"\npool_slots = 3\n',
            "takes 3 slots of pool db, which has 2: it could never run",
        ),
        ('[jobs.a]\ncommand = "true"\npool_timeout = "5m"\n', "pool_timeout without a pool"),
    ],
)
def test_bad_pools_are_refused_with_what_to_do(tmp_path, text, said):
    message = refused(tmp_path, text)
    assert said in message, message
