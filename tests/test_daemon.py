"""The daemon: a real `cronflow daemon` process for signals and crashes; the same loop with a
fake clock for what it sleeps for.

New York 2024 fall back: 2024-11-03 02:00 EDT -> 01:00 EST, at 06:00Z.
"""

from __future__ import annotations

import json
import os
import queue
import re
import signal
import socket
import stat
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from cronflow.act.daemon import MAX_SLEEP, Daemon, notify_systemd
from cronflow.act.runner import ShellRunner
from cronflow.decide import schedule
from cronflow.model import EventType, RunStatus
from cronflow.state.store import Store
from cronflow.tell.background import STOP_GRACE
from tests.conftest import CHILD_TZ, load, run_cli
from tests.fakes import FakeClock
from tests.system_tools import installed
from tests.test_runner import is_alive
from tests.waiting import wait_for


class DaemonProcess:
    """`cronflow daemon` in a real process; `expect` reads its log up to a line (a handshake)."""

    def __init__(
        self, folder: Path, env: dict[str, str] | None = None, python: tuple[str, ...] = ()
    ) -> None:
        self.folder = folder
        self.lines: list[str] = []
        self.process = subprocess.Popen(
            [sys.executable, *python, "-m", "cronflow", "daemon", "--verbose"],
            cwd=folder,
            env={"PATH": os.environ["PATH"], "TZ": CHILD_TZ, **(env or {})},
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        self._incoming: queue.Queue = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        for line in self.process.stderr:
            self._incoming.put(line)
        self._incoming.put(None)  # the log ended

    def expect(self, words: str, within: float = 90) -> str:
        """Read the log until a line holds `words`; fail after `within` seconds."""
        deadline = time.monotonic() + within
        while True:
            try:
                line = self._incoming.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                raise AssertionError(f"no {words!r} within {within}s in {self.lines}") from None
            if line is None:
                raise AssertionError(f"daemon ended before {words!r}: {self.lines}")
            self.lines.append(line)
            if words in line:
                return line

    def job_started(self) -> int:
        """Wait until the long job has written its pid (a handshake, not a sleep); return it."""
        self.expect("long @")
        pid_file = self.folder / "long.pid"
        while self.process.poll() is None and not (pid_file.exists() and pid_file.read_text()):
            time.sleep(0.01)
        return int(pid_file.read_text())

    def finish(self, timeout: float = 60) -> int:
        code = self.process.wait(timeout=timeout)
        while (line := self._incoming.get(timeout=timeout)) is not None:
            self.lines.append(line)
        return code


LONG_JOB = """
[cronflow]
shutdown_grace = "{grace}"
[jobs.long]
command = 'echo $$ > long.pid; exec sleep 30'
schedule = "* * * * *"
retries = 1
retry_delay = "0s"
"""


def events(folder: Path):
    return Store(folder / ".cronflow").read().events


def test_sigterm_waits_the_grace_then_stops_and_records_interrupted(tmp_path):
    (tmp_path / "jobs.toml").write_text(LONG_JOB.format(grace="1s"))
    daemon = DaemonProcess(tmp_path)
    job = daemon.job_started()
    daemon.process.send_signal(signal.SIGTERM)
    assert daemon.finish() == 0
    log = "".join(daemon.lines)
    assert "running jobs get 1s to end" in log and "stopping the jobs still running" in log
    assert "cronflow daemon stopped" in log
    [finished] = [e for e in events(tmp_path) if e.event is EventType.FINISHED]
    assert finished.status is RunStatus.INTERRUPTED and finished.signal == signal.SIGTERM
    assert not is_alive(job)


def test_a_second_sigint_stops_at_once(tmp_path):
    (tmp_path / "jobs.toml").write_text(LONG_JOB.format(grace="1h"))
    daemon = DaemonProcess(tmp_path)
    daemon.expect("long @")
    daemon.process.send_signal(signal.SIGINT)
    daemon.expect("running jobs get 3600s to end")
    daemon.process.send_signal(signal.SIGINT)
    assert daemon.finish(timeout=30) == 0
    recorded = events(tmp_path)
    assert [e.status for e in recorded if e.event is EventType.FINISHED] == [
        RunStatus.INTERRUPTED
    ], (
        "the daemon said:\n"
        + "".join(daemon.lines)
        + "\nand recorded:\n"
        + "\n".join(f"{e.event} {e.status} attempt {e.attempt}: {e.reason}" for e in recorded)
    )


def test_an_interrupted_run_is_retried_at_the_next_start(tmp_path):
    (tmp_path / "jobs.toml").write_text(LONG_JOB.format(grace="0s"))
    daemon = DaemonProcess(tmp_path)
    daemon.expect("long @")
    daemon.process.send_signal(signal.SIGTERM)
    assert daemon.finish() == 0, daemon.lines
    interrupted_key = events(tmp_path)[0].key
    again = DaemonProcess(tmp_path)
    again.expect("attempt 2/2")
    again.process.send_signal(signal.SIGTERM)
    again.finish()
    trail = [(e.event.value, e.attempt) for e in events(tmp_path) if e.key == interrupted_key]
    # (Seen once under a full parallel suite: ('abandoned', 1) in place of the first daemon's
    # own 'finished'; its log, kept below, is what to read if it comes back.)
    assert trail[:3] == [("started", 1), ("finished", 1), ("started", 2)], daemon.lines


def test_after_kill_9_a_restarted_daemon_leaves_the_orphan_then_records_and_retries_it(tmp_path):
    (tmp_path / "jobs.toml").write_text(LONG_JOB.format(grace="0s"))
    daemon = DaemonProcess(tmp_path)
    orphan = daemon.job_started()
    daemon.process.kill()
    daemon.process.wait()
    again = DaemonProcess(tmp_path)
    try:
        again.expect("sleeping until")  # it decided once, with the orphan still running
        assert not any("attempt 2/2" in line for line in again.lines)
        assert is_alive(orphan)
    finally:
        os.kill(orphan, signal.SIGKILL)
    [started] = [e for e in events(tmp_path) if e.event is EventType.STARTED]
    exit_file = Path(started.output["exit"])
    deadline = time.monotonic() + 30
    while not exit_file.read_bytes().startswith(b"exit"):  # the orphan's wrapper recorded it
        assert time.monotonic() < deadline, "the orphan's exit status never came"
        time.sleep(0.01)
    again.process.send_signal(signal.SIGHUP)  # wake it now rather than within a minute
    again.expect("attempt 2/2")
    again.process.send_signal(signal.SIGTERM)
    again.finish()
    trail = [(e.event.value, e.attempt) for e in events(tmp_path) if e.key == started.key]
    assert trail[:3] == [("started", 1), ("finished", 1), ("started", 2)]
    assert [e.exit_code for e in events(tmp_path) if e.key == started.key][1] == 137


def test_only_one_daemon_per_state_directory(tmp_path):
    (tmp_path / "jobs.toml").write_text(LONG_JOB.format(grace="0s"))
    daemon = DaemonProcess(tmp_path)
    daemon.expect("cronflow daemon started")
    second = subprocess.run(
        [sys.executable, "-m", "cronflow", "daemon"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert second.returncode == 2
    assert f"another cronflow daemon (pid {daemon.process.pid})" in second.stderr
    daemon.process.send_signal(signal.SIGTERM)
    daemon.finish()


def test_sighup_reloads_an_edit_and_keeps_the_last_good_config_on_a_broken_one(tmp_path):
    jobs = tmp_path / "jobs.toml"
    jobs.write_text('[jobs.first]\ncommand = "true"\nschedule = "0 0 1 1 *"\n')
    daemon = DaemonProcess(tmp_path)
    daemon.expect("cronflow daemon started (pid")
    jobs.write_text(
        '[jobs.first]\ncommand = "true"\nschedule = "0 0 1 1 *"\n'
        '[jobs.second]\ncommand = "true"\nschedule = "0 0 1 1 *"\n'
    )
    daemon.process.send_signal(signal.SIGHUP)
    daemon.expect("reloaded")
    jobs.write_text('[jobs.first\ncommand = "true"\n')
    daemon.process.send_signal(signal.SIGHUP)
    error = daemon.expect("cannot be used; still running the last good version")
    assert "error:" in error
    daemon.expect("TOML syntax error")
    daemon.process.send_signal(signal.SIGTERM)
    assert daemon.finish() == 0
    assert "Traceback" not in "".join(daemon.lines)
    assert "nothing was run" not in "".join(daemon.lines)  # it went on running
    broken = run_cli("daemon", cwd=tmp_path)
    assert broken.returncode == 2 and "problem found; the daemon did not start." in broken.stderr


def test_the_daemon_warns_of_an_open_state_directory_and_refuses_an_unsafe_edit(tmp_path):
    jobs = tmp_path / "jobs.toml"
    jobs.write_text('[jobs.first]\ncommand = "true"\nschedule = "0 0 1 1 *"\n')
    state = tmp_path / ".cronflow"
    state.mkdir()
    state.chmod(0o755)
    daemon = DaemonProcess(tmp_path)
    daemon.expect(f"warning: the state directory {state} is open to group or others (mode 0755)")
    daemon.expect("cronflow daemon started (pid")
    if os.geteuid() == 0:  # only root refuses a jobs file others could change
        jobs.chmod(0o664)
        daemon.process.send_signal(signal.SIGHUP)
        daemon.expect("cannot be used; still running the last good version")
        daemon.expect(f"the jobs file is writable by group (mode 0664). Run: chmod go-w {jobs}")
    daemon.process.send_signal(signal.SIGTERM)
    assert daemon.finish() == 0
    assert stat.S_IMODE(state.stat().st_mode) == 0o755


def test_ready_is_sent_to_the_notify_socket(tmp_path):
    (tmp_path / "jobs.toml").write_text('[jobs.a]\ncommand = "true"\nschedule = "0 0 1 1 *"\n')
    address = str(tmp_path / "notify.sock")
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as listener:
        listener.bind(address)
        listener.settimeout(30)
        daemon = DaemonProcess(tmp_path, env={"NOTIFY_SOCKET": address})
        assert listener.recv(100) == b"READY=1"
        daemon.process.send_signal(signal.SIGTERM)
        assert listener.recv(100) == b"STOPPING=1"
        assert daemon.finish() == 0


def test_the_daemon_starts_without_the_command_line_framework(tmp_path):
    """typer and its click are about 7 MiB the daemon would carry for its whole life."""
    (tmp_path / "jobs.toml").write_text('[jobs.a]\ncommand = "true"\nschedule = "0 0 1 1 *"\n')
    daemon = DaemonProcess(tmp_path, python=("-X", "importtime"))
    daemon.expect("sleeping until")
    daemon.process.send_signal(signal.SIGTERM)
    assert daemon.finish() == 0
    imported = {line.rsplit("|", 1)[-1].strip() for line in daemon.lines if "import time:" in line}
    assert "cronflow.act.daemon" in imported and "sqlite3" in imported  # the probe sees imports
    assert not {"typer", "click", "rich", "filelock", "cronflow.cli.main"} & imported


def test_a_daemon_command_line_the_lean_start_does_not_know_goes_to_the_cli(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "cronflow", "daemon", "--bogus"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2 and "No such option" in result.stderr


def test_notify_does_nothing_outside_systemd(monkeypatch):
    monkeypatch.delenv("NOTIFY_SOCKET", raising=False)
    assert notify_systemd("READY=1") is False


def wait_for_handed_off_runs() -> None:
    """Join the daemon's execution threads: real time passes while real jobs run, so a fake
    clock must not jump past a tick while the previous tick's process still holds its lock."""
    for thread in threading.enumerate():
        if thread.name.startswith("cronflow-tick-"):
            thread.join(timeout=60)
            assert not thread.is_alive(), f"{thread.name} still runs after 60 s"


class DayClock(FakeClock):
    """Stops the daemon once a sleep would pass `end`; moves only once handed-off runs ended."""

    def __init__(self, start: datetime, end: datetime, daemon_stop) -> None:
        super().__init__(start)
        self.end = end
        self.daemon_stop = daemon_stop

    def sleep_until(self, when, wake) -> None:
        if when > self.end:
            self.daemon_stop()
            return
        wait_for_handed_off_runs()
        super().sleep_until(when, wake)


THREE_SCHEDULES = """
[cronflow]
timezone = "America/New_York"
[jobs.fixed]
command = "true"
schedule = "30 1 * * *"
[jobs.hourly]
command = "true"
schedule = "0 * * * *"
[jobs.quarter]
command = "true"
schedule = "7,22,37,52 * * * *"
"""


def test_over_a_dst_day_the_daemon_sleeps_until_each_tick_or_a_minute(write_jobs):
    """...or until housekeeping comes due, whichever is first; never longer."""
    path = write_jobs(THREE_SCHEDULES)
    jobfile = load(path)
    start = datetime(2024, 11, 3, 0, 0, 30, tzinfo=ZoneInfo("America/New_York")).astimezone(UTC)
    end = start + timedelta(hours=25)  # fall-back day: 25 real hours
    holder: list[Daemon] = []
    clock = DayClock(start, end, lambda: holder[0].request_stop())
    daemon = Daemon(jobs_path=path, clock=clock, runner=ShellRunner(), log=lambda line: None)
    holder.append(daemon)
    daemon.serve()
    wakes = clock.wake_times
    ticks = sorted(
        {
            tick
            for job in jobfile.jobs.values()
            for tick in schedule.schedule_of(job.cadence).ticks(start, end)
        }
    )
    # Housekeeping comes due too: output is pruned hourly from the first loop on (retention
    # daily, at the 24th of those hours).
    pruned = [start + timedelta(hours=hours) for hours in range(1, 26)]
    previous = start
    for wake in wakes:
        next_tick = min((t for t in [*ticks, *pruned] if t > previous), default=end)
        assert wake == min(next_tick, previous + MAX_SLEEP), (previous, wake)
        previous = wake
    assert set(ticks) <= set(wakes)
    assert len(wakes) == len(set(wakes))  # never twice for one instant: no busy wait
    # Every tick was run, or (if the stop at the end came first) handed to the next start.
    taken = {
        e.key
        for e in Store(jobfile.settings.state_dir).read().events
        if e.event in (EventType.STARTED, EventType.INTERRUPTED)
    }
    counts = {name: sum(key.job == name for key in taken) for name in jobfile.jobs}
    # 25 real hours, plus the 00:00 tick seen at first sight (30 s before the start)
    assert counts == {"fixed": 1, "hourly": 26, "quarter": 100}


class StepClock(FakeClock):
    """Each sleep waits for the test to say `step()`: the daemon moves one wake-up at a time."""

    def __init__(self, start: datetime) -> None:
        super().__init__(start)
        self.asleep: queue.Queue = queue.Queue()
        self._go = threading.Semaphore(0)

    def sleep_until(self, when, wake) -> None:
        self.asleep.put(when)
        self._go.acquire()
        super().sleep_until(when, wake)

    def step(self) -> None:
        self.release()
        self.asleep.get(timeout=30)  # the daemon went round its loop and sleeps again

    def release(self) -> None:
        self._go.release()


def test_an_edit_is_noticed_by_its_modification_time(write_jobs, receiver):
    path = write_jobs(f"""
        [alerts]
        urls = ["{receiver.url()}"]
        [jobs.first]
        command = "true"
        schedule = "0 0 1 1 *"
    """)
    clock = StepClock(datetime(2026, 1, 14, 12, 0, tzinfo=UTC))
    lines: list[str] = []
    daemon = Daemon(jobs_path=path, clock=clock, runner=ShellRunner(), log=lines.append)
    serving = threading.Thread(target=daemon.serve)
    serving.start()
    try:
        clock.asleep.get(timeout=30)
        path.write_text(path.read_text() + '[jobs.second]\ncommand = "true"\n')
        os.utime(path, (1, 1))  # a different modification time, whatever the file system
        clock.step()
        assert [line for line in lines if line.startswith("reloaded")] == [
            f"reloaded {path}: 2 jobs"
        ]
        path.write_text("[jobs.second\n")
        os.utime(path, (2, 2))
        clock.step()
        clock.step()  # no new edit: no second error, no second alert
        errors = [line for line in lines if line.startswith("error:")]
        assert len(errors) == 1 and "still running the last good version" in errors[0]
        alert = receiver.received.get(timeout=30)
        assert alert.body["title"].startswith("cronflow: jobs.toml has errors on ")
        assert "TOML syntax error" in alert.body["message"]
        assert receiver.received.empty()

        def recorded() -> list:  # like every alert, once its delivery ended; about the file
            return Store(path.parent / ".cronflow").read().host_events

        wait_for(recorded, "the alert's record")
        [record] = recorded()
        assert record.about == str(path) and record.alert["delivered"] == 1
        assert record.alert["title"] == alert.body["title"]
        good = f'[alerts]\nurls = ["{receiver.url()}"]\n[jobs.first]\ncommand = "true"\n'
        edits = [  # each once made the daemon die with a traceback
            good + '[jobs.second]\ncommand = "true"\nping_url = "http://[::1/x"\n',
            good + "[" + ".".join(["a"] * 1000) + "]\n",
        ]
        for number, edit in enumerate(edits, start=3):
            path.write_text(edit)
            os.utime(path, (number, number))
            clock.step()
            assert serving.is_alive()
            errors = [line for line in lines if line.startswith("error:")]
            assert len(errors) == number - 1 and "last good version" in errors[-1]
        path.write_text(good + '[jobs.third]\ncommand = "true"\n')
        os.utime(path, (9, 9))
        clock.step()
        assert [line for line in lines if line.startswith("reloaded")][-1].endswith(": 2 jobs")
    finally:
        daemon.request_stop()
        clock.release()
        serving.join(timeout=30)


REAPED = """
[cronflow]
state_dir = "state"
[jobs.leaves_a_child]
command = 'sleep 1 & echo "$CRONFLOW_LOGICAL_TIME" >> ran.txt'
schedule = "* * * * *"
overlap = "queue"
[jobs.fails_leaving_a_child]
command = 'sleep 1 & exit 3'
schedule = "* * * * *"
overlap = "queue"
"""


def children_of(parent: int) -> list[tuple[int, str, str]]:
    """(pid, command name, state) of every process whose parent is `parent`, from /proc."""
    found = []
    for entry in Path("/proc").iterdir():
        try:
            text = (entry / "stat").read_text() if entry.name.isdigit() else ""
        except OSError:
            continue
        if text:
            name, rest = text[text.index("(") + 1 : text.rindex(")")], text.rpartition(")")[2]
            state, ppid = rest.split()[:2]
            if int(ppid) == parent:
                found.append((int(entry.name), name, state))
    return found


def namespaces_work() -> str:
    """Why a PID namespace cannot be made here, or "" when it can."""
    why = installed("unshare", "util-linux")
    if why:
        return why
    trial = subprocess.run(
        ["unshare", "--fork", "--pid", "--mount-proc", "true"], capture_output=True, text=True
    )
    return "" if trial.returncode == 0 else f"unshare cannot make a PID namespace: {trial.stderr}"


@pytest.mark.parametrize("as_pid_1", [True, False], ids=["pid-1-of-a-namespace", "subreaper"])
def test_the_daemon_reaps_the_background_processes_its_jobs_leave(tmp_path, as_pid_1):
    """Nine runs each leave a `sleep 1` behind. They are handed to the daemon (PID 1 of a
    container, or a child subreaper), which reaps each when it ends: no zombie stays."""
    if as_pid_1 and (why := namespaces_work()):
        pytest.skip(why)
    (tmp_path / "jobs.toml").write_text(REAPED)
    command = [sys.executable, "-m", "tests.fast_daemon", str(tmp_path / "jobs.toml"), "8"]
    process = subprocess.Popen(
        ["unshare", "--fork", "--pid", "--mount-proc", *command] if as_pid_1 else command,
        cwd=Path(__file__).parent.parent,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env={**os.environ, "TZ": CHILD_TZ},
    )
    try:
        daemon = process.pid
        if as_pid_1:  # the namespace's PID 1 is unshare's only child
            wait_for(lambda: children_of(process.pid), "the daemon in its namespace")
            [(daemon, _, _)] = children_of(process.pid)
        ran, adopted = tmp_path / "ran.txt", set()

        def all_ran_and_reaped() -> bool:
            children = children_of(daemon)
            adopted.update(pid for pid, name, _ in children if name == "sleep")
            return ran.exists() and len(ran.read_text().split()) == 9 and not children

        # 06:00 at the start, then one run per minute passing
        wait_for(all_ran_and_reaped, "nine runs and no child of the daemon left", within=60)
        assert len(adopted) >= 1  # the leftovers were the daemon's to reap (not init's)
    finally:
        os.kill(daemon, signal.SIGTERM)
        _, errors = process.communicate(timeout=60)
    assert process.returncode == 0, errors.decode()
    # The reaper never took a job's own exit status: each failure kept its 3.
    failed = [
        event.exit_code
        for event in Store(tmp_path / "state").read().events
        if event.event is EventType.FINISHED and event.job == "fails_leaving_a_child"
    ]
    assert failed == [3] * 9


def test_the_daemon_runs_on_when_its_log_reader_goes_away(tmp_path):
    """journald restarting, or `cronflow daemon | head`: writing the log then fails with a
    broken pipe, and the daemon must neither die nor stop working."""
    (tmp_path / "jobs.toml").write_text('[jobs.a]\ncommand = "true"\nschedule = "0 0 1 1 *"\n')
    daemon = subprocess.Popen(
        [sys.executable, "-m", "cronflow", "daemon", "--verbose"],
        cwd=tmp_path,
        env={"PATH": os.environ["PATH"], "TZ": CHILD_TZ},
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert "cronflow daemon started" in daemon.stderr.readline()
    daemon.stderr.close()  # the reader goes away
    daemon.send_signal(signal.SIGHUP)  # the reload's log line meets the broken pipe
    (tmp_path / "jobs.toml").write_text('[jobs.b]\ncommand = "true"\nschedule = "0 0 1 1 *"\n')
    marks = tmp_path / ".cronflow" / "watermarks.json"
    deadline = time.monotonic() + 60
    while not (marks.exists() and '"b"' in marks.read_text()):  # it works on: took in job b
        assert daemon.poll() is None and time.monotonic() < deadline, daemon.returncode
        daemon.send_signal(signal.SIGHUP)  # again: the first may have come before the edit
        time.sleep(0.1)  # polling for a condition under a deadline
    daemon.send_signal(signal.SIGTERM)
    assert daemon.wait(timeout=60) == 0


def test_a_daemon_whose_monitor_trickles_stops_on_sigterm_and_abandons_the_heartbeat(
    tmp_path, monitor
):
    """A heartbeat monitor answering a byte at a time once left the daemon a stuck thread per
    tick, and SIGTERM did not stop it. Each ping's timeout now bounds its whole exchange
    (3 × 30 s here), and a stopping daemon gives it STOP_GRACE, then records it abandoned."""
    monitor.mode = "trickle"
    (tmp_path / "jobs.toml").write_text(
        f'[cronflow]\nheartbeat_url = "{monitor.check_url("beat")}"\nping_timeout = "30s"\n'
        '[jobs.minutely]\ncommand = "true"\nschedule = "* * * * *"\n'
    )
    daemon = DaemonProcess(tmp_path)
    daemon.expect("cronflow daemon started")
    wait_for(lambda: monitor.pings("beat"), "a heartbeat ping")
    daemon.process.send_signal(signal.SIGTERM)
    began = time.monotonic()
    assert daemon.finish(timeout=60) == 0
    assert time.monotonic() - began < STOP_GRACE + 12
    assert not [line for line in daemon.lines if "Traceback" in line]
    kept = json.loads((tmp_path / ".cronflow" / "last-heartbeat").read_text())
    assert kept["last"]["delivery"] == "abandoned: cronflow stopped while it was being sent"


def test_runs_that_end_together_log_one_event_a_line(tmp_path):
    """journald and `journalctl -u` must show one event a line: 80 runs start and end
    together in a real daemon (the race itself: the next test)."""
    jobs = "".join(f'[jobs.j{n}]\ncommand = "true"\nschedule = "* * * * *"\n' for n in range(80))
    (tmp_path / "jobs.toml").write_text(f"[cronflow]\nmax_parallel = 80\n{jobs}")
    daemon = DaemonProcess(tmp_path)
    daemon.expect("cronflow daemon started")
    store = Store(tmp_path / ".cronflow")
    wait_for(
        lambda: sum(e.event is EventType.FINISHED for e in store.read().events) >= 80,
        "80 runs to end",
    )
    daemon.process.send_signal(signal.SIGTERM)
    assert daemon.finish() == 0
    stamp = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ "
    events = [line for line in daemon.lines if re.match(stamp + r"j\d+ @ ", line)]
    assert len(events) >= 160  # each run's start and end
    for line in daemon.lines:
        assert re.fullmatch(stamp + r"[^\n]*\n", line), repr(line)
        assert len(re.findall(stamp, line)) == 1 and line.count(": started,") <= 1, repr(line)


LOGGERS = """
import sys, threading
sys.setswitchinterval(1e-6)  # threads switch at every chance, not every 5 ms
from cronflow.act.daemon import log_line
def log(n):
    for i in range(3000):
        log_line(f"j{n} @ 2026-01-14T06:00:00+00:00: success, attempt 1/1, 0.0s ({i})")
threads = [threading.Thread(target=log, args=(n,)) for n in range(8)]
for thread in threads: thread.start()
for thread in threads: thread.join()
"""


def test_log_lines_from_many_threads_never_merge():
    """Seen live: 70 of 16,000 daemon log lines held two events. print writes a line and its
    newline apart, so another thread's line could land between them (with threads
    switching often, 2,089 of these 24,000 lines merged)."""
    logged = subprocess.run(
        [sys.executable, "-c", LOGGERS], capture_output=True, text=True, timeout=120
    )
    lines = logged.stderr.splitlines()
    assert len(lines) == 24_000
    whole = re.compile(r"\S+Z j\d @ \S+: success, attempt 1/1, 0\.0s \(\d+\)")
    merged = [line for line in lines if not whole.fullmatch(line)]
    assert merged == [], merged[:3]
