"""Benchmark: what cronflow adds to each run, and how close parallel runs come to ideal.

Three figures, each against a baseline measured in the same run:

- per-run marginal cost: (`cronflow run --date` of a 200-job chain of `true` minus the same
  of a 1-job chain) / (199 bare `subprocess.run(["sh", "-c", "true"])`). Both on a state
  directory that has run a day before (output folders and job locks exist, as on any day
  but the first), so start-up and first-day costs cancel out;
- fan-out: one job and 199 that depend on it, `max_parallel = 20`, against 200 bare spawns;
- 200 jobs of `sleep 0.2` with `max_parallel = 20`, through the executor in this process
  (start-up apart), against the ideal 2.0 s.

    make bench        # or: .venv/bin/python bench/bench_runs.py [--repeat 5]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from datetime import date
from pathlib import Path

from bench_chain import time_bare_loop, time_cli, time_executor

WARM_DAY = "2026-02-01"


def chain(count: int) -> str:
    lines = ['[jobs.job_0]\ncommand = "true"\n']
    lines += [
        f'[jobs.job_{i}]\ncommand = "true"\ndepends_on = ["job_{i - 1}"]\n' for i in range(1, count)
    ]
    return "\n".join(lines)


def fan_out(count: int) -> str:
    lines = ['[cronflow]\nmax_parallel = 20\n[jobs.root]\ncommand = "true"\n']
    lines += [
        f'[jobs.leaf_{i}]\ncommand = "true"\ndepends_on = ["root"]\n' for i in range(1, count)
    ]
    return "\n".join(lines)


def sleepers(count: int) -> str:
    lines = ["[cronflow]\nmax_parallel = 20\n"]
    lines += [f'[jobs.sleep_{i}]\ncommand = "sleep 0.2"\n' for i in range(count)]
    return "\n".join(lines)


def prepared(folder: Path, name: str, text: str) -> Path:
    """A jobs file in its own folder, with a day already run (the state as on any later day)."""
    (folder / name).mkdir()
    path = folder / name / "jobs.toml"
    path.write_text(text)
    time_cli(path, WARM_DAY)
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=200)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    count = args.jobs
    with tempfile.TemporaryDirectory() as name:
        folder = Path(name)
        files = {
            "long": prepared(folder, "long", chain(count)),
            "short": prepared(folder, "short", chain(1)),
            "fan": prepared(folder, "fan", fan_out(count)),
            "sleep": prepared(folder, "sleep", sleepers(count)),
        }
        times: dict[str, list[float]] = {key: [] for key in [*files, "bare"]}
        for repeat in range(args.repeat):  # taking turns, so drift hits all alike
            day = f"2026-03-{repeat + 1:02d}"
            times["bare"].append(time_bare_loop(count))
            for key, path in files.items():
                if key == "sleep":
                    times[key].append(time_executor(path, date.fromisoformat(day), fresh=False))
                else:
                    times[key].append(time_cli(path, day))
    median = {key: statistics.median(values) for key, values in times.items()}
    spawn = median["bare"] / count
    marginal = (median["long"] - median["short"]) / (count - 1)
    print(f"runs, median of {args.repeat} (Python {sys.version.split()[0]})")
    print(f"  bare sh -c true                   {spawn * 1000:6.2f} ms a spawn")
    print(
        f"  per-run marginal cost ({count}-chain - 1-chain) / {count - 1}: "
        f"{marginal * 1000:6.2f} ms  x{marginal / spawn:5.2f} a bare spawn  (target x1.5)"
    )
    print(
        f"  fan-out, 1 + {count - 1} leaves, max_parallel 20: {median['fan']:6.3f} s  "
        f"x{median['fan'] / median['bare']:5.2f} {count} bare spawns"
    )
    ideal = count * 0.2 / 20
    print(
        f"  {count} x sleep 0.2, max_parallel 20: {median['sleep']:6.3f} s  "
        f"x{median['sleep'] / ideal:5.2f} the ideal {ideal:.1f} s  (target x1.10)"
    )


if __name__ == "__main__":
    main()
