"""Running one attempt of a job: a shell command in its own process group, output to files.

Output goes straight to files, never to pipes, so a job that writes a lot cannot deadlock
and a background grandchild holding the output open cannot hang cronflow.
"""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from cronflow.safety import Account, mask_file
from cronflow.store import OUTPUT_LIMIT_BYTES, STDERR_TAIL_BYTES, STDERR_TAIL_LINES

_GROUP_POLL_SECONDS = 0.02


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
    account: Account | None = None  # run as this user (cronflow runs as root), else as cronflow
    secrets: tuple[str, ...] = ()  # masked as *** in the captured output when the attempt ends


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
    def run(self, spec: ProcessSpec) -> ProcessResult: ...

    def interrupt(self, grace: float) -> None:
        """Stop every process still running: SIGTERM its group, `grace`, SIGKILL."""
        ...


class ShellRunner:
    """Runs commands with /bin/sh -c, as cron does."""

    def __init__(self, output_limit: int = OUTPUT_LIMIT_BYTES) -> None:
        self.output_limit = output_limit
        self._live: dict[int, subprocess.Popen] = {}
        self._interrupted: set[int] = set()
        self._stopping = False  # set by interrupt(): start nothing more
        self._guard = threading.Lock()

    def run(self, spec: ProcessSpec) -> ProcessResult:
        started = time.monotonic()
        try:
            process = self._start(spec)
        except _Stopping:
            return ProcessResult(exit_code=None, interrupted=True)
        except OSError as error:
            return ProcessResult(exit_code=None, error=f"could not start /bin/sh in {spec.cwd}: "
                                 f"{error.strerror}")
        timed_out = False
        try:
            process.wait(timeout=spec.timeout)
        except subprocess.TimeoutExpired:
            timed_out = True
            _stop_group(process, spec.kill_grace)
        finally:
            with self._guard:
                self._live.pop(process.pid, None)
                interrupted = process.pid in self._interrupted
                self._interrupted.discard(process.pid)
        duration = time.monotonic() - started
        for path in (spec.stdout, spec.stderr):
            cap_file(path, self.output_limit)
            mask_file(path, spec.secrets)
        code = process.returncode
        return ProcessResult(exit_code=code if code >= 0 else None,
                             signal=-code if code < 0 else None,
                             timed_out=timed_out and not interrupted, interrupted=interrupted,
                             duration_s=round(duration, 3), stderr_tail=tail_of(spec.stderr))

    def interrupt(self, grace: float) -> None:
        """Stop every running process group at once: SIGTERM, up to `grace`, SIGKILL."""
        with self._guard:
            self._stopping = True
            processes = list(self._live.values())
            self._interrupted.update(process.pid for process in processes)
        stoppers = [threading.Thread(target=_stop_group, args=(process, grace))
                    for process in processes]
        for stopper in stoppers:
            stopper.start()
        for stopper in stoppers:
            stopper.join()

    def _start(self, spec: ProcessSpec) -> subprocess.Popen:
        with self._guard, _open_output(spec.stdout) as stdout, _open_output(spec.stderr) as stderr:
            if self._stopping:  # interrupt() came between the decision and the start
                raise _Stopping
            identity = {}
            if spec.account is not None:
                account = spec.account
                for output in (stdout, stderr):
                    os.fchown(output.fileno(), account.uid, account.gid)  # the job's own files
                identity = {"user": account.uid, "group": account.gid,
                            "extra_groups": list(account.groups)}
            process = subprocess.Popen(
                ["/bin/sh", "-c", spec.command],
                stdin=subprocess.DEVNULL, stdout=stdout, stderr=stderr,
                cwd=spec.cwd, env=spec.env,
                start_new_session=True,  # its own process group, so a timeout can kill it all
                close_fds=True,  # never let a job inherit cronflow's lock descriptors
                **identity,
            )
            self._live[process.pid] = process  # under the guard: interrupt() cannot miss it
            return process


class _Stopping(Exception):
    """The runner was interrupted before this process could start."""


def _open_output(path: Path):
    return open(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600), "wb")


def _stop_group(process: subprocess.Popen, grace: float) -> None:
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
    try:
        os.killpg(group, signum)
    except (ProcessLookupError, PermissionError):
        pass


def _group_exists(group: int) -> bool:
    try:
        os.killpg(group, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def cap_file(path: Path, limit: int) -> None:
    """Cut a file larger than `limit` to its first and last limit/2 bytes, marking the cut."""
    try:
        size = path.stat().st_size
        if size <= limit:
            return
        half = limit // 2
        with open(path, "r+b") as file:
            file.seek(size - half)
            tail = file.read(half)
            file.seek(half)
            file.write(f"\n[cronflow: {size - 2 * half} bytes cut here]\n".encode() + tail)
            file.truncate()
    except OSError:
        pass  # the output is a convenience; never fail a run because it could not be trimmed


def tail_of(path: Path, lines: int = STDERR_TAIL_LINES, limit: int = STDERR_TAIL_BYTES) -> str:
    """The last `lines` lines of a file, at most `limit` bytes, decoded leniently."""
    try:
        with open(path, "rb") as file:
            file.seek(0, os.SEEK_END)
            size = file.tell()
            file.seek(max(0, size - limit))
            data = file.read()
    except OSError:
        return ""
    text = data.decode("utf-8", errors="replace")
    return "\n".join(text.rstrip("\n").split("\n")[-lines:])
