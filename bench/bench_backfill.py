"""Benchmark: a 365-day backfill of a 5-job chain of `true` (1,825 runs), against a bare loop of
1,825 `subprocess.run(["sh", "-c", "true"])`, both measured in this run. Then planning a day
of three jobs (two every minute, one every five: 3,168 runs) that wait for upstreams on other cadences and zones,
against the same jobs planned without upstreams (`--dry-run`: deciding only).

    make bench        # or: .venv/bin/python bench/bench_backfill.py [--days 365]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path

from bench_chain import time_bare_loop

CHAIN = """
[cronflow]
max_parallel = 4
[jobs.extract]
command = "true"
schedule = "0 6 * * *"
[jobs.clean]
command = "true"
depends_on = ["extract"]
[jobs.transform]
command = "true"
depends_on = ["clean"]
[jobs.load]
command = "true"
depends_on = ["transform"]
[jobs.report]
command = "true"
depends_on = ["load"]
"""

# Three minutely jobs in three zones, each after the others on another cadence: every run
# waits for its upstreams' latest tick at or before its own.
ACROSS = """
[jobs.a]
command = "true"
schedule = "* * * * *"
timezone = "Pacific/Chatham"
[jobs.b]
command = "true"
schedule = "*/5 * * * *"
timezone = "Europe/Berlin"
{b_after}
[jobs.c]
command = "true"
schedule = "* * * * *"
{c_after}
"""


def time_dry_run(jobs: Path, day: str) -> float:
    started = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "cronflow", "run", "--jobs", str(jobs), "--date", day, "--dry-run"],
        check=True,
        stdout=subprocess.DEVNULL,
    )
    return time.perf_counter() - started


def planning_across_cadences(folder: Path) -> None:
    alone, after = Path(folder) / "alone.toml", Path(folder) / "after.toml"
    alone.write_text(ACROSS.format(b_after="", c_after=""))
    after.write_text(ACROSS.format(b_after='depends_on = ["a"]', c_after='depends_on = ["a", "b"]'))
    baseline, across = time_dry_run(alone, "2025-03-01"), time_dry_run(after, "2025-03-01")
    print("planning a day of 3 jobs (2 every minute, 1 every 5: 3,168 runs), --dry-run")
    print(f"  without upstreams            {baseline:7.2f} s  x 1.00")
    print(f"  after others' cadences       {across:7.2f} s  x{across / baseline:5.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=365)
    args = parser.parse_args()
    runs = args.days * 5
    last_day = date(2025, 1, 1) + timedelta(days=args.days - 1)
    with tempfile.TemporaryDirectory() as folder:
        jobs = Path(folder) / "jobs.toml"
        jobs.write_text(CHAIN)
        bare = time_bare_loop(runs)
        started = time.perf_counter()
        subprocess.run(
            [
                sys.executable,
                "-m",
                "cronflow",
                "run",
                "--jobs",
                str(jobs),
                "--date",
                f"2025-01-01..{last_day}",
            ],
            check=True,
            stdout=subprocess.DEVNULL,
        )
        backfill = time.perf_counter() - started
    print(f"backfill of {args.days} days x 5 chained jobs = {runs} runs")
    print(f"  bare loop of sh -c true      {bare:7.2f} s  {bare / runs * 1000:6.2f} ms/run  x 1.00")
    print(
        f"  cronflow run --date range    {backfill:7.2f} s  {backfill / runs * 1000:6.2f} ms/run"
        f"  x{backfill / bare:5.2f}"
    )
    with tempfile.TemporaryDirectory() as folder:
        planning_across_cadences(Path(folder))


if __name__ == "__main__":
    main()
