"""Write a realistic runs.jsonl of N records (started/finished pairs of 20 jobs, some failing,
retries and alerts) for the index tests and the status benchmark.

    .venv/bin/python bench/make_log.py STATE_DIR 1000000
"""

from __future__ import annotations

import json
import random
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

JOBS = [f"job_{index:02d}" for index in range(20)]


def write_log(state_dir: Path, records: int, seed: int = 7) -> Path:
    """Append `records` event lines to state_dir/runs.jsonl; return the jobs file for them."""
    state_dir.mkdir(parents=True, exist_ok=True)
    chance = random.Random(seed)
    start = datetime(2025, 1, 1, tzinfo=UTC)
    lines = []
    written, tick = 0, 0
    while written < records:
        job = JOBS[tick % len(JOBS)]
        logical = start + timedelta(minutes=tick // len(JOBS))
        run_id = f"{logical:%Y%m%dT%H%M%SZ}-{tick:06x}"
        attempts = 2 if chance.random() < 0.05 else 1
        for attempt in range(1, attempts + 1):
            failed = attempt < attempts or chance.random() < 0.02
            base = {
                "v": 1,
                "job": job,
                "logical_time": logical.isoformat(),
                "run_id": run_id,
                "kind": "scheduled",
                "attempt": attempt,
                "max_attempts": 2,
                "host": "bench",
                "pid": 1000,
                "started_at": logical.isoformat(),
            }
            lines.append(
                {
                    **base,
                    "event": "started",
                    "status": "running",
                    "output": {"stdout": f"/x/{run_id}.{attempt}.stdout"},
                }
            )
            lines.append(
                {
                    **base,
                    "event": "finished",
                    "status": "failed" if failed else "success",
                    "ended_at": (logical + timedelta(seconds=3)).isoformat(),
                    "duration_s": 3.0,
                    "exit_code": 1 if failed else 0,
                    "stderr_tail": "boom" if failed else "",
                    "reason": "exit status 1" if failed else "",
                }
            )
            written += 2
        tick += 1
    path = state_dir / "runs.jsonl"
    with open(path, "a") as log:
        for record in lines[:records]:
            log.write(json.dumps(record, separators=(",", ":")) + "\n")
    jobs = state_dir.parent / "jobs.toml"
    jobs.write_text(
        f'[cronflow]\nstate_dir = "{state_dir.name}"\n'
        + "".join(f'[jobs.{job}]\ncommand = "true"\nschedule = "* * * * *"\n' for job in JOBS)
    )
    return jobs


if __name__ == "__main__":
    write_log(Path(sys.argv[1]), int(sys.argv[2]))
