"""Pausing and resuming jobs (`cronflow pause`, `cronflow resume`), and pauses that expire.

Which jobs are paused is kept in `state_dir/paused.json`, written durably under the @plan
lock, the lock every decision holds: a tick decides with the pauses as they were when it
began, and no pause is half-written. Each change is also a `pause` line of the run log
(who, when, until when, why), the history `status` and audits read.

A paused job's scheduled ticks still come due: each is recorded `skipped` with the pause's
words (so nothing is silently lost, and `run --date … --rerun failed` runs them later), and
the jobs after it follow their `run_if`. A backfill or a manual run of a paused job runs
only with `--include-paused`. A run already started goes on, retries included.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from datetime import datetime

from cronflow.load import trust
from cronflow.model import Pause, PauseAction, PauseChange
from cronflow.state.layout import PLAN_LOCK
from cronflow.state.locks import Locks
from cronflow.state.store import Store


def who() -> str:
    """Who is pausing: the user, and through sudo the user who ran it."""
    name = trust.user_name(os.geteuid())
    sudo = os.environ.get("SUDO_USER")
    return f"{sudo} (as {name})" if sudo and sudo != name else name


def pause(
    store: Store,
    locks: Locks,
    jobs: Iterable[str],
    *,
    by: str,
    now: datetime,
    until: datetime | None,
    reason: str,
) -> list[Pause]:
    """Pause `jobs` (a paused one gets the new pause); the pauses, as recorded."""
    with locks.hold(PLAN_LOCK, wait=True):
        pauses = store.read_pauses()
        made = [Pause(job=job, by=by, since=now, until=until, reason=reason) for job in jobs]
        pauses.update({made_pause.job: made_pause for made_pause in made})
        store.write_pauses(pauses)
        for made_pause in made:
            store.append(
                PauseChange(
                    job=made_pause.job,
                    action=PauseAction.PAUSED,
                    by=by,
                    at=now,
                    until=until,
                    reason=reason,
                )
            )
    return made


def resume(store: Store, locks: Locks, jobs: Iterable[str], *, by: str, now: datetime) -> list[str]:
    """Resume `jobs`; the ones that were paused (the others were not)."""
    with locks.hold(PLAN_LOCK, wait=True):
        pauses = store.read_pauses()
        resumed = [job for job in jobs if job in pauses]
        for job in resumed:
            del pauses[job]
        if resumed:
            store.write_pauses(pauses)
        for job in resumed:
            store.append(PauseChange(job=job, action=PauseAction.RESUMED, by=by, at=now))
    return resumed


def expire(store: Store, now: datetime) -> list[str]:
    """End the pauses whose time has come (recorded `expired`); the jobs they held. Call
    under the @plan lock (Engine.decide does)."""
    pauses = store.read_pauses()
    ended = [job for job, held in pauses.items() if not held.holds_at(now)]
    if not ended:
        return []
    gone = [pauses.pop(job) for job in ended]
    store.write_pauses(pauses)
    for held in gone:
        store.append(
            PauseChange(
                job=held.job,
                action=PauseAction.EXPIRED,
                by="cronflow",
                at=now,
                until=held.until,
                reason=f"its pause by {held.by} ended",
            )
        )
    return ended
