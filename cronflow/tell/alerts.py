"""Alerts: which outcomes call for one, what it says, and recording how each delivery went
(sending is apprise_sender's). Deciding and formatting are pure. A delivery that fails is
recorded as an `alert` event and changes nothing else: not the run, not the exit status.
Alert URLs hold tokens and passwords, so a target is only ever shown as `scheme://host:port`.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Protocol
from zoneinfo import ZoneInfo

from cronflow.clock import Clock
from cronflow.decide.freshness import AssetState, Freshness
from cronflow.decide.overdue import Overdue
from cronflow.load.env_files import secrets_of_job
from cronflow.masking import mask_text
from cronflow.model import (
    AlertEvent,
    ClockSetBack,
    EventType,
    HostAlert,
    Job,
    JobFile,
    RunEvent,
    RunKey,
    RunStatus,
    delivery_about,
)
from cronflow.records import RunRecords
from cronflow.state.index_rows import AlertFacts
from cronflow.state.store import Store
from cronflow.tell.apprise_sender import AlertMessage, AppriseNotifier, Delivery
from cronflow.tell.background import Background, Ticket
from cronflow.tell.deliveries import DeliveryStatus


class Notifier(Protocol):
    def send(self, message: AlertMessage, tags: Sequence[str]) -> list[Delivery]: ...

    def stop(self) -> None:
        """cronflow is stopping: end the sendings still under way."""


# ---- what each alert says -----------------------------------------------------------------


def failure_message(job: Job, event: RunEvent, held_back: Sequence[RunKey]) -> AlertMessage:
    local = event.logical_time.astimezone(job.timezone)
    verb = "timed out" if event.status is RunStatus.TIMED_OUT else str(event.status)
    lines = _run_lines(job, event)
    if held_back:
        names = ", ".join(sorted({key.job for key in held_back}))
        lines.append(f"**Held back:** {names} (not started: upstream_failed)")
    lines += _stderr_lines(job, event)
    lines.append(f"Full output: `cronflow logs {job.name} --date {local.date()}`")
    return AlertMessage(
        on=AlertEvent.FAILURE,
        severity="failure",
        title=f"cronflow: {job.name} {verb} ({local.date()})",
        body="\n".join(lines),
    )


def paused_message(job: Job, event: RunEvent, streak: int) -> AlertMessage:
    """pause_after_failures paused the job: say so, and how to resume."""
    local = event.logical_time.astimezone(job.timezone)
    lines = _run_lines(job, event) + _stderr_lines(job, event)
    lines.append(
        f"**Paused:** its ticks are recorded skipped until `cronflow resume {job.name}` "
        f"(then `cronflow run --date DAY --job {job.name}` runs the skipped ones)"
    )
    return AlertMessage(
        on=AlertEvent.FAILURE,
        severity="failure",
        title=f"cronflow: {job.name} paused after {streak} failed runs in a row ({local.date()})",
        body="\n".join(lines),
    )


def retry_message(job: Job, event: RunEvent) -> AlertMessage:
    local = event.logical_time.astimezone(job.timezone)
    delay = job.retry.delay_before(event.attempt + 1)
    lines = _run_lines(job, event) + [f"**Next try:** in {delay}"] + _stderr_lines(job, event)
    return AlertMessage(
        on=AlertEvent.RETRY,
        severity="warning",
        title=f"cronflow: {job.name} try {event.attempt} {event.status}, retrying ({local.date()})",
        body="\n".join(lines),
    )


def recovery_message(job: Job, event: RunEvent) -> AlertMessage:
    local = event.logical_time.astimezone(job.timezone)
    return AlertMessage(
        on=AlertEvent.RECOVERY,
        severity="success",
        title=f"cronflow: {job.name} recovered ({local.date()})",
        body="\n".join(_run_lines(job, event)),
    )


def success_message(job: Job, event: RunEvent) -> AlertMessage:
    local = event.logical_time.astimezone(job.timezone)
    return AlertMessage(
        on=AlertEvent.SUCCESS,
        severity="success",
        title=f"cronflow: {job.name} succeeded ({local.date()})",
        body="\n".join(_run_lines(job, event)),
    )


def missed_message(job: Job, event: RunEvent) -> AlertMessage:
    return AlertMessage(
        on=AlertEvent.MISSED,
        severity="warning",
        title=f"cronflow: {job.name} missed {event.missed_ticks} tick(s)",
        body=f"**Job:** {job.name}\n**Missed:** {event.reason}\n**Host:** {event.host}",
    )


def clock_message(event: ClockSetBack) -> AlertMessage:
    return AlertMessage(
        on=AlertEvent.CLOCK,
        severity="warning",
        title=f"cronflow: the clock went back on {event.host}",
        body=f"**Host:** {event.host}\n**What happened:** {event.reason}\n"
        "Check the time source (NTP, the hardware clock).",
    )


def asset_message(state: AssetState, now: datetime) -> AlertMessage:
    """An asset went stale (or is fresh again): how old it is, what it may be, and why."""
    stale = state.state is Freshness.STALE
    as_of = f"{state.fresh_as_of:%Y-%m-%d %H:%M}Z" if state.fresh_as_of else "never"
    lines = [
        f"**Asset:** {state.name}",
        f"**Fresh as of:** {as_of}",
        f"**May be:** {state.fresh_within} old" if state.fresh_within else "",
        f"**Produced by:** {state.producer}",
        f"**Why:** {state.why}" if stale and state.why else "",
        f"**Used by:** {', '.join(state.consumers)}" if state.consumers else "",
        f"**Host:** {socket.gethostname()}",
        f"See `cronflow assets {state.name} --lineage`",
    ]
    return AlertMessage(
        on=AlertEvent.STALE,
        severity="warning" if stale else "success",
        title=f"cronflow: {state.name} is " + ("stale" if stale else "fresh again"),
        body="\n".join(line for line in lines if line),
    )


def overdue_message(episode: Overdue, zone: ZoneInfo) -> AlertMessage:
    """A run went slow, or a job or an asset is late: what, since when, and what it is doing."""
    local = episode.logical_time.astimezone(zone)
    what = episode.asset or episode.job
    lines = [
        f"**Asset:** {episode.asset} (produced by {episode.job})" if episode.asset else "",
        f"**Job:** {episode.job}" if not episode.asset else "",
        f"**Logical time:** {local.isoformat()} ({zone.key})",
        f"**Deadline:** {episode.deadline.astimezone(zone).isoformat()}"
        if episode.deadline
        else "",
        f"**{'Slow' if episode.on is AlertEvent.SLOW else 'Late'}:** {episode.detail}",
        f"**Host:** {socket.gethostname()}",
        f"See `cronflow why {episode.job} --at {local.isoformat()}`",
    ]
    verb = "is slow" if episode.on is AlertEvent.SLOW else "is late"
    if episode.asset and episode.deadline and episode.since < episode.deadline:
        verb = "will miss its deadline"
    return AlertMessage(
        on=episode.on,
        severity="warning",
        title=f"cronflow: {what} {verb} ({local.date()})",
        body="\n".join(line for line in lines if line),
    )


def overdue_over_message(record: Mapping[str, str | None], latest: RunEvent | None) -> AlertMessage:
    """A slow run ended, or a late job or asset is on time again: how it ended."""
    slow = record["on"] == AlertEvent.SLOW
    what = record["asset"] or record["job"]
    logical = str(record["logical_time"])
    ended = latest is not None and not latest.status.is_in_progress
    succeeded = latest is not None and latest.status is RunStatus.SUCCESS
    if slow:
        title = f"{what} finished" if ended else f"{what} is no longer watched for slowness"
    elif succeeded:
        title = f"{what} is on time again"
    else:  # a newer time met its deadline, or it is paused, disabled, no longer watched
        title = f"{what} is no longer late"
    outcome = "still running" if latest is not None and not ended else "no run recorded"
    if ended and latest is not None:
        took = f" after {latest.duration_s:.0f}s" if latest.duration_s is not None else ""
        outcome = f"{latest.status}{took}"
    lines = [
        f"**{'Asset' if record['asset'] else 'Job'}:** {what}",
        f"**Logical time:** {logical}",
        f"**Was:** {record['detail']}",
        f"**Run of that time:** {outcome}",
        f"**Host:** {socket.gethostname()}",
    ]
    return AlertMessage(
        on=AlertEvent(str(record["on"])),
        severity="success" if latest is None or latest.status is RunStatus.SUCCESS else "info",
        title=f"cronflow: {title} ({logical[:10]})",
        body="\n".join(lines),
    )


def config_message(path: Path, error: str) -> AlertMessage:
    return AlertMessage(
        on=AlertEvent.FAILURE,
        severity="failure",
        title=f"cronflow: {path.name} has errors on {socket.gethostname()}",
        body=f"The daemon keeps running the last good version.\n\n```\n{error}\n```",
    )


def housekeeping_message(state_dir: Path, what: str, error: str) -> AlertMessage:
    return AlertMessage(
        on=AlertEvent.FAILURE,
        severity="warning",
        title=f"cronflow: cannot {what} in {state_dir} on {socket.gethostname()}",
        body=f"Scheduling goes on; cronflow tries again later.\n\n```\n{error}\n```\n"
        "Free disk space, or fix the state directory's permissions.",
    )


def probe_message(job: Job | None) -> AlertMessage:
    about = f" for job {job.name}" if job else ""
    return AlertMessage(
        on=AlertEvent.FAILURE,
        severity="info",
        title=f"cronflow: test alert{about}",
        body=f"A test from `cronflow alerts test` on {socket.gethostname()}. "
        "If you read this, alerts reach you.",
    )


def _run_lines(job: Job, event: RunEvent) -> list[str]:
    local = event.logical_time.astimezone(job.timezone)
    lines = [
        f"**Job:** {job.name}",
        f"**Logical time:** {local.isoformat()} ({job.timezone.key})",
        f"**Attempt:** {event.attempt} of {event.max_attempts}",
    ]
    if event.status is RunStatus.TIMED_OUT:
        lines.append(f"**Result:** timed out after {job.timeout}")
    elif event.exit_code is not None:
        lines.append(f"**Result:** exit status {event.exit_code}")
    elif event.reason:
        lines.append(f"**Result:** {event.reason}")
    if event.duration_s is not None:
        lines.append(f"**Duration:** {event.duration_s:.1f}s")
    lines.append(f"**Host:** {event.host}")
    return lines


def _stderr_lines(job: Job, event: RunEvent) -> list[str]:
    """The stderr tail the log holds, masked again with the job's secrets as they are now
    (as `logs` does): whoever recorded the tail, nothing secret leaves in an alert."""
    if not event.stderr_tail:
        return []
    tail = mask_text(event.stderr_tail, secrets_of_job(job))
    return ["**Last lines of stderr:**", "```", tail.replace("```", "'''"), "```"]


# ---- deciding, sending and recording ------------------------------------------------------


def streak_alerted_at(facts: AlertFacts) -> datetime | None:
    """When a failure alert about the job's current failing streak last reached someone: one
    came after its last success (a success ends a streak)."""
    if facts.failure_alert_seen > facts.success_seen and facts.failure_alerted_at:
        return datetime.fromisoformat(facts.failure_alerted_at)
    return None


def owes_recovery(facts: AlertFacts) -> bool:
    """A recovery alert is owed when the job succeeded after a failure alert reached someone,
    and no recovery alert has gone out since that failure alert."""
    return 0 < facts.failure_alert_seen < facts.success_seen and (
        facts.recovery_alert_seen < facts.failure_alert_seen
    )


def alerted_events(jobfile: JobFile, job: Job) -> tuple[AlertEvent, ...]:
    """The events that alert about `job`: its `alert_on`, else `[alerts] on`; none without a
    target or with `alerts = false`. (`clock` is about cronflow itself, never about a job.)"""
    if not (jobfile.alerts.has_targets and job.alerts):
        return ()
    events = job.alert_on if job.alert_on is not None else jobfile.alerts.on
    return tuple(on for on in events if on not in (AlertEvent.CLOCK, AlertEvent.STALE))


class Alerter:
    """Turns run outcomes into alerts, as [alerts] and each job's alert keys ask.

    Decisions are made at once, in the caller's thread; deliveries run in the background
    (each bounded by [alerts] timeout) and are recorded as `alert` events when they end.
    Call `wait()` before exiting.
    """

    def __init__(
        self, *, jobfile: JobFile, store: Store, clock: Clock, notifier: Notifier | None = None
    ) -> None:
        self.jobfile = jobfile
        self.settings = jobfile.alerts
        self.store = store
        self.clock = clock
        self.notifier = notifier or AppriseNotifier(jobfile.alerts)
        self._streaks: dict[str, datetime] = {}  # failure alerts decided in this process
        self._guard = threading.Lock()
        self._background = Background("cronflow-alert")

    def finished(self, event: RunEvent, held_back: Sequence[RunKey] = ()) -> None:
        """A try ended (`finished`), or a run was given up (`abandoned` with no tries left)."""
        job = self.jobfile.jobs.get(event.job)
        if job is None or event.status is RunStatus.INTERRUPTED:
            return  # cronflow's own stop: the next start takes the run up again
        if event.status is RunStatus.SUCCESS:
            self._succeeded(job, event)
        elif event.attempt < event.max_attempts:
            if self._wants(job, AlertEvent.RETRY):
                self._send(job, event, retry_message(job, event))
        elif self._wants(job, AlertEvent.FAILURE) and self._failure_is_news(job):
            self._send(job, event, failure_message(job, event, held_back))

    def paused(self, event: RunEvent, streak: int) -> None:
        """pause_after_failures paused the job of `event`, its `streak`-th failure in a row."""
        job = self.jobfile.jobs.get(event.job)
        if job is not None and self._wants(job, AlertEvent.FAILURE):
            with self._guard:
                self._streaks[job.name] = self.clock.now()  # a failure alert of the streak
            self._send(job, event, paused_message(job, event, streak))

    def missed(self, event: RunEvent) -> None:
        job = self.jobfile.jobs.get(event.job)
        if job is not None and self._wants(job, AlertEvent.MISSED):
            self._send(job, event, missed_message(job, event))

    def clock_set_back(self, event: ClockSetBack) -> None:
        """The clock went back behind decided ticks (a `clock` event, about no run)."""
        if self.settings.has_targets and AlertEvent.CLOCK in self.settings.on:
            self._send(None, event.host, clock_message(event))

    def asset_changed(self, state: AssetState) -> None:
        """An asset went stale, or is fresh again after a stale alert (see
        decide/tick.asset_alerts: once per staleness). Recorded as an alert about the asset."""
        if self.settings.has_targets and AlertEvent.STALE in self.settings.on:
            self._send(None, state.name, asset_message(state, self.clock.now()))

    def overdue_began(self, episode: Overdue, history: RunRecords) -> None:
        """A run went slow, a job or an asset is late (decide/overdue.py: once each)."""
        job = self.jobfile.jobs.get(episode.job)
        if job is None:
            return
        message = overdue_message(episode, job.timezone)
        if episode.asset is not None:
            if self.settings.has_targets and episode.on in self.settings.on:
                self._send(None, episode.asset, message)
        elif self._wants(job, episode.on):
            run = history.latest(RunKey(job.name, episode.logical_time))
            about = run if episode.on is AlertEvent.SLOW and run is not None else job.name
            self._send(job, about, message)

    def overdue_ended(self, record: Mapping[str, str | None], history: RunRecords) -> None:
        """An episode that was said is over: the slow run ended, the late one is on time."""
        job = self.jobfile.jobs.get(str(record["job"]))
        on = AlertEvent(str(record["on"]))
        latest = None
        if job is not None:
            when = datetime.fromisoformat(str(record["logical_time"]))
            latest = history.latest(RunKey(job.name, when))
        message = overdue_over_message(record, latest)
        if record["asset"] is not None:
            if self.settings.has_targets and on in self.settings.on:
                self._send(None, str(record["asset"]), message)
        elif job is not None and self._wants(job, on):
            self._send(job, latest if on is AlertEvent.SLOW and latest else job.name, message)

    def config_broken(self, path: Path, error: str) -> None:
        """An edit of the jobs file the daemon cannot use (it keeps the last good one)."""
        if self.settings.has_targets:
            self._send(None, str(path), config_message(path, error))

    def housekeeping_failed(self, what: str, error: str) -> None:
        """A housekeeping step failed (a full disk, say): scheduling goes on (see
        Engine.keep_house). Recorded as an alert about the state directory."""
        if self.settings.has_targets:
            state_dir = self.store.state_dir
            self._send(None, str(state_dir), housekeeping_message(state_dir, what, error))

    def idle(self) -> bool:
        """True when no delivery is in flight."""
        return self._background.idle()

    def wait(self, stopping: threading.Event | None = None) -> None:
        """Wait for every delivery in flight to end (and be recorded); once `stopping` is
        set, those still in flight after background.STOP_GRACE are abandoned: their
        senders are stopped, and each is recorded as abandoned."""
        self._background.wait(stopping)

    def _succeeded(self, job: Job, event: RunEvent) -> None:
        with self._guard:
            alerted_here = self._streaks.pop(job.name, None) is not None
        if self._wants(job, AlertEvent.SUCCESS):
            self._send(job, event, success_message(job, event))
        if not self._wants(job, AlertEvent.RECOVERY):
            return  # asked first: the index need not catch up after every run
        if alerted_here or owes_recovery(self.store.index().alert_facts(job.name)):
            self._send(job, event, recovery_message(job, event))

    def _failure_is_news(self, job: Job) -> bool:
        """True for the first failure of a streak that has reached alert_after_failures
        failed runs, or when a `repeat` reminder is due."""
        if job.alert_after_failures > 1:
            streak = self.store.index().job_runs(job.name, 1).failing_streak
            if streak < job.alert_after_failures:
                return False
        if job.pause_after_failures and self._about_to_pause(job):
            return False  # the pause's own alert says it
        now = self.clock.now()
        with self._guard:
            last = max(
                filter(
                    None,
                    (
                        self._streaks.get(job.name),
                        streak_alerted_at(self.store.index().alert_facts(job.name)),
                    ),
                ),
                default=None,
            )
            news = last is None or (
                self.settings.repeat is not None and now - last >= self.settings.repeat
            )
            if news:
                self._streaks[job.name] = now
            return news

    def _about_to_pause(self, job: Job) -> bool:
        assert job.pause_after_failures is not None
        return self.store.index().job_runs(job.name, 1).failing_streak == job.pause_after_failures

    def _wants(self, job: Job, on: AlertEvent) -> bool:
        return on in alerted_events(self.jobfile, job)

    def _send(self, job: Job | None, about: RunEvent | str, message: AlertMessage) -> None:
        """Send in the background: about a run of `job`, or about no run (`about` names
        what it is about instead)."""

        def deliver(ticket: Ticket) -> None:
            try:
                deliveries = self.notifier.send(message, job.alert_tags if job else ())
            except Exception as error:  # an alert must never take cronflow down with it
                why = type(error).__name__
                deliveries = [Delivery(target="(apprise)", status=DeliveryStatus.FAILED, why=why)]
            if ticket.claim():
                self._record(job, about, message, deliveries)

        def abandoned(started: bool) -> None:
            if started:
                self.notifier.stop()
            why = (
                "cronflow stopped while it was being sent" if started else "cronflow stopped first"
            )
            delivery = Delivery(target="(every target)", status=DeliveryStatus.ABANDONED, why=why)
            self._record(job, about, message, [delivery])

        self._background.submit(deliver, abandoned)

    def _record(
        self,
        job: Job | None,
        about: RunEvent | str,
        message: AlertMessage,
        deliveries: Sequence[Delivery],
    ) -> None:
        """Record how an alert went (an `alert` event); about no run, a HostAlert."""
        sent = sum(delivery.status is DeliveryStatus.SENT for delivery in deliveries)
        reason = f"{message.on} alert: {sent} of {len(deliveries)} target(s) reached"
        alert = {
            "on": message.on.value,
            "title": message.title,
            "delivered": sent,
            "targets": [{"target": d.target, "delivery": str(d)} for d in deliveries],
        }
        now = self.clock.now()
        if isinstance(about, str):
            self.store.append(HostAlert(about=about, sent_at=now, reason=reason, alert=alert))
            return
        self.store.append(
            delivery_about(
                about,
                EventType.ALERT,
                ended_at=now,
                reason=reason,
                alert=alert,
                config_hash=job.config_hash if job else "",
            )
        )
