"""Benchmark: the HTML status page (`cronflow status --html`) against the terminal's
`cronflow status` on the same state, both measured in this run: 50 jobs × 30 runs, and
2,000 jobs × 30 runs. Prints each page's size.

The jobs come in flows of ten (a daily job and nine after it, two upstreams each from the
fourth on); their runs are written to the log as cronflow writes them, then indexed once.

    make bench        # or: .venv/bin/python bench/bench_page.py [--repeat 5]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

from bench_years import median_seconds  # bench/ is on the path: python bench/bench_page.py

from cronflow.model import EventType, RunEvent, RunKind, RunStatus
from cronflow.state.codec import event_to_json
from cronflow.state.store import new_run_id

RUNS = 30


def state(folder: Path, jobs: int) -> Path:
    """A jobs file of `jobs` jobs and RUNS daily runs of each, one in 23 failed."""
    lines, names = [], [f"job_{index}" for index in range(jobs)]
    for index, name in enumerate(names):
        lines.append(f'[jobs.{name}]\ncommand = "true"')
        step = index % 10
        if step == 0:
            lines.append('schedule = "0 6 * * *"')
        else:
            upstreams = [names[index - 1]] + ([names[index - 3]] if step >= 3 else [])
            lines.append(f"depends_on = {json.dumps(upstreams)}")
    (folder / "jobs.toml").write_text("\n".join(lines) + "\n")
    log = folder / ".cronflow" / "runs.jsonl"
    log.parent.mkdir(mode=0o700)
    first = datetime(2026, 1, 1, 6, tzinfo=UTC)
    with open(log, "w") as file:
        for day in range(RUNS):
            at = first + timedelta(days=day)
            for number, name in enumerate(names):
                failed = (day * 7 + number) % 23 == 0
                event = RunEvent(
                    event=EventType.FINISHED,
                    job=name,
                    logical_time=at,
                    run_id=new_run_id(at),
                    status=RunStatus.FAILED if failed else RunStatus.SUCCESS,
                    kind=RunKind.SCHEDULED,
                    attempt=1,
                    max_attempts=1,
                    started_at=at,
                    ended_at=at + timedelta(seconds=1),
                    duration_s=1.0,
                    exit_code=1 if failed else 0,
                    reason="exit status 1" if failed else "",
                    host="bench",
                    pid=1,
                )
                file.write(json.dumps(event_to_json(event), separators=(",", ":")) + "\n")
    return folder / "jobs.toml"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--sizes", type=int, nargs="+", default=[50, 2000])
    args = parser.parse_args()
    print(
        f"the status page, {RUNS} runs a job, median of {args.repeat} (Python {sys.version.split()[0]})"
    )
    for jobs in args.sizes:
        with tempfile.TemporaryDirectory() as name:
            folder = Path(name)
            path = state(folder, jobs)
            status = [sys.executable, "-m", "cronflow", "status", "--jobs", str(path)]
            subprocess.run(status, cwd=folder, check=True, stdout=subprocess.DEVNULL)  # index
            terminal = median_seconds([*status, "--wide"], folder, args.repeat)
            page = median_seconds([*status, "--html", "page.html"], folder, args.repeat)
            size = (folder / "page.html").stat().st_size
            print(
                f"  {jobs:5} jobs: status {terminal:6.2f} s, status --html {page:6.2f} s "
                f"(x{page / terminal:4.2f}), page {size / 1000:,.0f} KB "
                f"({size / (jobs * RUNS):.0f} bytes a run)"
            )


if __name__ == "__main__":
    main()
