"""Running one attempt of a job: a shell command in its own process group, output to files.

Output goes straight to files, never to pipes, so a job that writes a lot cannot deadlock
and a background grandchild holding the output open cannot hang cronflow.

The command runs under a small shell wrapper (`_WRAPPER`) that ends with it and adds two
things cron lacks. A gate: the wrapper waits until cronflow has recorded the attempt as
started, with the process's identity, and runs nothing if cronflow dies first. And an exit
status file: the wrapper writes the command's exit status into a file of the attempt, so the
outcome of a job whose cronflow was killed is known when it ends. The job's processes also
inherit the run's lock descriptor (as flock(1) does), so the run stays locked while they live.
"""

from __future__ import annotations

import contextlib
import errno
import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, Protocol

from cronflow.act import processes
from cronflow.decide import exit_codes
from cronflow.load.accounts import Account
from cronflow.model import Job, JobProcess, RunStatus
from cronflow.state import outputs
from cronflow.state.files import NO_LINKS
from cronflow.state.outputs import OUTPUT_LIMIT_BYTES, tail_of

_GROUP_POLL_SECONDS = 0.02
# $1 the command, $2 the gate's descriptor, $3 the exit status file's descriptor, $4 the shell. Traps only
# note a signal (the command, in the same group, gets it too); once the command ended, the
# wrapper dies of that same signal, so cronflow sees how the attempt really ended.
_WRAPPER = """\
read -r go < /proc/self/fd/$2 || { echo cancelled 1<> /proc/self/fd/$3; exit 125; }
trap 'caught=TERM' TERM; trap 'caught=INT' INT; trap 'caught=HUP' HUP
"$4" -c "$1"
status=$?
echo "exit $status" 1<> /proc/self/fd/$3
if [ -n "${caught-}" ]; then trap - "$caught"; kill -s "$caught" $$; fi
exit $status
"""
EXIT_FILE_BYTES = 64  # preallocated, so the status fits even on a full disk


@dataclass(frozen=True, slots=True, kw_only=True)
class ProcessSpec:
    """Everything needed to start one attempt."""

    command: str
    cwd: Path
    env: dict[str, str]  # the complete environment of the process
    stdout: Path
    stderr: Path
    timeout: float | None  # seconds, None for no limit
    kill_grace: float  # seconds between SIGTERM and SIGKILL on timeout
    exit_status: Path  # where the wrapper writes the command's exit status
    account: Account | None = None  # run as this user (cronflow runs as root), else as cronflow
    secrets: tuple[str, ...] = ()  # masked as *** in the captured output when the attempt ends
    inherit: tuple[int, ...] = ()  # descriptors the job keeps open (the run's lock)
    shell: str = "/bin/sh"  # the command runs as SHELL -c COMMAND


@dataclass(frozen=True, slots=True, kw_only=True)
class ProcessResult:
    """How an attempt ended."""

    exit_code: int | None  # None when killed by a signal or never started
    signal: int | None = None
    timed_out: bool = False
    duration_s: float = 0.0
    error: str = ""  # why the process could not be started at all
    interrupted: bool = False  # stopped by `interrupt()`, not by itself or a timeout
    stderr_tail: str = ""

    @property
    def succeeded(self) -> bool:
        return self.exit_code == 0 and not self.timed_out


class ProcessRunner(Protocol):
    output_limit: int  # each output file is cut to this size when its attempt ends

    def run(
        self, spec: ProcessSpec, on_start: Callable[[JobProcess], None] = lambda process: None
    ) -> ProcessResult:
        """Run one attempt; `on_start` is told the process before the command begins (if it
        raises, the command never begins and the error propagates)."""
        ...

    def interrupt(self, grace: float) -> None:
        """Stop every process still running: SIGTERM its group, `grace`, SIGKILL."""
        ...

    def reap_orphans(self) -> int:
        """Reap ended children that are not attempts this runner waits for; how many."""
        ...


class ShellRunner:
    """Runs commands with /bin/sh -c, as cron does."""

    def __init__(self, output_limit: int = OUTPUT_LIMIT_BYTES) -> None:
        self.output_limit = output_limit
        self._live: dict[int, subprocess.Popen[bytes]] = {}
        self._interrupted: set[int] = set()
        self._stopping = False  # set by interrupt(): start nothing more
        self._guard = threading.Lock()

    def run(
        self, spec: ProcessSpec, on_start: Callable[[JobProcess], None] = lambda process: None
    ) -> ProcessResult:
        started = time.monotonic()
        try:
            process, gate, identity = self._start(spec)
        except _Stopping:
            return ProcessResult(exit_code=None, interrupted=True)
        except _NoRoom:
            return ProcessResult(
                exit_code=None,
                error="not started: no room for its exit status file (the disk is full); "
                "without it, an outcome cronflow did not see could not be known",
            )
        except OSError as error:
            return ProcessResult(
                exit_code=None, error=f"could not start /bin/sh in {spec.cwd}: {error.strerror}"
            )
        try:
            _open_gate(process, gate, identity, on_start)
        except BaseException:
            self._forget(process)
            raise
        timed_out = False
        try:
            process.wait(timeout=spec.timeout)
        except subprocess.TimeoutExpired:
            timed_out = True
            _stop_group(process, spec.kill_grace)
        finally:
            interrupted = self._forget(process)
        duration = time.monotonic() - started
        for path in (spec.stdout, spec.stderr):
            outputs.finish(path, self.output_limit, spec.secrets)
        code = process.returncode
        return ProcessResult(
            exit_code=code if code >= 0 else None,
            signal=-code if code < 0 else None,
            timed_out=timed_out and not interrupted,
            interrupted=interrupted,
            duration_s=round(duration, 3),
            stderr_tail=tail_of(spec.stderr),
        )

    def _forget(self, process: subprocess.Popen[bytes]) -> bool:
        """Stop tracking an ended process; True if interrupt() had stopped it."""
        with self._guard:
            self._live.pop(process.pid, None)
            interrupted = process.pid in self._interrupted
            self._interrupted.discard(process.pid)
        return interrupted

    def interrupt(self, grace: float) -> None:
        """Stop every running process group at once: SIGTERM, up to `grace`, SIGKILL."""
        with self._guard:
            self._stopping = True
            processes = list(self._live.values())
            self._interrupted.update(process.pid for process in processes)
        stoppers = [
            threading.Thread(target=_stop_group, args=(process, grace)) for process in processes
        ]
        for stopper in stoppers:
            stopper.start()
        for stopper in stoppers:
            stopper.join()

    def reap_orphans(self) -> int:
        """Reap ended children that are not this runner's attempts: the orphaned descendants
        the kernel hands to cronflow when it is PID 1 or a child subreaper (a job's background
        process that outlived it). An attempt's own shell is left to the thread waiting for
        its exit status; the guard keeps a shell just started from being taken for an orphan."""
        reaped = 0
        with self._guard:
            for pid in processes.zombie_children(os.getpid()):
                if pid in self._live:
                    continue
                try:
                    os.waitpid(pid, os.WNOHANG)
                    reaped += 1
                except ChildProcessError:
                    pass  # reaped meanwhile by whoever started it
        return reaped

    def _start(self, spec: ProcessSpec) -> tuple[subprocess.Popen[bytes], int, JobProcess]:
        """Start the wrapper, held at its gate; return it, the gate's write end and its
        identity (its start time bounded from below, see processes.boot_ticks)."""
        with (
            self._guard,
            _open_output(spec.stdout) as stdout,
            _open_output(spec.stderr) as stderr,
            _open_exit_file(spec.exit_status) as status,
        ):
            if self._stopping:  # interrupt() came between the decision and the start
                raise _Stopping
            gate_out, gate_in = os.pipe2(os.O_CLOEXEC)
            identity: dict[str, Any] = {}
            if spec.account is not None:
                account = spec.account
                for descriptor in (stdout.fileno(), stderr.fileno(), status.fileno(), gate_out):
                    os.fchown(descriptor, account.uid, account.gid)  # the job's own files
                identity = {
                    "user": account.uid,
                    "group": account.gid,
                    "extra_groups": list(account.groups),
                }
            not_before = processes.boot_ticks()
            try:
                process = subprocess.Popen(
                    [
                        "/bin/sh",
                        "-c",
                        _WRAPPER,
                        "cronflow",
                        spec.command,
                        str(gate_out),
                        str(status.fileno()),
                        spec.shell,
                    ],
                    stdin=subprocess.DEVNULL,
                    stdout=stdout,
                    stderr=stderr,
                    cwd=spec.cwd,
                    env=spec.env,
                    start_new_session=True,  # its own process group, so a timeout can kill it all
                    close_fds=True,  # nothing of cronflow's but what is passed on purpose
                    pass_fds=(gate_out, status.fileno(), *spec.inherit),
                    **identity,
                )
            except BaseException:
                os.close(gate_in)
                raise
            finally:
                os.close(gate_out)
            self._live[process.pid] = process  # under the guard: interrupt() cannot miss it
            # It leads its own group (start_new_session): whatever runs in the group is its.
            job_process = JobProcess(
                pid=process.pid,
                pgid=process.pid,
                start_ticks=not_before,
                boot_id=processes.boot_id(),
            )
            return process, gate_in, job_process


def _open_gate(
    process: subprocess.Popen[bytes],
    gate: int,
    identity: JobProcess,
    on_start: Callable[[JobProcess], None],
) -> None:
    """Tell `on_start` who the process is, then let the command begin. If that fails, the
    gate closes unopened: the wrapper records `cancelled` and exits without running it.
    A wrapper stopped at its gate (cronflow's stop came between the start record and the
    command) has nobody left to read it: its end is for `wait` to tell, not an error."""
    try:
        on_start(identity)
    except BaseException:
        os.close(gate)
        process.wait()
        raise
    try:
        os.write(gate, b"go\n")
    except BrokenPipeError:
        pass  # stopped at its gate: the command never began
    finally:
        os.close(gate)


def read_exit_status(path: Path) -> int | str | None:
    """What an attempt's wrapper wrote: the exit status, "cancelled" (its command never
    began), or None (nothing: it still runs, or was killed before its command ended)."""
    try:
        words = path.read_bytes().split(b"\0")[0].split()
    except OSError:
        return None
    if words == [b"cancelled"]:
        return "cancelled"
    if len(words) == 2 and words[0] == b"exit" and words[1].isdigit():
        return int(words[1])
    return None


class _Stopping(Exception):
    """The runner was interrupted before this process could start."""


class _NoRoom(Exception):
    """The exit status file could not be given its blocks: the disk is full."""


def _open_output(path: Path) -> BinaryIO:
    return open(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | NO_LINKS, 0o600), "wb")


def _open_exit_file(path: Path) -> BinaryIO:
    """The empty exit status file, its blocks reserved: a full disk cannot keep the status
    out. On a full disk the attempt is not started (_NoRoom): a job whose cronflow then died
    would leave no status, be taken for abandoned, and run again. (A file system without
    fallocate: the status is written as any file is.)"""
    file = _open_output(path)
    try:
        os.posix_fallocate(file.fileno(), 0, EXIT_FILE_BYTES)
    except OSError as error:
        if error.errno in (errno.ENOSPC, errno.EDQUOT):
            file.close()
            raise _NoRoom from None
    return file


def _stop_group(process: subprocess.Popen[bytes], grace: float) -> None:
    """SIGTERM the whole process group, wait up to `grace` for it to empty, then SIGKILL it."""
    group = process.pid  # start_new_session makes the shell the group leader
    _signal_group(group, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        process.poll()  # reap the shell, so it does not count as a living member
        if not _group_exists(group):
            break
        time.sleep(_GROUP_POLL_SECONDS)
    # Always: the shell may have exited on SIGTERM while its background children live on.
    _signal_group(group, signal.SIGKILL)
    process.wait()


def _signal_group(group: int, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(group, signum)


def _group_exists(group: int) -> bool:
    try:
        os.killpg(group, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def status_of(result: ProcessResult, job: Job) -> RunStatus:
    """The status a try ended with, by how its process ended and the job's exit codes."""
    if result.interrupted:
        return RunStatus.INTERRUPTED
    if result.timed_out:
        return RunStatus.TIMED_OUT
    return exit_codes.judged(job, result.exit_code)


def reason_of(result: ProcessResult, job: Job) -> str:
    """Why a try ended as it did, in words ("" for a plain success)."""
    if result.error:
        return result.error
    if result.interrupted:
        return "cronflow stopped and killed it"
    if result.timed_out:
        return f"timed out after {job.timeout}"
    if result.signal:
        return f"killed by signal {result.signal}"
    if result.exit_code:
        return exit_codes.exit_words(job, result.exit_code)
    return ""
