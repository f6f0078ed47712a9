"""Benchmark: a 365-day backfill of a 5-job chain of `true` (1,825 runs), against a bare loop of
1,825 `subprocess.run(["sh", "-c", "true"])`, both measured in this run.

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


if __name__ == "__main__":
    main()
