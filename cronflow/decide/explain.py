"""What `--dry-run` says of each run: the action and why, and a backfill plan job by job."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from enum import StrEnum

from cronflow.decide.jitter import start_of
from cronflow.decide.rules import gate, has_ended
from cronflow.decide.selection import should_run
from cronflow.model import Job, JobFile, PlannedRun, Rerun, RunIf, RunKey, RunStatus, describe_key
from cronflow.records import RunRecords


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
    HELD = "held"  # a blackout window holds every start
    SKIPPED_BY_CALENDAR = "skipped by calendar"


@dataclass(frozen=True, slots=True, kw_only=True)
class Verdict:
    """Why a job does or does not run now, for `cronflow run --dry-run`."""

    job: str
    logical_time: datetime | None
    action: Action
    detail: str = ""


def not_due_verdict(jobfile: JobFile, job: Job, tick: datetime | None) -> Verdict:
    """The dry run's word on a job whose next run has not started: its next tick, and when
    that run starts if a random delay or offset moves it."""
    start = None if tick is None else start_of(jobfile, job, tick)
    detail = "next tick"
    if tick is not None and start is not None and start != tick:
        detail += f", starts {start.astimezone(job.timezone).isoformat()}"
    return Verdict(job=job.name, logical_time=tick, action=Action.NOT_DUE, detail=detail)


def run_verdicts(jobfile: JobFile, runs: list[PlannedRun], history: RunRecords) -> list[Verdict]:
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
                missing = [key for key, status in known if not has_ended(status)]
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
                skipped=actions.count(Action.SKIP) + actions.count(Action.SKIPPED_BY_CALENDAR),
                not_yet_due=actions.count(Action.NOT_YET_DUE),
            )
        )
    return plans


FORGOTTEN = (
    "forgotten by retention (keep_history_days): cronflow cannot tell whether it ran; "
    "--rerun all runs it"
)


def is_forgotten(run: PlannedRun, status: RunStatus | None, forgotten: datetime | None) -> bool:
    """No record of the run, at or before the newest run retention forgot of its job: it
    may have run. Only --rerun all runs such a run (nothing is ever run twice unasked)."""
    return status is None and forgotten is not None and run.logical_time <= forgotten


def backfill_verdict(
    run: PlannedRun, status: RunStatus | None, rerun: Rerun, forgotten: datetime | None = None
) -> Verdict:
    """Whether a backfill run will run, and why, for `cronflow run --date ... --dry-run`.
    `forgotten`: the newest logical time of the job's runs that retention forgot."""
    if rerun is not Rerun.ALL and is_forgotten(run, status, forgotten):
        return Verdict(
            job=run.job, logical_time=run.logical_time, action=Action.SKIP, detail=FORGOTTEN
        )
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
