"""Exactly once under load: a daemon, one-shot runs, overlapping backfills and pauses at once.

The same harness as `make torture` (tests/torture.py), without kills and for 8 seconds, one day backfilled:
every run executes once (counted by the lines the jobs append), none is lost, and a reader
polling the index never sees its run count go down.
"""

from __future__ import annotations

from tests.torture import BACKFILLED, TICKS_PER_DAY, Torture


def test_side_by_side_invocations_run_everything_exactly_once(tmp_path):
    torture = Torture(tmp_path, days=1, kill=False, seed=13)
    figures = torture.run(seconds=8, quiet=1)
    report = figures.report(8, kill=False)
    assert figures.runs >= TICKS_PER_DAY * len(BACKFILLED), report
    assert figures.duplicates == 0 and figures.lost == 0 and figures.unbacked == 0, report
    assert figures.index_polls > 50 and figures.index_shrank == 0, report
    kinds = {"backfill", "daemon", "one-shot", "pause"}  # pause: pause or resume, at random
    assert min(figures.invocations.values()) >= 1 and set(figures.invocations) == kinds, report
