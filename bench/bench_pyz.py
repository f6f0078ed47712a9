"""Benchmark: dist/cronflow.pyz against the installed `cronflow` command.

A one-shot `cronflow run` with 100 scheduled jobs and nothing due (what cron pays every
minute), started as the installed console script and as `python3 cronflow.pyz`: the first run
of the single file (which unpacks it into a fresh SHIV_ROOT), then its later runs. Medians of
repeated process starts, measured in this run; the single file runs on the plain Python
this virtual environment was made from.

    make bench        # or, after make dist: .venv/bin/python bench/bench_pyz.py [--repeat 30]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench_startup import jobs_file, median_seconds

ROOT = Path(__file__).resolve().parent.parent
PYZ = ROOT / "dist" / "cronflow.pyz"
INSTALLED = Path(sys.executable).parent / "cronflow"
# The single file runs on a plain interpreter, without this virtual environment.
PLAIN_PYTHON = Path(sys.base_prefix) / "bin" / f"python{sys.version_info[0]}.{sys.version_info[1]}"


def first_runs(command: list[str], folder: Path, repeat: int) -> float:
    """Median time of a run that finds nothing unpacked yet (a new SHIV_ROOT each time)."""
    times = []
    for number in range(repeat):
        env = {**os.environ, "SHIV_ROOT": str(folder / f"shiv-first-{number}")}
        started = time.perf_counter()
        subprocess.run(command, cwd=folder, env=env, check=True, stdout=subprocess.DEVNULL)
        times.append(time.perf_counter() - started)
    return sorted(times)[len(times) // 2]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=30)
    args = parser.parse_args()
    if not PYZ.exists():
        sys.exit(f"{PYZ} is missing: run `make dist` first")
    with tempfile.TemporaryDirectory() as name:
        folder = Path(name)
        jobs = str(jobs_file(folder, 100))
        installed = [str(INSTALLED), "run", "--jobs", jobs]
        single_file = [str(PLAIN_PYTHON), str(PYZ), "run", "--jobs", jobs]
        subprocess.run(installed, check=True)  # first sight: writes the watermarks once
        first = first_runs(single_file, folder, max(3, args.repeat // 6))
        os.environ["SHIV_ROOT"] = str(folder / "shiv")
        subprocess.run(single_file, check=True)  # unpack once for the later runs
        later = median_seconds({"installed": installed, "pyz": single_file}, args.repeat, folder)
    base = later["installed"]
    print(
        f"cronflow run, 100 jobs, none due: median of {args.repeat} runs "
        f"(Python {sys.version.split()[0]}, {PYZ.stat().st_size / 1e6:.1f} MB pyz)"
    )
    print(f"  installed cronflow command        {base * 1000:7.1f} ms  x 1.00")
    print(f"  cronflow.pyz, first run (unpacks)  {first * 1000:7.1f} ms  x{first / base:5.2f}")
    print(
        f"  cronflow.pyz, later runs           {later['pyz'] * 1000:7.1f} ms  "
        f"x{later['pyz'] / base:5.2f}"
    )


if __name__ == "__main__":
    main()
