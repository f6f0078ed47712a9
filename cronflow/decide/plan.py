"""Pure decisions: which runs are due now or on a date, and what each must wait for.

Catch-up policy, written down where the decision is made: each scheduled job keeps a
watermark, the newest tick already decided. A call decides the ticks in (watermark, now].
The newest of them, if at most LATE_AFTER old, runs as `scheduled`. Older ones were missed
(cronflow was not running): `catchup = "latest"` runs only the newest tick, `"all"` runs
them all oldest first (at most `max_catchup`), `"none"` runs none that are late. Ticks not
run are recorded `missed`. A job seen for the first time starts at now minus one minute, so
installing cronflow never replays history.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from enum import StrEnum

from cronflow.decide import dag
from cronflow.decide.schedule import Schedule, compile_schedule
from cronflow.errors import UsageError
from cronflow.model import (
    Boot,
    Cadence,
    CatchUp,
    Job,
    JobFile,
    PlannedRun,
    Rerun,
    RunEvent,
    RunIf,
    RunKey,
    RunKind,
    RunRecords,
    RunStatus,
    Watermark,
)

# An unscheduled job with no scheduled upstream runs for midnight of the date it is run for.
_MIDNIGHT = "0 0 * * *"
FIRST_SIGHT = timedelta(minutes=1)
# A tick decided later than this after it happened is a catch-up, not an on-time run. Cron
# calls `cronflow run` each minute, so an on-time tick is seen within seconds.
LATE_AFTER = timedelta(minutes=2)
# A watermark is never ahead of the clock that decided it. One ahead of now by more than this
# means the clock was set back (a small NTP step just delays the next decision a little).
CLOCK_TOLERANCE = timedelta(minutes=1)


class Action(StrEnum):
    """What an invocation does with a job's run, as `--dry-run` says it."""

    RUN = "run"
    RETRY = "retry"
    WAITING = "waiting"
    MISSED = "missed"
    OVERLAP = "overlap"
    SKIP = "skip"
    ALREADY_DONE = "already done"
    NOT_DUE = "not due"
    NOT_YET_DUE = "not yet due"

    @property
    def colour(self) -> str:
        """How a terminal shows it (a rich style name)."""
        return {
            Action.RUN: "green",
            Action.RETRY: "cyan",
            Action.WAITING: "yellow",
            Action.MISSED: "red",
            Action.OVERLAP: "yellow",
        }.get(self, "dim")


@dataclass(frozen=True, slots=True, kw_only=True)
class Verdict:
    """Why a job does or does not run now, for `cronflow run --dry-run`."""

    job: str
    logical_time: datetime | None
    action: Action
    detail: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class TickPlan:
    """Everything one clock-driven invocation decided."""

    runs: list[PlannedRun]  # scheduled, catch-up, resumed, and the unscheduled runs after them
    missed: dict[str, list[datetime]] = field(default_factory=dict)  # job -> ticks not run
    watermarks: dict[str, Watermark] = field(default_factory=dict)
    verdicts: list[Verdict] = field(default_factory=list)  # only when asked to explain


def due_runs(
    jobfile: JobFile,
    history: RunRecords,
    watermarks: Mapping[str, Watermark],
    now: datetime,
    explain: bool = False,
    boot: Boot | None = None,
) -> TickPlan:
    """The runs due at `now`, given each job's watermark and what the log already holds,
    and the @reboot runs of this `boot` not yet tried (once per boot: no catch-up).

    With `explain`, also say for every job why it does or does not run (for --dry-run).
    """
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    roots: list[PlannedRun] = []
    missed: dict[str, list[datetime]] = {}
    new_watermarks = dict(watermarks)
    verdicts: list[Verdict] = []
    for job in jobfile.jobs.values():
        if job.schedule is None or not job.enabled:
            continue
        fingerprint = job.cadence.fingerprint
        mark = watermarks.get(job.name)
        if mark and mark.schedule == fingerprint and mark.next_tick and mark.next_tick > now:
            if explain:
                verdicts.append(_not_due(jobfile, job, mark.next_tick))
            continue
        schedule = schedule_of(job.cadence)
        since = mark.decided if mark else now - FIRST_SIGHT
        ticks = _started_by(jobfile, job, schedule.ticks(since, now), now)
        decided = ticks[-1] if ticks else since
        new_watermarks[job.name] = Watermark(
            decided=decided, next_tick=schedule.next_after(decided), schedule=fingerprint
        )
        if not ticks:
            if explain:
                verdicts.append(_not_due(jobfile, job, new_watermarks[job.name].next_tick))
            continue
        to_run, not_run = _apply_catchup(job, ticks, now - start_of(jobfile, job, ticks[-1]))
        if not_run:
            missed[job.name] = not_run
        if not_run and explain:
            verdicts.append(
                Verdict(
                    job=job.name,
                    logical_time=not_run[-1],
                    action=Action.MISSED,
                    detail=f"{len(not_run)} tick(s) not run (catchup = {job.catchup})",
                )
            )
        for tick in to_run:
            key = RunKey(job.name, tick)
            if history.status(key) is RunStatus.SUCCESS:
                if explain:
                    verdicts.append(
                        Verdict(job=job.name, logical_time=tick, action=Action.ALREADY_DONE)
                    )
                continue
            on_time = tick == ticks[-1] and now - start_of(jobfile, job, tick) <= LATE_AFTER
            roots.append(
                PlannedRun(key=key, kind=RunKind.SCHEDULED if on_time else RunKind.CATCHUP)
            )
    for job in jobfile.jobs.values():
        if job.at_boot and job.enabled and boot is not None:
            key = RunKey(job.name, boot.time)
            if history.status(key) is None:
                roots.append(PlannedRun(key=key, kind=RunKind.SCHEDULED))
            elif explain:
                verdicts.append(
                    Verdict(
                        job=job.name,
                        logical_time=boot.time,
                        action=Action.ALREADY_DONE,
                        detail=f"@reboot: this boot's run is {history.status(key)}",
                    )
                )
    roots += _resumed(jobfile, history, now)
    runs = _with_unscheduled_downstream(jobfile, roots, history)
    if explain:
        verdicts += _run_verdicts(jobfile, runs, history)
    return TickPlan(runs=runs, missed=missed, watermarks=new_watermarks, verdicts=verdicts)


def clock_set_back(watermarks: Mapping[str, Watermark], now: datetime) -> datetime | None:
    """The newest decided tick when the clock has since gone back behind it (beyond
    CLOCK_TOLERANCE), else None. Nothing would be due until the clock got there again, so
    the caller decides again from now: `rewound` drops the watermarks ahead of it, and runs
    that already succeeded are still never run twice (they are `already done`)."""
    newest = max((mark.decided for mark in watermarks.values()), default=None)
    if newest is None or newest - now <= CLOCK_TOLERANCE:
        return None
    return newest


def rewound(watermarks: Mapping[str, Watermark], now: datetime) -> dict[str, Watermark]:
    """The watermarks not ahead of `now`; jobs without one start again at now (FIRST_SIGHT)."""
    return {job: mark for job, mark in watermarks.items() if mark.decided <= now}


def watermarks_to_decide_from(
    watermarks: dict[str, Watermark], now: datetime
) -> tuple[dict[str, Watermark], datetime | None]:
    """The watermarks a decision at `now` starts from, and the newest tick decided before
    when the clock has since gone back behind it (None when it has not)."""
    reached = clock_set_back(watermarks, now)
    return (watermarks, None) if reached is None else (rewound(watermarks, now), reached)


def _apply_catchup(
    job: Job, ticks: list[datetime], newest_late_by: timedelta
) -> tuple[list[datetime], list[datetime]]:
    """Split due ticks into (run, missed) by the job's catch-up policy."""
    newest_on_time = newest_late_by <= LATE_AFTER
    if job.catchup is CatchUp.ALL:
        return ticks[-job.max_catchup :], ticks[: -job.max_catchup]
    if job.catchup is CatchUp.NONE and not newest_on_time:
        return [], ticks
    return ticks[-1:], ticks[:-1]


def _not_due(jobfile: JobFile, job: Job, tick: datetime | None) -> Verdict:
    """The dry run's word on a job whose next run has not started: its next tick, and when
    that run starts if a random delay or offset moves it."""
    start = None if tick is None else start_of(jobfile, job, tick)
    detail = "next tick"
    if tick is not None and start is not None and start != tick:
        detail += f", starts {start.astimezone(job.timezone).isoformat()}"
    return Verdict(job=job.name, logical_time=tick, action=Action.NOT_DUE, detail=detail)


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


def _started_by(jobfile: JobFile, job: Job, ticks: list[datetime], now: datetime) -> list[datetime]:
    """The ticks whose runs have started by `now` (see start_of), oldest first, stopping at
    the first that has not: a later tick never starts before an earlier one."""
    started = []
    for tick in ticks:
        if start_of(jobfile, job, tick) > now:
            break
        started.append(tick)
    return started


def _resumed(jobfile: JobFile, history: RunRecords, now: datetime) -> list[PlannedRun]:
    """Runs to take up again: abandoned or interrupted ones with tries left, failed ones
    whose next try is due (their cronflow died before it), and ones waiting for upstreams."""
    resumed = [
        PlannedRun(key=event.key, kind=event.kind)
        for event in history.unfinished(RunStatus.WAITING)
        if event.job in jobfile.jobs
    ]
    for job, event in _tries_owed(jobfile, history):
        if _retry_due(job, event, now):
            resumed.append(
                PlannedRun(
                    key=event.key,
                    kind=event.kind,
                    first_attempt=event.attempt + 1,
                    run_id=event.run_id,
                )
            )
    return resumed


def _tries_owed(jobfile: JobFile, history: RunRecords) -> list[tuple[Job, RunEvent]]:
    """Runs cut short (abandoned, interrupted) or failed by a cronflow that died before the
    retry, with tries left, each with its job."""
    owed = []
    for event in [
        *history.unfinished(RunStatus.ABANDONED, RunStatus.INTERRUPTED),
        *history.owed_retries(),
    ]:
        job = jobfile.jobs.get(event.job)
        if job is not None and event.attempt < job.retry.attempts:
            owed.append((job, event))
    return owed


def quiet_until(
    jobfile: JobFile, history: RunRecords, watermarks: Mapping[str, Watermark], now: datetime
) -> datetime | None:
    """The first instant at which `due_runs` could find a run due, as long as nothing is
    recorded and the jobs file stays as it is: the next tick of every scheduled job, the next
    try of every run owed one. None when it cannot be told: a run still running or waiting
    (settling and upstreams are checked at each tick), or a job with no watermark yet."""
    if history.unfinished(RunStatus.RUNNING, RunStatus.WAITING):
        return None
    instants = []
    for job in jobfile.jobs.values():
        if job.schedule is None or not job.enabled:
            continue
        mark = watermarks.get(job.name)
        if mark is None or mark.schedule != job.cadence.fingerprint or mark.next_tick is None:
            return None
        instants.append(start_of(jobfile, job, mark.next_tick))
    instants += [_retry_at(job, event, now) for job, event in _tries_owed(jobfile, history)]
    return min(instants, default=None)


def _retry_due(job: Job, event: RunEvent, now: datetime) -> bool:
    """A failed try is retried once its retry delay has passed; a cut-off one at once, and so
    is one that ended "later" than now (the clock went back: the delay cannot be measured)."""
    return now >= _retry_at(job, event, now)


def _retry_at(job: Job, event: RunEvent, now: datetime) -> datetime:
    """When the next try of a run cut short or failed is due (see _retry_due)."""
    if event.status not in (RunStatus.FAILED, RunStatus.TIMED_OUT) or event.ended_at is None:
        return now
    if event.ended_at - now > CLOCK_TOLERANCE:
        return now
    return event.ended_at + job.retry.delay_before(event.attempt + 1)


def _with_unscheduled_downstream(
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


def _run_verdicts(jobfile: JobFile, runs: list[PlannedRun], history: RunRecords) -> list[Verdict]:
    planned = {run.key for run in runs}
    verdicts = []
    for run in runs:
        job = jobfile.jobs[run.job]
        known = [(key, history.status(key)) for key in run.upstreams if key not in planned]
        verdict = gate(jobfile, job, known)
        rule = "" if job.run_if is RunIf.ALL_SUCCESS else f" (run_if = {job.run_if})"
        if verdict.held is not None and verdict.blocking is None:
            action, detail = Action.SKIP, verdict.reason  # its rule cannot be met
        elif verdict.held is not None:
            missing = [key for key, status in known if status is not RunStatus.SUCCESS]
            if job.run_if is not RunIf.ALL_SUCCESS:
                missing = [key for key, status in known if status in _NOT_ENDED]
            action, detail = (
                Action.WAITING,
                "for " + ", ".join(describe_key(jobfile, k) for k in missing) + rule,
            )
        elif rule and len(known) < len(run.upstreams):
            action, detail = Action.RUN, f"{run.kind.value}, if its upstreams meet{rule}"
        elif run.run_id is not None:
            action, detail = Action.RETRY, f"attempt {run.first_attempt}, resuming {run.run_id}"
        elif job.at_boot:
            action, detail = Action.RUN, "@reboot: the first decision since this boot began"
        else:
            action, detail = Action.RUN, run.kind.value
        verdicts.append(
            Verdict(job=run.job, logical_time=run.logical_time, action=action, detail=detail)
        )
    return verdicts


def describe_key(jobfile: JobFile, key: RunKey) -> str:
    """`load @ 2026-01-14T06:00:00+01:00`, in the job's zone."""
    job = jobfile.jobs.get(key.job)
    when = key.logical_time.astimezone(job.timezone) if job else key.logical_time
    return f"{key.job} @ {when.isoformat()}"


@dataclass(frozen=True, slots=True)
class Gate:
    """Whether a run may start, given how its upstream runs stand (see `gate`)."""

    held: RunStatus | None = None  # None: it runs; else UPSTREAM_FAILED or SKIPPED
    blocking: RunKey | None = None  # an upstream that has not ended (it may yet: wait for it)
    reason: str = ""


# Upstream statuses that have not ended, for a trigger rule: the run may still come.
_NOT_ENDED = (None, RunStatus.RUNNING, RunStatus.WAITING, RunStatus.INTERRUPTED)


def gate(jobfile: JobFile, job: Job, upstreams: Sequence[tuple[RunKey, RunStatus | None]]) -> Gate:
    """The job's run_if applied to its upstream runs' statuses (None: never run).

    all_success (the default) holds the run back at the first upstream that did not
    succeed: upstream_failed, or skipped after a skipped one, as always. The other rules
    need every upstream to have ended (`blocking` names one that has not), then run or
    skip: all_done runs whatever they ended as, one_failed when one failed, all_failed
    when all did, none_failed when none did (succeeded or skipped)."""
    rule = job.run_if
    for key, status in upstreams:
        said = f"upstream {describe_key(jobfile, key)} " + (
            "has not run" if status is None else f"is {status}"
        )
        if rule is RunIf.ALL_SUCCESS and status is not RunStatus.SUCCESS:
            held = RunStatus.SKIPPED if status is RunStatus.SKIPPED else RunStatus.UPSTREAM_FAILED
            return Gate(held, key, said)
        if rule is not RunIf.ALL_SUCCESS and status in _NOT_ENDED:
            return Gate(RunStatus.SKIPPED, key, f"{said} (run_if = {rule} waits for all to end)")
    failed = [key for key, status in upstreams if status is not None and status.is_failure]
    met = {
        RunIf.ALL_SUCCESS: True,
        RunIf.ALL_DONE: True,
        RunIf.ONE_FAILED: bool(failed),
        RunIf.ALL_FAILED: len(failed) == len(upstreams),
        RunIf.NONE_FAILED: not failed,
    }[rule]
    if met:
        return Gate()
    why = {
        RunIf.ONE_FAILED: "no upstream failed",
        RunIf.ALL_FAILED: "not every upstream failed",
        RunIf.NONE_FAILED: f"upstream {describe_key(jobfile, failed[0]) if failed else ''} failed",
    }[rule]
    return Gate(RunStatus.SKIPPED, None, f"run_if = {rule}: {why}")


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


def backfill(
    jobfile: JobFile, jobs: Sequence[str], days: Sequence[date], now: datetime
) -> Backfill:
    """Every run of `jobs` on `days` whose tick has come. A backfill never runs a tick later
    than now: run early, it would stand for a time that has not happened (its data is not
    there yet), and the scheduler would then find it done and run nothing when it comes.
    UsageError if every tick of the range is still to come."""
    by_date, not_yet_due = [], []
    for day in days:
        runs = runs_for_date(jobfile, jobs, day, RunKind.BACKFILL)
        by_date.append([run for run in runs if run.logical_time <= now])
        not_yet_due += [run for run in runs if run.logical_time > now]
    if not_yet_due and not any(by_date):
        first = min(not_yet_due, key=lambda run: run.logical_time)
        raise UsageError(
            f"--date {days[0]}{'..' + str(days[-1]) if len(days) > 1 else ''} is still to "
            f"come: its first tick, {describe_key(jobfile, first.key)}, is "
            f"{_wait_words(first.logical_time - now)} from now. A backfill runs only ticks "
            "that have come; the scheduler runs the others when they come."
        )
    return Backfill(by_date=by_date, not_yet_due=not_yet_due)


def _wait_words(wait: timedelta) -> str:
    minutes = int(wait.total_seconds() // 60)
    if minutes < 120:
        return f"{max(1, minutes)} minute(s)"
    if minutes < 48 * 60:
        return f"{minutes // 60} hour(s)"
    return f"{minutes // (24 * 60)} day(s)"


def not_yet_due_verdict(run: PlannedRun) -> Verdict:
    return Verdict(
        job=run.job,
        logical_time=run.logical_time,
        action=Action.NOT_YET_DUE,
        detail="later than now: left to the scheduler",
    )


def manual_verdict(run: PlannedRun) -> Verdict:
    return Verdict(
        job=run.job, logical_time=run.logical_time, action=Action.RUN, detail="asked for now"
    )


@dataclass(frozen=True, slots=True, kw_only=True)
class JobPlan:
    """One job's share of a backfill plan, for `cronflow run --date ... --dry-run`."""

    job: str
    runs: int
    first: datetime
    last: datetime
    to_run: int
    already_done: int  # recorded already, not asked to run again (--rerun)
    skipped: int  # its run_if cannot be met by its upstreams' recorded outcomes
    not_yet_due: int


def summarise_verdicts(verdicts: Sequence[Verdict]) -> list[JobPlan]:
    """A backfill plan's verdicts job by job, in the order the jobs first appear."""
    by_job: dict[str, list[Verdict]] = {}
    for verdict in verdicts:
        by_job.setdefault(verdict.job, []).append(verdict)
    plans = []
    for job, mine in by_job.items():
        times = [verdict.logical_time for verdict in mine if verdict.logical_time is not None]
        actions = [verdict.action for verdict in mine]
        plans.append(
            JobPlan(
                job=job,
                runs=len(mine),
                first=min(times),
                last=max(times),
                to_run=actions.count(Action.RUN),
                already_done=actions.count(Action.ALREADY_DONE),
                skipped=actions.count(Action.SKIP),
                not_yet_due=actions.count(Action.NOT_YET_DUE),
            )
        )
    return plans


def should_run(status: RunStatus | None, rerun: Rerun) -> bool:
    """Whether a run whose recorded status is `status` (None: never tried) runs again."""
    if status is None or rerun is Rerun.ALL:
        return True
    if rerun is Rerun.NONE:
        return False
    return status is not RunStatus.SUCCESS


def backfill_verdict(run: PlannedRun, status: RunStatus | None, rerun: Rerun) -> Verdict:
    """Whether a backfill run will run, and why, for `cronflow run --date ... --dry-run`."""
    if not should_run(status, rerun):
        return Verdict(
            job=run.job,
            logical_time=run.logical_time,
            action=Action.ALREADY_DONE,
            detail=f"already {status} (--rerun {rerun})",
        )
    detail = "never run" if status is None else f"was {status}, --rerun {rerun}"
    return Verdict(job=run.job, logical_time=run.logical_time, action=Action.RUN, detail=detail)


def with_rule(
    jobfile: JobFile,
    verdict: Verdict,
    run: PlannedRun,
    planned: set[RunKey],
    history: RunRecords,
) -> Verdict:
    """A backfill verdict with the job's run_if applied: a run whose upstreams all stand
    in the log already is decided now (run, or skip and why); one that waits for
    upstreams run with it says the rule it will be held to."""
    job = jobfile.jobs[run.job]
    if verdict.action is not Action.RUN or job.run_if is RunIf.ALL_SUCCESS:
        return verdict
    if any(key in planned for key in run.upstreams):
        return replace(
            verdict, detail=f"{verdict.detail}, if its upstreams meet run_if = {job.run_if}"
        )
    decided = gate(jobfile, job, [(key, history.status(key)) for key in run.upstreams])
    if decided.held is None:
        return replace(verdict, detail=f"{verdict.detail}, run_if = {job.run_if} is met")
    return replace(verdict, action=Action.SKIP, detail=decided.reason)


def schedule_of(cadence: Cadence) -> Schedule:
    return compile_schedule(cadence.expression or _MIDNIGHT, cadence.timezone)


def dependency_graph(jobfile: JobFile) -> dict[str, tuple[str, ...]]:
    return {name: job.depends_on for name, job in jobfile.jobs.items()}


def _with_upstreams(jobfile: JobFile, run: PlannedRun) -> PlannedRun:
    """The run, listing the upstream runs it waits for."""
    job = jobfile.jobs[run.job]
    keys = (_upstream_key(jobfile.jobs[name], job, run.logical_time) for name in job.depends_on)
    return replace(run, upstreams=tuple(key for key in keys if key is not None))


def _upstream_key(upstream: Job, job: Job, logical_time: datetime) -> RunKey | None:
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


@dataclass(frozen=True, slots=True, kw_only=True)
class UpcomingTick:
    """One of a job's next ticks, for `cronflow next`."""

    job: str
    at: datetime  # aware UTC
    local: datetime  # the same instant in the job's zone
    dst_note: str  # how daylight saving time shaped it, or ""
    starts: datetime  # when its run starts, in the job's zone (later by random_delay/offset)


def upcoming_ticks(
    jobfile: JobFile, jobs: Sequence[str], after: datetime, count: int
) -> list[UpcomingTick]:
    """The next `count` ticks after `after` of each scheduled job of `jobs`, job by job."""
    found = []
    for name in jobs:
        job = jobfile.jobs[name]
        if job.schedule is None:
            continue
        schedule = schedule_of(job.cadence)
        tick = after
        for _ in range(count):
            following = schedule.next_after(tick)
            if following is None:
                break
            tick = following
            found.append(
                UpcomingTick(
                    job=name,
                    at=tick,
                    local=tick.astimezone(job.timezone),
                    dst_note=schedule.dst_note(tick),
                    starts=start_of(jobfile, job, tick).astimezone(job.timezone),
                )
            )
    return found
