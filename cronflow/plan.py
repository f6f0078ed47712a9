"""Pure decisions: which runs to make for a date, and what each must wait for."""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Sequence
from datetime import date, datetime

from cronflow import dag
from cronflow.errors import UsageError
from cronflow.model import Cadence, Job, JobFile, PlannedRun, Rerun, RunKey, RunKind, RunStatus
from cronflow.schedule import Schedule, compile_schedule

# An unscheduled job with no scheduled upstream runs for midnight of the date it is run for.
_MIDNIGHT = "0 0 * * *"


def select_jobs(jobfile: JobFile, names: Sequence[str], downstream: bool) -> list[str]:
    """The jobs to run, in dependency order: all of them, or `names` (plus their downstream)."""
    graph = dependency_graph(jobfile)
    unknown = [name for name in names if name not in jobfile.jobs]
    if unknown:
        raise UsageError(_unknown_jobs_message(jobfile, unknown))
    chosen = set(names) if names else set(jobfile.jobs)
    if downstream:
        chosen = dag.downstream_of(graph, chosen)
    return [name for name in dag.topological_order(graph) if name in chosen]


def runs_for_date(jobfile: JobFile, jobs: Iterable[str], day: date, kind: RunKind) -> list[PlannedRun]:
    """Every run of `jobs` whose logical time falls on `day` (local to each job's cadence).

    Ordered by dependency, then by logical time. Each run lists the runs it waits for: the
    same logical time of an upstream sharing its cadence, or else the upstream's latest tick
    at or before its own logical time.
    """
    runs = []
    for name in jobs:
        job = jobfile.jobs[name]
        for logical_time in schedule_of(job.cadence).ticks_on(day):
            upstreams = tuple(_upstream_key(jobfile.jobs[u], job, logical_time)
                              for u in job.depends_on)
            runs.append(PlannedRun(key=RunKey(name, logical_time), kind=kind,
                                   upstreams=tuple(key for key in upstreams if key is not None)))
    return runs


def should_run(status: RunStatus | None, rerun: Rerun) -> bool:
    """Whether a run whose recorded status is `status` (None: never tried) runs again."""
    if status is None or rerun is Rerun.ALL:
        return True
    if rerun is Rerun.NONE:
        return False
    return status is not RunStatus.SUCCESS


def schedule_of(cadence: Cadence) -> Schedule:
    return compile_schedule(cadence.expression or _MIDNIGHT, cadence.timezone)


def dependency_graph(jobfile: JobFile) -> dict[str, tuple[str, ...]]:
    return {name: job.depends_on for name, job in jobfile.jobs.items()}


def _upstream_key(upstream: Job, job: Job, logical_time: datetime) -> RunKey | None:
    if upstream.cadence == job.cadence:
        return RunKey(upstream.name, logical_time)
    latest = schedule_of(upstream.cadence).latest_at_or_before(logical_time)
    return None if latest is None else RunKey(upstream.name, latest)


def _unknown_jobs_message(jobfile: JobFile, unknown: list[str]) -> str:
    hints = []
    for name in unknown:
        close = difflib.get_close_matches(name, list(jobfile.jobs), n=1)
        hints.append(f'"{name}"' + (f' (did you mean "{close[0]}"?)' if close else ""))
    return (f"{jobfile.path}: no job named {', '.join(hints)}. "
            f"The jobs are: {', '.join(jobfile.jobs)}.")
