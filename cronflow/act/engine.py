"""One clock-driven invocation: decide what is due, record it, run it.

`cronflow run` (called by cron each minute) and the daemon both go through `Scheduler.tick`,
so they decide the same way. Deciding happens under the `@plan` lock and only takes
milliseconds: it records abandoned and missed runs and advances the watermarks, so another
invocation starting meanwhile sees those ticks as decided and never runs them twice.
Running happens outside that lock, under per-job locks, so invocations do not block each
other's unrelated jobs.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from datetime import datetime, timedelta

from cronflow.act import processes
from cronflow.act.executor import Executor, Outcome
from cronflow.act.runner import ProcessRunner
from cronflow.clock import Clock
from cronflow.decide import due, explain, freshness, selection
from cronflow.model import (
    AlertEvent,
    Boot,
    EventType,
    JobFile,
    PlannedRun,
    Rerun,
    RunEvent,
    RunKind,
    RunStatus,
    Watermark,
)
from cronflow.state import idle_stamp
from cronflow.state.layout import LAST_PRUNE, LAST_RETENTION, LAST_TICK, PLAN_LOCK, RETENTION_LOCK
from cronflow.state.locks import Locks
from cronflow.state.store import Store, new_run_id
from cronflow.tell import ping_requests
from cronflow.tell.alerts import Alerter
from cronflow.tell.metrics import metrics_refresher
from cronflow.tell.ping_reports import Pinger


def build_scheduler(
    jobfile: JobFile,
    *,
    store: Store,
    locks: Locks,
    clock: Clock,
    runner: ProcessRunner,
    on_event: Callable[[RunEvent], None] | None = None,
    on_outcome: Callable[[Outcome], None] | None = None,
    stop: threading.Event | None = None,
    boot: Callable[[datetime], Boot] = processes.this_boot,
) -> Scheduler:
    """A Scheduler with its Executor, Alerter, Pinger and metrics, wired the way cronflow
    runs for real."""
    alerter = Alerter(jobfile=jobfile, store=store, clock=clock)
    pinger = Pinger(jobfile=jobfile, store=store, clock=clock)
    refreshers = [metrics_refresher(jobfile, store)] if jobfile.settings.metrics_file else []
    if jobfile.settings.html_file:
        from cronflow.tell.status_page import page_refresher  # its renderer only when it is wanted

        refreshers.append(page_refresher(jobfile, store, clock.now, processes.describe_running))
    executor = Executor(
        jobfile=jobfile,
        store=store,
        locks=locks,
        runner=runner,
        clock=clock,
        on_event=on_event,
        on_outcome=on_outcome,
        alerter=alerter,
        pinger=pinger,
        refreshers=refreshers,
        stop=stop,
    )
    return Scheduler(
        jobfile=jobfile, store=store, locks=locks, executor=executor, clock=clock, boot=boot
    )


PRUNE_EVERY = timedelta(hours=1)
FORGET_EVERY = timedelta(days=1)


class Scheduler:
    def __init__(
        self,
        *,
        jobfile: JobFile,
        store: Store,
        locks: Locks,
        executor: Executor,
        clock: Clock,
        boot: Callable[[datetime], Boot] = processes.this_boot,
    ) -> None:
        self.jobfile = jobfile
        self.boot = boot  # the running boot, told at a given time (tests give their own)
        self.store = store
        self.locks = locks
        self.executor = executor
        self.clock = clock
        self.host = socket.gethostname()

    def tick(self) -> list[Outcome]:
        """Decide what is due now and run it; one Outcome per run started or held back."""
        decided = self.decide()
        self.signal_decided()
        outcomes = self.executor.execute(decided.runs)
        self.housekeeping()
        self._leave_idle_stamp()
        return outcomes

    def signal_decided(self) -> None:
        """Tell the outside a decision was made: the heartbeat ping, the metrics file and the
        status page (in the background; `executor.execute` waits for them before it returns)."""
        if self.executor.pinger:
            self.executor.pinger.heartbeat()
        for refresher in self.executor.refreshers:
            refresher.changed()

    def housekeeping(self) -> None:
        """What every tick (one-shot or daemon loop) owes the state directory: prune run
        output (hourly) and forget history past keep_history_days (daily)."""
        self.prune_if_due()
        self.forget_history_if_due()

    def forget_history_if_due(self) -> tuple[int, int]:
        """At most once a day, and by one process at a time: forget runs and delete log
        segments older than keep_history_days (see Store.forget_before)."""
        days = self.jobfile.settings.keep_history_days
        now = self.clock.now()
        last = self.store.read_stamp(LAST_RETENTION)
        if days == 0 or (last is not None and timedelta(0) <= now - last < FORGET_EVERY):
            return 0, 0
        with self.locks.hold(RETENTION_LOCK, wait=False) as alone:
            if not alone:
                return 0, 0  # another invocation is at it
            self.store.write_stamp(LAST_RETENTION, now)
            return self.store.forget_before(now - timedelta(days=days))

    def _leave_idle_stamp(self) -> None:
        """Tell the one-shot ticks after this one until when nothing can be due (see idle)."""
        log = idle_stamp.log_identity(str(self.store.state_dir))  # before the index reads the log
        now = self.clock.now()
        until = due.quiet_until(self.jobfile, self.store.index(), self.store.read_watermarks(), now)
        settings = self.jobfile.settings
        for wanted, stamp, every in (
            (settings.keep_days or settings.keep_history_days, LAST_PRUNE, PRUNE_EVERY),
            (settings.keep_history_days, LAST_RETENTION, FORGET_EVERY),
        ):
            if until is not None and wanted:  # the next housekeeping needs a full tick
                done = self.store.read_stamp(stamp)  # just now, or less than `every` ago
                until = min(until, done + every) if done else None
        if until is not None and self.jobfile.assets:  # a fresh asset turning stale
            for state in freshness.states(self.jobfile, self.store.index(), now):
                if state.state == "fresh" and state.fresh_as_of and state.fresh_within:
                    until = min(until, state.fresh_as_of + state.fresh_within)
        if until is None:
            idle_stamp.forget(str(self.store.state_dir))
            return
        idle_stamp.remember(
            jobs_path=str(self.jobfile.path),
            jobs_text=self.jobfile.text,
            state_dir=str(self.store.state_dir),
            log=log,
            decided_at=now,
            until=until,
            warnings=self.jobfile.warnings,
            heartbeat=(
                settings.heartbeat_url,
                ping_requests.protocol_for(settings.heartbeat_url, settings.heartbeat_protocol),
                settings.ping_timeout.total_seconds(),
            )
            if settings.heartbeat_url
            else None,
            metrics_file=str(settings.metrics_file) if settings.metrics_file else None,
            page_file=str(settings.html_file) if settings.html_file else None,
            boot_id=self.boot(now).id
            if any(job.at_boot for job in self.jobfile.jobs.values())
            else None,
        )

    def prune_if_due(self) -> int:
        """At most once an hour: delete run output past keep_days (but each job's keep_runs
        newest), and never keep it longer than the history (keep_history_days)."""
        settings = self.jobfile.settings
        days = [d for d in (settings.keep_days, settings.keep_history_days) if d]
        now = self.clock.now()
        last = self.store.read_stamp(LAST_PRUNE)
        if not days or (last is not None and timedelta(0) <= now - last < PRUNE_EVERY):
            return 0
        self.store.write_stamp(LAST_PRUNE, now)
        keep = self.store.index().run_ids_to_keep(settings.keep_runs)
        return self.store.prune(keep, older_than=now - timedelta(days=min(days)))

    def decide(self) -> due.TickPlan:
        """Decide what is due now, and record the decision before anything runs."""
        with self.locks.hold(PLAN_LOCK, wait=True):
            self.store.keep_reserve()  # taken back once space has returned (the daemon too)
            self.settle_orphans()
            now = self.clock.now()
            watermarks = self.store.read_watermarks()
            decided = due.due_runs(
                self.jobfile,
                self.store.index(),
                self._after_clock_check(watermarks, now),
                now,
                boot=self._this_boot(now, record=True),
            )
            for job, ticks in decided.missed.items():
                self._record_missed(job, ticks)
            self.watch_assets(now)
            if decided.watermarks != watermarks:
                self.store.write_watermarks(decided.watermarks)
            self.store.write_stamp(LAST_TICK, now)
        return decided

    def watch_assets(self, now: datetime) -> None:
        """Alert once per staleness: when an asset goes stale, and when one alerted as stale
        is fresh again. An asset never produced does not alert (it is new, not late). Called under the @plan lock, which keeps the set of alerted assets
        (state_dir/stale-alerted) one decision's at a time."""
        alerter = self.executor.alerter
        settings = self.jobfile.alerts
        if not (self.jobfile.assets and alerter and settings.has_targets):
            return
        if AlertEvent.STALE not in settings.on:
            return
        alerted = self.store.stale_alerted()
        now_alerted = set(alerted) & set(self.jobfile.assets)
        for state in freshness.states(self.jobfile, self.store.index(), now):
            if state.fresh_as_of is None:
                continue  # never produced: new, not late (status and `assets` still say stale)
            if state.state == "stale" and state.name not in now_alerted:
                alerter.asset_changed(state)
                now_alerted.add(state.name)
            elif state.state == "fresh" and state.name in now_alerted:
                alerter.asset_changed(state)
                now_alerted.discard(state.name)
        if now_alerted != alerted:
            self.store.write_stale_alerted(now_alerted)

    def _this_boot(self, now: datetime, record: bool) -> Boot | None:
        """The boot @reboot runs are for (None when no job is one): as first recorded, or
        (deciding, under the @plan lock) recorded now; a dry run only looks."""
        if not any(job.at_boot for job in self.jobfile.jobs.values()):
            return None
        seen = self.boot(now)
        return self.store.boot(seen) if record else self.store.known_boot(seen)

    def preview(self) -> due.TickPlan:
        """What `decide` would do now, changing nothing (for --dry-run)."""
        now = self.clock.now()
        watermarks, _ = due.watermarks_to_decide_from(self.store.read_watermarks(), now)
        decided = due.due_runs(
            self.jobfile,
            self.store.index(),
            watermarks,
            now,
            explain=True,
            boot=self._this_boot(now, record=False),
        )
        verdicts = [
            verdict
            if verdict.action is not explain.Action.RUN or self.locks.is_free(verdict.job)
            else explain.Verdict(
                job=verdict.job,
                logical_time=verdict.logical_time,
                action=explain.Action.OVERLAP,
                detail="still running elsewhere; "
                f"overlap = {self.jobfile.jobs[verdict.job].overlap}",
            )
            for verdict in decided.verdicts
        ]
        return due.TickPlan(
            runs=decided.runs,
            missed=decided.missed,
            watermarks=decided.watermarks,
            verdicts=verdicts,
        )

    def backfill(
        self,
        chosen: selection.Backfill,
        rerun: Rerun,
        progress: Callable[[int], AbstractContextManager[object]] | None = None,
    ) -> list[Outcome]:
        """`cronflow run --date`: the runs `selection.backfill` chose, a date at a time, oldest
        first. (Choosing comes first, apart: a range it refuses writes nothing.)"""
        self.settle_orphans()
        outcomes: list[Outcome] = []
        with progress(sum(map(len, chosen.by_date))) if progress else nullcontext():
            for runs in chosen.by_date:
                if self.executor.stop.is_set():
                    break  # stopped: the dates not begun stay untouched, to run another time
                outcomes += self.executor.execute(runs, rerun)
        return outcomes

    def run_now(self, runs: list[PlannedRun]) -> list[Outcome]:
        """`cronflow run --job NAME`: these manual runs, whatever the log holds for them
        (someone asked), unless one is running right now."""
        self.settle_orphans()
        return self.executor.execute(runs, Rerun.ALL)

    def backfill_preview(self, chosen: selection.Backfill, rerun: Rerun) -> list[explain.Verdict]:
        """What `backfill` would do and why, changing nothing (for --dry-run)."""
        history = self.store.index()
        verdicts = []
        for runs in chosen.by_date:
            base = [explain.backfill_verdict(run, history.status(run.key), rerun) for run in runs]
            to_run = {
                run.key for run, v in zip(runs, base, strict=True) if v.action is explain.Action.RUN
            }
            verdicts += [
                explain.with_rule(self.jobfile, verdict, run, to_run, history)
                for run, verdict in zip(runs, base, strict=True)
            ]
        return verdicts + [explain.not_yet_due_verdict(run) for run in chosen.not_yet_due]

    def settle_orphans(self) -> list[RunEvent]:
        """Settle every run left `running` on this host whose run lock is free (its cronflow
        died: crash, kill -9, reboot): see Executor.settle. The planner then retries an
        abandoned or interrupted one if it has tries left."""
        settled = []
        for started in self.store.index().unfinished(RunStatus.RUNNING):
            if started.host != self.host:
                continue  # another machine's run: its locks are not ours to test
            with self.locks.hold_run(started.key) as free:
                latest = self.store.index().latest(started.key)
                if free is not None and latest is not None and latest.status is RunStatus.RUNNING:
                    event = self.executor.settle(latest)
                    if event is not None:
                        settled.append(event)
        return settled

    def _after_clock_check(
        self, watermarks: dict[str, Watermark], now: datetime
    ) -> dict[str, Watermark]:
        """The watermarks to decide from: when the clock went back behind ticks already
        decided, record one `clock` event, alert, and decide those jobs again from now."""
        rewound, reached = due.watermarks_to_decide_from(watermarks, now)
        if reached is None:
            return watermarks
        event = RunEvent(
            event=EventType.CLOCK,
            job="",
            logical_time=reached,
            run_id="",
            status=RunStatus.SKIPPED,
            kind=RunKind.SCHEDULED,
            ended_at=now,
            reason=f"the clock went back at least {_rounded(reached - now)}: ticks up to "
            f"{reached.isoformat()} were already decided; "
            f"{len(watermarks) - len(rewound)} job(s) decide their ticks again from "
            f"now, and runs that already succeeded do not run again",
        )
        event = self.store.append(event)
        if self.executor.alerter:
            self.executor.alerter.clock_set_back(event)
        return rewound

    def _record_missed(self, job_name: str, ticks: list[datetime]) -> None:
        job = self.jobfile.jobs[job_name]
        first, last = (tick.astimezone(job.timezone).isoformat() for tick in (ticks[0], ticks[-1]))
        span = first if len(ticks) == 1 else f"{first} to {last}"
        event = RunEvent(
            event=EventType.MISSED,
            job=job_name,
            logical_time=ticks[-1],
            run_id=new_run_id(ticks[-1]),
            status=RunStatus.MISSED,
            kind=RunKind.CATCHUP,
            missed_ticks=len(ticks),
            ended_at=self.clock.now(),
            reason=f"{len(ticks)} tick(s) not run, {span} (catchup = {job.catchup})",
            config_hash=job.config_hash,
        )
        event = self.store.append(event)
        if self.executor.alerter:
            self.executor.alerter.missed(event)


def _rounded(delta: timedelta) -> timedelta:
    return timedelta(seconds=round(delta.total_seconds()))
