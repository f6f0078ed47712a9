"""Benchmark: a state directory of years, before and after retention.

Five years of one every-minute job and 50 daily jobs (about 2.7 million runs, each a
`started` and a `finished` line, written as cronflow writes them: 64 MiB segments, each
with the time of its last line as its mtime), then `keep_history_days = 90`. Prints the state
directory's size before and after, the retention pass's time, the index's size per million
runs, and `status`, a no-op tick, `history --job` and `logs` on that state against the same
commands on a state of 10,000 runs (target: at most ×1.2 each).

    make bench        # or: .venv/bin/python bench/bench_years.py [--years 5]
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

from cronflow.state.store import SEGMENT_BYTES

DAILY_JOBS = 50
KEEP_DAYS = 90


def write_state(folder: Path, minutes: int, end: datetime) -> int:
    """`minutes` of history ending at `end`: the minutely job every minute, each daily job
    once a day; returns how many runs. Lines as Store.append writes them."""
    state = folder / ".cronflow"
    state.mkdir(mode=0o700)
    (state / "output").mkdir(mode=0o700)
    (folder / "jobs.toml").write_text(
        f"[cronflow]\nkeep_history_days = {KEEP_DAYS}\n"
        '[jobs.health]\ncommand = "echo ok"\nschedule = "* * * * *"\n'
        + "".join(
            f'[jobs.daily_{n}]\ncommand = "echo ok"\nschedule = "{n} 3 * * *"\n'
            for n in range(DAILY_JOBS)
        )
    )
    start = end - timedelta(minutes=minutes)
    segment, written, runs = 0, 0, 0
    log = open(state / "runs.jsonl", "wb")  # noqa: SIM115 (rolled below)
    last_time = start
    for minute in range(minutes):
        at = start + timedelta(minutes=minute)
        jobs = ["health"]
        if at.hour == 3 and at.minute < DAILY_JOBS:
            jobs.append(f"daily_{at.minute}")
        for job in jobs:
            lines = _run_lines(job, at)
            if written + len(lines) > SEGMENT_BYTES:
                log.close()
                segment += 1
                rolled = state / f"runs-{segment:06d}.jsonl"
                os.replace(state / "runs.jsonl", rolled)
                os.utime(rolled, (last_time.timestamp(), last_time.timestamp()))
                log = open(state / "runs.jsonl", "wb")  # noqa: SIM115
                written = 0
            log.write(lines)
            written += len(lines)
            runs += 1
            last_time = at + timedelta(seconds=1)
    log.close()
    os.utime(state / "runs.jsonl", (last_time.timestamp(), last_time.timestamp()))
    newest = end - timedelta(minutes=1)
    (state / "output" / "health").mkdir()
    run_id = f"{newest:%Y%m%dT%H%M%SZ}-000000"
    (state / "output" / "health" / f"{run_id}.1.stdout").write_text("ok\n")
    return runs


def _run_lines(job: str, at: datetime) -> bytes:
    run_id = f"{at:%Y%m%dT%H%M%SZ}-000000"
    common = {
        "v": 1,
        "job": job,
        "logical_time": at.isoformat(),
        "run_id": run_id,
        "kind": "scheduled",
        "attempt": 1,
        "max_attempts": 1,
        "started_at": at.isoformat(),
        "host": "bench",
        "pid": 4242,
        "config_hash": "0123456789ab",
    }
    output = {"stdout": f"/state/output/{job}/{run_id}.1.stdout"}
    started = {**common, "event": "started", "status": "running", "output": output}
    finished = {
        **common,
        "event": "finished",
        "status": "success",
        "ended_at": (at + timedelta(seconds=1)).isoformat(),
        "duration_s": 0.01,
        "exit_code": 0,
        "output": output,
    }
    return "".join(
        json.dumps(line, separators=(",", ":")) + "\n" for line in (started, finished)
    ).encode()


def size_of(folder: Path) -> int:
    return sum(path.stat().st_size for path in folder.rglob("*") if path.is_file())


def median_seconds(command: list[str], cwd: Path, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        subprocess.run(command, cwd=cwd, check=True, stdout=subprocess.DEVNULL)
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def commands() -> dict[str, list[str]]:
    cronflow = [sys.executable, "-m", "cronflow"]
    return {
        "status": [*cronflow, "status"],
        "no-op tick (run)": [*cronflow, "run"],
        "full decision (run --dry-run)": [*cronflow, "run", "--dry-run"],
        "history --job health": [*cronflow, "history", "--job", "health"],
        "logs health": [*cronflow, "logs", "health", "--stdout"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--years", type=float, default=5)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    end = datetime.now(UTC).replace(second=0, microsecond=0)
    with tempfile.TemporaryDirectory() as name:
        small, large = Path(name) / "small", Path(name) / "large"
        small.mkdir()
        large.mkdir()
        small_runs = write_state(small, 10_000 - 10, end)
        runs = write_state(large, int(args.years * 365 * 24 * 60), end)
        for folder in (small, large):  # the index built once (status does no housekeeping)
            subprocess.run(commands()["status"], cwd=folder, check=True, stdout=subprocess.DEVNULL)
        before = size_of(large / ".cronflow")
        index_bytes = (large / ".cronflow" / "index.sqlite3").stat().st_size
        from cronflow.load import jobs_toml
        from cronflow.state.store import Store

        started = time.perf_counter()
        Store(jobs_toml.load(large / "jobs.toml").settings.state_dir).forget_before(
            end - timedelta(days=KEEP_DAYS)
        )
        retention = time.perf_counter() - started
        after = size_of(large / ".cronflow")
        for folder in (small, large):  # this minute decided: the next ticks are idle
            subprocess.run(commands()["no-op tick (run)"], cwd=folder, check=True)
        print(
            f"years of history: {runs:,} runs over {args.years:g} years "
            f"(Python {sys.version.split()[0]})"
        )
        print(
            f"  state directory      {before / 2**20:9.1f} MiB before, {after / 2**20:7.1f} MiB "
            f"after keep_history_days = {KEEP_DAYS}"
        )
        print(f"  retention pass       {retention:9.1f} s")
        print(
            f"  index before it      {index_bytes / runs * 1e6 / 2**20:9.1f} MiB per million runs"
            f"  (target: at most half of 178 MB)"
        )
        for label, command in commands().items():
            on_small = median_seconds(command, small, args.repeat)
            on_large = median_seconds(command, large, args.repeat)
            print(
                f"  {label:29} {on_large * 1000:7.0f} ms on years, {on_small * 1000:5.0f} ms on "
                f"{small_runs:,} runs: x{on_large / on_small:4.2f}  (target x1.2)"
            )


if __name__ == "__main__":
    main()
