"""Slow runs and late ones: which runs go on past their `max_runtime`, which jobs have not
succeeded by their `finish_by`, which assets can no longer make their `deadline`, and when
the next of these can begin. Pure: the records, the pauses and `now` are arguments.

Each is an *episode* (an Overdue with a key): it begins once (one alert), lasts while it
holds, and ends once (one "finished"/"on time again" message); decide/tick.py diffs the
episodes of one decision against those recorded by the last.

- **slow**: a run still running `max_runtime` after it started. `max_runtime = "auto"` learns
  the threshold from the job's last USUAL_OF successful runs: median + SPREAD x MAD (the
  median absolute deviation), and never less than FLOOR_RATIO x median nor median + FLOOR;
  with fewer than LEARNT_AFTER successes there is none yet.
- **late** (a job): the newest tick whose `finish_by` has passed did not succeed (a skipped
  tick, as by a pause or run_if, is not late). A deadline that passed before the job was
  first seen, and paused or disabled jobs, are never late.
- **late** (an asset): its producer's run will not succeed by the `deadline`: the deadline
  has passed, or the work left on the producer's chain (each job's usual duration, minus
  what a running one has done) ends after it, or a run on the chain failed for good.
"""

from __future__ import annotations

import statistics
from collections.abc import Mapping, Sequence, Set
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from cronflow.decide.schedule import schedule_of
from cronflow.model import (
    AlertEvent,
    Cadence,
    Deadline,
    Job,
    JobFile,
    RunEvent,
    RunKey,
    RunStatus,
    try_owed,
)
from cronflow.records import RunRecords

USUAL_OF = 20  # the successful runs a job's usual duration is learnt from
LEARNT_AFTER = 5  # max_runtime = "auto" says nothing before this many successes
SPREAD = 5.0  # how many MADs past the median a run is slow
FLOOR_RATIO = 1.5  # ... and never before this many times the median
FLOOR = timedelta(minutes=1)  # ... nor before the median and this
_NEVER = timedelta.max


@dataclass(frozen=True, slots=True)
class Usual:
    """How long a job's successful runs take: their median and median absolute deviation."""

    median: float  # seconds
    spread: float  # seconds
    runs: int

    def __str__(self) -> str:
        return f"usually {_short(self.median)} ± {_short(self.spread)}"


def usual_of(durations: Sequence[float]) -> Usual | None:
    if not durations:
        return None
    median = statistics.median(durations)
    spread = statistics.median(abs(each - median) for each in durations)
    return Usual(median=median, spread=spread, runs=len(durations))


def slow_after(job: Job, usual: Usual | None) -> tuple[timedelta, str] | None:
    """How long a run of `job` may go before it is slow, and the rule that says so."""
    if job.max_runtime is not None:
        return job.max_runtime, f"max_runtime {_short(job.max_runtime.total_seconds())}"
    if not job.max_runtime_auto or usual is None or usual.runs < LEARNT_AFTER:
        return None
    seconds = max(
        usual.median + SPREAD * usual.spread,
        usual.median * FLOOR_RATIO,
        usual.median + FLOOR.total_seconds(),
    )
    return timedelta(seconds=seconds), f"{usual} over its last {usual.runs} successes"


@dataclass(frozen=True, slots=True, kw_only=True)
class Overdue:
    """One slow or late episode, as it stands at a decision."""

    key: str  # "slow:JOB@TIME", "late:JOB", "late-asset:NAME": what makes it the same episode
    on: AlertEvent  # SLOW or LATE
    job: str  # the job (for an asset, its producer)
    asset: str | None
    logical_time: datetime
    since: datetime  # when it began: past the threshold, the deadline, or predicted now
    detail: str  # "running 41m, usually 12m ± 3m" ...
    deadline: datetime | None = None

    def as_record(self) -> dict[str, str | None]:
        return {
            "on": self.on.value,
            "job": self.job,
            "asset": self.asset,
            "logical_time": self.logical_time.isoformat(),
            "since": self.since.isoformat(),
            "detail": self.detail,
            "deadline": self.deadline.isoformat() if self.deadline else None,
        }


@dataclass(frozen=True, slots=True)
class Watch:
    current: list[Overdue]  # the episodes that hold now
    wake: datetime | None  # the first instant after now another one can begin


def watches(jobfile: JobFile) -> bool:
    """Whether anything in the file is watched for slowness or lateness."""
    return any(
        job.max_runtime is not None or job.max_runtime_auto or job.finish_by is not None
        for job in jobfile.jobs.values()
    ) or any(asset.deadline is not None for asset in jobfile.assets.values())


def watch(
    jobfile: JobFile,
    history: RunRecords,
    now: datetime,
    paused: Set[str],
    wake_only: bool = False,
) -> Watch:
    """Every slow and late episode at `now`, and when the next can begin (see the module).
    `wake_only`: only when (the idle stamp's question), sparing each late job's records."""
    if not watches(jobfile):
        return Watch([], None)
    usual = _Usuals(history)
    deadlines = _Deadlines(history, now)
    current: list[Overdue] = []
    wakes: list[datetime] = []
    for run in history.unfinished(RunStatus.RUNNING):
        _slow(jobfile, run, now, usual, current, wakes)
    for job in jobfile.jobs.values():
        if job.finish_by is not None and _watched(job, paused):
            wake = deadlines.next(job, job.finish_by)
            if wake is not None:
                wakes.append(wake)
            if not wake_only:
                _late_job(job, job.finish_by, deadlines, current)
    for asset in jobfile.assets.values():
        producer = jobfile.jobs.get(asset.producer or "")
        if asset.deadline is not None and producer is not None and _watched(producer, paused):
            chain = _Chain(jobfile, history, now, usual)
            _late_asset(asset.name, producer, asset.deadline, deadlines, chain, current, wakes)
    return Watch(current, min((at for at in wakes if at > now), default=None))


def changes(
    current: Sequence[Overdue], before: Mapping[str, Mapping[str, str | None]]
) -> tuple[list[Overdue], list[str], dict[str, dict[str, str | None]]]:
    """(episodes begun, keys of episodes ended, the records after): each begins and ends
    once, whatever its detail does in between (a late job stays one episode as days pass)."""
    keys = {episode.key for episode in current}
    begun = [episode for episode in current if episode.key not in before]
    ended = [key for key in before if key not in keys]
    after = {key: dict(record) for key, record in before.items() if key in keys}
    after.update({episode.key: episode.as_record() for episode in begun})
    return begun, ended, after


def still_holding(
    records: Mapping[str, Mapping[str, str | None]], history: RunRecords
) -> list[Mapping[str, str | None]]:
    """The episodes the last decision recorded that the records since have not ended: a
    slow run still running, a late run not yet succeeded (what status, the page and the
    metrics show between two decisions)."""
    holding = []
    for record in records.values():
        try:
            key = RunKey(str(record["job"]), datetime.fromisoformat(str(record["logical_time"])))
        except (KeyError, ValueError):
            continue  # a damaged record: the next decision writes them anew
        latest = history.latest(key)
        if record.get("on") == AlertEvent.SLOW:
            holds = latest is not None and latest.status is RunStatus.RUNNING
        else:
            holds = latest is None or latest.status not in (RunStatus.SUCCESS, RunStatus.SKIPPED)
        if holds:
            holding.append(record)
    return holding


# ---- slow ---------------------------------------------------------------------------------


def _slow(
    jobfile: JobFile,
    run: RunEvent,
    now: datetime,
    usual: _Usuals,
    current: list[Overdue],
    wakes: list[datetime],
) -> None:
    job = jobfile.jobs.get(run.job)
    if job is None or run.started_at is None:
        return
    limit = slow_after(job, usual.of(job.name) if job.max_runtime_auto else None)
    if limit is None:
        return
    after, rule = limit
    since = run.started_at + after
    if since > now:
        wakes.append(since)
        return
    running = _short((now - run.started_at).total_seconds())
    current.append(
        Overdue(
            key=f"slow:{job.name}@{run.logical_time.isoformat()}",
            on=AlertEvent.SLOW,
            job=job.name,
            asset=None,
            logical_time=run.logical_time,
            since=since,
            detail=f"running {running} (try {run.attempt}), {rule}",
        )
    )


# ---- late ---------------------------------------------------------------------------------


def deadline_of(deadline: Deadline, tick: datetime, zone: ZoneInfo) -> datetime:
    """When the run for `tick` must have succeeded: `after` it, or the first `at` after it."""
    if deadline.after is not None:
        return tick + deadline.after
    assert deadline.at is not None
    day = tick.astimezone(zone).date()
    due = _wall(day, deadline.at, zone)
    return due if due > tick else _wall(day + timedelta(days=1), deadline.at, zone)


class _Deadlines:
    """Deadlines at `now`, worked out once per cadence and deadline in one decision (the
    jobs after an upstream share its cadence), and which have passed unmet."""

    def __init__(self, history: RunRecords, now: datetime) -> None:
        self.history, self.now = history, now
        self._passed: dict[tuple[Cadence, ZoneInfo, Deadline], tuple[datetime, datetime] | None]
        self._passed = {}
        self._next: dict[tuple[Cadence, ZoneInfo, Deadline], datetime | None] = {}

    def passed(self, job: Job, deadline: Deadline) -> tuple[datetime, datetime] | None:
        """(tick, its deadline) of the newest tick whose deadline is not after now."""
        key = (job.cadence, job.timezone, deadline)
        if key not in self._passed:
            self._passed[key] = _passed(job.cadence, job.timezone, deadline, self.now)
        return self._passed[key]

    def next(self, job: Job, deadline: Deadline) -> datetime | None:
        """The first deadline after now of any tick."""
        key = (job.cadence, job.timezone, deadline)
        if key not in self._next:
            self._next[key] = _next_deadline(job.cadence, job.timezone, deadline, self.now)
        return self._next[key]

    def missed(
        self, job: Job, deadline: Deadline
    ) -> tuple[datetime, datetime, RunEvent | None] | None:
        """(tick, deadline, its run's latest event) when the newest deadline passed with no
        success (a skipped tick is not late), and after the job was first seen."""
        passed = self.passed(job, deadline)
        if passed is None:
            return None
        tick, due = passed
        latest = self.history.latest(RunKey(job.name, tick))
        if latest is not None and latest.status in (RunStatus.SUCCESS, RunStatus.SKIPPED):
            return None
        first_seen = self.history.first_seen("job", job.name)
        if first_seen is None or due <= first_seen:
            return None  # its deadline passed before the job was in the file
        return tick, due, latest


def _passed(
    cadence: Cadence, zone: ZoneInfo, deadline: Deadline, now: datetime
) -> tuple[datetime, datetime] | None:
    schedule = schedule_of(cadence)
    if deadline.after is not None:
        tick = schedule.latest_at_or_before(now - deadline.after)
    else:
        assert deadline.at is not None
        day = now.astimezone(zone).date()
        due = _wall(day, deadline.at, zone)
        if due > now:
            due = _wall(day - timedelta(days=1), deadline.at, zone)
        tick = schedule.latest_at_or_before(due - timedelta(microseconds=1))
    return None if tick is None else (tick, deadline_of(deadline, tick, zone))


def _next_deadline(
    cadence: Cadence, zone: ZoneInfo, deadline: Deadline, now: datetime
) -> datetime | None:
    if deadline.after is not None:
        tick = schedule_of(cadence).next_after(now - deadline.after)
        return None if tick is None else tick + deadline.after
    assert deadline.at is not None
    day = now.astimezone(zone).date()
    due = _wall(day, deadline.at, zone)
    return due if due > now else _wall(day + timedelta(days=1), deadline.at, zone)


def _late_job(job: Job, deadline: Deadline, deadlines: _Deadlines, current: list[Overdue]) -> None:
    missed = deadlines.missed(job, deadline)
    if missed is None:
        return
    tick, due, latest = missed
    current.append(
        Overdue(
            key=f"late:{job.name}",
            on=AlertEvent.LATE,
            job=job.name,
            asset=None,
            logical_time=tick,
            since=due,
            deadline=due,
            detail=f"not succeeded by {_local(due, job.timezone)} (finish_by = "
            f'"{deadline}"): {_state_of(latest)}',
        )
    )


def _late_asset(
    name: str,
    producer: Job,
    deadline: Deadline,
    deadlines: _Deadlines,
    chain: _Chain,
    current: list[Overdue],
    wakes: list[datetime],
) -> None:
    """Late once its deadline passed without the producer's success, or as soon as the
    producer's chain cannot finish before it (see the module)."""
    now, zone = chain.now, producer.timezone
    missed = deadlines.missed(producer, deadline)
    if missed is not None:
        tick, due, latest = missed
        why = f"{producer.name} has not succeeded: {_state_of(latest)}"
        late = f"deadline {_local(due, zone)} passed; {why}"
        current.append(_asset_late(name, producer, tick, due, now, late))
        return
    newest = schedule_of(producer.cadence).latest_at_or_before(now)
    if newest is None:
        return
    tick, due = newest, deadline_of(deadline, newest, zone)
    if due <= now:
        return  # its deadline has passed: said above
    left, path = chain.left(producer.name)
    if left == timedelta(0):
        return
    if left == _NEVER:
        current.append(_asset_late(name, producer, tick, due, now, f"cannot be met: {path}"))
    elif now + left > due:
        detail = (
            f"predicted done at {_local(now + left, zone)}, after its deadline "
            f"{_local(due, zone)}: {_short(left.total_seconds())} of work left ({path})"
        )
        current.append(_asset_late(name, producer, tick, due, now, detail))
    else:
        wakes.append(due - left)


def _asset_late(
    name: str, producer: Job, tick: datetime, due: datetime, now: datetime, detail: str
) -> Overdue:
    return Overdue(
        key=f"late-asset:{name}",
        on=AlertEvent.LATE,
        job=producer.name,
        asset=name,
        logical_time=tick,
        since=min(now, due),
        deadline=due,
        detail=detail,
    )


class _Chain:
    """The work left before a job's newest tick succeeds: its own usual duration (less what
    a running try has done) after the longest of its upstreams' (their newest ticks)."""

    def __init__(
        self, jobfile: JobFile, history: RunRecords, now: datetime, usual: _Usuals
    ) -> None:
        self.jobfile, self.history, self.now, self.usual = jobfile, history, now, usual
        self._left: dict[str, tuple[timedelta, str]] = {}

    def left(self, name: str) -> tuple[timedelta, str]:
        """(time left, what it is made of: "extract 10m, load 30m" or why it never ends)."""
        if name not in self._left:
            self._left[name] = (_NEVER, f"{name} depends on itself")  # never, in a checked file
            self._left[name] = self._work_left(self.jobfile.jobs[name])
        return self._left[name]

    def _work_left(self, job: Job) -> tuple[timedelta, str]:
        tick = schedule_of(job.cadence).latest_at_or_before(self.now)
        latest = None if tick is None else self.history.latest(RunKey(job.name, tick))
        status = None if latest is None else latest.status
        if status in (RunStatus.SUCCESS, RunStatus.SKIPPED):
            return timedelta(0), ""
        assert tick is not None
        upstream = max(
            (self.left(name) for name in job.depends_on if name in self.jobfile.jobs),
            key=lambda found: found[0],
            default=(timedelta(0), ""),
        )
        if upstream[0] == _NEVER:
            return upstream  # the failure furthest up is the one to rerun
        if latest is not None and _failed_for_good(job, latest):
            when = tick.astimezone(job.timezone)
            return _NEVER, (
                f"{job.name} @ {when.isoformat()} {latest.status} (rerun it: cronflow run "
                f"--date {when.date()} --job {job.name} --downstream)"
            )
        usual = self.usual.of(job.name)
        own = timedelta(seconds=usual.median if usual else 0)
        if latest is not None and status is RunStatus.RUNNING and latest.started_at:
            own = max(timedelta(0), own - (self.now - latest.started_at))
        parts = [part for part in (upstream[1], f"{job.name} {_short(own.total_seconds())}")]
        return upstream[0] + own, ", ".join(part for part in parts if part)


def _failed_for_good(job: Job, latest: RunEvent) -> bool:
    """It will not succeed unless someone reruns it: failed with no try left, or missed."""
    if latest.status is RunStatus.MISSED or latest.status is RunStatus.UPSTREAM_FAILED:
        return True
    return latest.status.is_failure and not try_owed(latest, job.retry.attempts)


class _Usuals:
    """Each job's usual duration, asked of the records once per decision."""

    def __init__(self, history: RunRecords) -> None:
        self.history = history
        self._known: dict[str, Usual | None] = {}

    def of(self, job: str) -> Usual | None:
        if job not in self._known:
            self._known[job] = usual_of(self.history.success_durations(job, USUAL_OF))
        return self._known[job]


def _watched(job: Job, paused: Set[str]) -> bool:
    return job.enabled and not job.at_boot and job.name not in paused


def _state_of(latest: RunEvent | None) -> str:
    if latest is None:
        return "no run yet"
    if latest.status is RunStatus.RUNNING and latest.started_at:
        return f"running since {latest.started_at.isoformat()}"
    return f"{latest.status}" + (f" ({latest.reason})" if latest.reason else "")


def _wall(day: date, at: time, zone: ZoneInfo) -> datetime:
    """`at` on `day` in `zone`, as an instant; a time a DST gap skips comes as late as the gap
    (02:30 on a spring-forward night is 03:30), a time that comes twice as the first."""
    from datetime import UTC

    return datetime.combine(day, at, tzinfo=zone).astimezone(UTC)


def _local(instant: datetime, zone: ZoneInfo) -> str:
    return instant.astimezone(zone).strftime("%Y-%m-%d %H:%M %Z")


def _short(seconds: float) -> str:
    """41m, 1h05m, 45s: a duration as an alert says it."""
    seconds = round(seconds)
    if seconds < 60:
        return f"{seconds}s"
    minutes, _ = divmod(seconds, 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m" if hours else f"{minutes}m"
