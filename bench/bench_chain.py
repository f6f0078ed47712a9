"""Benchmark: a chain of 200 jobs running `true`, against a bare loop of 200 `sh -c true`.

Both are measured in the same run, on the same machine, so the ratio is what matters:
cronflow's cost per run (ordering, a lock, two fsynced log lines, output files, the
environment) on top of starting the process itself.

    make bench        # or: .venv/bin/python bench/bench_chain.py [--jobs 200] [--repeat 3]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, date, datetime
from pathlib import Path

from cronflow.act.assemble import assemble
from cronflow.decide import selection
from cronflow.load import jobs_toml
from cronflow.model import RunKind, RunStatus
from cronflow.state.store import Store


def chain_file(folder: Path, count: int) -> Path:
    lines = ['[jobs.job_0]\ncommand = "true"\n']
    lines += [
        f'[jobs.job_{i}]\ncommand = "true"\ndepends_on = ["job_{i - 1}"]\n' for i in range(1, count)
    ]
    path = folder / "jobs.toml"
    path.write_text("\n".join(lines))
    return path


def time_bare_loop(count: int) -> float:
    started = time.perf_counter()
    for _ in range(count):
        subprocess.run(["sh", "-c", "true"], check=True)
    return time.perf_counter() - started


def time_executor(jobs_path: Path, day: date = date(2026, 1, 14), fresh: bool = True) -> float:
    """A day's runs through cronflow's executor, in this process: the runs alone (in a
    fresh state dir each time, unless `fresh` is False)."""
    jobfile = jobs_toml.load(jobs_path)
    state_dir = jobs_path.parent / f".state-{time.monotonic_ns()}"
    store = Store(state_dir if fresh else jobfile.settings.state_dir)
    store.prepare()
    executor = assemble(jobfile, store=store).executor
    runs = selection.runs_for_date(
        jobfile, selection.select_jobs(jobfile, [], False), day, RunKind.BACKFILL
    )
    started = time.perf_counter()
    outcomes = executor.execute(runs)
    elapsed = time.perf_counter() - started
    assert all(o.status is RunStatus.SUCCESS for o in outcomes) and len(outcomes) == len(runs)
    return elapsed


def time_cli(jobs_path: Path, day: str) -> float:
    """The chain through `cronflow run --date`, start-up and all."""
    started = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "cronflow", "run", "--jobs", str(jobs_path), "--date", day],
        check=True,
        stdout=subprocess.DEVNULL,
    )
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=200)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        jobs_path = chain_file(Path(folder), args.jobs)
        bare = [time_bare_loop(args.jobs) for _ in range(args.repeat)]
        executor = [time_executor(jobs_path) for _ in range(args.repeat)]
        cli = [time_cli(jobs_path, f"2026-02-{day + 1:02d}") for day in range(args.repeat)]
    base = statistics.median(bare)
    print(
        f"chain of {args.jobs} jobs running `true`, median of {args.repeat} "
        f"({datetime.now(UTC):%Y-%m-%d %H:%M}Z, Python {sys.version.split()[0]})"
    )
    for name, times in (
        ("bare loop of sh -c true", bare),
        ("cronflow executor", executor),
        ("cronflow run --date (CLI)", cli),
    ):
        median = statistics.median(times)
        print(
            f"  {name:28} {median:7.3f} s  {median / args.jobs * 1000:6.2f} ms/job  "
            f"x{median / base:5.2f}"
        )


if __name__ == "__main__":
    main()
