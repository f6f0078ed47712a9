"""A job's recorded identity (pid, group, start time) matches what the kernel says of it.

The start time is read before the process is started (processes.boot_ticks), not from
/proc while it execs: it must never be later than the kernel's, or a live orphan of a
killed cronflow would not count as running (and its run could start again)."""

from __future__ import annotations

import subprocess

from cronflow.act import processes
from cronflow.model import EventType
from tests.conftest import run_cli


def kernel_start_ticks(pid: int) -> int:
    return int(open(f"/proc/{pid}/stat").read().rpartition(")")[2].split()[19])


def test_the_bound_taken_before_a_spawn_is_never_after_the_kernels_start_time():
    gaps = []
    for _ in range(300):
        before = processes.boot_ticks()
        child = subprocess.Popen(["sleep", "5"])
        try:
            gaps.append(kernel_start_ticks(child.pid) - before)
        finally:
            child.kill()
            child.wait()
    assert min(gaps) >= 0, gaps
    assert max(gaps) <= 100, gaps  # a second of ticks at most, on a slow machine


def test_a_run_records_its_wrappers_pid_group_and_a_start_no_later_than_the_kernels(
    write_jobs, tmp_path
):
    write_jobs("""
        [jobs.probe]
        command = 'cat /proc/$PPID/stat > wrapper.stat; ps -o pgid= -p $$ > group'
    """)
    assert run_cli("run", "--date", "2026-01-14", cwd=tmp_path).returncode == 0
    from cronflow.state.store import Store

    started = [
        event
        for event in Store(tmp_path / ".cronflow").read().events
        if event.event is EventType.STARTED
    ]
    assert len(started) == 1 and started[0].process is not None
    process = started[0].process
    stat = (tmp_path / "wrapper.stat").read_text().rpartition(")")[2].split()
    wrapper_pid = int((tmp_path / "wrapper.stat").read_text().split()[0])
    assert process.pid == process.pgid == wrapper_pid == int(stat[2])  # it leads its group
    assert int((tmp_path / "group").read_text()) == process.pgid
    assert 0 <= int(stat[19]) - process.start_ticks <= 100
    assert process.boot_id == processes.boot_id()
