"""Prometheus metrics in the text exposition format, for node_exporter's textfile collector
(`[cronflow] metrics_file`) and `cronflow metrics`.

Every value comes from the run index, so the counters survive restarts and retention (the
index counts how runs ended as it takes in the log; see RunIndex.outcomes). The file is
replaced whole (a temporary file in the same directory, then a rename), so a scrape never
reads half of one, whoever writes it; writers take turns (the @metrics lock), so a counter
never goes down.

Labels: `cronflow_job`, `result` from a fixed set, `asset` (the jobs file's), and on every
sample `cronflow_instance` (which cronflow wrote it: two writing into one textfile directory
stay apart). Never `job` or `instance`: Prometheus gives every target those, and a clash
renames ours (`exported_job`), so rules written for ours would never match. The file's first
line names its instance, so that another cronflow refuses to overwrite it (host_checks).
Nothing in the file depends on the time it is written: an asset's staleness is
`time() - fresh_timestamp > fresh_within`, computed by Prometheus (the shipped rules,
prometheus_rules.yml beside this module, do it).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from functools import lru_cache

from cronflow.decide import freshness, overdue
from cronflow.decide.schedule import schedule_of
from cronflow.model import (
    METRICS_INSTANCE_HEADER,
    AlertEvent,
    Cadence,
    JobFile,
    Pause,
    RunStatus,
)
from cronflow.state.index import RunIndex
from cronflow.state.index_rows import FINAL_RESULTS
from cronflow.state.layout import LAST_TICK, METRICS_LOCK
from cronflow.state.locks import Locks
from cronflow.state.store import Store
from cronflow.tell.derived_files import Refresher
from cronflow.tell.tick_marks import TICK_METRIC

# What ended with the run's own process (the job ran, to an end): a "completion".
COMPLETED = [status for status in RunStatus if status.is_failed_try or status is RunStatus.SUCCESS]

_METRICS = (
    (
        "cronflow_job_last_success_timestamp_seconds",
        "gauge",
        "When the job's newest successful run ended (Unix time).",
    ),
    (
        "cronflow_job_last_completion_timestamp_seconds",
        "gauge",
        "When the job's newest run that ran to an end (success or failure) ended (Unix time).",
    ),
    (
        "cronflow_job_last_duration_seconds",
        "gauge",
        "How long the last try of the job's newest completed run took.",
    ),
    (
        "cronflow_job_last_exit_code",
        "gauge",
        "The exit status of the job's newest completed run (absent when it had none).",
    ),
    (
        "cronflow_job_runs_total",
        "counter",
        "Runs of the job by how they ended (a retried run counts once, when it ends).",
    ),
    (
        "cronflow_job_failing_streak",
        "gauge",
        "Runs of the job that failed since its newest success.",
    ),
    ("cronflow_job_running", "gauge", "Runs of the job recorded as running now."),
    ("cronflow_job_paused", "gauge", "1 while the job is paused (cronflow pause), else 0."),
    ("cronflow_job_slow", "gauge", "1 while a run of the job is past its max_runtime, else 0."),
    ("cronflow_job_late", "gauge", "1 while the job has not succeeded by its finish_by, else 0."),
    (
        "cronflow_job_first_seen_timestamp_seconds",
        "gauge",
        "When cronflow first decided with the job in its jobs file (Unix time).",
    ),
    (
        "cronflow_job_interval_seconds",
        "gauge",
        "The longest gap between two ticks of the job's schedule (its own, or its upstreams').",
    ),
    (
        "cronflow_asset_fresh_timestamp_seconds",
        "gauge",
        "The logical time the asset is fresh as of: its producer's newest success (Unix time).",
    ),
    (
        "cronflow_asset_fresh_within_seconds",
        "gauge",
        "How old the asset may grow before it is stale (fresh_within, or two intervals).",
    ),
    (
        "cronflow_asset_first_seen_timestamp_seconds",
        "gauge",
        "When cronflow first decided with the asset in its jobs file (Unix time).",
    ),
    (
        "cronflow_asset_late",
        "gauge",
        "1 while the asset's deadline has passed or can no longer be met, else 0.",
    ),
    (
        TICK_METRIC,
        "gauge",
        "When cronflow last decided what was due (Unix time): the daemon or the cron line runs.",
    ),
)


_GAP_TICKS = 64  # ticks looked at for a schedule's longest gap


FAMILIES = tuple(name for name, _, _ in _METRICS)  # every metric family the file declares


def exposition_of(jobfile: JobFile, store: Store) -> str:
    """The metrics of every job in the file, from its state directory."""
    index = store.index()
    episodes = overdue.still_holding(store.overdue(), index)
    return exposition(jobfile, index, store.read_stamp(LAST_TICK), store.read_pauses(), episodes)


def exposition(
    jobfile: JobFile,
    index: RunIndex,
    last_tick: datetime | None,
    pauses: Mapping[str, Pause] | None = None,
    episodes: Sequence[Mapping[str, str | None]] = (),
) -> str:
    """The metrics of every job in the file, in the text exposition format; `episodes`:
    the slow and late ones that hold (decide/overdue.still_holding)."""
    identity = jobfile.settings.identity
    slow = {e["job"] for e in episodes if e["on"] == AlertEvent.SLOW}
    late = {e["job"] for e in episodes if e["on"] == AlertEvent.LATE and not e["asset"]}
    late_assets = {e["asset"] for e in episodes if e["on"] == AlertEvent.LATE and e["asset"]}
    own = f'cronflow_instance="{_escape(identity)}"'
    samples: dict[str, list[str]] = {name: [] for name, _, _ in _METRICS}

    def add(metric: str, labels: str, value: object) -> None:
        samples[metric].append(f"{{{own}{labels}}} {value}")

    for name, job in jobfile.jobs.items():
        label = f',cronflow_job="{_escape(name)}"'
        outcomes = index.outcomes(name)
        success = outcomes.get(RunStatus.SUCCESS)
        if success and success.last_ended:
            add("cronflow_job_last_success_timestamp_seconds", label, _seconds(success.last_ended))
        completed = [
            outcomes[result]
            for result in COMPLETED
            if result in outcomes and outcomes[result].last_ended
        ]
        if completed:
            newest = max(completed, key=lambda outcome: outcome.last_ended or datetime.min)
            assert newest.last_ended is not None
            add(
                "cronflow_job_last_completion_timestamp_seconds", label, _seconds(newest.last_ended)
            )
            if newest.last_duration is not None:
                add("cronflow_job_last_duration_seconds", label, repr(newest.last_duration))
            if newest.last_exit is not None:
                add("cronflow_job_last_exit_code", label, newest.last_exit)
        for result in FINAL_RESULTS:
            count = outcomes[result].count if result in outcomes else 0
            add("cronflow_job_runs_total", f'{label},result="{result}"', count)
        runs = index.job_runs(name, 12)
        add("cronflow_job_failing_streak", label, runs.failing_streak)
        running = sum(status is RunStatus.RUNNING for _, status in runs.recent)
        add("cronflow_job_running", label, running)
        held = (pauses or {}).get(name)
        paused = held is not None and held.holds_at(last_tick or datetime.now(UTC))
        add("cronflow_job_paused", label, int(paused))
        if job.max_runtime is not None or job.max_runtime_auto:
            add("cronflow_job_slow", label, int(name in slow))
        if job.finish_by is not None:
            add("cronflow_job_late", label, int(name in late))
        seen = index.first_seen("job", name)
        if seen is not None:
            add("cronflow_job_first_seen_timestamp_seconds", label, _seconds(seen))
        gap = longest_gap(job.cadence) if job.enabled else None
        if gap is not None:
            add("cronflow_job_interval_seconds", label, repr(gap.total_seconds()))
    if jobfile.assets:
        now = last_tick or datetime.now(UTC)  # what a default age is measured at
        for state in freshness.states(jobfile, index, now):
            label = f',asset="{_escape(state.name)}"'
            if state.fresh_as_of is not None:
                add("cronflow_asset_fresh_timestamp_seconds", label, _seconds(state.fresh_as_of))
            if state.fresh_within is not None:
                add(
                    "cronflow_asset_fresh_within_seconds",
                    label,
                    repr(state.fresh_within.total_seconds()),
                )
            seen = index.first_seen("asset", state.name)
            if seen is not None and state.producer is not None:
                add("cronflow_asset_first_seen_timestamp_seconds", label, _seconds(seen))
            if jobfile.assets[state.name].deadline is not None:
                add("cronflow_asset_late", label, int(state.name in late_assets))
    if last_tick is not None:
        add(TICK_METRIC, "", _seconds(last_tick))
    lines = [METRICS_INSTANCE_HEADER + _escape(identity)]
    for name, kind, text in _METRICS:
        lines += [f"# HELP {name} {text}", f"# TYPE {name} {kind}"]
        lines += [f"{name}{sample}" for sample in samples[name]]
    return "\n".join(lines) + "\n"


def alerting_rules() -> str:
    """The Prometheus rule file shipped with cronflow (`cronflow metrics --rules`)."""
    from importlib.resources import files

    return files("cronflow.tell").joinpath("prometheus_rules.yml").read_text(encoding="utf-8")


@lru_cache(maxsize=256)
def longest_gap(cadence: Cadence) -> timedelta | None:
    """The longest gap between two of the next _GAP_TICKS ticks (a weekday job's is the
    weekend's), for rules that ask "has it succeeded within two intervals" without a false
    alarm on Monday; None for a job that runs only when asked. Cached: a schedule's gaps
    do not depend on the day they are counted from, beyond DST's hour."""
    if cadence.expression is None:
        return None
    schedule = schedule_of(cadence)
    ticks: list[datetime] = []
    tick = schedule.next_after(datetime.now(UTC))
    while tick is not None and len(ticks) < _GAP_TICKS:
        ticks.append(tick)
        tick = schedule.next_after(tick)
    if len(ticks) < 2:
        return None
    return max(later - earlier for earlier, later in zip(ticks, ticks[1:], strict=False))


def _seconds(instant: datetime) -> str:
    return repr(round(instant.timestamp(), 6))


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def metrics_refresher(jobfile: JobFile, store: Store) -> Refresher:
    """Keeps [cronflow] metrics_file current (readable by all: the collector often runs as
    another user, and it holds no secret)."""
    assert jobfile.settings.metrics_file is not None
    return Refresher(
        jobfile.settings.metrics_file,
        lambda: exposition_of(jobfile, store),
        locks=Locks(store.lock_dir),
        lock_name=METRICS_LOCK,
    )
