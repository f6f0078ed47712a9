"""Prometheus metrics in the text exposition format, for node_exporter's textfile collector
(`[cronflow] metrics_file`) and `cronflow metrics`.

Every value comes from the run index, so the counters survive restarts and retention (the
index counts how runs ended as it takes in the log; see RunIndex.outcomes). The file is
replaced whole (a temporary file in the same directory, then a rename), so a scrape never
reads half of one, whoever writes it; writers take turns (the @metrics lock), so a counter
never goes down. Labels: `job`, and `result` from a fixed set.
"""

from __future__ import annotations

import os
import threading
from datetime import datetime
from pathlib import Path

from cronflow.model import JobFile, RunStatus
from cronflow.state.idle import HEARTBEAT, METRICS_LOCK, TICK_METRIC
from cronflow.state.index import FINAL_RESULTS, RunIndex
from cronflow.state.locks import Locks
from cronflow.state.store import Store

# What ended with the run's own process (the job ran, to an end): a "completion".
COMPLETED = (RunStatus.SUCCESS, RunStatus.FAILED, RunStatus.TIMED_OUT, RunStatus.ABANDONED)

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


def write_atomically(path: Path, text: str) -> None:
    """Replace `path` whole: readers see the old file or the new one, never a mix. Readable
    by all (the collector often runs as another user): it holds no secret."""
    temporary = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}")
    try:
        descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        with open(descriptor, "w") as file:
            file.write(text)
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)


class MetricsWriter:
    """Keeps `metrics_file` current: `changed()` after a decision or a run's end asks for a
    rewrite, done by one background thread (changes that come while it writes are taken in
    by the next write); `flush()` before exiting. Never raises: metrics must not stop jobs."""

    def __init__(self, jobfile: JobFile, store: Store) -> None:
        assert jobfile.settings.metrics_file is not None
        self.path = jobfile.settings.metrics_file
        self.jobfile = jobfile
        self.store = store
        self._guard = threading.Lock()
        self._dirty = False
        self._writer: threading.Thread | None = None

    def changed(self) -> None:
        with self._guard:
            self._dirty = True
            if self._writer is None or not self._writer.is_alive():
                self._writer = threading.Thread(
                    target=self._write_while_dirty, name="cronflow-metrics", daemon=True
                )
                self._writer.start()

    def flush(self) -> None:
        """Wait until every change asked for is written."""
        with self._guard:
            writer = self._writer
        if writer is not None:
            writer.join()
        if self._dirty:
            self._write_while_dirty()

    def write_now(self) -> None:
        self.changed()
        self.flush()

    def _write_while_dirty(self) -> None:
        while True:
            with self._guard:
                if not self._dirty:
                    return
                self._dirty = False
            try:
                # Computed and renamed in turn: each write holds counts at least as new as
                # the write before it, whoever made that one (counters never go down).
                with Locks(self.store.lock_dir).hold(METRICS_LOCK, wait=True):
                    text = exposition(
                        self.jobfile, self.store.index(), self.store.read_stamp(HEARTBEAT)
                    )
                    write_atomically(self.path, text)
            except Exception:  # noqa: BLE001, S112 (a full disk, a removed directory)
                continue  # the file grows old, and the tick-age alert says so
