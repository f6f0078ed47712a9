"""Benchmark: what `cronflow top` costs left open. It runs in tmux (80x24) over a jobs file
of 100 jobs with a few hundred recorded runs, beside nothing that records more; its CPU time
(user + system, from /proc) is measured over a minute of wall time after it settled, and
over a minute while a job of the file runs every few seconds (its state changes).

    make bench        # or: .venv/bin/python bench/bench_top.py [--seconds 60]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def top_pid(session: str) -> int:
    shown = subprocess.run(
        ["tmux", "-L", session, "list-panes", "-t", session, "-F", "#{pane_pid}"],
        capture_output=True,
        text=True,
        check=True,
    )
    pane = int(shown.stdout.split()[0])
    children = Path(f"/proc/{pane}/task/{pane}/children").read_text().split()
    return int(children[0]) if children else pane  # the shell tmux ran it with, if it stayed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=60)
    options = parser.parse_args()
    with tempfile.TemporaryDirectory() as name:
        folder = Path(name)
        jobs = "".join(
            f'[jobs.job_{i}]\ncommand = "true"\nschedule = "{i % 60} * * * *"\n' for i in range(100)
        )
        (folder / "jobs.toml").write_text('[cronflow]\ntimezone = "UTC"\n' + jobs)
        environment = {**os.environ, "CRONFLOW_JOBS": str(folder / "jobs.toml")}
        run = [sys.executable, "-m", "cronflow", "run"]
        subprocess.run(
            [*run, "--date", "2026-01-01..2026-01-03"],
            env=environment,
            check=True,
            capture_output=True,
        )
        session = f"bench-top-{os.getpid()}"
        command = f"{sys.executable} -m cronflow top --read-only"
        subprocess.run(
            [
                "tmux",
                "-L",
                session,
                "new-session",
                "-d",
                "-s",
                session,
                "-x",
                "80",
                "-y",
                "24",
                command,
            ],
            cwd=folder,
            env=environment,
            check=True,
        )
        try:
            pid = top_pid(session)
            time.sleep(10)  # started and settled
            idle = measure(pid, options.seconds, lambda: None)
            busy = measure(
                pid,
                options.seconds,
                lambda: subprocess.run(
                    [*run, "--job", "job_1"], env=environment, capture_output=True
                ),
            )
        finally:
            subprocess.run(["tmux", "-L", session, "kill-server"], capture_output=True)
    print("cronflow top left open (100 jobs, 80x24 in tmux)")
    print(f"  nothing recorded:           {idle:6.2f} s of CPU a minute ({idle / 60:.1%})")
    print(f"  a run recorded every 5 s:   {busy:6.2f} s of CPU a minute ({busy / 60:.1%})")


def measure(pid: int, seconds: float, every_five_seconds) -> float:
    """CPU seconds the process used per minute over `seconds` of wall time."""
    before, started = cpu_seconds(pid), time.monotonic()
    while time.monotonic() - started < seconds:
        every_five_seconds()
        time.sleep(max(0.0, 5 - (time.monotonic() - started) % 5))
    return (cpu_seconds(pid) - before) * 60 / (time.monotonic() - started)


if __name__ == "__main__":
    main()
