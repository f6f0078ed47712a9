"""When a scheduled run starts: its tick, moved by random_offset and random_delay."""

from __future__ import annotations

from datetime import datetime, timedelta

from cronflow.model import (
    Job,
    JobFile,
)


def start_of(jobfile: JobFile, job: Job, tick: datetime) -> datetime:
    """When the scheduled run of `job` for `tick` starts: at the tick, later by the job's
    random_offset share for this host (the same for every run: a fleet spreads out, each
    host stays regular) and its random_delay share for this tick (fresh for each run), as
    systemd's RandomizedOffsetSec= and RandomizedDelaySec=. Drawn from a hash, not a random
    generator: every invocation, the idle stamp, `next` and `status` tell the same time.
    The run's logical time stays the tick."""
    if not (job.random_delay or job.random_offset):
        return tick
    seed = jobfile.settings.host_seed
    seconds = (
        _share(seed, job.name) * job.random_offset.total_seconds()
        + _share(seed, job.name, tick.isoformat()) * job.random_delay.total_seconds()
    )
    return tick + timedelta(seconds=int(seconds))


def _share(*parts: str) -> float:
    """A number in [0, 1) drawn evenly from `parts`."""
    import hashlib

    digest = hashlib.sha256("\0".join(parts).encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64
