"""Runs asked for by a person: the jobs a command line names (--job, --downstream,
--exclude), a run of each now (`run --job`), every run of a date range (`run --date`), each
waiting for the upstream runs it depends on; and which recorded runs run again (--rerun)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta

from cronflow.decide import dag
from cronflow.decide.calendar_days import SkippedTick, skipped_on
from cronflow.decide.dag import dependency_graph
from cronflow.decide.schedule import schedule_of
from cronflow.errors import UsageError
from cronflow.model import Job, JobFile, PlannedRun, Rerun, RunKey, RunKind, RunStatus, describe_key
from cronflow.records import RunRecords


def with_unscheduled_downstream(
    jobfile: JobFile, roots: list[PlannedRun], history: RunRecords
) -> list[PlannedRun]:
    """The roots plus, for each, the unscheduled jobs after it at the same logical time.

    Ordered by logical time, then dependency; each run lists the runs it waits for.
    """
    graph = dependency_graph(jobfile)
    order = {name: index for index, name in enumerate(dag.topological_order(graph))}
    dependents = dag.dependents(graph)
    wanted: dict[RunKey, PlannedRun] = {}
    for root in roots:
        wanted.setdefault(root.key, root)
        for name in dag.reachable(dependents, [root.job]) - {root.job}:
            job = jobfile.jobs[name]
            key = RunKey(name, root.logical_time)
            if (
                job.schedule is None
                and job.enabled
                and job.cadence == jobfile.jobs[root.job].cadence
                and key not in wanted
                and history.status(key) is not RunStatus.SUCCESS
            ):
                wanted[key] = PlannedRun(key=key, kind=root.kind)
    ordered = sorted(wanted.values(), key=lambda run: (run.logical_time, order[run.job]))
    return [_with_upstreams(jobfile, run) for run in ordered]


def select_jobs(
    jobfile: JobFile, names: Sequence[str], downstream: bool, exclude: Sequence[str] = ()
) -> list[str]:
    """The jobs to run, in dependency order: every enabled job, or `names` (plus the enabled
    jobs downstream of them), less the `exclude`d ones."""
    graph = dependency_graph(jobfile)
    unknown = [name for name in [*names, *exclude] if name not in jobfile.jobs]
    if unknown:
        raise UsageError(_unknown_jobs_message(jobfile, unknown))
    chosen = set(names) if names else {name for name, job in jobfile.jobs.items() if job.enabled}
    if downstream:
        chosen = {
            name
            for name in dag.downstream_of(graph, chosen)
            if jobfile.jobs[name].enabled or name in names
        }
    chosen -= set(exclude)
    if not chosen:
        raise UsageError(
            f"--exclude {' --exclude '.join(exclude)} leaves no job to run. Exclude fewer jobs."
        )
    return [name for name in dag.topological_order(graph) if name in chosen]


def manual_runs(jobfile: JobFile, jobs: Sequence[str], now: datetime) -> list[PlannedRun]:
    """`cronflow run --job NAME` without --date: one run of each of `jobs` now, its logical
    time this minute. A job waits only for the runs of its upstreams among `jobs` (the ones
    asked for together); upstreams not asked for are not consulted: it runs because someone
    asked for it."""
    minute = now.astimezone(UTC).replace(second=0, microsecond=0)
    chosen = set(jobs)
    return [
        PlannedRun(
            key=RunKey(name, minute),
            kind=RunKind.MANUAL,
            upstreams=tuple(
                RunKey(upstream, minute)
                for upstream in jobfile.jobs[name].depends_on
                if upstream in chosen
            ),
        )
        for name in jobs
    ]


def runs_for_date(
    jobfile: JobFile, jobs: Iterable[str], day: date, kind: RunKind
) -> list[PlannedRun]:
    """Every run of `jobs` whose logical time falls on `day` (local to each job's cadence).

    Ordered by dependency, then by logical time. Each run lists the runs it waits for: the
    same logical time of an upstream sharing its cadence, or else the upstream's latest tick
    at or before its own logical time.
    """
    return [
        _with_upstreams(jobfile, PlannedRun(key=RunKey(name, logical_time), kind=kind))
        for name in jobs
        for logical_time in schedule_of(jobfile.jobs[name].cadence).ticks_on(day)
    ]


@dataclass(frozen=True, slots=True, kw_only=True)
class Backfill:
    """The runs of `cronflow run --date`: by date, oldest first, and the ticks left out."""

    by_date: list[list[PlannedRun]]
    not_yet_due: list[PlannedRun]  # later than now: left to the scheduler, run when they come
    skipped: list[tuple[str, SkippedTick]] = field(default_factory=list)  # by the job's calendars

    def all_runs(self) -> list[PlannedRun]:
        return [run for day in self.by_date for run in day]


def backfill(
    jobfile: JobFile, jobs: Sequence[str], days: Sequence[date], now: datetime
) -> Backfill:
    """Every run of `jobs` on `days` whose tick has come. A backfill never runs a tick later
    than now: run early, it would stand for a time that has not happened (its data is not
    there yet), and the scheduler would then find it done and run nothing when it comes.
    UsageError if every tick of the range is still to come."""
    by_date, not_yet_due, skipped = [], [], []
    for day in days:
        runs = runs_for_date(jobfile, jobs, day, RunKind.BACKFILL)
        by_date.append([run for run in runs if run.logical_time <= now])
        not_yet_due += [run for run in runs if run.logical_time > now]
        skipped += [
            (name, tick)
            for name in jobs
            if jobfile.jobs[name].schedule is not None  # the jobs after it skip with it
            for tick in skipped_on(schedule_of(jobfile.jobs[name].cadence), day)
            if tick.tick <= now
        ]
    if not_yet_due and not any(by_date):
        first = min(not_yet_due, key=lambda run: run.logical_time)
        raise UsageError(
            f"--date {days[0]}{'..' + str(days[-1]) if len(days) > 1 else ''} is still to "
            f"come: its first tick, {describe_key(jobfile, first.key)}, is "
            f"{_wait_words(first.logical_time - now)} from now. A backfill runs only ticks "
            "that have come; the scheduler runs the others when they come."
        )
    return Backfill(by_date=by_date, not_yet_due=not_yet_due, skipped=skipped)


def _wait_words(wait: timedelta) -> str:
    minutes = int(wait.total_seconds() // 60)
    if minutes < 120:
        return f"{max(1, minutes)} minute(s)"
    if minutes < 48 * 60:
        return f"{minutes // 60} hour(s)"
    return f"{minutes // (24 * 60)} day(s)"


def should_run(status: RunStatus | None, rerun: Rerun) -> bool:
    """Whether a run whose recorded status is `status` (None: never tried) runs again."""
    if status is None or rerun is Rerun.ALL:
        return True
    if rerun is Rerun.NONE:
        return False
    return status is not RunStatus.SUCCESS


def _with_upstreams(jobfile: JobFile, run: PlannedRun) -> PlannedRun:
    """The run, listing the upstream runs it waits for."""
    job = jobfile.jobs[run.job]
    keys = (upstream_key(jobfile.jobs[name], job, run.logical_time) for name in job.depends_on)
    return replace(run, upstreams=tuple(key for key in keys if key is not None))


def upstream_key(upstream: Job, job: Job, logical_time: datetime) -> RunKey | None:
    if upstream.cadence == job.cadence:
        return RunKey(upstream.name, logical_time)
    latest = schedule_of(upstream.cadence).latest_at_or_before(logical_time)
    return None if latest is None else RunKey(upstream.name, latest)


def _unknown_jobs_message(jobfile: JobFile, unknown: list[str]) -> str:
    hints = []
    for name in unknown:
        import difflib  # only for a mistake

        close = difflib.get_close_matches(name, list(jobfile.jobs), n=1)
        hints.append(f'"{name}"' + (f' (did you mean "{close[0]}"?)' if close else ""))
    return (
        f"{jobfile.path}: no job named {', '.join(hints)}. The jobs are: {', '.join(jobfile.jobs)}."
    )


def first_day_unfinished(
    chosen: Backfill, ended: Mapping[RunKey, RunStatus], days: Sequence[date]
) -> date:
    """The first of `days` a stopped backfill did not finish: a run of it that did not
    begin, or was interrupted (`ended`: how each run that has an outcome ended). Resuming
    from there runs nothing twice (--rerun failed)."""
    for day, runs in zip(days, chosen.by_date, strict=True):
        if any(ended.get(run.key, RunStatus.INTERRUPTED) is RunStatus.INTERRUPTED for run in runs):
            return day
    return days[-1]
