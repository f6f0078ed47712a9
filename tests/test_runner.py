"""ShellRunner with real processes."""

from __future__ import annotations

import os
import signal
import uuid
from contextlib import contextmanager
from pathlib import Path

from cronflow.act.runner import ProcessSpec, ShellRunner
from cronflow.state.outputs import cap_file, tail_of
from tests.waiting import wait_for


def spec(tmp_path: Path, command: str, **overrides) -> ProcessSpec:
    values = dict(
        command=command,
        cwd=tmp_path,
        env={"PATH": os.environ["PATH"]},
        stdout=tmp_path / "out",
        stderr=tmp_path / "err",
        exit_status=tmp_path / "exit",
        timeout=None,
        kill_grace=1.0,
    )
    return ProcessSpec(**{**values, **overrides})


def is_alive(pid: int) -> bool:
    """True if the process exists and is not a zombie waiting to be reaped."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state != "Z"


def test_exit_statuses_and_output_are_captured(tmp_path):
    runner = ShellRunner()
    ok = runner.run(spec(tmp_path, "echo out; echo err >&2"))
    assert ok.succeeded and ok.exit_code == 0
    assert (tmp_path / "out").read_text() == "out\n" and ok.stderr_tail == "err"
    assert runner.run(spec(tmp_path, "exit 3")).exit_code == 3
    missing = runner.run(spec(tmp_path, "no-such-command-here"))
    assert missing.exit_code == 127 and "not found" in missing.stderr_tail


def test_the_command_runs_as_sh_c_would_run_it(tmp_path):
    """No positional parameters, none of the wrapper's variables, $0 /bin/sh, its own exit
    status (a syntax error is 2, as with sh -c), a command of several lines, and $$ is the
    command's own shell: `kill $$` ends the command, not the wrapper."""
    runner = ShellRunner()
    shown = runner.run(spec(tmp_path, 'echo "$0|$#|$1|${go-unset}|${status-unset}"'))
    assert (tmp_path / "out").read_text() == "/bin/sh|0||unset|unset\n" and shown.succeeded
    assert runner.run(spec(tmp_path, "if then fi")).exit_code == 2
    assert runner.run(spec(tmp_path, "x=1\nexit $((x + 6))")).exit_code == 7
    assert runner.run(spec(tmp_path, "kill -s TERM $$; sleep 5")).exit_code == 128 + 15


def test_stdin_is_empty(tmp_path):
    result = ShellRunner().run(spec(tmp_path, "cat; echo end"))
    assert result.succeeded and (tmp_path / "out").read_text() == "end\n"


def test_output_files_are_private(tmp_path):
    ShellRunner().run(spec(tmp_path, "echo secret"))
    assert (tmp_path / "out").stat().st_mode & 0o777 == 0o600


def test_a_timeout_kills_the_whole_process_group(tmp_path):
    command = "sleep 100 & echo $! > pids; sh -c 'sleep 100 & echo $! >> pids; wait' & sleep 100"
    result = ShellRunner().run(spec(tmp_path, command, timeout=0.3, kill_grace=0.3))
    assert result.timed_out and result.signal == 15
    pids = [int(p) for p in (tmp_path / "pids").read_text().split()]
    assert len(pids) == 2
    # SIGKILL lands when the kernel next schedules them: wait for that, not for the sleeps
    wait_for(lambda: not [pid for pid in pids if is_alive(pid)], "the group to die", within=10)


@contextmanager
def sigterm_ignored_from_birth():
    """Children started in the block ignore SIGTERM from their first instruction (an ignored
    disposition survives fork and exec), so no timeout can come before a `trap` would."""
    previous = signal.signal(signal.SIGTERM, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def living_processes_marked(marker: str) -> list[int]:
    """Pids of live (not zombie) processes whose environment holds `marker`."""
    found = []
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and marker.encode() in (entry / "environ").read_bytes():
                found.append(int(entry.name))
        except OSError:
            continue  # ended while we looked, or not ours to read
    return [pid for pid in found if is_alive(pid)]


def test_a_job_ignoring_sigterm_is_killed_after_the_grace(tmp_path):
    marker = f"CRONFLOW_TEST_MARK={uuid.uuid4().hex}"
    name, value = marker.split("=")
    env = {"PATH": os.environ["PATH"], name: value}
    with sigterm_ignored_from_birth():
        result = ShellRunner().run(
            spec(tmp_path, "sleep 100 & sleep 100", env=env, timeout=0.2, kill_grace=0.3)
        )
    assert result.timed_out and result.signal == 9
    wait_for(lambda: living_processes_marked(marker) == [], "the group to die", within=10)


def test_large_output_does_not_deadlock_and_is_capped(tmp_path):
    result = ShellRunner(output_limit=100_000).run(
        spec(tmp_path, "head -c 3000000 /dev/zero | tr '\\0' x; echo; echo the-end; exit 4")
    )
    assert result.exit_code == 4
    text = (tmp_path / "out").read_text()
    assert len(text) < 100_200 and "bytes cut here" in text and text.endswith("the-end\n")


def test_a_missing_working_directory_is_reported_not_raised(tmp_path):
    result = ShellRunner().run(spec(tmp_path, "true", cwd=tmp_path / "gone"))
    assert not result.succeeded and "could not start" in result.error


def test_tail_of_keeps_the_last_lines(tmp_path):
    path = tmp_path / "f"
    path.write_bytes(b"".join(b"line %d\n" % i for i in range(100)) + b"\xff bad utf8\n")
    tail = tail_of(path, lines=3)
    assert tail.splitlines() == ["line 98", "line 99", "\ufffd bad utf8"]


def test_cap_file_leaves_small_files_alone(tmp_path):
    path = tmp_path / "f"
    path.write_text("short")
    cap_file(path, 100)
    assert path.read_text() == "short"


def test_after_interrupt_nothing_more_starts(tmp_path):
    runner = ShellRunner()
    runner.interrupt(grace=0.1)
    result = runner.run(spec(tmp_path, "touch started"))
    assert result.interrupted and not result.succeeded
    assert not (tmp_path / "started").exists()


def test_interrupt_stops_a_running_process_group(tmp_path):
    import threading

    runner = ShellRunner()
    results = []
    worker = threading.Thread(
        target=lambda: results.append(runner.run(spec(tmp_path, "echo $$ > pid; sleep 30 & wait")))
    )
    worker.start()
    while not (tmp_path / "pid").exists() or not (tmp_path / "pid").read_text():
        pass  # the job has started
    runner.interrupt(grace=0.5)
    worker.join(timeout=10)
    [result] = results
    assert result.interrupted and result.signal == 15 and not result.timed_out


def test_a_stop_between_the_start_record_and_the_command_is_an_interrupted_try(tmp_path):
    """cronflow's stop can come after the attempt was recorded started and before its
    command began (the wrapper waits at its gate): the wrapper is stopped there, and the
    runner says the try was interrupted, never fails on the gate nobody reads any more.
    (Seen as a daemon test failing under load: the run's thread died, its end unrecorded.)"""
    runner = ShellRunner()
    marker = tmp_path / "began"
    result = runner.run(
        spec(tmp_path, f"touch {marker}; sleep 30"),
        on_start=lambda process: runner.interrupt(grace=1.0),  # the stop, right at the start
    )
    assert result.interrupted and result.exit_code is None
    assert not marker.exists()  # its command never began
