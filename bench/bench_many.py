"""Benchmark: cronflow with thousands of jobs (8,000, 20,000 and 50,000): validate (once
just after an edit, when it validates in full, then as every later command finds it),
next, status, the one-shot tick and a day's dry run, against `python -c pass` measured in
the same run (`--watched`: every job with max_runtime = "auto" and finish_by). Targets (issue 32): status ≤ 1.5 s with 8,000 jobs and ≤ 3 s with 20,000; a
full decision with 20,000 ≤ 1 s; 50,000 usable (validate, next -n 1, status each < 10 s).

The jobs come in flows of ten: a daily job at its own minute and nine that run after it.
Each job has three days of history (written as a log, then indexed once before measuring).
The one-shot tick is measured twice: as cron meets it nearly every minute (nothing due, the
idle stamp answers) and deciding in full (`--verbose` always does).

    make bench        # or: .venv/bin/python bench/bench_many.py [--sizes 8000 20000]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cronflow.model import EventType, RunEvent, RunKind, RunStatus
from cronflow.state.codec import event_to_json

HISTORY_DAYS = ("2026-02-01", "2026-02-02", "2026-02-03")


def jobs_file(folder: Path, count: int, watched: bool = False) -> Path:
    """Flows of ten; `watched`: every job has max_runtime = "auto" and finish_by (each
    decision then works out who is slow and late: decide/overdue.py)."""
    lines = []
    for index in range(count):
        lines.append(f'[jobs.job_{index}]\ncommand = "true"\n')
        if watched:
            lines.append('max_runtime = "auto"\nfinish_by = "+1h"\n')
        head = index - index % 10
        if index == head:
            lines.append(f'schedule = "{index % 60} {index // 60 % 24} * * *"\n')
        else:
            lines.append(f'depends_on = ["job_{head}"]\n')
    path = folder / "jobs.toml"
    path.write_text("".join(lines))
    return path


def history(folder: Path, count: int) -> None:
    """Three successful days of every job, as runs.jsonl lines."""
    state = folder / ".cronflow"
    state.mkdir(mode=0o700)
    with open(state / "runs.jsonl", "w") as log:
        for day in HISTORY_DAYS:
            for index in range(count):
                head = index - index % 10
                logical = datetime.fromisoformat(day).replace(
                    hour=head // 60 % 24, minute=head % 60, tzinfo=UTC
                )
                common = dict(
                    job=f"job_{index}",
                    logical_time=logical,
                    run_id=f"{logical:%Y%m%dT%H%M%SZ}-{index:06x}",
                    kind=RunKind.BACKFILL,
                    attempt=1,
                    max_attempts=1,
                    started_at=logical,
                    host="bench",
                    pid=1,
                )
                for event in (
                    RunEvent(event=EventType.STARTED, status=RunStatus.RUNNING, **common),
                    RunEvent(
                        event=EventType.FINISHED,
                        status=RunStatus.SUCCESS,
                        ended_at=logical + timedelta(seconds=1),
                        duration_s=1.0,
                        exit_code=0,
                        **common,
                    ),
                ):
                    log.write(json.dumps(event_to_json(event), separators=(",", ":")) + "\n")


def seconds(command: list[str], cwd: Path, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        subprocess.run(
            command,
            cwd=cwd,
            check=True,
            stdout=subprocess.DEVNULL,
            env={**os.environ, "COLUMNS": "150"},
        )
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[8000, 20000, 50000])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument(
        "--watched", action="store_true", help='every job with max_runtime = "auto" and finish_by'
    )
    args = parser.parse_args()
    cronflow = [sys.executable, "-m", "cronflow"]
    python = seconds([sys.executable, "-c", "pass"], Path.cwd(), 10)
    watched = ", every job watched for slow and late" if args.watched else ""
    print(f"many jobs{watched}, median of {args.repeat} (Python {sys.version.split()[0]})")
    print(f"  python -c pass: {python * 1000:.1f} ms")
    for count in args.sizes:
        with tempfile.TemporaryDirectory() as name:
            folder = Path(name)
            jobs_file(folder, count, args.watched)
            history(folder, count)
            subprocess.run([*cronflow, "reindex"], cwd=folder, check=True, capture_output=True)
            subprocess.run([*cronflow, "run"], cwd=folder, check=True)  # first sight
            (folder / "jobs.toml").write_text((folder / "jobs.toml").read_text() + "\n")
            first_validate = seconds([*cronflow, "validate"], folder, 1)
            figures = {
                "validate, the file just changed": first_validate,
                "validate": seconds([*cronflow, "validate"], folder, args.repeat),
                "next -n 1": seconds([*cronflow, "next", "-n", "1"], folder, args.repeat),
                "status": seconds([*cronflow, "status"], folder, args.repeat),
                "run, nothing due (idle tick)": seconds([*cronflow, "run"], folder, args.repeat),
                "run -v, nothing due (decided in full)": seconds(
                    [*cronflow, "run", "-v"], folder, args.repeat
                ),
                "run --date D --dry-run": seconds(
                    [*cronflow, "run", "--date", "2026-02-04", "--dry-run"], folder, args.repeat
                ),
            }
        print(f"  {count:,} jobs:")
        for label, value in figures.items():
            print(f"    {label:40} {value:7.3f} s  x{value / python:7.1f} python")


if __name__ == "__main__":
    main()
