"""Several real cronflow processes at once, and one killed with SIGKILL mid-job."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from cronflow.model import EventType, RunStatus
from cronflow.state.store import Store
from tests.conftest import CHILD_TZ, run_cli
from tests.waiting import wait_for

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
    return subprocess.Popen(
        [sys.executable, "-m", "cronflow", *args],
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


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
retries = 2
retry_delay = "0s"
"""


def test_a_killed_cronflows_job_is_never_run_beside_itself_and_its_outcome_is_kept(tmp_path):
    """kill -9 of cronflow leaves its job running: later invocations leave that run alone
    (status says orphaned) until its processes end, then record how it really ended and
    retry it with the same run id and the next attempt."""
    (tmp_path / "jobs.toml").write_text(KILLED)
    attempts = tmp_path / "attempts.txt"
    first = start_cli("run", "--date", "2026-01-14", cwd=tmp_path)
    wait_for(lambda: attempts.exists() and attempts.read_text().endswith("\n"), "first attempt")
    orphan = int(attempts.read_text().split()[1])
    group = os.getpgid(orphan)
    os.kill(first.pid, signal.SIGKILL)
    first.wait()
    try:
        for command in (("run",), ("run", "--date", "2026-01-14")):
            again = run_cli(*command, cwd=tmp_path)
            assert again.returncode == 0, again.stderr
        assert attempts.read_text().count("\n") == 1  # never started beside the orphan
        status = run_cli("status", "--json", cwd=tmp_path)
        assert (
            f"orphaned: its cronflow (pid {first.pid}) is gone; the job (pid {group}) runs on"
            in status.stdout
        )
    finally:
        os.kill(orphan, signal.SIGKILL)  # the job ends (killed): its wrapper writes 137
    started = [
        e for e in Store(tmp_path / ".cronflow").read().events if e.event is EventType.STARTED
    ][0]
    exit_file = Path(started.output["exit"])
    wait_for(lambda: exit_file.read_bytes().startswith(b"exit"), "exit status of the orphan")
    third = run_cli("run", "--verbose", cwd=tmp_path)
    assert third.returncode == 0, third.stderr
    events = Store(tmp_path / ".cronflow").read().events
    trail = [(e.event.value, e.attempt, e.exit_code) for e in events if e.key == started.key]
    assert trail == [
        ("started", 1, None),
        ("finished", 1, 137),
        ("started", 2, None),
        ("finished", 2, 0),
    ]
    assert len({e.run_id for e in events if e.key == started.key}) == 1
    recovered = [e for e in events if e.event is EventType.FINISHED][0]
    assert f"cronflow (pid {first.pid}) stopped" in recovered.reason
    assert started.process is not None and started.process.pgid == group
    assert attempts.read_text().split()[::2] == ["1", "2"]  # the effect: one try each


HELD_OPEN = """
[jobs.held]
command = 'echo began >> effects.txt; while [ ! -e release ]; do sleep 0.02; done'
"""


def test_removing_the_lock_directory_never_lets_a_running_run_start_again(tmp_path):
    """Free locks prove nothing: the job's process group still lives, so it still runs."""
    import shutil

    (tmp_path / "jobs.toml").write_text(HELD_OPEN)
    effects = tmp_path / "effects.txt"
    first = start_cli("run", "--date", "2026-01-14", cwd=tmp_path)
    try:
        wait_for(effects.exists, "the job to begin")
        shutil.rmtree(tmp_path / ".cronflow" / "locks")
        for rerun in ("failed", "all"):
            again = run_cli("run", "--date", "2026-01-14", "--rerun", rerun, cwd=tmp_path)
            assert again.returncode == 0, again.stderr
            assert "not run, running: cronflow pid" in again.stdout
        assert effects.read_text() == "began\n"
    finally:
        (tmp_path / "release").touch()
    assert first.wait(timeout=60) == 0
    assert effects.read_text() == "began\n"


FILLS_THE_DISK = """
[cronflow]
state_dir = "state"
[jobs.filler]
command = '''
echo ran >> {effects}
for line in $(seq 20); do printf '%0200d\\n' 0 >&2; done
{remove_reserve}
cat /dev/zero > {state}/filler 2>/dev/null
true
'''
"""


@pytest.fixture
def small_disk(tmp_path):
    """A 4 MiB tmpfs as the state directory: a disk that really fills up."""
    state = tmp_path / "state"
    state.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=4m,mode=700", "tmpfs", str(state)],
        capture_output=True,
        text=True,
    )
    if mounted.returncode != 0:
        pytest.skip(
            f"cannot mount a small tmpfs to fill up ({mounted.stderr.strip()}); "
            "this needs root with CAP_SYS_ADMIN"
        )
    yield state
    subprocess.run(["umount", "-l", str(state)], check=True)


@pytest.mark.parametrize("reserve", ["kept", "taken by the job"])
def test_a_run_that_succeeded_on_a_full_disk_is_never_run_again(tmp_path, small_disk, reserve):
    """The job fills the disk, then succeeds, with 4 KB of stderr that its `finished` line
    carries (more than the log's last page holds). With the reserve, the line is written;
    without it, a clear error, and the exit status file keeps the truth. Either way, once
    space is back, it never runs again."""
    effects = tmp_path / "effects.txt"
    (tmp_path / "jobs.toml").write_text(
        FILLS_THE_DISK.format(
            effects=effects,
            state=small_disk,
            remove_reserve=f"rm {small_disk}/reserve" if reserve != "kept" else "",
        )
    )
    first = run_cli("run", "--date", "2026-01-14", cwd=tmp_path)
    assert "Traceback" not in first.stderr
    if reserve == "kept":
        assert first.returncode == 0 or "cannot bring the run index" in first.stderr
        assert any(e.event is EventType.FINISHED for e in Store(small_disk).read().events)
    else:
        assert first.returncode == 1 and "cannot write the run log" in first.stderr
    (small_disk / "filler").unlink()
    for _ in range(2):
        again = run_cli("run", "--date", "2026-01-14", cwd=tmp_path)
        assert again.returncode == 0, again.stderr
    assert effects.read_text() == "ran\n"
    finished = [e for e in Store(small_disk).read().events if e.event is EventType.FINISHED]
    assert [(e.status, e.exit_code) for e in finished] == [(RunStatus.SUCCESS, 0)]
    assert (small_disk / "reserve").exists()  # held back again once space came back


def manual_history(tmp_path, state: Path, extra: str = ""):
    """A manual job run for 60 days a month ago, and once an hour ago: retention, due at
    the next tick, has runs to forget (and a snapshot to write)."""
    from cronflow.act.assemble import assemble
    from cronflow.decide import selection
    from cronflow.model import Rerun
    from tests.conftest import load
    from tests.fakes import FakeClock

    (tmp_path / "jobs.toml").write_text(
        f'[cronflow]\nstate_dir = "{state}"\nkeep_history_days = 1\n{extra}'
        '[jobs.manual]\ncommand = "true"\n'
    )
    jobfile = load(tmp_path / "jobs.toml")
    now = datetime.now(UTC)
    days = [(now - timedelta(days=90 - n)).date() for n in range(60)]
    for clock, dates in (
        (FakeClock(now - timedelta(days=30)), days),
        (FakeClock(now - timedelta(hours=1)), [(now - timedelta(hours=1)).date()]),
    ):
        chosen = selection.backfill(jobfile, ["manual"], dates, clock.now())
        assemble(jobfile, clock=clock).backfill(chosen, Rerun.ALL)
    return jobfile, now


def test_housekeeping_that_fails_never_stops_scheduling(tmp_path, receiver):
    """Retention cannot write its snapshot (a directory stands in its way): the tick goes
    on, says why, alerts once, and retention is done at its next turn once it can be."""
    from cronflow.act.assemble import assemble
    from cronflow.state.layout import SNAPSHOT_NAME
    from tests.fakes import FakeClock

    state = tmp_path / "state"
    jobfile, now = manual_history(tmp_path, state, f'[alerts]\nurls = ["{receiver.url()}"]\n')
    (state / SNAPSHOT_NAME).mkdir()
    ticked = run_cli("run", cwd=tmp_path)
    assert ticked.returncode == 0 and "Traceback" not in ticked.stderr, ticked.stderr
    assert "cannot forget old history" in ticked.stderr, ticked.stderr
    assert Store(state).read_stamp("last-tick") is not None  # it decided, as ever
    assert [p.name for p in state.glob(f"{SNAPSHOT_NAME}.*")] == []  # no half copy left
    later = FakeClock(now + timedelta(days=1, hours=1))  # retention's next turn: still not
    assemble(jobfile, clock=later).tick()
    assemble(jobfile, clock=later).executor.alerter.wait()
    titles = [message.body["title"] for message in receiver.messages()]
    assert len([t for t in titles if "cannot forget old history" in t]) == 1  # alerted once
    (state / SNAPSHOT_NAME).rmdir()
    clock = FakeClock(now + timedelta(days=2, hours=2))  # the turn after
    assemble(jobfile, clock=clock).tick()
    assert Store(state).read_text_stamp("housekeeping-alerted") == ""  # it worked again


def fill(disk: Path, leave: int) -> Path:
    """Fill the disk with one file, but for `leave` bytes (unbuffered: nothing is left to
    write when it closes)."""
    filler = disk / "filler"
    with open(filler, "wb", buffering=0) as filling, contextlib.suppress(OSError):
        while True:
            filling.write(b"\0" * 65536)
    os.truncate(filler, max(0, filler.stat().st_size - leave))
    return filler


def test_the_disk_full_reserve_serves_the_index_and_comes_back_with_room(tmp_path, small_disk):
    """Once, the reserve was taken back with 1 MiB free, leaving 72 KiB, and then every
    command failed "database or disk is full". It comes back only when twice its size is
    free; and on a nearly full disk, commands still read and record what the log holds."""
    manual_history(tmp_path, small_disk)
    (small_disk / "reserve").unlink()  # given up on an earlier full disk
    filler = fill(small_disk, 1536 * 1024)
    assert run_cli("run", cwd=tmp_path).returncode == 0
    assert not (small_disk / "reserve").exists()  # 1.5 MiB free: not yet
    filler.unlink()
    again = run_cli("run", "--date", "2026-01-14", "--rerun", "all", cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    assert (small_disk / "reserve").exists()  # room again: held back once more
    fill(small_disk, 16 * 1024)
    for command in (["run", "--date", "2026-01-14", "--rerun", "all"], ["status"], ["history"]):
        result = run_cli(*command, cwd=tmp_path)
        assert "Traceback" not in result.stderr, (command, result.stderr)
        assert result.returncode in (0, 1), (command, result.stderr)
        assert "cannot bring the run index" not in result.stderr, (command, result.stderr)


def test_a_line_the_disk_fills_up_in_the_middle_of_is_cut_back_whole(tmp_path, small_disk):
    """A short write on a full disk once left part of a line in the log for good, and
    `status` warned about an unreadable line ever after. The log is cut back to where the
    line began: the write fails, and the log is as it was."""
    from cronflow.errors import StoreError
    from cronflow.model import RunEvent, RunKind

    store = Store(small_disk)
    store.prepare()
    (small_disk / "reserve").unlink()  # already given up: nothing left to fall back on
    at = datetime(2026, 1, 14, tzinfo=UTC)

    def event(tail: str) -> RunEvent:
        return RunEvent(
            event=EventType.FINISHED,
            job="a",
            logical_time=at,
            run_id="r",
            status=RunStatus.SUCCESS,
            kind=RunKind.BACKFILL,
            stderr_tail=tail,
        )

    store.append(event("first"))
    fill(small_disk, 0)
    before = store.log_path.read_bytes()
    for _ in range(3):  # each a line of several pages: it cannot fit, and is cut back
        with pytest.raises(StoreError):
            store.append(event("x" * 20_000))
        assert store.log_path.read_bytes() == before
    assert Store(small_disk).read().skipped == []


def test_an_attempt_whose_exit_status_file_finds_no_room_never_starts(tmp_path, small_disk):
    """The exit status file's blocks are reserved before the job starts, so that its outcome
    is known even if cronflow dies. On a full disk they cannot be: once, the job ran anyway,
    its cronflow was killed, no status could be written, and the run was taken for abandoned
    and run again (found by `make torture` with a disk that fills). Now it does not start."""
    from cronflow.act.runner import ShellRunner
    from tests.test_runner import spec

    effect = tmp_path / "effect"
    fill(small_disk, 0)
    result = ShellRunner().run(
        spec(
            tmp_path,
            f"echo ran >> {effect}",
            stdout=small_disk / "out",
            stderr=small_disk / "err",
            exit_status=small_disk / "exit",
        )
    )
    assert result.exit_code is None and result.error.startswith("not started: no room"), result
    assert not effect.exists()
