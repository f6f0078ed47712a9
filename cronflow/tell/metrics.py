"""Prometheus metrics in the text exposition format, for node_exporter's textfile collector
(`[cronflow] metrics_file`) and `cronflow metrics`.

Every value comes from the run index, so the counters survive restarts and retention (the
index counts how runs ended as it takes in the log; see RunIndex.outcomes). The file is
replaced whole (a temporary file in the same directory, then a rename), so a scrape never
reads half of one, whoever writes it; writers take turns (the @metrics lock), so a counter
never goes down. Labels: `job`, `result` from a fixed set, and `asset` (the jobs file's).
Nothing in the file depends on the time it is written: an asset's staleness is
`time() - fresh_timestamp > fresh_within`, computed by Prometheus.
"""

from __future__ import annotations

from datetime import UTC, datetime

from cronflow.decide import freshness
from cronflow.model import JobFile, RunStatus
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
        TICK_METRIC,
        "gauge",
        "When cronflow last decided what was due (Unix time): the daemon or the cron line runs.",
    ),
)


def exposition(jobfile: JobFile, index: RunIndex, last_tick: datetime | None) -> str:
    """The metrics of every job in the file, in the text exposition format."""
    samples: dict[str, list[str]] = {name: [] for name, _, _ in _METRICS}
    for name in jobfile.jobs:
        label = f'job="{_escape(name)}"'
        outcomes = index.outcomes(name)
        success = outcomes.get(RunStatus.SUCCESS)
        if success and success.last_ended:
            samples["cronflow_job_last_success_timestamp_seconds"].append(
                f"{{{label}}} {_seconds(success.last_ended)}"
            )
        completed = [
            outcomes[result]
            for result in COMPLETED
            if result in outcomes and outcomes[result].last_ended
        ]
        if completed:
            newest = max(completed, key=lambda outcome: outcome.last_ended or datetime.min)
            assert newest.last_ended is not None
            samples["cronflow_job_last_completion_timestamp_seconds"].append(
                f"{{{label}}} {_seconds(newest.last_ended)}"
            )
            if newest.last_duration is not None:
                samples["cronflow_job_last_duration_seconds"].append(
                    f"{{{label}}} {newest.last_duration!r}"
                )
            if newest.last_exit is not None:
                samples["cronflow_job_last_exit_code"].append(f"{{{label}}} {newest.last_exit}")
        for result in FINAL_RESULTS:
            count = outcomes[result].count if result in outcomes else 0
            samples["cronflow_job_runs_total"].append(f'{{{label},result="{result}"}} {count}')
        runs = index.job_runs(name, 12)
        samples["cronflow_job_failing_streak"].append(f"{{{label}}} {runs.failing_streak}")
        running = sum(status is RunStatus.RUNNING for _, status in runs.recent)
        samples["cronflow_job_running"].append(f"{{{label}}} {running}")
    if jobfile.assets:
        now = last_tick or datetime.now(UTC)  # what a default age is measured at
        for state in freshness.states(jobfile, index, now):
            label = f'{{asset="{_escape(state.name)}"}}'
            if state.fresh_as_of is not None:
                samples["cronflow_asset_fresh_timestamp_seconds"].append(
                    f"{label} {_seconds(state.fresh_as_of)}"
                )
            if state.fresh_within is not None:
                samples["cronflow_asset_fresh_within_seconds"].append(
                    f"{label} {state.fresh_within.total_seconds()!r}"
                )
    if last_tick is not None:
        samples[TICK_METRIC].append(f" {_seconds(last_tick)}")
    lines = []
    for name, kind, text in _METRICS:
        lines += [f"# HELP {name} {text}", f"# TYPE {name} {kind}"]
        lines += [f"{name}{sample}" for sample in samples[name]]
    return "\n".join(lines) + "\n"


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
        lambda: exposition(jobfile, store.index(), store.read_stamp(LAST_TICK)),
        locks=Locks(store.lock_dir),
        lock_name=METRICS_LOCK,
    )
