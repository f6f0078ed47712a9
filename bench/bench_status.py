"""Benchmark: `cronflow status` on run logs of 10,000 and 1,000,000 records, against
`tail -n 100` of the same file (time and peak memory, medians of repeated runs).

The first `status` on a log builds the index (state_dir/index.sqlite3) once; that one-off
cost is printed apart. After it, status reads only what was appended.

    make bench        # or: .venv/bin/python bench/bench_status.py [--sizes 10000 1000000]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from make_log import write_log


def run_measured(command: list[str], cwd: Path) -> tuple[float, float]:
    """(seconds, peak resident MB) of one run of `command`, in a child of its own."""
    probe = (
        "import resource, subprocess, sys, time; started = time.perf_counter(); "
        "subprocess.run(sys.argv[1:], check=True, stdout=subprocess.DEVNULL); "
        "print(time.perf_counter() - started, "
        "resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)"
    )
    output = subprocess.run(
        [sys.executable, "-c", probe, *command], cwd=cwd, check=True, capture_output=True, text=True
    ).stdout.split()
    return float(output[0]), int(output[1]) / 1024


def median_of(command: list[str], cwd: Path, repeat: int) -> tuple[float, float]:
    runs = [run_measured(command, cwd) for _ in range(repeat)]
    return statistics.median(r[0] for r in runs), max(r[1] for r in runs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 1_000_000])
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    status = [sys.executable, "-m", "cronflow", "status", "--jobs", "jobs.toml"]
    print(
        f"cronflow status against tail -n 100, medians of {args.repeat} "
        f"(Python {sys.version.split()[0]})"
    )
    for size in args.sizes:
        with tempfile.TemporaryDirectory() as name:
            folder = Path(name)
            write_log(folder / "state", size)
            log = folder / "state" / "runs.jsonl"
            started = time.perf_counter()
            subprocess.run(status, cwd=folder, check=True, stdout=subprocess.DEVNULL)
            build = time.perf_counter() - started
            status_s, status_mb = median_of(status, folder, args.repeat)
            tail_s, tail_mb = median_of(["tail", "-n", "100", str(log)], folder, args.repeat)
            print(
                f"  {size:>9,} records ({log.stat().st_size / 1e6:6.1f} MB log): status "
                f"{status_s * 1000:6.0f} ms, {status_mb:5.1f} MB peak | tail -n 100 "
                f"{tail_s * 1000:5.1f} ms, {tail_mb:4.1f} MB | first status (builds the "
                f"index) {build:5.1f} s"
            )


if __name__ == "__main__":
    main()
