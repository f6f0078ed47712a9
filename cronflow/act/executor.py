"""Executing planned runs: dependency order, parallelism, locks, retries, and the record of it.

Every step is written to the log before the next begins: `started` (with the job's process)
before its command begins, `finished` as soon as it ends, so a crash at any point leaves a
truthful record. Whether a run may start is decided under its run lock, from the log: a run
recorded as running whose cronflow died is first settled (`settle`): still running while its
processes live, else finished as its exit status file says, else abandoned.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from contextlib import ExitStack
from dataclasses import dataclass, replace
from graphlib import TopologicalSorter
from typing import Any

from cronflow.act import pausing, processes, settling
from cronflow.act.launch import CannotStart, inherited_environment, launch_of
from cronflow.act.pool_wait import Slots, slots_for
from cronflow.act.runner import (
    ProcessResult,
    ProcessRunner,
    ProcessSpec,
    reason_of,
    status_of,
)
from cronflow.calendars import held_until
from cronflow.clock import Clock
from cronflow.decide import dag, exit_codes
from cronflow.decide.explain import FORGOTTEN, is_forgotten
from cronflow.decide.rules import gate
from cronflow.decide.selection import should_run
from cronflow.model import (
    EventType,
    Job,
    JobFile,
    JobProcess,
    Overlap,
    PlannedRun,
    Rerun,
    RunEvent,
    RunKey,
    RunKind,
    RunStatus,
    describe_key,
    try_owed,
)
from cronflow.state.locks import Locks
from cronflow.state.pool_slots import PoolSlots
from cronflow.state.store import Store, new_run_id
from cronflow.tell.alerts import Alerter
from cronflow.tell.derived_files import Refresher
from cronflow.tell.ping_reports import Pinger

# Runs the clock asked for; they follow `overlap`, and wait for other-schedule upstreams.
CLOCK_KINDS = (RunKind.SCHEDULED, RunKind.CATCHUP)


@dataclass(frozen=True, slots=True, kw_only=True)
class Outcome:
    """How one planned run ended in this invocation."""

    key: RunKey
    status: RunStatus
    attempts: int = 0
    already_done: bool = False  # nothing was run: it was done before, or is left to others
    reason: str = ""
    event: RunEvent | None = None  # the last `finished` event, when something ran


class Executor:
    """Runs a plan with the collaborators it is given; holds no global state."""

    def __init__(
        self,
        *,
        jobfile: JobFile,
        store: Store,
        locks: Locks,
        runner: ProcessRunner,
        clock: Clock,
        on_event: Callable[[RunEvent], None] | None = None,
        on_outcome: Callable[[Outcome], None] | None = None,
        alerter: Alerter | None = None,
        pinger: Pinger | None = None,
        refreshers: Sequence[Refresher] = (),
        stop: threading.Event | None = None,
        environ: dict[str, str] | None = None,
    ) -> None:
        self.jobfile = jobfile
        self.store = store
        self.locks = locks
        self.pool_slots = PoolSlots(locks.directory)
        self.runner = runner
        self.clock = clock
        self.on_event = on_event or (lambda event: None)
        self.on_outcome = on_outcome or (lambda outcome: None)
        self.alerter = alerter
        self.pinger = pinger
        self.refreshers = tuple(refreshers)  # files kept current after every run's end
        self.stop = stop or threading.Event()  # once set: start nothing more, retry nothing
        self.environ = inherited_environment() if environ is None else dict(environ)
        self.host = socket.gethostname()

    def execute(
        self,
        runs: Sequence[PlannedRun],
        rerun: Rerun = Rerun.FAILED,
        record_unstarted: bool = True,
        include_paused: bool = False,
    ) -> list[Outcome]:
        """Run `runs` in dependency order, independent ones in parallel, each job's runs one
        at a time in the order of their logical times; one Outcome per run. Stopped, the runs
        not started are recorded `interrupted` (the scheduler's ticks), or with
        `record_unstarted` False left untouched, with no Outcome (a backfill's later dates).
        A paused job's scheduled ticks are recorded skipped; its other runs (a backfill, a
        manual run) are left alone unless `include_paused` (see act/pausing.py)."""
        by_key = {run.key: run for run in runs}
        graph = {run.key: [u for u in run.upstreams if u in by_key] for run in runs}
        for before, after in dag.each_jobs_runs_in_order(runs):
            graph[after.key].append(before.key)  # the order only: a failure holds nothing
        dependents = dag.dependents(graph)
        sorter = TopologicalSorter(graph)
        sorter.prepare()
        order = {run.key: index for index, run in enumerate(runs)}
        outcomes: dict[RunKey, Outcome] = {}
        running: dict[Future[Outcome], RunKey] = {}
        waiting: list[RunKey] = []  # ready, but held back while their job runs (oldest first)

        def ended(key: RunKey, outcome: Outcome) -> None:
            outcomes[key] = outcome
            for refresher in self.refreshers:
                refresher.changed()
            self.on_outcome(outcome)
            sorter.done(key)

        with ThreadPoolExecutor(
            max_workers=self.jobfile.settings.max_parallel, thread_name_prefix="cronflow-run"
        ) as pool:
            while sorter.is_active():
                if self.stop.is_set() and not running:
                    for planned in runs if record_unstarted else ():
                        if planned.key not in outcomes:
                            outcomes[planned.key] = self._record_interrupted(
                                planned,
                                attempt=0,
                                run_id=planned.run_id,
                                reason="cronflow stopped before it could start",
                            )
                    break
                waiting = sorted(
                    [*waiting, *sorter.get_ready()], key=lambda key: (key.logical_time, order[key])
                )
                busy = {key.job for key in running.values()}
                for key in [] if self.stop.is_set() else list(waiting):
                    if key.job in busy:
                        continue  # runs of one job go one at a time, oldest first
                    waiting.remove(key)
                    held = self._held_back(by_key[key], outcomes, rerun)
                    if held:
                        ended(key, held)
                    else:
                        running[pool.submit(self._run, by_key[key], rerun, include_paused)] = key
                        busy.add(key.job)
                if not running:
                    continue
                finished, _ = wait(running, return_when=FIRST_COMPLETED)
                for future in finished:
                    key = running.pop(future)
                    outcome = future.result()  # a StoreError stops everything here
                    self._tell_final(outcome, dependents)
                    ended(key, outcome)
        self.wait_for_deliveries()
        self.flush_files()
        return [outcomes[run.key] for run in runs if run.key in outcomes]

    def flush_files(self) -> None:
        """Wait until the metrics file and the status page say what was last told them
        (their writers are background threads a one-shot cronflow's exit would cut)."""
        for refresher in self.refreshers:
            refresher.flush()

    def wait_for_deliveries(self) -> None:
        """Wait for the alerts and pings in flight to be recorded; once cronflow is asked to
        stop, those that take longer are abandoned (see tell/background.py)."""
        for told in (self.alerter, self.pinger):
            if told:
                told.wait(self.stop)

    def deliveries_idle(self) -> bool:
        return all(told.idle() for told in (self.alerter, self.pinger) if told)

    def _tell_final(self, outcome: Outcome, dependents: dict[RunKey, set[RunKey]]) -> None:
        """Tell the alerter and the pinger how a run ended; a failure names the runs it
        holds back. The job is paused when this failure makes pause_after_failures."""
        if outcome.event is None:
            return
        if outcome.status.is_failure:
            self._pause_if_failing(outcome.event)
        held_back = []
        if self.alerter and outcome.status is not RunStatus.SUCCESS:
            held_back = sorted(dag.reachable(dependents, [outcome.key]) - {outcome.key})
        self._tell_ended(outcome.event, held_back)

    def _pause_if_failing(self, event: RunEvent) -> None:
        """pause_after_failures: pause the job once its failed runs in a row reach it (the
        index holds `event` already), with an alert that says how to resume."""
        job = self.jobfile.jobs.get(event.job)
        if job is None or job.pause_after_failures is None:
            return
        streak = self.store.index().job_runs(job.name, 1).failing_streak
        if streak < job.pause_after_failures or job.name in self.store.read_pauses():
            return
        reason = (
            f"{streak} failed runs in a row (pause_after_failures = {job.pause_after_failures}); "
            f"resume with: cronflow resume {job.name}"
        )
        pausing.pause(
            self.store,
            self.locks,
            [job.name],
            by="cronflow",
            now=self.clock.now(),
            until=None,
            reason=reason,
        )
        if self.alerter:
            self.alerter.paused(event, streak)

    def _tell_ended(self, event: RunEvent, held_back: Sequence[RunKey] = ()) -> None:
        """A try ended, or a run was settled: the alerter and the pinger decide what it
        calls for (a retried try, a final outcome)."""
        if self.alerter:
            self.alerter.finished(event, held_back)
        if self.pinger:
            self.pinger.finished(event)

    # ---- one run -----------------------------------------------------------------------------

    def _run(self, planned: PlannedRun, rerun: Rerun, include_paused: bool = False) -> Outcome:
        job = self.jobfile.jobs[planned.job]
        by_clock = planned.kind in CLOCK_KINDS
        with ExitStack() as held:
            if job.overlap is not Overlap.ALLOW:  # runs of the job go one at a time
                # A resumed run never waits: the job may be busy retrying that very run.
                resumed = planned.run_id is not None
                wait = not (by_clock and job.overlap is Overlap.SKIP) and not resumed
                if not held.enter_context(self.locks.hold(job.name, wait=wait)):
                    return self._busy(planned, job)
            run_lock = held.enter_context(self.locks.hold_run(planned.key))
            if run_lock is None:
                return self._running_elsewhere(planned)
            # Decided again under the locks: another invocation may have just run it.
            latest = self._settled(self.store.latest(planned.key))
            done = self._already_done(planned, rerun, latest)
            if done:
                return done
            paused = None if include_paused else self._paused(planned, job)
            if paused:
                return paused
            return self._attempts(_continued(planned, latest, job), job, run_lock)

    def _paused(self, planned: PlannedRun, job: Job) -> Outcome | None:
        """A paused job's run: a scheduled tick recorded skipped with the pause's words,
        anything else left for `--include-paused`; None when the job is not paused."""
        pause = self.store.read_pauses().get(job.name)
        if pause is None or not pause.holds_at(self.clock.now()):
            return None
        reason = pause.describe()
        if planned.kind not in CLOCK_KINDS:
            return Outcome(
                key=planned.key,
                status=RunStatus.SKIPPED,
                already_done=True,
                reason=f"{reason} (--include-paused runs it)",
            )
        return self._record_skipped(planned, job, reason)

    def _already_done(
        self, planned: PlannedRun, rerun: Rerun, latest: RunEvent | None
    ) -> Outcome | None:
        """The outcome of a run the log says need not (or must not) run now, else None."""
        if latest is not None and latest.status is RunStatus.RUNNING:
            return self._running_elsewhere(planned, latest)
        if rerun is not Rerun.ALL and latest is None:
            forgotten = self.store.forgotten_through(planned.job)
            if is_forgotten(planned, None, forgotten):
                return Outcome(
                    key=planned.key, status=RunStatus.SKIPPED, already_done=True, reason=FORGOTTEN
                )
        if latest is None or should_run(latest.status, rerun):
            return None
        return Outcome(
            key=planned.key,
            status=latest.status,
            already_done=True,
            reason=f"already {latest.status}",
        )

    def _running_elsewhere(self, planned: PlannedRun, latest: RunEvent | None = None) -> Outcome:
        latest = latest or self.store.latest(planned.key)
        return Outcome(
            key=planned.key,
            status=RunStatus.RUNNING,
            already_done=True,
            reason=processes.describe_running(latest)
            if latest is not None and latest.status is RunStatus.RUNNING
            else "running in another invocation",
        )

    def _busy(self, planned: PlannedRun, job: Job) -> Outcome:
        """The job's lock is held elsewhere: skip the due run, or leave a resumed one for later."""
        if planned.run_id is not None:
            return Outcome(
                key=planned.key,
                status=RunStatus.RUNNING,
                already_done=True,
                reason="the job is running elsewhere; taken up again later",
            )
        reason = "the job is still running from another invocation (overlap = skip)"
        return self._record_skipped(planned, job, reason)

    def _record_skipped(self, planned: PlannedRun, job: Job, reason: str) -> Outcome:
        self._record(
            planned,
            job,
            EventType.SKIPPED,
            RunStatus.SKIPPED,
            reason=reason,
            run_id=new_run_id(planned.logical_time),
            ended_at=self.clock.now(),
        )
        return Outcome(key=planned.key, status=RunStatus.SKIPPED, reason=reason)

    # ---- runs whose cronflow died ------------------------------------------------------------

    def _settled(self, latest: RunEvent | None) -> RunEvent | None:
        """The latest event of a run, after settling it if it was left running."""
        if latest is None or latest.status is not RunStatus.RUNNING:
            return latest
        return self.settle(latest) or latest

    def settle(self, started: RunEvent) -> RunEvent | None:
        """Record the truth about a run left `running` by a cronflow that is gone, once none
        of its processes lives (see act/settling.py). None while it still runs (or on
        another host). Call with its run lock held, so no live cronflow is running it."""
        if started.host != self.host:
            return None  # another machine's processes: not ours to look at
        if started.process is not None and processes.still_running(started.process):
            return None
        job = self.jobfile.jobs.get(started.job)  # None: no longer in the file
        event = settling.ended(started, job, self.runner.output_limit, self.clock.now())
        event = self.store.append(event)
        self.on_event(event)
        if event.event is not EventType.INTERRUPTED:
            self._tell_ended(event)
        return event

    def _attempts(self, planned: PlannedRun, job: Job, run_lock: int) -> Outcome:
        run_id = planned.run_id or new_run_id(planned.logical_time)
        for attempt in range(planned.first_attempt, job.retry.attempts + 1):
            if attempt > planned.first_attempt:
                delay = job.retry.delay_before(attempt)
                self.clock.sleep_until(self.clock.now() + delay, self.stop)
            if self.stop.is_set():
                return self._record_interrupted(
                    planned,
                    attempt=attempt - 1,
                    run_id=run_id,
                    reason=f"cronflow stopped before try {attempt}",
                )
            held = self._held(planned, job, attempt, run_id)
            if held:
                return held
            with slots_for(self.pool_slots, self.jobfile, job, planned, self.stop) as slots:
                if slots.stopped:
                    reason = f"cronflow stopped while try {attempt} waited for pool {job.pool}"
                    return self._record_interrupted(planned, attempt - 1, run_id, reason)
                finished = self._attempt(planned, job, run_id, attempt, run_lock, slots)
            if not finished.status.is_failed_try:  # a success, or cronflow's own stop
                break
            if attempt >= finished.max_attempts:
                break  # its exit status forbids another try
            if attempt < job.retry.attempts:
                self._tell_ended(finished)  # a try that will be retried
        return Outcome(key=planned.key, status=finished.status, attempts=attempt, event=finished)

    def _held(self, planned: PlannedRun, job: Job, attempt: int, run_id: str) -> Outcome | None:
        """A start inside a [blackout] window: a first try waits, a retry is recorded
        interrupted (its tries counted); the first decision after the window takes it up."""
        zone = self.jobfile.settings.timezone
        held = held_until(self.jobfile.blackouts, self.clock.now(), zone)
        if held is None:
            return None
        reason = f"held by {held[0].describe()} until {held[1].astimezone(zone):%Y-%m-%d %H:%M}"
        if attempt == 1:
            return self._record_waiting(planned, job, reason)
        return self._record_interrupted(planned, attempt - 1, run_id, reason)

    def _attempt(
        self, planned: PlannedRun, job: Job, run_id: str, attempt: int, run_lock: int, slots: Slots
    ) -> RunEvent:
        output = self.store.output_paths(planned.key, run_id, attempt)
        recorded = {name: str(path) for name, path in output.items()}
        started: list[RunEvent] = []

        def record_started(process: JobProcess | None = None) -> None:
            started.append(
                self._record(
                    planned,
                    job,
                    EventType.STARTED,
                    RunStatus.RUNNING,
                    run_id=run_id,
                    attempt=attempt,
                    started_at=self.clock.now(),
                    output=recorded,
                    process=process,
                )
            )
            if self.pinger:
                self.pinger.started(started[-1])

        try:
            if slots.error:
                raise CannotStart(slots.error)
            launch = launch_of(planned, job, run_id, attempt, self.environ)
        except CannotStart as problem:
            record_started()
            result = ProcessResult(exit_code=None, error=str(problem))
        else:
            result = self.runner.run(
                ProcessSpec(
                    command=job.command,
                    shell=job.shell,
                    cwd=job.cwd,
                    stdout=output["stdout"],
                    stderr=output["stderr"],
                    exit_status=output["exit"],
                    env=launch.env,
                    account=launch.account,
                    secrets=launch.secrets,
                    inherit=(run_lock, *slots.descriptors),
                    timeout=job.timeout.total_seconds() if job.timeout else None,
                    kill_grace=job.kill_grace.total_seconds(),
                ),
                on_start=record_started,
            )
            if not started:  # it could not be started at all
                record_started()
        status = status_of(result, job)
        last_try = status is RunStatus.FAILED and exit_codes.fails_fast(job, result.exit_code)
        return self._record(
            planned,
            job,
            EventType.FINISHED,
            status,
            run_id=run_id,
            attempt=attempt,
            # An exit status that forbids retrying makes this the run's last try: every
            # reader (retries, alerts, pings, the index's owed tries) sees a final failure.
            max_attempts=attempt if last_try else job.retry.attempts,
            started_at=started[0].started_at,
            ended_at=self.clock.now(),
            duration_s=result.duration_s,
            exit_code=result.exit_code,
            signal=result.signal,
            output=recorded,
            stderr_tail=result.stderr_tail,
            reason=reason_of(result, job),
        )

    # ---- dependencies ------------------------------------------------------------------------

    def _held_back(
        self, planned: PlannedRun, outcomes: dict[RunKey, Outcome], rerun: Rerun
    ) -> Outcome | None:
        """If the job's run_if is not met by its upstreams, the outcome of this run
        (recorded unless the log says it need not run at all); else None."""
        index = None
        job = self.jobfile.jobs[planned.job]
        statuses: list[tuple[RunKey, RunStatus | None]] = []
        for upstream in planned.upstreams:
            if upstream in outcomes:
                outcome = outcomes[upstream]
                if outcome.status.is_in_progress:
                    # Taken up again, with this run, when that upstream's run is.
                    return Outcome(
                        key=planned.key,
                        status=outcome.status,
                        already_done=True,
                        reason=f"upstream {describe_key(self.jobfile, upstream)} "
                        f"is {outcome.status}",
                    )
                statuses.append((upstream, outcome.status))
            else:  # not part of this invocation: the log decides
                if index is None:
                    index = self.store.index()
                statuses.append((upstream, index.status(upstream)))
        verdict = gate(self.jobfile, job, statuses)
        if verdict.held is None:
            return None
        done = self._already_done(planned, rerun, self.store.latest(planned.key))
        if done:
            return done  # never record a hold over a run that need not run again
        blocking = verdict.blocking
        if (
            blocking is not None
            and planned.kind in CLOCK_KINDS
            and self.jobfile.jobs[blocking.job].cadence != job.cadence
        ):
            return self._record_waiting(planned, job, verdict.reason)
        self._record(
            planned,
            job,
            EventType(verdict.held.value),
            verdict.held,
            reason=verdict.reason,
            run_id=new_run_id(planned.logical_time),
            ended_at=self.clock.now(),
        )
        return Outcome(key=planned.key, status=verdict.held, reason=verdict.reason)

    def _record_interrupted(
        self, planned: PlannedRun, attempt: int, run_id: str | None, reason: str
    ) -> Outcome:
        """A run cut short by cronflow's own stop; the next start takes it up again."""
        job = self.jobfile.jobs[planned.job]
        self._record(
            planned,
            job,
            EventType.INTERRUPTED,
            RunStatus.INTERRUPTED,
            reason=reason,
            attempt=attempt,
            run_id=run_id or new_run_id(planned.logical_time),
            ended_at=self.clock.now(),
        )
        return Outcome(
            key=planned.key, status=RunStatus.INTERRUPTED, attempts=attempt, reason=reason
        )

    def _record_waiting(self, planned: PlannedRun, job: Job, reason: str) -> Outcome:
        """Wait for a later invocation; recorded once, not on every invocation that checks."""
        latest = self.store.latest(planned.key)
        if latest is None or latest.status is not RunStatus.WAITING or latest.reason != reason:
            self._record(
                planned,
                job,
                EventType.WAITING,
                RunStatus.WAITING,
                reason=reason,
                run_id=new_run_id(planned.logical_time),
                ended_at=self.clock.now(),
            )
        return Outcome(key=planned.key, status=RunStatus.WAITING, reason=reason)

    def _record(
        self, planned: PlannedRun, job: Job, event: EventType, status: RunStatus, **fields: Any
    ) -> RunEvent:
        record = RunEvent(
            event=event,
            job=job.name,
            logical_time=planned.logical_time,
            status=status,
            kind=planned.kind,
            config_hash=job.config_hash,
            **{"max_attempts": job.retry.attempts, **fields},
        )
        record = self.store.append(record)  # stamped with our host and pid
        self.on_event(record)
        return record


def _continued(planned: PlannedRun, latest: RunEvent | None, job: Job) -> PlannedRun:
    """A run cut short (abandoned, interrupted, or failed by a cronflow that died before its
    retry) goes on with the same run id and the next attempt while it has tries left."""
    if latest is None or not try_owed(latest, job.retry.attempts):
        return replace(planned, run_id=None, first_attempt=1)
    return replace(planned, run_id=latest.run_id, first_attempt=latest.attempt + 1)
