"""The `[pools.NAME]` tables and a job's `pool`, `pool_slots`, `pool_priority` and
`pool_timeout`, checked (the model: cronflow/pools.py)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from cronflow.load.checker import Checker, section_of
from cronflow.load.values import POOL_KEYS, close_matches
from cronflow.pools import Pool, PoolUse

POOL_EXAMPLE = "[pools.db] slots = 2"
POOL_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*\Z")
_USE_KEYS = ("pool_slots", "pool_priority", "pool_timeout")


def pools(checker: Checker) -> dict[str, Pool]:
    """Every [pools.NAME] table; each must say its slots."""
    tables = section_of(checker, "pools", f"Write {POOL_EXAMPLE}")
    found = {}
    for name, table in tables.items():
        if not POOL_NAME.match(name) or len(name) > 100:
            checker._report(
                ("pools", name),
                f'pool name "{name}" is not allowed',
                "Use at most 100 letters, digits, '_', '-' and '.', starting with a letter or "
                "digit (it names lock files)",
            )
            continue
        values = checker._table(("pools", name), POOL_KEYS)
        if "slots" not in values:
            if isinstance(table, dict) and "slots" not in table:
                checker._report(("pools", name), "has no slots", f"Write {POOL_EXAMPLE}")
            continue
        found[name] = Pool(name=name, **values)
    return found


def job_pool(
    checker: Checker, name: str, values: Mapping[str, Any], known: Mapping[str, Pool]
) -> PoolUse | None:
    """The pool the job's runs take slots of (None: none)."""
    if "pool" not in values:
        own = checker.raw["jobs"][name]
        for key in _USE_KEYS:
            if key in own:
                checker._report(
                    ("jobs", name, key),
                    f"{key} without a pool",
                    'Add pool = "NAME" (a [pools.NAME] table), or remove it',
                )
        return None
    pool = values["pool"]
    if pool not in known:
        close = close_matches(pool, list(known))
        checker._report(
            ("jobs", name, "pool"),
            f'"{pool}" is not a pool of this file',
            f'Did you mean "{close[0]}"?' if close else f"Declare it: {POOL_EXAMPLE}",
        )
        return None
    use = PoolUse(
        pool=pool,
        slots=values.get("pool_slots", 1),
        priority=values.get("pool_priority", 0),
        timeout=values.get("pool_timeout"),
    )
    if use.slots > known[pool].slots:
        checker._report(
            ("jobs", name, "pool_slots"),
            f"takes {use.slots} slots of pool {pool}, which has {known[pool].slots}: it could never run",
            f"Take at most {known[pool].slots}, or give the pool more slots",
        )
    return use
