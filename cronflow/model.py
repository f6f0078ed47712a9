"""The typed model every module shares: jobs, settings, planned runs and log events. No I/O."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, time, timedelta
from enum import StrEnum
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from cronflow.calendars import Blackout, Calendar, Days
from cronflow.pools import Pool, PoolUse

LOG_SCHEMA_VERSION = 1


class CatchUp(StrEnum):
    """What the scheduler does with ticks missed while cronflow was not running."""

    LATEST = "latest"  # run only the most recent missed tick
    ALL = "all"  # run every missed tick, oldest first
    NONE = "none"  # run none of them; wait for the next tick


class Overlap(StrEnum):
    """What a newly due run does while the same job still runs from another invocation."""

    SKIP = "skip"
    QUEUE = "queue"
    ALLOW = "allow"


class Rerun(StrEnum):
    """Which already-recorded runs a backfill runs again."""

    NONE = "none"  # only runs never tried
    FAILED = "failed"  # also runs that did not succeed (the default)
    ALL = "all"  # also runs that succeeded


class AlertEvent(StrEnum):
    FAILURE = "failure"
    RECOVERY = "recovery"
    RETRY = "retry"
    MISSED = "missed"
    SUCCESS = "success"
    CLOCK = "clock"  # the system clock went back past ticks already decided (not about a job)
    STALE = "stale"  # an asset went stale, or is fresh again (about an asset, not a job)
    SLOW = "slow"  # a run goes on past max_runtime (and its end, once it was said)
    LATE = "late"  # a run has not succeeded by finish_by, or an asset will miss its deadline


class RunKind(StrEnum):
    """Why a run happens; every run's process sees it as CRONFLOW_RUN_KIND."""

    SCHEDULED = "scheduled"
    CATCHUP = "catchup"
    BACKFILL = "backfill"
    MANUAL = "manual"  # `cronflow run --job NAME`: now, because someone asked


class EventType(StrEnum):
    """The kind of line in runs.jsonl."""

    STARTED = "started"
    FINISHED = "finished"
    UPSTREAM_FAILED = "upstream_failed"
    SKIPPED = "skipped"
    MISSED = "missed"
    ABANDONED = "abandoned"
    WAITING = "waiting"  # a scheduled run whose other-schedule upstream has not succeeded yet
    INTERRUPTED = "interrupted"  # cronflow stopped before the run could start or retry
    ALERT = "alert"
    PING = "ping"  # a heartbeat ping about a run to a monitor (Healthchecks, Cronitor)
    CLOCK = "clock"  # the clock went back past decided ticks; about no job (job and run_id "")
    PAUSE = "pause"  # a job was paused or resumed (by someone, or as its pause expired)


class DayRule(StrEnum):
    """How a schedule's two day fields combine when both are restricted."""

    OR = "or"  # cron's rule: either matches
    AND = "and"  # both must match (Prefect's day_or = False)


class RunIf(StrEnum):
    """When a job with upstreams runs (a trigger rule; Airflow's names)."""

    ALL_SUCCESS = "all_success"  # every upstream succeeded (else upstream_failed)
    ALL_DONE = "all_done"  # every upstream ended, however (cleanup, unlock, notify)
    ONE_FAILED = "one_failed"  # at least one upstream failed
    ALL_FAILED = "all_failed"  # every upstream failed
    NONE_FAILED = "none_failed"  # no upstream failed (succeeded or skipped)


class PingProtocol(StrEnum):
    """How a monitor is pinged: Healthchecks' URL paths, or Cronitor's `state` parameter."""

    HEALTHCHECKS = "healthchecks"
    CRONITOR = "cronitor"


class RunStatus(StrEnum):
    """The state of a run after an event; `running` only follows `started`."""

    SUCCESS = "success"  # (in the order status's legend lists them)
    FAILED = "failed"
    TIMED_OUT = "timed_out"
    UPSTREAM_FAILED = "upstream_failed"
    SKIPPED = "skipped"
    MISSED = "missed"
    RUNNING = "running"
    WAITING = "waiting"
    ABANDONED = "abandoned"
    INTERRUPTED = "interrupted"  # stopped by cronflow's own shutdown; retried at the next start

    # Every question about a status is answered here, once: callers never list statuses.
    @property
    def is_failure(self) -> bool:
        """It counts against the job: `status --check`, the exit status, failing streaks."""
        return self in _FAILURES

    @property
    def ends_failing_streak(self) -> bool:
        """The job is fine again: only a success says so. A tick missed or skipped (the job
        was still running) says nothing about whether it works."""
        return self is RunStatus.SUCCESS

    @property
    def is_unfinished(self) -> bool:
        """A later event may settle the run, and the index keeps it at hand to be found: it
        is running or waiting, or was cut short and is resumed while it has tries left.
        (A failed try with tries left is retried by the invocation that ran it: see try_owed.)"""
        return self in _UNFINISHED

    @property
    def is_in_progress(self) -> bool:
        """It has not ended yet: running, or waiting for its upstreams."""
        return self in (RunStatus.RUNNING, RunStatus.WAITING)

    @property
    def has_outcome(self) -> bool:
        """The run came to an outcome, final or to be retried: not while it runs or waits,
        nor when cronflow's own stop cut it short (interrupted: taken up at the next start).
        What a trigger rule waits for from each upstream."""
        return self not in _WITHOUT_OUTCOME

    @property
    def is_failed_try(self) -> bool:
        """A try ran and did not succeed: it failed, timed out, or its processes vanished
        without an exit status (abandoned)."""
        return self in _FAILED_TRIES

    @property
    def is_cut_short(self) -> bool:
        """The try never reported its end (abandoned) or cronflow stopped it (interrupted):
        its next try, if it has one, comes at once, with no retry delay."""
        return self in (RunStatus.ABANDONED, RunStatus.INTERRUPTED)

    @property
    def may_resume(self) -> bool:
        """The run goes on with its next attempt (same run id) while it has tries left."""
        return self.is_failed_try or self is RunStatus.INTERRUPTED

    @property
    def letter(self) -> str:
        """Its letter in a strip of recent runs, for when colour is not shown."""
        return _LETTERS[self]

    @property
    def colour(self) -> str:
        """How a terminal shows it (a rich style name)."""
        return _COLOURS[self]


_FAILURES = frozenset(
    {RunStatus.FAILED, RunStatus.TIMED_OUT, RunStatus.UPSTREAM_FAILED, RunStatus.ABANDONED}
)
_UNFINISHED = frozenset(
    {RunStatus.RUNNING, RunStatus.WAITING, RunStatus.ABANDONED, RunStatus.INTERRUPTED}
)
_WITHOUT_OUTCOME = frozenset({RunStatus.RUNNING, RunStatus.WAITING, RunStatus.INTERRUPTED})
_FAILED_TRIES = frozenset({RunStatus.FAILED, RunStatus.TIMED_OUT, RunStatus.ABANDONED})
_LETTERS = {
    RunStatus.SUCCESS: ".",
    RunStatus.FAILED: "F",
    RunStatus.TIMED_OUT: "T",
    RunStatus.UPSTREAM_FAILED: "U",
    RunStatus.SKIPPED: "S",
    RunStatus.MISSED: "M",
    RunStatus.RUNNING: "R",
    RunStatus.WAITING: "W",
    RunStatus.ABANDONED: "A",
    RunStatus.INTERRUPTED: "I",
}
_COLOURS = {
    RunStatus.SUCCESS: "green",
    RunStatus.FAILED: "bold red",
    RunStatus.TIMED_OUT: "bold red",
    RunStatus.UPSTREAM_FAILED: "yellow",
    RunStatus.SKIPPED: "dim",
    RunStatus.MISSED: "dim",
    RunStatus.RUNNING: "cyan",
    RunStatus.WAITING: "yellow",
    RunStatus.ABANDONED: "magenta",
    RunStatus.INTERRUPTED: "magenta",
}


@dataclass(frozen=True, slots=True, kw_only=True)
class RetryPolicy:
    """How often a job is tried and how long it waits between tries."""

    attempts: int = 1  # total tries, including the first
    delay: timedelta = timedelta(seconds=30)
    backoff: float = 2.0
    max_delay: timedelta = timedelta(minutes=10)

    def delay_before(self, attempt: int) -> timedelta:
        """Delay before try number `attempt` (2 = first retry): delay * backoff**(attempt-2), capped."""
        seconds = self.delay.total_seconds() * self.backoff ** (attempt - 2)
        return min(timedelta(seconds=seconds), self.max_delay)


@dataclass(frozen=True, slots=True)
class Cadence:
    """The ticks a job runs for: its own schedule, the one its upstreams share, or none.

    `expression` None means an unscheduled job with no scheduled upstream: it runs only when
    asked (`cronflow run --date`), for midnight of that date in `timezone`.
    """

    expression: str | None
    timezone: ZoneInfo
    day_and: bool = False  # day_rule = "and": both day fields must match (cron: either)
    days: Days | None = None  # skip_on / run_on / shift: the calendars its ticks obey

    def describe(self) -> str:
        both = ", day_rule and" if self.day_and else ""
        days = f", {self.days.describe()}" if self.days else ""
        return f"{self.expression or 'unscheduled'} ({self.timezone.key}{both}{days})"

    @property
    def fingerprint(self) -> str:
        """What a watermark's cached next tick was computed for: "<expression>|<zone>",
        with the day rule and a digest of the calendars when they apply."""
        text = f"{self.expression}|{self.timezone.key}" + ("|and" if self.day_and else "")
        return text + (f"|days:{self.days.fingerprint}" if self.days else "")


@dataclass(frozen=True, slots=True, kw_only=True)
class Job:
    """One [jobs.NAME] table, with [defaults] applied and every value checked."""

    name: str
    command: str
    schedule: str | None  # a 5-field cron expression (macros already expanded), or None
    timezone: ZoneInfo
    cadence: Cadence  # = (schedule, timezone) for a scheduled job, else inherited
    cwd: Path
    shell: str = "/bin/sh"  # runs the command as SHELL -c COMMAND, as cron's SHELL= does
    env: dict[str, str] = field(default_factory=dict)
    env_files: tuple[Path, ...] = ()  # dotenv files read at each run, before `env`
    user: str | None = None  # run as this user (cronflow must run as root)
    group: str | None = None  # and this group instead of the user's own
    depends_on: tuple[str, ...] = ()  # with the producers of what it `uses`, derived
    produces: tuple[str, ...] = ()  # assets: tables, files, reports it makes (free-form names)
    uses: tuple[str, ...] = ()  # assets it reads; their producers are its upstreams
    at_boot: bool = False  # schedule = "@reboot": once per boot of the machine (schedule None)
    run_if: RunIf = RunIf.ALL_SUCCESS
    retry: RetryPolicy = RetryPolicy()
    timeout: timedelta | None = None
    kill_grace: timedelta = timedelta(seconds=10)
    random_delay: timedelta = timedelta(0)  # each scheduled run starts up to this much later
    random_offset: timedelta = timedelta(0)  # every run on this host starts this much later
    catchup: CatchUp = CatchUp.LATEST
    max_catchup: int = 100
    overlap: Overlap = Overlap.SKIP
    description: str = ""
    enabled: bool = True  # false: never run by the clock, nor by a backfill that does not name it
    alerts: bool = True  # false silences every alert about this job
    alert_on: tuple[AlertEvent, ...] | None = None  # None: the [alerts] `on` list
    alert_tags: tuple[str, ...] = ()  # apprise tags: which config-file targets hear of it
    alert_after_failures: int = 1  # the failure alert waits for this many failed runs in a row
    pause_after_failures: int | None = None  # paused (cronflow pause) after this many in a row
    success_exit_codes: frozenset[int] = frozenset()  # exit statuses that count as success, as 0
    no_retry_exit_codes: frozenset[int] = frozenset()  # a try ending so fails the run at once
    ping_url: str | None = None  # a monitor's ping URL (a secret: never printed whole)
    ping_protocol: PingProtocol | None = None  # None: told from the URL (pings.protocol_for)
    max_runtime: timedelta | None = None  # a run going on longer is `slow` (it is not stopped)
    max_runtime_auto: bool = False  # max_runtime = "auto": learnt from its runs (decide/overdue)
    finish_by: Deadline | None = None  # a run not succeeded by then is `late`
    pool: PoolUse | None = None  # each try waits for its slots of this pool first
    config_hash: str = ""  # changes whenever anything in this job's definition changes


@dataclass(frozen=True, slots=True)
class Deadline:
    """`finish_by` or an asset's `deadline`: a time of day in the job's zone ("07:00": the
    first 07:00 after the logical time), or a delay after the logical time ("+2h")."""

    at: time | None = None
    after: timedelta | None = None

    def __str__(self) -> str:
        if self.at is not None:
            return self.at.strftime("%H:%M")
        return f"+{self.after}"


# Stopping: after shutdown_grace, the jobs still running get SIGKILL and this long to go.
STOP_KILL_GRACE = 5.0


METRICS_INSTANCE_HEADER = "# cronflow instance: "  # metrics_file's first line: who writes it


@dataclass(frozen=True, slots=True, kw_only=True)
class Settings:
    """The [cronflow] table."""

    timezone: ZoneInfo
    state_dir: Path
    state_dir_from: str = "default"  # "default", "state_dir" (the file) or CRONFLOW_STATE_DIR
    max_parallel: int = 4
    shutdown_grace: timedelta = timedelta(seconds=30)  # the daemon's wait for running jobs
    keep_days: int = 30  # keep run output at least this long (0: forever)
    keep_runs: int = 100  # and always that of each job's newest runs
    keep_history_days: int = 400  # forget runs (log, index) older than this (0: never)
    host_seed: str = ""  # this host's identity (machine id): what random_offset is drawn from
    heartbeat_url: str | None = None  # pinged after every decision: cronflow itself is alive
    heartbeat_protocol: PingProtocol | None = None
    ping_timeout: timedelta = timedelta(seconds=5)  # for one try of one ping
    metrics_file: Path | None = None  # Prometheus text exposition, rewritten atomically
    instance: str = ""  # what its metrics call this cronflow; "": its state directory's path
    show_stderr: bool = True  # `cronflow run` prints a failed run's stderr tail (cron mails it)

    @property
    def identity(self) -> str:
        """This cronflow's name in its metrics (label `cronflow_instance`)."""
        return self.instance or str(self.state_dir)

    html_file: Path | None = None  # the status page, rewritten atomically


@dataclass(frozen=True, slots=True, kw_only=True)
class AlertSettings:
    """The [alerts] table: where failure alerts go and for which events."""

    urls: tuple[str, ...] = ()  # apprise URLs; they may hold secrets, so never print them
    config: Path | None = None  # an apprise config file (YAML or text), tags route per job
    on: tuple[AlertEvent, ...] = (
        AlertEvent.FAILURE,
        AlertEvent.RECOVERY,
        AlertEvent.CLOCK,
        AlertEvent.STALE,
        AlertEvent.SLOW,
        AlertEvent.LATE,
    )
    repeat: timedelta | None = None  # None: one failure alert per failing streak
    timeout: timedelta = timedelta(seconds=10)  # for one delivery

    @property
    def has_targets(self) -> bool:
        return bool(self.urls or self.config)


@dataclass(frozen=True, slots=True, kw_only=True)
class Asset:
    """Something jobs make and read: a table, a file, a report. As fresh as the logical
    time of its producer's newest successful run."""

    name: str
    producer: str | None  # the job that `produces` it; None for an external asset
    consumers: tuple[str, ...] = ()  # the jobs that `use` it
    fresh_within: timedelta | None = None  # None: two intervals of its producer's schedule
    deadline: Deadline | None = None  # its producer's run succeeds by then, or it is `late`
    description: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class JobFile:
    """A whole validated jobs.toml."""

    path: Path
    settings: Settings
    alerts: AlertSettings
    jobs: dict[str, Job]  # in the order the file declares them
    assets: dict[str, Asset] = field(default_factory=dict)  # by name, producers first seen
    warnings: tuple[str, ...] = ()  # what is unsafe but allowed, as cronflow does not run as root
    calendars: dict[str, Calendar] = field(default_factory=dict)  # [calendars.NAME], by name
    blackouts: tuple[Blackout, ...] = ()  # [blackout] windows: nothing starts inside one
    pools: dict[str, Pool] = field(default_factory=dict)  # [pools.NAME], by name
    text: str = field(default="", repr=False)  # the file as read: what the idle stamp compares


@dataclass(frozen=True, slots=True)
class Boot:
    """The machine's current boot: the kernel's boot id, and when cronflow first saw it
    begin (what @reboot runs take as their logical time)."""

    id: str
    time: datetime


@dataclass(frozen=True, slots=True, order=True)
class RunKey:
    """Identifies a run: one job at one logical time (an aware UTC instant)."""

    job: str
    logical_time: datetime


@dataclass(frozen=True, slots=True, kw_only=True)
class Watermark:
    """How far the clock-driven scheduler got with one job.

    `next_tick` is a cache of the job's first tick after `decided` (valid while `schedule`
    still names the job's cadence), so an invocation with nothing due needs no cron maths.
    """

    decided: datetime  # the newest tick already decided (run, skipped or recorded missed)
    next_tick: datetime | None
    schedule: str  # "<cron expression>|<zone>" the cache was computed for
    # Where the job's history starts: no tick at or before it is ever due, whatever the
    # clock does later (None: not known, for watermarks written before it was kept).
    first_seen: datetime | None = None
    # Ticks its calendars skipped (skip_on / run_on) since it was first seen, and the newest:
    # a count, not one event per tick (a minutely job's holiday would be 1,440 events).
    calendar_skipped: int = 0
    last_skipped: datetime | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class PlannedRun:
    """A run the planner decided should happen, why, and which runs it waits for."""

    key: RunKey
    kind: RunKind
    upstreams: tuple[RunKey, ...] = ()
    first_attempt: int = 1  # > 1 when resuming a run whose earlier attempt was abandoned
    run_id: str | None = None  # set when resuming; otherwise the executor makes a new one

    @property
    def job(self) -> str:
        return self.key.job

    @property
    def logical_time(self) -> datetime:
        return self.key.logical_time


@dataclass(frozen=True, slots=True, kw_only=True)
class JobProcess:
    """The process an attempt runs as, told apart from any later process reusing its pid."""

    pid: int  # the job's shell; it leads a session and process group of its own
    pgid: int
    start_ticks: int  # field 22 of /proc/PID/stat: clock ticks after boot when it started
    boot_id: str  # /proc/sys/kernel/random/boot_id: which boot the ticks count from


@dataclass(frozen=True, slots=True, kw_only=True)
class RunEvent:
    """One line of runs.jsonl. Times are aware UTC datetimes."""

    event: EventType
    job: str
    logical_time: datetime
    run_id: str
    status: RunStatus
    kind: RunKind
    attempt: int = 0
    max_attempts: int = 0
    started_at: datetime | None = None
    ended_at: datetime | None = None
    duration_s: float | None = None
    exit_code: int | None = None
    signal: int | None = None
    output: dict[str, str] = field(default_factory=dict)  # "stdout"/"stderr" -> path
    stderr_tail: str = ""
    reason: str = ""
    missed_ticks: int = 0  # on a `missed` event: how many ticks, ending at logical_time
    alert: dict[str, Any] = field(default_factory=dict)  # on an `alert` event: what and how
    ping: dict[str, Any] = field(default_factory=dict)  # on a `ping` event: which and how
    host: str = ""
    pid: int = 0  # the cronflow process that recorded the event
    process: JobProcess | None = None  # on `started`: the job's own process
    config_hash: str = ""
    v: int = LOG_SCHEMA_VERSION

    @property
    def key(self) -> RunKey:
        return RunKey(self.job, self.logical_time)


@dataclass(frozen=True, slots=True, kw_only=True)
class ClockSetBack:
    """A `clock` line of runs.jsonl: the system clock went back behind ticks already decided.
    About the host, not a run. (Lines written before it had a type of its own read as one.)"""

    reached: datetime  # the newest tick already decided when it was noticed
    noticed_at: datetime
    reason: str
    host: str = ""
    pid: int = 0
    v: int = LOG_SCHEMA_VERSION


@dataclass(frozen=True, slots=True, kw_only=True)
class HostAlert:
    """An `alert` line about no run: the clock set back, an asset stale or fresh again, a jobs
    file the daemon cannot use. `alert` holds what was sent and how (as on a run's alert)."""

    about: str  # what it is about: the host, an asset's name, the jobs file's path
    sent_at: datetime
    reason: str
    alert: dict[str, Any] = field(default_factory=dict)
    host: str = ""
    pid: int = 0
    v: int = LOG_SCHEMA_VERSION


@dataclass(frozen=True, slots=True, kw_only=True)
class Pause:
    """A job held by `cronflow pause`: its ticks are recorded skipped until it is resumed,
    or until `until` (None: until resumed)."""

    job: str
    by: str  # who paused it (the user, or cronflow itself)
    since: datetime
    until: datetime | None = None
    reason: str = ""

    def holds_at(self, now: datetime) -> bool:
        return self.until is None or now < self.until

    def describe(self) -> str:
        """ "paused by alice since … until …: reason", as skipped runs and status say it."""
        until = f" until {self.until.isoformat()}" if self.until else " until resumed"
        why = f": {self.reason}" if self.reason else ""
        return f"paused by {self.by} since {self.since.isoformat()}{until}{why}"


class PauseAction(StrEnum):
    PAUSED = "paused"
    RESUMED = "resumed"
    EXPIRED = "expired"  # its `until` came: resumed by itself


@dataclass(frozen=True, slots=True, kw_only=True)
class PauseChange:
    """A `pause` line of runs.jsonl: a job paused or resumed; about no run."""

    job: str
    action: PauseAction
    by: str
    at: datetime
    until: datetime | None = None
    reason: str = ""
    host: str = ""
    pid: int = 0
    v: int = LOG_SCHEMA_VERSION


HostEvent = ClockSetBack | HostAlert | PauseChange  # a line of the log that is about no run
LogEvent = RunEvent | HostEvent


def delivery_about(
    run: RunEvent, event: EventType, *, ended_at: datetime, reason: str, **fields: Any
) -> RunEvent:
    """An `alert` or `ping` event: a delivery about a run (its identity, try and status as
    they were), with how it went."""
    return RunEvent(
        event=event,
        job=run.job,
        logical_time=run.logical_time,
        run_id=run.run_id,
        status=run.status,
        kind=run.kind,
        attempt=run.attempt,
        max_attempts=run.max_attempts,
        ended_at=ended_at,
        reason=reason,
        **fields,
    )


def describe_key(jobfile: JobFile, key: RunKey) -> str:
    """`load @ 2026-01-14T06:00:00+01:00`, in the job's zone."""
    job = jobfile.jobs.get(key.job)
    when = key.logical_time.astimezone(job.timezone) if job else key.logical_time
    return f"{key.job} @ {when.isoformat()}"


def try_owed(event: RunEvent, attempts: int) -> bool:
    """Whether the run whose latest event is `event` is owed another try: it may resume (a
    failed try, or cut short) and its attempt is below both what it was allowed when it ran
    (`max_attempts`: an exit status in no_retry_exit_codes made that try its last) and what
    its job allows now (`attempts`, from `retries`). The one answer to "is a try owed"."""
    allowed = min(attempts, event.max_attempts or attempts)
    return event.status.may_resume and event.attempt < allowed
