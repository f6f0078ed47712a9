"""Whether a job's processes still live, told by the kernel rather than by cronflow's locks.

A `started` event records the job's process (pid, process group, start time, boot id). A
cronflow that dies (kill -9, a crash) leaves its job running; a later invocation must see
that run as running until every process of its group has ended. A pid alone proves nothing
(pids are reused), nor does a free lock (its file may have been removed): a process counts
only if it belongs to the job's group and started no earlier than the job, on this boot.
"""

from __future__ import annotations

import functools
import os
import socket
import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import NamedTuple

from cronflow.model import Boot, JobProcess, RunEvent

_PROC = Path("/proc")
_TICKS_PER_SECOND = os.sysconf("SC_CLK_TCK")


@functools.cache  # a process never outlives the boot it started in
def boot_id() -> str:
    try:
        return (_PROC / "sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return ""


def this_boot(now: datetime) -> Boot:
    """The running boot: the kernel's boot id, and when it began by `now`'s clock (now less
    the time the kernel has been up, suspended time included)."""
    up = timedelta(seconds=time.clock_gettime(time.CLOCK_BOOTTIME))
    return Boot(boot_id(), now - up)


def boot_ticks() -> int:
    """Clock ticks since boot, now, counted as /proc/PID/stat counts a process's start (its
    field 22: the boot-based time of its fork, in USER_HZ ticks, rounded down). Read before
    starting a process, it is never more than that process's start: a job's identity is
    known without reading /proc while the new process is still in exec (which waits for
    the exec to end: a tenth of a run's cost)."""
    return time.clock_gettime_ns(time.CLOCK_BOOTTIME) // (1_000_000_000 // _TICKS_PER_SECOND)


def still_running(process: JobProcess) -> bool:
    """True while any process of the job's group lives (zombies do not count)."""
    if process.boot_id != boot_id():
        return False  # the machine restarted since: nothing of it can live
    for entry in _PROC.iterdir():
        if not entry.name.isdigit():
            continue
        fields = _stat_fields(int(entry.name))
        if (
            fields is not None
            and fields.pgid == process.pgid
            and fields.state != "Z"
            and fields.start_ticks >= process.start_ticks
        ):
            return True
    return False


def pid_exists(pid: int) -> bool:
    """Whether a live (not zombie) process has this pid, for telling users a run's cronflow
    is gone."""
    fields = _stat_fields(pid)
    return fields is not None and fields.state != "Z"


def describe_running(started: RunEvent) -> str:
    """Who runs a run recorded as running: a live cronflow, or the orphan of a dead one."""
    job = f"the job (pid {started.process.pid})" if started.process else "the job"
    if started.host == socket.gethostname() and not pid_exists(started.pid):
        return f"orphaned: its cronflow (pid {started.pid}) is gone; {job} runs on"
    return f"running: cronflow pid {started.pid} on {started.host} runs {job}"


def zombie_children(parent: int) -> list[int]:
    """Pids of `parent`'s children that have ended and wait to be reaped."""
    zombies = []
    for entry in _PROC.iterdir():
        if entry.name.isdigit():
            fields = _stat_fields(int(entry.name))
            if fields is not None and fields.state == "Z" and fields.ppid == parent:
                zombies.append(int(entry.name))
    return zombies


class _Stat(NamedTuple):
    state: str
    ppid: int
    pgid: int
    start_ticks: int


def _stat_fields(pid: int) -> _Stat | None:
    """State, parent, process group and start time from /proc/PID/stat (see proc(5))."""
    try:
        text = (_PROC / str(pid) / "stat").read_text()
    except OSError:
        return None
    # The command name (field 2) may hold spaces and parentheses: split after its last ")".
    rest = text.rpartition(")")[2].split()
    return _Stat(state=rest[0], ppid=int(rest[1]), pgid=int(rest[2]), start_ticks=int(rest[19]))
