"""Benchmark: start latency, "how late is my job". From the start of a one-shot `cronflow run`
that finds one job due to that job's first instruction, with 100 and with 2,000 jobs in the
file (the others not due); against a bare Python process that starts the same command
through `sh -c`, measured in this run. Each figure is the median of fresh starts, each on a
fresh state directory, twice: at first sight (no watermark yet: every schedule is asked),
and as cron sees it every minute after (a tick a minute earlier, on a libfaketime clock,
left the watermarks: only the due job's schedule is asked).

Targets (issue 32): ≤ 150 ms with 100 jobs, ≤ 300 ms with 2,000.

Then the daemon's: from each minute's boundary to the first instruction of a per-minute job
(in a file of 100 jobs), over an hour on a clock that runs 60 times as fast as the real one
(each real second is a minute: cronflow's own delays are real). Targets: median ≤ 20 ms,
99th percentile ≤ 100 ms.

    make bench        # or: .venv/bin/python bench/bench_latency.py [--repeat 7] [--minutes 60]
"""

from __future__ import annotations

import argparse
import compileall
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

MARK = 'date +%s.%N > "$MARK_FILE"'  # the job's first instruction writes when it began

BARE = """
import subprocess, sys
subprocess.run(["/bin/sh", "-c", sys.argv[1]], check=True)
"""


DAEMON = """
import sys, time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from cronflow.act.daemon import Daemon
from cronflow.act.runner import ShellRunner

START = datetime.fromisoformat(sys.argv[2])
ORIGIN, SPEED = float(sys.argv[3]), float(sys.argv[4])  # real time at START; clock speed

class ScaledClock:
    def now(self):
        return START + timedelta(seconds=(time.time() - ORIGIN) * SPEED)
    def sleep_until(self, when, wake):
        wake.wait(max(0.0, (when - self.now()).total_seconds() / SPEED))

daemon = Daemon(jobs_path=Path(sys.argv[1]).absolute(), clock=ScaledClock(),
                runner=ShellRunner(), log=lambda line: None)
daemon.take_over_process()
daemon.serve()
"""
DAEMON_MARK = 'echo "$CRONFLOW_LOGICAL_TIME $(date +%s.%N)" >> "$MARK_FILE"'
SPEED = 60.0


def jobs_file(folder: Path, count: int) -> Path:
    """One job due every minute (so due at first sight), and count - 1 that never are now
    (03:00 on 29 February)."""
    lines = [f"[jobs.due]\ncommand = '{MARK}'\nschedule = \"* * * * *\"\n"]
    lines += [
        f'[jobs.job_{i}]\ncommand = "true"\nschedule = "{i % 60} 3 29 2 *"\n'
        for i in range(count - 1)
    ]
    path = folder / "jobs.toml"
    path.write_text("\n".join(lines))
    return path


def daemon_latencies(minutes: int) -> list[float]:
    """Seconds from each minute boundary to the per-minute job's first instruction."""
    start = datetime(2026, 1, 14, 5, 59, tzinfo=UTC)
    with tempfile.TemporaryDirectory() as name:
        folder = Path(name)
        path = jobs_file(folder, 100)
        path.write_text(path.read_text().replace(MARK, DAEMON_MARK))
        marks = folder / "began"
        origin = time.time() + 1.0  # room for the daemon to start before the first minute
        environment = {**os.environ, "MARK_FILE": str(marks)}
        daemon = subprocess.Popen(
            [sys.executable, "-c", DAEMON, str(path), start.isoformat(), str(origin), str(SPEED)],
            cwd=folder,
            env=environment,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
        )
        try:
            time.sleep(1.0 + minutes * 60 / SPEED + 0.5)
        finally:
            daemon.terminate()
            daemon.wait(timeout=60)
        figures = []
        for line in marks.read_text().splitlines():
            logical, began = line.split()
            if datetime.fromisoformat(logical) <= start:
                continue  # ticks caught up at start-up: not a boundary the daemon slept to
            boundary = origin + (datetime.fromisoformat(logical) - start).total_seconds() / SPEED
            figures.append(float(began) - boundary)
    return sorted(figures)


def latency(command: list[str], folder: Path) -> float:
    """Seconds from this process starting `command` to the job's first instruction."""
    mark = folder / "began"
    mark.unlink(missing_ok=True)
    environment = {
        **{k: v for k, v in os.environ.items() if k not in ("CRONFLOW_STATE_DIR", "CRONFLOW_JOBS")},
        "MARK_FILE": str(mark),
    }
    began = time.time()
    subprocess.run(command, cwd=folder, env=environment, check=True, capture_output=True)
    return float(mark.read_text()) - began


def cronflow_latency(count: int, repeat: int, steady: bool) -> float:
    figures = []
    for _ in range(repeat):
        with tempfile.TemporaryDirectory() as folder:
            path = jobs_file(Path(folder), count)
            command = [sys.executable, "-m", "cronflow", "run", "--jobs", str(path)]
            if steady:  # the tick a minute ago
                latency(["faketime", "-f", "-1m", *command], Path(folder))
            figures.append(latency(command, Path(folder)))
    return statistics.median(figures)


def bare_latency(repeat: int) -> float:
    with tempfile.TemporaryDirectory() as folder:
        return statistics.median(
            latency([sys.executable, "-c", BARE, MARK], Path(folder)) for _ in range(repeat)
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--minutes", type=int, default=60)
    options = parser.parse_args()
    repeat = options.repeat
    compileall.compile_dir(str(Path(__file__).parent.parent / "cronflow"), quiet=1)
    bare = bare_latency(repeat)
    print(f"start latency (median of {repeat}): a bare python + sh -c: {bare * 1000:.0f} ms")
    for steady in (False, True) if shutil.which("faketime") else (False,):
        for count, target in ((100, 0.150), (2000, 0.300)):
            figure = cronflow_latency(count, repeat, steady)
            verdict = "met" if figure <= target else "NOT met"
            print(
                f"  cronflow run, {count:>5} jobs, {'every minute' if steady else 'first sight'}:"
                f" {figure * 1000:.0f} ms = x{figure / bare:.2f} the bare start"
                f" (target <= {target * 1000:.0f} ms: {verdict})"
            )

    figures = daemon_latencies(options.minutes)
    median = statistics.median(figures)
    p99 = figures[min(len(figures) - 1, round(0.99 * (len(figures) - 1)))]
    print(
        f"  cronflow daemon, minute boundary to the job's start, {len(figures)} minutes"
        f" (clock x{SPEED:.0f}): median {median * 1000:.1f} ms (target <= 20: "
        f"{'met' if median <= 0.020 else 'NOT met'}), 99th percentile {p99 * 1000:.1f} ms "
        f"(target <= 100: {'met' if p99 <= 0.100 else 'NOT met'}), max {figures[-1] * 1000:.1f} ms"
    )


if __name__ == "__main__":
    main()
