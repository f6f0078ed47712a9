"""How fresh each asset is: as fresh as the logical time of its producer's newest successful
run. Stale when that is older than its `fresh_within` (by default two intervals of its
producer's schedule), with why: its producer failed, an asset its producer uses is stale, it
was never produced. An asset never produced is new, not stale, for its first fresh_within
after a decision first found it in the jobs file (always, with no fresh_within to go by).
Pure: the runs are read through RunRecords."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from functools import partial

from cronflow.decide.schedule import schedule_of
from cronflow.model import Asset, Job, JobFile, RunKey, RunStatus, describe_key
from cronflow.records import RunRecords


class Freshness(StrEnum):
    FRESH = "fresh"
    STALE = "stale"
    EXTERNAL = "external"  # made outside cronflow: its freshness is not cronflow's to tell
    NEW = "new"  # not produced yet, and not yet expected to be


@dataclass(frozen=True, slots=True, kw_only=True)
class AssetState:
    name: str
    producer: str | None
    consumers: tuple[str, ...]
    fresh_as_of: datetime | None  # the newest successful run's logical time
    fresh_within: timedelta | None  # None: not told, nor a schedule to tell it by
    state: Freshness
    why: str = ""
    stale_at: datetime | None = None  # when a fresh or new asset goes stale, if nothing runs


def fresh_within(jobfile: JobFile, asset: Asset, now: datetime) -> timedelta | None:
    """How old the asset may be: its own fresh_within, else two intervals of its producer's
    schedule (None for an unscheduled producer or an external asset)."""
    if asset.fresh_within is not None:
        return asset.fresh_within
    producer = jobfile.jobs.get(asset.producer or "")
    if producer is None or producer.cadence.expression is None:
        return None
    schedule = schedule_of(producer.cadence)
    first = schedule.next_after(now)
    second = schedule.next_after(first) if first else None
    return None if first is None or second is None else 2 * (second - first)


def states(jobfile: JobFile, history: RunRecords, now: datetime) -> list[AssetState]:
    """Every asset's state, producers before consumers (an upstream's staleness explains a
    downstream one's)."""
    found: dict[str, AssetState] = {}
    for name in _upstream_first(jobfile):
        found[name] = _state(jobfile, jobfile.assets[name], history, now, found)
    return [found[name] for name in jobfile.assets]


def _state(
    jobfile: JobFile,
    asset: Asset,
    history: RunRecords,
    now: datetime,
    known: Mapping[str, AssetState],
) -> AssetState:
    made = partial(AssetState, name=asset.name, producer=asset.producer, consumers=asset.consumers)
    if asset.producer is None:
        return made(fresh_as_of=None, fresh_within=None, state=Freshness.EXTERNAL)
    job = jobfile.jobs[asset.producer]
    as_of = history.newest_success(job.name)
    allowed = fresh_within(jobfile, asset, now)
    if as_of is None:
        since = history.first_seen("asset", asset.name) or now
        if allowed is None or now - since <= allowed:
            return made(
                fresh_as_of=None,
                fresh_within=allowed,
                state=Freshness.NEW,
                why="not produced yet",
                stale_at=None if allowed is None else since + allowed,
            )
        return made(
            fresh_as_of=None, fresh_within=allowed, state=Freshness.STALE, why="never produced"
        )
    if allowed is None or now - as_of <= allowed:
        return made(
            fresh_as_of=as_of,
            fresh_within=allowed,
            state=Freshness.FRESH,
            stale_at=None if allowed is None else as_of + allowed,
        )
    return made(
        fresh_as_of=as_of,
        fresh_within=allowed,
        state=Freshness.STALE,
        why=_why_stale(jobfile, job, history, known),
    )


def _why_stale(
    jobfile: JobFile, job: Job, history: RunRecords, known: Mapping[str, AssetState]
) -> str:
    """What holds the asset back: a stale input, its producer's failing run, or lateness."""
    inputs = [name for name in job.uses if known.get(name) and known[name].state is Freshness.STALE]
    if inputs:
        return f"upstream asset {inputs[0]} is stale"
    last = history.job_runs(job.name, 1).last
    if last is not None and last.status.is_failure:
        return f"producer {describe_key(jobfile, RunKey(job.name, last.logical_time))} is {last.status}"
    if last is not None and last.status is RunStatus.RUNNING:
        return f"producer {job.name} is running"
    return f"producer {job.name} has not succeeded since"


def _upstream_first(jobfile: JobFile) -> list[str]:
    """Asset names, each after the assets its producer uses."""
    order: list[str] = []

    def visit(name: str, seen: set[str]) -> None:
        if name in order or name in seen or name not in jobfile.assets:
            return
        seen.add(name)
        producer = jobfile.jobs.get(jobfile.assets[name].producer or "")
        for used in producer.uses if producer else ():
            visit(used, seen)
        order.append(name)

    for name in jobfile.assets:
        visit(name, set())
    return order


def lineage(jobfile: JobFile, name: str) -> tuple[list[str], list[str]]:
    """What the asset is made from and what is made from it: lines of two trees (upstream
    through producers and the assets they use, downstream through consumers and what they
    produce), each line `asset NAME` or `job NAME`, indented by depth."""
    return _walk_up(jobfile, name, 0, set()), _walk_down(jobfile, name, 0, set())


def _walk_up(jobfile: JobFile, name: str, depth: int, seen: set[str]) -> list[str]:
    lines = [f"{'  ' * depth}asset {name}"]
    asset = jobfile.assets.get(name)
    if name in seen or asset is None or asset.producer is None:
        return lines + ([f"{'  ' * (depth + 1)}(external)"] if asset and not asset.producer else [])
    seen.add(name)
    job = jobfile.jobs[asset.producer]
    lines.append(f"{'  ' * (depth + 1)}job {job.name}")
    for used in job.uses:
        lines += _walk_up(jobfile, used, depth + 2, seen)
    return lines


def _walk_down(jobfile: JobFile, name: str, depth: int, seen: set[str]) -> list[str]:
    lines = [f"{'  ' * depth}asset {name}"]
    asset = jobfile.assets.get(name)
    if name in seen or asset is None:
        return lines
    seen.add(name)
    for consumer in asset.consumers:
        lines.append(f"{'  ' * (depth + 1)}job {consumer}")
        for made in jobfile.jobs[consumer].produces:
            lines += _walk_down(jobfile, made, depth + 2, seen)
    return lines


def producers_of(jobfile: JobFile, names: Sequence[str]) -> list[str]:
    """The jobs that produce these assets (for `run --asset`); unknown or external ones
    are a UsageError naming what to do."""
    from cronflow.errors import UsageError

    jobs = []
    for name in names:
        asset = jobfile.assets.get(name)
        if asset is None:
            known = ", ".join(sorted(jobfile.assets)) or "none"
            raise UsageError(f'no asset is named "{name}" in {jobfile.path} (assets: {known})')
        if asset.producer is None:
            raise UsageError(
                f'asset "{name}" is external: no job here produces it, so there is nothing to run'
            )
        jobs.append(asset.producer)
    return list(dict.fromkeys(jobs))


def as_json(state: AssetState, now: datetime) -> dict[str, object]:
    """An asset's state as `cronflow assets --json` prints it."""
    return {
        "asset": state.name,
        "producer": state.producer,
        "consumers": list(state.consumers),
        "fresh_as_of": state.fresh_as_of.isoformat() if state.fresh_as_of else None,
        "age_s": round((now - state.fresh_as_of).total_seconds()) if state.fresh_as_of else None,
        "fresh_within_s": state.fresh_within.total_seconds() if state.fresh_within else None,
        "state": state.state,
        "why": state.why or None,
    }


def stale_names(jobfile: JobFile, history: RunRecords, now: datetime) -> list[str]:
    """The names of the assets older than they may be (`status --check` fails on them)."""
    if not jobfile.assets:
        return []
    return [s.name for s in states(jobfile, history, now) if s.state is Freshness.STALE]
