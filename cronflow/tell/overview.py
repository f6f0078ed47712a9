"""What `status`, `history` and `logs` show, as data built from the log. Pure: who runs a
running run is told by the caller."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence, Set
from dataclasses import asdict, dataclass, replace
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from typing import Any

from cronflow import __version__
from cronflow.calendars import coverage_gaps, held_until
from cronflow.decide import dag
from cronflow.decide.dag import dependency_graph
from cronflow.decide.jitter import start_of
from cronflow.decide.schedule import schedule_of
from cronflow.decide.schedule_words import describe
from cronflow.errors import UsageError
from cronflow.model import (
    AlertEvent,
    ClockSetBack,
    EventType,
    Job,
    JobFile,
    Pause,
    RunEvent,
    RunStatus,
    Watermark,
    describe_key,
)
from cronflow.pools import PoolState
from cronflow.records import RunRecords

STATUS_SCHEMA_VERSION = 2
STRIP_LENGTH = 12
# Without a tick recorded for this long, the one-shot cron line or the daemon seems stopped
# (both decide at least once a minute).
STALE_AFTER = timedelta(minutes=5)
CLOCK_NOTE_FOR = timedelta(days=1)


@dataclass(frozen=True, slots=True, kw_only=True)
class RunCell:
    """One run in a job's strip of recent runs."""

    logical_time: str  # ISO-8601 in the job's zone
    status: str


@dataclass(frozen=True, slots=True, kw_only=True)
class PauseCell:
    """A paused job's pause, as status shows it."""

    by: str
    since: str  # ISO-8601 in the job's zone
    until: str | None  # None: until resumed
    reason: str
    words: str  # "paused by alice since … until …: why"


@dataclass(frozen=True, slots=True, kw_only=True)
class JobStatus:
    job: str
    flow: int  # jobs joined by dependencies share a flow number (1, 2, ...)
    schedule: str  # the cron expression, "after <upstreams>", or "manual"
    schedule_words: str  # the schedule in English ("at 04:15 on Mondays")
    timezone: str
    enabled: bool
    last_logical_time: str | None  # ISO-8601 in the job's zone
    status: str | None  # None: never run
    attempt: int
    max_attempts: int
    duration_s: float | None
    ended_at: str | None  # ISO-8601 in the job's zone
    reason: str
    next_due: str | None  # ISO-8601 in the job's zone; None when not scheduled
    failing_streak: int  # runs that failed since the newest success (model.failing_streak)
    recent: list[RunCell]  # oldest first
    last_ping: str | None = None  # how its newest ping went ("sent", "failed: ..."), if any
    paused: PauseCell | None = None  # `cronflow pause`: by whom, since and until when, why
    slow: str | None = None  # a run past max_runtime: "running 41m (try 1), usually 12m ± 3m"
    late: str | None = None  # not succeeded by finish_by: "not succeeded by 07:00 ...: running"
    calendar: str | None = None  # "3 tick(s) skipped by its calendars, the last ... (why)"
    pool_wait: str | None = None  # "waiting for pool db (2/2 in use by ...)"


@dataclass(frozen=True, slots=True, kw_only=True)
class Overview:
    """The header line of `status`."""

    failing: int
    running: int
    healthy: int  # their newest run succeeded (or was skipped, or is held), none failing
    never_run: int
    last_ran_at: datetime | None  # when cronflow last decided what was due
    stale: bool  # it did decide, but not for STALE_AFTER, and scheduled jobs exist
    clock_warning: str = ""  # the clock went back recently (see `clock_note`)
    ping_warnings: tuple[str, ...] = ()  # the last failed ping and heartbeat (`ping_notes`)
    late_assets: tuple[tuple[str, str], ...] = ()  # (asset, why) past or bound to miss a deadline
    blackout: str = ""  # the [blackout] window holding every start now, and until when
    calendar_warnings: tuple[str, ...] = ()  # holiday data that does not cover the next year


def summarise(
    jobfile: JobFile,
    history: RunRecords,
    watermarks: Mapping[str, Watermark],
    now: datetime,
    include_disabled: bool = False,
    jobs: Sequence[str] = (),
    who_runs: Callable[[RunEvent], str] = lambda started: "running",
    pauses: Mapping[str, Pause] | None = None,
    episodes: Sequence[Mapping[str, str | None]] = (),
    pool_states: Mapping[str, PoolState] | None = None,
) -> list[JobStatus]:
    """One JobStatus per job, grouped by flow, each flow in dependency order. `who_runs`
    says who runs a run recorded as running (the CLI asks the kernel: liveness); `pauses`
    are the jobs paused (those still holding at `now` are shown); `episodes` the slow and
    late ones that hold (decide/overdue.still_holding)."""
    rows = []
    pings = history.last_pings()
    said = {(str(e["job"]), str(e["on"])): str(e["detail"]) for e in episodes if not e.get("asset")}
    for flow, names in enumerate(dependency_groups(jobfile), start=1):
        for name in names:
            job = jobfile.jobs[name]
            if (jobs and name not in jobs) or (not job.enabled and not include_disabled):
                continue
            mark = watermarks.get(name)
            row = _job_status(jobfile, job, flow, history, mark, now, who_runs)
            if name in pings and job.ping_url:
                row = replace(row, last_ping=str(pings[name].ping.get("delivery", "")))
            held = (pauses or {}).get(name)
            if held is not None and held.holds_at(now):
                row = replace(row, paused=_pause_cell(held, job.timezone))
            slow, late = said.get((name, AlertEvent.SLOW)), said.get((name, AlertEvent.LATE))
            if slow or late:
                row = replace(row, slow=slow, late=late)
            if mark is not None and mark.calendar_skipped and mark.last_skipped:
                row = replace(row, calendar=_calendar_words(job, mark))
            state = (pool_states or {}).get(job.pool.pool) if job.pool else None
            if state is not None and any(w.split(" @ ")[0] == name for w in state.waiting):
                row = replace(row, pool_wait=f"waiting for pool {state.describe()}")
            rows.append(row)
    return rows


def overview(
    jobfile: JobFile,
    rows: list[JobStatus],
    last_ran_at: datetime | None,
    now: datetime,
    clock_event: ClockSetBack | None = None,
    ping_warnings: tuple[str, ...] = (),
    episodes: Sequence[Mapping[str, str | None]] = (),
) -> Overview:
    scheduled = any(job.schedule and job.enabled for job in jobfile.jobs.values())
    failing = sum(row.failing_streak > 0 for row in rows)
    running = sum(row.status == "running" for row in rows)
    never_run = sum(row.status is None for row in rows)
    return Overview(
        failing=failing,
        running=running,
        healthy=len(rows) - failing - running - never_run,
        never_run=never_run,
        last_ran_at=last_ran_at,
        stale=scheduled and last_ran_at is not None and now - last_ran_at > STALE_AFTER,
        clock_warning=clock_note(clock_event, now),
        ping_warnings=ping_warnings,
        late_assets=tuple((str(e["asset"]), str(e["detail"])) for e in episodes if e.get("asset")),
        blackout=_blackout_words(jobfile, now),
        calendar_warnings=calendar_warnings(jobfile, now),
    )


def _calendar_words(job: Job, mark: Watermark) -> str:
    """How many ticks the job's calendars skipped since it was first seen, the last and why."""
    assert mark.last_skipped is not None
    last = mark.last_skipped.astimezone(job.timezone)
    days = job.cadence.days
    why = days.refusal(last.date()) if days else None
    return (
        f"{mark.calendar_skipped} tick(s) skipped by its calendars, the last "
        f"{last:%Y-%m-%d %H:%M}" + (f" ({why})" if why else "")
    )


def _blackout_words(jobfile: JobFile, now: datetime) -> str:
    zone = jobfile.settings.timezone
    held = held_until(jobfile.blackouts, now, zone)
    if held is None:
        return ""
    window, until = held
    return f"{window.describe()} holds every start until {until.astimezone(zone):%Y-%m-%d %H:%M}"


def calendar_warnings(jobfile: JobFile, now: datetime) -> tuple[str, ...]:
    """What the holiday data of the calendars jobs use does not know of the next 12 months
    (calendars.coverage_gaps): never silently wrong."""
    used = {
        calendar.name: calendar
        for job in jobfile.jobs.values()
        if job.cadence.days is not None and job.enabled
        for calendar in (*job.cadence.days.run_on, *job.cadence.days.skip_on)
    }
    today = now.astimezone(jobfile.settings.timezone).date()
    return tuple(gap for calendar in used.values() for gap in coverage_gaps(calendar, today))


def ping_notes(
    last_pings: Mapping[str, RunEvent], heartbeat: Mapping[str, Any], jobs: Set[str]
) -> tuple[str, ...]:
    """What status says about pings that did not arrive: each job whose last ping about a
    run failed (from the index: one broken check never hides another), and the last
    failed heartbeat (pings.read_heartbeat); targets masked."""
    notes = []
    for job, event in last_pings.items():
        ping = event.ping
        if job not in jobs or ping.get("delivery") == "sent" or event.ended_at is None:
            continue
        notes.append(
            f"ping failed at {event.ended_at.astimezone(UTC):%Y-%m-%d %H:%M:%S}Z: "
            f"{job}'s {ping.get('signal')} ping to {ping.get('target')} "
            f"({ping.get('delivery')})"
        )
    failed, last = heartbeat.get("last_failed"), heartbeat.get("last")
    if isinstance(failed, dict) and isinstance(last, dict):
        since = " (delivered since)" if last.get("at", 0) > failed.get("at", 0) else ""
        at = datetime.fromtimestamp(float(failed.get("at", 0)), UTC)
        notes.append(
            f"heartbeat ping failed at {at:%Y-%m-%d %H:%M:%S}Z to {failed.get('target')} "
            f"({failed.get('delivery')}){since}"
        )
    return tuple(notes)


def clock_note(event: ClockSetBack | None, now: datetime) -> str:
    """What status says about the clock having gone back, until a day after it is back
    where it had been (the runs it had already made come round again meanwhile)."""
    if event is None or now > event.reached + CLOCK_NOTE_FOR:
        return ""
    return f"{event.reason} (noticed at {event.noticed_at:%Y-%m-%d %H:%M:%S}Z)"


def dependency_groups(jobfile: JobFile) -> list[list[str]]:
    """Groups of jobs joined by dependencies, each in dependency order, in file order."""
    graph = dependency_graph(jobfile)
    return dag.components(graph, dag.topological_order(graph))


def _job_status(
    jobfile: JobFile,
    job: Job,
    flow: int,
    history: RunRecords,
    mark: Watermark | None,
    now: datetime,
    who_runs: Callable[[RunEvent], str],
) -> JobStatus:
    zone = job.timezone
    runs = history.job_runs(job.name, STRIP_LENGTH)
    last = runs.last
    return JobStatus(
        job=job.name,
        flow=flow,
        schedule=job.schedule
        or ("@reboot" if job.at_boot else "")
        or (f"after {', '.join(job.depends_on)}" if job.depends_on else "manual"),
        schedule_words=describe(job.schedule, job.cadence.day_and)
        if job.schedule
        else ("once per boot" if job.at_boot else ""),
        timezone=zone.key,
        enabled=job.enabled,
        last_logical_time=_local(last.logical_time, zone) if last else None,
        status=last.status.value if last else None,
        attempt=last.attempt if last else 0,
        max_attempts=job.retry.attempts,
        duration_s=last.duration_s if last else None,
        ended_at=_local(last.ended_at, zone) if last and last.ended_at else None,
        reason=(who_runs(last) if last.status is RunStatus.RUNNING else last.reason)
        if last
        else "",
        next_due=_local_or_none(_next_due(jobfile, job, mark, now), zone)
        if job.schedule and job.enabled
        else None,
        failing_streak=runs.failing_streak,
        recent=[
            RunCell(logical_time=_local(logical_time, zone), status=status.value)
            for logical_time, status in runs.recent
        ],
    )


def _pause_cell(held: Pause, zone: tzinfo) -> PauseCell:
    return PauseCell(
        by=held.by,
        since=_local(held.since, zone),
        until=_local_or_none(held.until, zone),
        reason=held.reason,
        words=held.describe(),
    )


def _next_due(jobfile: JobFile, job: Job, mark: Watermark | None, now: datetime) -> datetime | None:
    """When the job's next run starts (a random delay or offset included)."""
    tick = None
    if mark and mark.next_tick and mark.schedule == job.cadence.fingerprint:
        tick = mark.next_tick  # includes a tick that is due but not yet decided
    else:
        tick = schedule_of(job.cadence).next_after(now)
    return None if tick is None else start_of(jobfile, job, tick)


def status_json(
    jobfile: JobFile, rows: list[JobStatus], summary: Overview, now: datetime
) -> dict[str, Any]:
    """The documented `cronflow status --json` document (schema version in "v")."""
    return {
        "v": STATUS_SCHEMA_VERSION,
        "jobs_file": str(jobfile.path),
        "generated_at": now.isoformat(),
        "cronflow": {
            "version": __version__,
            "last_ran_at": summary.last_ran_at and summary.last_ran_at.isoformat(),
            "stale": summary.stale,
            "clock_warning": summary.clock_warning or None,
            "ping_warnings": list(summary.ping_warnings),
            "blackout": summary.blackout or None,
            "calendar_warnings": list(summary.calendar_warnings),
        },
        "late_assets": [{"asset": name, "why": why} for name, why in summary.late_assets],
        "summary": {
            "failing": summary.failing,
            "running": summary.running,
            "healthy": summary.healthy,
            "never_run": summary.never_run,
        },
        "jobs": [asdict(row) for row in rows],
    }


def _local(instant: datetime, zone: tzinfo) -> str:
    return instant.astimezone(zone).isoformat()


def _local_or_none(instant: datetime | None, zone: tzinfo) -> str | None:
    return None if instant is None else _local(instant, zone)


@dataclass(frozen=True, slots=True, kw_only=True)
class RunSummary:
    """A run as it last ended (its latest try), for `cronflow history`."""

    job: str
    logical_time: str  # ISO-8601 in the job's zone
    run_id: str
    kind: str
    status: str
    attempts: int
    max_attempts: int
    started_at: str | None
    ended_at: str | None
    duration_s: float | None  # of its last try
    exit_code: int | None
    reason: str


def run_history(
    jobfile: JobFile,
    history: RunRecords,
    *,
    jobs: Sequence[str] = (),
    since: date | None = None,
    status: str | None = None,
    limit: int = 50,
) -> list[RunSummary]:
    """The `limit` most recently active runs, newest first, filtered as asked."""
    # `since` is a local date of each job; ask the index from a day earlier, then be exact.
    start = datetime.combine(since, time(0), tzinfo=UTC) - timedelta(days=1) if since else None
    summaries: list[RunSummary] = []
    while True:
        events = history.newest_first(
            jobs=jobs,
            statuses=[status] if status else [],
            since=start,
            limit=limit + len(summaries) + 100,
        )
        summaries = [
            _run_summary(jobfile, event)
            for event in events
            if since is None or _local_date(jobfile, event) >= since
        ]
        if len(summaries) >= limit or len(events) < limit + 100:
            return summaries[:limit]


def _local_date(jobfile: JobFile, event: RunEvent) -> date:
    job = jobfile.jobs.get(event.job)
    return event.logical_time.astimezone(job.timezone if job else UTC).date()


def _run_summary(jobfile: JobFile, event: RunEvent) -> RunSummary:
    job = jobfile.jobs.get(event.job)
    zone = job.timezone if job else UTC
    return RunSummary(
        job=event.job,
        logical_time=_local(event.logical_time, zone),
        run_id=event.run_id,
        kind=event.kind.value,
        status=event.status.value,
        attempts=event.attempt,
        max_attempts=event.max_attempts,
        started_at=_local_or_none(event.started_at, zone),
        ended_at=_local_or_none(event.ended_at, zone),
        duration_s=event.duration_s,
        exit_code=event.exit_code,
        reason=event.reason,
    )


def attempt_output(
    jobfile: JobFile,
    history: RunRecords,
    attempt_files: Callable[[str, str, int], Mapping[str, Any]],
    job: str,
    day: date | None,
    attempt: int | None,
    run_id: str | None = None,
    whole_log: Callable[[], list[RunEvent]] = list,
) -> RunEvent:
    """The `started` event (it holds the output paths) of one attempt of a job's run, found
    through the index: the run is `run_id`, or the job's newest that ran, or the newest that
    ran on `day` (in the job's zone); the attempt is the last one unless `attempt` is given.
    Only a run id the index no longer knows (a rerun replaced it) is looked for in
    `whole_log()`, the one case that reads the whole log."""
    between = None
    if day is not None:
        zone = jobfile.jobs[job].timezone
        between = (
            datetime.combine(day, time(0), zone).astimezone(UTC),
            datetime.combine(day + timedelta(days=1), time(0), zone).astimezone(UTC),
        )
    ran = history.newest_with(job, lambda e: e.attempt >= 1 and run_id in (None, e.run_id), between)
    if ran is None and run_id is not None:
        return attempt_in_log(jobfile, whole_log(), job, day, attempt, run_id)
    if ran is None:
        which = f" on {day}" if day else ""
        raise UsageError(
            f'job "{job}" has no recorded output{which}. `cronflow history '
            f"--job {job}` lists its runs."
        )
    wanted = ran.attempt if attempt is None else attempt
    if not 1 <= wanted <= ran.attempt:
        raise UsageError(
            f'run {ran.run_id} of job "{job}" has attempts '
            f"{', '.join(str(n) for n in range(1, ran.attempt + 1))}, not {attempt}."
        )
    files = {name: str(path) for name, path in attempt_files(job, ran.run_id, wanted).items()}
    return replace(ran, event=EventType.STARTED, attempt=wanted, output=files)


def attempt_in_log(
    jobfile: JobFile,
    events: list[RunEvent],
    job: str,
    day: date | None,
    attempt: int | None,
    run_id: str | None = None,
) -> RunEvent:
    """As attempt_output, from the events of the whole log."""
    zone = jobfile.jobs[job].timezone
    started = [
        e
        for e in events
        if e.job == job
        and e.event is EventType.STARTED
        and (day is None or e.logical_time.astimezone(zone).date() == day)
        and (run_id is None or e.run_id == run_id)
    ]
    if not started:
        which = f" on {day}" if day else f" in run {run_id}" if run_id else ""
        raise UsageError(
            f'job "{job}" has no recorded output{which}. `cronflow history '
            f"--job {job}` lists its runs."
        )
    newest = max(started, key=lambda e: e.logical_time).logical_time
    run_id = [e for e in started if e.logical_time == newest][-1].run_id
    tries = [e for e in started if e.run_id == run_id]
    if attempt is None:
        return tries[-1]
    for event in tries:
        if event.attempt == attempt:
            return event
    raise UsageError(
        f'run {run_id} of job "{job}" has attempts '
        f"{', '.join(str(e.attempt) for e in tries)}, not {attempt}."
    )


def attempt_running(history: RunRecords, started: RunEvent) -> bool:
    """Whether the attempt that `started` began is still the run's latest, and running (what
    `logs --follow` follows until)."""
    latest = history.latest(started.key)
    return (
        latest is not None
        and latest.run_id == started.run_id
        and latest.attempt == started.attempt
        and latest.status is RunStatus.RUNNING
    )


def event_line(jobfile: JobFile, event: RunEvent) -> str:
    """One event in a line, as `run` prints it and the daemon logs it."""
    label = describe_key(jobfile, event.key)
    attempt = f"attempt {event.attempt}/{event.max_attempts}"
    if event.event is EventType.STARTED:
        return f"{label}: started, {attempt} ({event.kind})"
    if event.event is EventType.FINISHED:
        detail = f", {event.reason}" if event.reason else ""
        if event.status is not RunStatus.SUCCESS and event.attempt < event.max_attempts:
            delay = jobfile.jobs[event.job].retry.delay_before(event.attempt + 1)
            detail += f"; retrying in {delay.total_seconds():g}s"
        return f"{label}: {event.status}, {attempt}, {event.duration_s:.1f}s{detail}"
    return f"{label}: {event.status}, {event.reason}"
