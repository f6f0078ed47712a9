"""Benchmark and check: the run index against a full scan of a 200,000-event log.

Builds the index of a generated log (several 8 MiB chunks) and the same answers from a
full read of the log, checks that they agree on sampled runs, every job's recent runs, the
unfinished runs and the last activity, and prints both times. (The test suite runs the same
check on a 20,000-event log read in small chunks: tests/test_index.py.)

    make bench        # or: .venv/bin/python bench/bench_index.py [--events 200000]
"""

from __future__ import annotations

import argparse
import random
import tempfile
import time
from pathlib import Path

from make_log import JOBS, write_log

from cronflow.model import RunStatus
from cronflow.state.index import RunIndex
from cronflow.state.store import Store


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=200_000)
    events = parser.parse_args().events
    with tempfile.TemporaryDirectory() as folder:
        state = Path(folder) / "state"
        write_log(state, events)
        store = Store(state)
        started = time.perf_counter()
        indexed = store.index()
        built = time.perf_counter() - started
        started = time.perf_counter()
        full = RunIndex(store.read().events)
        scanned = time.perf_counter() - started
        keys = [event.key for event in full.recent_runs(JOBS[0], 10_000)]
        for key in random.Random(3).sample(keys, min(200, len(keys))):
            assert indexed.latest(key) == full.latest(key), key
        for job in JOBS:
            assert indexed.recent_runs(job, 50) == full.recent_runs(job, 50), job
        assert indexed.unfinished(*RunStatus) == full.unfinished(*RunStatus)
        assert indexed.last_activity == full.last_activity
        size = (state / "runs.jsonl").stat().st_size / 2**20
    print(f"run index of {events:,} events ({size:.1f} MB log), same answers as a full scan")
    print(f"  full scan into memory   {scanned:6.2f} s  x 1.00")
    print(f"  index built from log    {built:6.2f} s  x {built / scanned:.2f}")


if __name__ == "__main__":
    main()
