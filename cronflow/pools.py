"""The model of `[pools.NAME]` and a job's `pool`: shared resources that at most so many
runs use at once, across every cronflow process of a state directory (state/pool_slots.py
holds the slots, act/pool_wait.py waits for them)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta


@dataclass(frozen=True, slots=True)
class Pool:
    """One [pools.NAME] table."""

    name: str
    slots: int
    description: str = ""


@dataclass(frozen=True, slots=True)
class PoolUse:
    """What of a pool a job's runs take: `pool`, `pool_slots`, `pool_priority` and
    `pool_timeout` (None: wait as long as it takes)."""

    pool: str
    slots: int = 1
    priority: int = 0  # among runs of the same logical time, the higher first
    timeout: timedelta | None = None


@dataclass(frozen=True, slots=True)
class PoolState:
    """How a pool stands, for `status`, `why` and a waiting run's words."""

    name: str
    slots: int
    holders: tuple[str, ...]  # the runs holding its slots ("load @ 2026-01-14T06:00+01:00")
    waiting: tuple[str, ...]  # the runs waiting for it, first in line first

    def describe(self) -> str:
        """ "db (2/2 in use by load @ ..., sync @ ...)"."""
        used = f"{sum(1 for _ in self.holders)}/{self.slots} in use"
        by = f" by {', '.join(self.holders)}" if self.holders else ""
        return f"{self.name} ({used}{by})"
