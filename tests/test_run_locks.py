"""A run's lock: one byte of the job's `JOB@runs.lock`, held by real processes.

Exclusive between processes and between threads of one process, kept by a child that
inherited it after its holder closed (or was killed), and costing no file per run."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cronflow.model import RunKey
from cronflow.state.locks import RUN_LOCKS_SUFFIX, Locks
from cronflow.state.store import Store

KEY = RunKey("report", datetime(2026, 1, 14, 6, 0, tzinfo=UTC))

HOLDER = """
import sys
from datetime import datetime
from pathlib import Path
from cronflow.model import RunKey
from cronflow.state.locks import Locks
key = RunKey(sys.argv[2], datetime.fromisoformat(sys.argv[3]))
with Locks(Path(sys.argv[1])).hold_run(key) as held:
    print("held" if held is not None else "busy", flush=True)
    sys.stdin.readline()
"""


def hold_in_another_process(directory: Path, key: RunKey) -> tuple[subprocess.Popen[str], str]:
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(directory), key.job, key.logical_time.isoformat()],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert holder.stdout is not None
    return holder, holder.stdout.readline().strip()


def is_free(locks: Locks, key: RunKey) -> bool:
    with locks.hold_run(key) as held:
        return held is not None


def test_a_run_held_by_another_process_is_busy_and_free_once_it_ends(tmp_path):
    locks = Locks(tmp_path)
    holder, said = hold_in_another_process(tmp_path, KEY)
    try:
        assert said == "held"
        assert not is_free(locks, KEY)
        assert is_free(locks, RunKey("report", KEY.logical_time + timedelta(minutes=1)))
        assert is_free(locks, RunKey("other", KEY.logical_time))
        second, said_second = hold_in_another_process(tmp_path, KEY)
        second.communicate("\n")
        assert said_second == "busy"
    finally:
        holder.communicate("\n")
    assert is_free(locks, KEY)


def test_a_killed_holder_frees_the_run(tmp_path):
    holder, said = hold_in_another_process(tmp_path, KEY)
    assert said == "held"
    holder.kill()
    holder.wait()
    assert is_free(Locks(tmp_path), KEY)


def test_a_child_that_inherited_the_lock_keeps_the_run_held_after_its_holder_let_go(tmp_path):
    locks = Locks(tmp_path)
    with locks.hold_run(KEY) as held:
        assert held is not None
        job = subprocess.Popen(["sleep", "60"], pass_fds=(held,))
    try:
        assert not is_free(locks, KEY)  # our copy is closed; the job's holds it
    finally:
        job.kill()
        job.wait()
    assert is_free(locks, KEY)


def test_one_run_taken_by_two_threads_at_once_goes_to_one(tmp_path):
    locks = Locks(tmp_path)
    results: list[bool] = []
    inside = threading.Barrier(8)

    def take() -> None:
        with locks.hold_run(KEY) as held:
            results.append(held is not None)
            inside.wait(timeout=30)  # every thread tries while the winner still holds it

    threads = [threading.Thread(target=take) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(results) == [False] * 7 + [True]


def test_runs_cost_no_file_each_and_prune_never_removes_the_jobs_lock_file(tmp_path):
    store = Store(tmp_path / "state")
    store.prepare()
    locks = Locks(store.lock_dir)
    for minute in range(100):
        assert is_free(locks, RunKey("report", KEY.logical_time + timedelta(minutes=minute)))
    legacy = store.lock_dir / "report@20200101T000000Z.lock"  # an older cronflow's run lock
    legacy.touch()
    assert sorted(path.name for path in store.lock_dir.iterdir()) == [
        legacy.name,
        f"report{RUN_LOCKS_SUFFIX}",
    ]
    year_ago = (datetime.now(UTC) - timedelta(days=365)).timestamp()
    for path in store.lock_dir.iterdir():
        os.utime(path, (year_ago, year_ago))
    assert store.prune(set(), older_than=datetime.now(UTC)) == 1
    assert [path.name for path in store.lock_dir.iterdir()] == [f"report{RUN_LOCKS_SUFFIX}"]


def test_a_logical_time_before_1970_has_a_lock_too(tmp_path):
    locks = Locks(tmp_path)
    old = RunKey("report", datetime(1960, 1, 1, tzinfo=UTC))
    with locks.hold_run(old) as held:
        assert held is not None
        assert not is_free(locks, old)
