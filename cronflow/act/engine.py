"""The engine: one clock-driven tick (decide what is due, record the decision, run it, keep
the house), a backfill, a manual run, each over the parts act/assemble.py wires.

`cronflow run` (called by cron each minute) and every loop of the daemon go through
`tick_with`, so they take the same decision (decide/tick.py). Deciding happens under the
`@plan` lock and only takes milliseconds: it records abandoned and missed runs and advances
the watermarks, so another invocation starting meanwhile sees those ticks as decided and
never runs them twice.
Running happens outside that lock, under per-job locks, so invocations do not block each
other's unrelated jobs.
"""

from __future__ import annotations

import socket
import sqlite3
import sys
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from datetime import date, datetime, timedelta

from cronflow.act import pausing, processes
from cronflow.act.executor import Executor, Outcome
from cronflow.calendars import blackout_of
from cronflow.clock import Clock
from cronflow.decide import due, explain, freshness, overdue, selection
from cronflow.decide.jitter import start_of
from cronflow.decide.tick import (
    Housekeeping,
    TickDecision,
    decide_tick,
    housekeeping_settings,
    next_wake,
)
from cronflow.errors import CronflowError, printable
from cronflow.load import monitors
from cronflow.model import (
    AlertEvent,
    Boot,
    ClockSetBack,
    EventType,
    JobFile,
    PlannedRun,
    Rerun,
    RunEvent,
    RunKind,
    RunStatus,
    Watermark,
)
from cronflow.state import files, idle_stamp
from cronflow.state.layout import (
    HOUSEKEEPING_ALERTED,
    LAST_PRUNE,
    LAST_RETENTION,
    LAST_TICK,
    PLAN_LOCK,
    RETENTION_LOCK,
)
from cronflow.state.locks import Locks
from cronflow.state.store import Store, new_run_id


class Engine:
    """cronflow at work on one jobs file: its ticks, backfills and manual runs."""

    def __init__(
        self,
        *,
        jobfile: JobFile,
        store: Store,
        locks: Locks,
        executor: Executor,
        clock: Clock,
        boot: Callable[[datetime], Boot] = processes.this_boot,
        warn: Callable[[str], None] | None = None,
    ) -> None:
        self.jobfile = jobfile
        self.warn = warn or _warn_on_stderr  # the daemon logs instead
        self.boot = boot  # the running boot, told at a given time (tests give their own)
        self.store = store
        self.locks = locks
        self.executor = executor
        self.clock = clock
        self.host = socket.gethostname()

    def tick(self) -> list[Outcome]:
        """A one-shot tick: decide, run what is due and wait for it, keep the house, and
        leave the idle stamp for the ticks after it. One Outcome per run started or held."""
        outcomes: list[Outcome] = []

        def run_here(runs: list[PlannedRun]) -> None:
            outcomes.extend(self.executor.execute(runs))

        self.tick_with(run_here)
        self._leave_idle_stamp()
        self.executor.wait_for_deliveries()  # the heartbeat, a housekeeping alert
        self.executor.flush_files()  # what the decision changed, even with nothing run
        return outcomes

    def tick_with(self, start: Callable[[list[PlannedRun]], object]) -> TickDecision:
        """Decide (recording the decision), tell the outside, hand the runs due to `start`
        (the one-shot tick runs them and waits; the daemon gives them a thread), then keep
        the house: what every tick does, whoever ticks."""
        decision = self.decide()
        self.announce_decision()
        if decision.runs:
            start(decision.runs)
        self.keep_house(decision)
        return decision

    def announce_decision(self) -> None:
        """Tell the outside a decision was made: the heartbeat ping, the metrics file and the
        status page (in the background; `executor.execute` waits for them before it returns)."""
        if self.executor.pinger:
            self.executor.pinger.heartbeat()
        for refresher in self.executor.refreshers:
            refresher.changed()

    def decide(self) -> TickDecision:
        """Decide what is due now, and record the decision before anything runs."""
        with self.locks.hold(PLAN_LOCK, wait=True):
            self.store.keep_reserve()  # taken back once space has returned (the daemon too)
            self.settle_orphans()
            now = self.clock.now()
            pausing.expire(self.store, now)
            index = self.store.index()
            watermarks = self.store.read_watermarks()
            alerted = self.store.stale_alerted() if self._alerts_stale() else set()
            episodes = self.store.overdue()
            decision = decide_tick(
                self.jobfile,
                history=index,
                watermarks=watermarks,
                now=now,
                boot=self._this_boot(now, record=True),
                stale_alerted=alerted,
                asset_states=freshness.states(self.jobfile, index, now),
                housekeeping=self._housekeeping(),
                paused=self._paused(now),
                overdue_before=episodes,
            )
            self._apply(decision, now, watermarks, alerted)
            self._apply_overdue(decision, episodes)
        return decision

    def _paused(self, now: datetime) -> set[str]:
        """The jobs a pause holds now, when anything is watched for lateness."""
        if not overdue.watches(self.jobfile):
            return set()
        return {job for job, pause in self.store.read_pauses().items() if pause.holds_at(now)}

    def _apply_overdue(
        self, decision: TickDecision, before: dict[str, dict[str, str | None]]
    ) -> None:
        """Say the slow and late episodes that began and ended (once each: under the
        @plan lock, with the records of the last decision), and record those that hold."""
        alerter = self.executor.alerter
        if alerter:
            index = self.store.index()
            for episode in decision.overdue_begun:
                alerter.overdue_began(episode, index)
            for key in decision.overdue_ended:
                alerter.overdue_ended(before[key], index)
        if decision.overdue != before:
            self.store.write_overdue(decision.overdue)
        if self.executor.pinger:
            for episode in decision.overdue_begun:
                self.executor.pinger.overdue(episode, self.store.index())

    def _apply(
        self,
        decision: TickDecision,
        now: datetime,
        watermarks: dict[str, Watermark],
        alerted: set[str],
    ) -> None:
        """Record a decision (under the @plan lock), made from these `watermarks` and
        `alerted` assets: the clock going back, the ticks missed, the assets alerted about,
        the new watermarks, and that a decision was made."""
        if decision.clock_went_back_from is not None:
            again = sum(1 for mark in watermarks.values() if mark.decided > now)
            self._record_clock_back(decision.clock_went_back_from, now, again)
        for job, ticks in decision.missed.items():
            self._record_missed(job, ticks)
        if self._alerts_stale():
            alerter = self.executor.alerter
            for state in decision.asset_alerts:
                if alerter:
                    alerter.asset_changed(state)
            if decision.stale_alerted != alerted:
                self.store.write_stale_alerted(set(decision.stale_alerted))
        if decision.watermarks != watermarks:
            self.store.write_watermarks(decision.watermarks)
        self.store.note_first_seen("job", self.jobfile.jobs, now)
        self.store.note_first_seen("asset", self.jobfile.assets, now)
        self.store.write_stamp(LAST_TICK, now)

    def _alerts_stale(self) -> bool:
        """Whether stale assets alert at all (the set of alerted assets is kept only then)."""
        settings = self.jobfile.alerts
        return bool(
            self.jobfile.assets
            and self.executor.alerter
            and settings.has_targets
            and AlertEvent.STALE in settings.on
        )

    def _housekeeping(self) -> Housekeeping:
        return Housekeeping(
            last_prune=self.store.read_stamp(LAST_PRUNE),
            last_retention=self.store.read_stamp(LAST_RETENTION),
            last_recorded=self.store.index().last_activity,
        )

    def keep_house(self, decision: TickDecision) -> None:
        """What a tick owes the state directory when due: prune run output (hourly) and
        forget history past keep_history_days (daily, one process at a time). A step that
        fails (a full disk, say) never stops scheduling: it is said, alerted once until it
        works again, and tried again when next due (its stamp was written first)."""
        steps: list[tuple[str, Callable[[], object]]] = []
        if decision.prune_due:
            steps.append(("prune run output", self.prune))
        cutoff = decision.retention_cutoff
        if cutoff is not None:
            steps.append(("forget old history", lambda: self.forget_history(cutoff)))
        for what, step in steps:
            try:
                step()
            except (OSError, sqlite3.Error, CronflowError) as error:
                self._housekeeping_failed(what, error)
            else:
                self._housekeeping_worked(what)

    def _housekeeping_failed(self, what: str, error: Exception) -> None:
        why = getattr(error, "strerror", None) or str(error)
        self.warn(f"cannot {what} in {self.store.state_dir} ({why}); scheduling goes on")
        alerted = self.store.read_text_stamp(HOUSEKEEPING_ALERTED).split("\n")
        if what not in alerted and self.executor.alerter:
            self.executor.alerter.housekeeping_failed(what, why)
            self.store.write_text_stamp(HOUSEKEEPING_ALERTED, "\n".join([*alerted, what]))

    def _housekeeping_worked(self, what: str) -> None:
        alerted = self.store.read_text_stamp(HOUSEKEEPING_ALERTED).split("\n")
        if what in alerted:
            rest = [each for each in alerted if each != what]
            self.store.write_text_stamp(HOUSEKEEPING_ALERTED, "\n".join(rest))

    def prune(self) -> int:
        """Delete run output past keep_days (but each job's keep_runs newest), never kept
        longer than the history (keep_history_days); and the temporary files of writers
        killed mid-write (see state/files.sweep_leftovers), an hour old at least."""
        now = self.clock.now()
        self.store.write_stamp(LAST_PRUNE, now)
        days, _ = housekeeping_settings(self.jobfile)
        keep = self.store.index().run_ids_to_keep(self.jobfile.settings.keep_runs)
        pruned = self.store.prune(keep, older_than=now - timedelta(days=days))
        an_hour_ago = (now - timedelta(hours=1)).timestamp()
        files.sweep_leftovers(str(self.store.state_dir), None, an_hour_ago)
        settings = self.jobfile.settings
        for path in (settings.metrics_file, settings.html_file):
            if path is not None:
                files.sweep_leftovers(str(path.parent), (path.name,), an_hour_ago)
        return pruned

    def forget_history(self, cutoff: datetime) -> tuple[int, int]:
        """Forget runs and delete log segments that ended before `cutoff` (see
        decide/tick.forget_cutoff and Store.forget_before), by one process at a time."""
        with self.locks.hold(RETENTION_LOCK, wait=False) as alone:
            if not alone:
                return 0, 0  # another invocation is at it
            self.store.write_stamp(LAST_RETENTION, self.clock.now())
            return self.store.forget_before(cutoff)

    def _leave_idle_stamp(self) -> None:
        """Tell the one-shot ticks after this one until when nothing can be due (see
        state/idle_stamp.py): the next wake-up, if no run is left running or waiting."""
        log = idle_stamp.log_identity(str(self.store.state_dir))  # before the index reads the log
        now = self.clock.now()
        index = self.store.index()
        wake = next_wake(
            self.jobfile,
            index,
            self.store.read_watermarks(),
            now,
            freshness.states(self.jobfile, index, now) if self.jobfile.assets else (),
            self._housekeeping(),
            overdue.watch(self.jobfile, index, now, self._paused(now), wake_only=True).wake,
        )
        if wake.at is None or not wake.settled:
            idle_stamp.forget(str(self.store.state_dir))
            return
        settings = self.jobfile.settings
        idle_stamp.remember(
            jobs_path=str(self.jobfile.path),
            jobs_text=self.jobfile.text,
            state_dir=str(self.store.state_dir),
            log=log,
            decided_at=now,
            until=wake.at,
            warnings=tuple(map(printable, self.jobfile.warnings)),  # printed as they are
            heartbeat=(
                settings.heartbeat_url,
                monitors.protocol_for(settings.heartbeat_url, settings.heartbeat_protocol),
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

    def _this_boot(self, now: datetime, record: bool) -> Boot | None:
        """The boot @reboot runs are for (None when no job is one): as first recorded, or
        (deciding, under the @plan lock) recorded now; a dry run only looks."""
        if not any(job.at_boot for job in self.jobfile.jobs.values()):
            return None
        seen = self.boot(now)
        return self.store.boot(seen) if record else self.store.known_boot(seen)

    def preview(self) -> due.DueRuns:
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
        return due.DueRuns(
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
        include_paused: bool = False,
    ) -> list[Outcome]:
        """`cronflow run --date`: the runs `selection.backfill` chose, all dates at once, each
        job's oldest first and after its upstreams: a job that retries on one date holds
        back its own later dates and its dependents, not the other jobs. Stopped, the runs
        not begun stay untouched, to run another time. (Choosing comes first, apart: a
        range it refuses writes nothing.)"""
        self.settle_orphans()
        runs = [run for day in chosen.by_date for run in day]
        with progress(len(runs)) if progress else nullcontext():
            outcomes = self.executor.execute(
                runs, rerun, record_unstarted=False, include_paused=include_paused
            )
        self.executor.wait_for_deliveries()  # settle_orphans' alerts, when nothing ran
        return outcomes

    def run_now(self, runs: list[PlannedRun], include_paused: bool = False) -> list[Outcome]:
        """`cronflow run --job NAME`: these manual runs, whatever the log holds for them
        (someone asked), unless one is running right now (or paused, unless included)."""
        self.settle_orphans()
        return self.executor.execute(runs, Rerun.ALL, include_paused=include_paused)

    def backfill_preview(self, chosen: selection.Backfill, rerun: Rerun) -> list[explain.Verdict]:
        """What `backfill` would do and why, changing nothing (for --dry-run)."""
        index = self.store.index()
        verdicts = []
        for runs in chosen.by_date:
            base = [
                explain.backfill_verdict(
                    run, index.status(run.key), rerun, index.forgotten_through(run.job)
                )
                for run in runs
            ]
            to_run = {
                run.key for run, v in zip(runs, base, strict=True) if v.action is explain.Action.RUN
            }
            verdicts += [
                explain.with_rule(self.jobfile, verdict, run, to_run, index)
                for run, verdict in zip(runs, base, strict=True)
            ]
        verdicts += [
            explain.Verdict(
                job=job,
                logical_time=skipped.tick,
                action=explain.Action.SKIPPED_BY_CALENDAR,
                detail=skipped.reason,
            )
            for job, skipped in chosen.skipped
        ]

        def day(verdict: explain.Verdict) -> date:
            zone = self.jobfile.jobs[verdict.job].timezone
            return (
                verdict.logical_time.astimezone(zone).date() if verdict.logical_time else date.max
            )

        verdicts.sort(key=day)  # stable: each day's runs stay in their order, skips join them
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

    def _record_clock_back(self, reached: datetime, now: datetime, again: int) -> None:
        """The clock went back behind ticks already decided (`reached`): record one `clock`
        event and alert; the `again` jobs ahead of it decide their ticks again from now."""
        event = ClockSetBack(
            reached=reached,
            noticed_at=now,
            reason=f"the clock went back at least {_rounded(reached - now)}: ticks up to "
            f"{reached.isoformat()} were already decided; {again} job(s) decide their "
            "ticks again from now, and runs that already succeeded do not run again",
        )
        event = self.store.append(event)
        if self.executor.alerter:
            self.executor.alerter.clock_set_back(event)

    def _record_missed(self, job_name: str, ticks: list[datetime]) -> None:
        job = self.jobfile.jobs[job_name]
        first, last = (tick.astimezone(job.timezone).isoformat() for tick in (ticks[0], ticks[-1]))
        span = first if len(ticks) == 1 else f"{first} to {last}"
        zone = self.jobfile.settings.timezone
        windows = {
            blackout_of(self.jobfile.blackouts, start_of(self.jobfile, job, t), zone) for t in ticks
        }
        held = ", ".join(sorted(w.describe() for w in windows if w is not None))
        why = (
            f"{held} held them, then catchup = {job.catchup}"
            if held
            else f"catchup = {job.catchup}"
        )
        event = RunEvent(
            event=EventType.MISSED,
            job=job_name,
            logical_time=ticks[-1],
            run_id=new_run_id(ticks[-1]),
            status=RunStatus.MISSED,
            kind=RunKind.CATCHUP,
            missed_ticks=len(ticks),
            ended_at=self.clock.now(),
            reason=f"{len(ticks)} tick(s) not run, {span} ({why})",
            config_hash=job.config_hash,
        )
        event = self.store.append(event)
        if self.executor.alerter:
            self.executor.alerter.missed(event)


def _warn_on_stderr(text: str) -> None:
    print(f"cronflow: warning: {printable(text)}", file=sys.stderr)


def _rounded(delta: timedelta) -> timedelta:
    return timedelta(seconds=round(delta.total_seconds()))
