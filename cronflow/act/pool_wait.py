"""A try's wait for its pool's slots (state/pool_slots.py), before it starts.

The slots are held, like the run's lock, by descriptors the try's processes inherit: taken
before the command starts, closed by cronflow when it ends (the processes' copies go with
them). Waiting does not count against the job's `timeout`; `pool_timeout` ends it (the try
fails, and says for what it waited); cronflow's own stop ends it too (the run is
interrupted, taken up at the next start).
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from cronflow.model import Job, JobFile, PlannedRun, describe_key
from cronflow.state.pool_slots import PoolSlots

POLL_SECONDS = 0.05  # how often a waiter looks again (a listing and a few locks)


@dataclass(frozen=True, slots=True)
class Slots:
    """What a try got of its pool: the descriptors holding its slots, or why it got none."""

    descriptors: list[int] = field(default_factory=list)
    error: str | None = None  # pool_timeout passed: the try fails with these words
    stopped: bool = False  # cronflow stopped while it waited


@contextmanager
def slots_for(
    pools: PoolSlots, jobfile: JobFile, job: Job, planned: PlannedRun, stop: threading.Event
) -> Iterator[Slots]:
    """The job's slots of its pool for the block (none asked: an empty Slots)."""
    if job.pool is None:
        yield Slots()
        return
    pool = jobfile.pools[job.pool.pool]
    holder = describe_key(jobfile, planned.key)
    taken = None
    if pools.first_in_line(pool.name) is None:  # nobody waits: no line to respect
        taken = pools.take(pool.name, pool.slots, job.pool.slots, holder)
    got = Slots(taken) if taken is not None else _wait_in_line(pools, jobfile, job, planned, stop)
    try:
        yield got
    finally:
        for descriptor in got.descriptors:
            os.close(descriptor)


def _wait_in_line(
    pools: PoolSlots, jobfile: JobFile, job: Job, planned: PlannedRun, stop: threading.Event
) -> Slots:
    """Wait until first in the pool's line with enough slots free; or the pool_timeout, or
    cronflow's stop."""
    assert job.pool is not None
    use, pool = job.pool, jobfile.pools[job.pool.pool]
    holder = describe_key(jobfile, planned.key)
    began = time.monotonic()
    with pools.in_line(pool.name, planned.logical_time, use.priority, holder) as me:
        while True:
            if pools.first_in_line(pool.name) == me:
                taken = pools.take(pool.name, pool.slots, use.slots, holder)
                if taken is not None:
                    return Slots(taken)
            if stop.is_set():
                return Slots(stopped=True)
            waited = time.monotonic() - began
            if use.timeout is not None and waited >= use.timeout.total_seconds():
                state = pools.state(pool.name, pool.slots)
                return Slots(
                    error=f"waited {waited:.0f}s for pool {state.describe()}: "
                    f"pool_timeout = {use.timeout} ended the wait"
                )
            stop.wait(POLL_SECONDS)
