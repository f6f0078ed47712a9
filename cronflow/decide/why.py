"""`cronflow why`: cronflow's decision about one job at one time, told as a short story.

Every fact comes from the code that decides (the schedule's own field matching, jitter's
start_of, the trigger rule's gate, the retry policy's try_owed and retry_at, the dry run's
verdict for now): never a second copy of a rule. Pure: the records, the pause, the
watermark, the verdicts of a dry run and `now` are arguments.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from cronflow.calendars import blackout_of
from cronflow.decide.calendar_days import moved_from
from cronflow.decide.explain import Verdict
from cronflow.decide.jitter import start_of
from cronflow.decide.retries import retry_at
from cronflow.decide.rules import gate
from cronflow.decide.schedule import SEPARATOR, days_or, field_matches, schedule_of
from cronflow.decide.schedule_words import describe
from cronflow.decide.selection import upstream_key
from cronflow.model import (
    ClockSetBack,
    Job,
    JobFile,
    Overlap,
    Pause,
    RunEvent,
    RunKey,
    RunStatus,
    Watermark,
    describe_key,
    try_owed,
)
from cronflow.pools import PoolState
from cronflow.records import RunRecords

_MISSED_LOOKAHEAD = 1000  # ticks looked through for the record of a tick missed with others


@dataclass(frozen=True, slots=True)
class Fact:
    topic: str  # schedule, zone, jitter, enabled, pause, run, retry, upstreams, run_if, ...
    text: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Story:
    job: str
    asked: datetime  # the time asked about
    logical_time: datetime | None  # the tick told about (None: the job has none)
    facts: list[Fact] = field(default_factory=list)

    def as_json(self, zone_of: Job) -> dict[str, object]:
        local = (
            None if self.logical_time is None else self.logical_time.astimezone(zone_of.timezone)
        )
        return {
            "job": self.job,
            "asked": self.asked.astimezone(zone_of.timezone).isoformat(),
            "logical_time": None if local is None else local.isoformat(),
            "facts": [{"topic": fact.topic, "text": fact.text} for fact in self.facts],
        }


@dataclass(frozen=True, slots=True, kw_only=True)
class Known:
    """What the records say around the job, read by the caller."""

    history: RunRecords
    watermark: Watermark | None
    pause: Pause | None
    clock_event: ClockSetBack | None
    verdicts: Sequence[Verdict]  # the dry run's, for this job, now
    episodes: Sequence[Mapping[str, str | None]] = ()  # slow and late, still holding
    pool: PoolState | None = None  # the job's pool as it stands now


def tick_asked(job: Job, asked: datetime) -> datetime | None:
    """The tick a question is about: `asked` itself if it is one, else the newest before it."""
    if job.at_boot:
        return None
    return schedule_of(job.cadence).latest_at_or_before(asked)


def story(
    jobfile: JobFile, job: Job, asked: datetime, now: datetime, known: Known, exact: bool = False
) -> Story:
    """The story of `job` at the tick `asked` falls on; `exact`: that time was asked for
    (--at), so a time that is no tick is told field by field."""
    tick = tick_asked(job, asked)
    told = Story(job=job.name, asked=asked, logical_time=tick)
    facts = told.facts
    facts += _schedule_facts(jobfile, job, asked, tick, exact)
    if not job.enabled:
        facts.append(Fact("enabled", "disabled (enabled = false): the clock never runs it"))
    if known.pause is not None and known.pause.holds_at(now):
        facts.append(Fact("pause", f"{known.pause.describe()}: its ticks are recorded skipped"))
    if tick is None:
        facts += _now_facts(job, known)
        return told
    key = RunKey(job.name, tick)
    latest = known.history.latest(key)
    facts += _run_facts(jobfile, job, key, latest, now, known)
    upstream_said, blocking = _upstream_facts(jobfile, job, tick, known.history)
    facts += upstream_said
    facts += _overlap_facts(job, tick, known.history)
    facts += _clock_facts(tick, known.clock_event)
    facts += [
        Fact(str(episode["on"]), str(episode["detail"]))
        for episode in known.episodes
        if episode["job"] == job.name and not episode.get("asset")
    ]
    facts += _pool_facts(job, known.pool)
    facts += _now_facts(job, known)
    facts += _what_to_do(job, tick, latest, now, blocking)
    return told


def _pool_facts(job: Job, pool: PoolState | None) -> list[Fact]:
    """How the job's pool stands: who holds its slots, who waits (this job's run first?)."""
    if job.pool is None or pool is None:
        return []
    takes = f"takes {job.pool.slots} of pool {pool.describe()}"
    mine = [at for at, w in enumerate(pool.waiting) if w.split(" @ ")[0] == job.name]
    if mine:
        takes += f"; its run waits, {mine[0] + 1} of {len(pool.waiting)} in line"
    elif pool.waiting:
        takes += f"; {len(pool.waiting)} run(s) wait for it"
    return [Fact("pool", takes)]


def day_fact(job: Job, day: date, history: RunRecords) -> Fact:
    """How that day's ticks stand: "3 ticks: 2 success, 1 failed (06:00)"."""
    ticks = [] if job.at_boot else schedule_of(job.cadence).ticks_on(day)
    refusal = job.cadence.days.refusal(day) if job.cadence.days else None
    if refusal is not None and not ticks:
        return Fact("day", f"{day}: no tick: its calendars skip the day ({refusal})")
    counts: dict[str, list[datetime]] = {}
    for tick in ticks:
        status = history.status(RunKey(job.name, tick))
        counts.setdefault(str(status or "no record"), []).append(tick)
    said = []
    for word, times in counts.items():
        shown = ""
        if word != "success" and len(times) <= 3:
            shown = " (" + ", ".join(f"{t.astimezone(job.timezone):%H:%M}" for t in times) + ")"
        said.append(f"{len(times)} {word}{shown}")
    return Fact("day", f"{day}: {len(ticks)} tick(s): " + (", ".join(said) or "none"))


def _schedule_facts(
    jobfile: JobFile, job: Job, asked: datetime, tick: datetime | None, exact: bool
) -> list[Fact]:
    if job.at_boot:
        return [Fact("schedule", "@reboot: it runs once per boot of the machine, at its start")]
    expression, zone = job.cadence.expression, job.cadence.timezone
    own = "" if job.schedule else " (no schedule of its own: its upstreams')"
    if expression is None:
        return [Fact("schedule", "no schedule: it runs when asked (cronflow run --job)")]
    said = describe(expression, job.cadence.day_and)
    facts = [Fact("schedule", f'"{expression}" ({said}) in {zone.key}{own}')]
    local = asked.astimezone(zone)
    calendar = _calendar_facts(job, asked, tick)
    facts += calendar
    skipped = bool(calendar) and calendar[-1].topic == "skipped"  # a tick its calendars skip
    if tick == asked:
        facts.append(Fact("schedule", f"{local.isoformat()} is one of its ticks"))
    elif not exact and tick is not None:
        when = tick.astimezone(zone).isoformat()
        facts.append(Fact("schedule", f"its newest tick by {local:%Y-%m-%d %H:%M}: {when}"))
    else:
        if not skipped:
            facts += _not_a_tick(expression, local, job.cadence.day_and)
        if tick is not None:
            facts.append(
                Fact("schedule", f"the tick before it: {tick.astimezone(zone).isoformat()}")
            )
    after = schedule_of(job.cadence).next_after(tick or asked)
    if after is not None:
        facts.append(Fact("schedule", f"the next tick: {after.astimezone(zone).isoformat()}"))
    if tick is not None:
        dst = schedule_of(job.cadence).dst_note(tick)
        if dst:
            facts.append(Fact("zone", dst))
        start = start_of(jobfile, job, tick)
        if start != tick:
            spread = "random_delay" if job.random_delay else "random_offset"
            facts.append(
                Fact("jitter", f"it starts {start.astimezone(zone).isoformat()} ({spread})")
            )
        window = blackout_of(jobfile.blackouts, start, jobfile.settings.timezone)
        if window is not None:
            facts.append(
                Fact(
                    "blackout",
                    f"its start falls in {window.describe()}: nothing starts inside one; the "
                    f'tick is decided when it ends, as catchup = "{job.catchup}" says',
                )
            )
    return facts


def _not_a_tick(expression: str, local: datetime, day_and: bool) -> list[Fact]:
    """Why `local` is no tick of the expression(s), field by field."""
    facts = []
    for part in expression.split(SEPARATOR):
        words = []
        for name, text, matched in field_matches(part, local, day_and):
            mark = "?" if matched is None else ("matches" if matched else "does not match")
            words.append(f"{name} {text} {mark}")
        combine = "; day-of-month OR day-of-week" if days_or(part) and not day_and else ""
        of = f' of "{part}"' if SEPARATOR in expression else ""
        text = f"{local.isoformat()} is not a tick{of}: {', '.join(words)}{combine}"
        facts.append(Fact("schedule", text))
    return facts


def _calendar_facts(job: Job, asked: datetime, tick: datetime | None) -> list[Fact]:
    """What the job's calendars say: which they are, whether they skip the day asked
    about (last, topic "skipped", when `asked` is a tick they skip), and whether they moved
    the tick told about."""
    days = job.cadence.days
    if days is None:
        return []
    schedule = schedule_of(job.cadence)
    facts = [Fact("calendar", days.describe())]
    moved = moved_from(schedule, tick) if tick is not None else ""
    if moved:
        facts.append(Fact("calendar", f"its tick {tick:%Y-%m-%d %H:%M} UTC was {moved}"))
    day = asked.astimezone(job.cadence.timezone).date()
    refusal = days.refusal(day)
    if refusal is None:
        return facts
    shifted = days.shifted(day)
    where = ""
    if schedule.raw.ticks_on(day):
        where = (
            f"; its ticks that day move to {shifted} ({days.shift})" if shifted else ": not runs"
        )
    raw_tick = schedule.raw.next_after(asked - timedelta(microseconds=1)) == asked
    topic = "skipped" if raw_tick else "calendar"
    facts.append(Fact(topic, f"{day} is skipped by its calendars ({refusal}){where}"))
    return facts


def _run_facts(
    jobfile: JobFile,
    job: Job,
    key: RunKey,
    latest: RunEvent | None,
    now: datetime,
    known: Known,
) -> list[Fact]:
    zone = job.timezone
    if latest is None:
        return [Fact("run", _no_record(job, key.logical_time, now, known))]
    when = (latest.ended_at or latest.started_at or key.logical_time).astimezone(zone)
    status = latest.status
    if status is RunStatus.SUCCESS:
        took = f", took {latest.duration_s:.1f}s" if latest.duration_s is not None else ""
        text = (
            f"already done: run {latest.run_id} succeeded at {when.isoformat()} "
            f"(try {latest.attempt} of {latest.max_attempts}{took}, {latest.kind})"
        )
        return [Fact("run", text)]
    if status is RunStatus.RUNNING:
        since = (latest.started_at or when).astimezone(zone).isoformat()
        pid = f", pid {latest.process.pid}" if latest.process else ""
        return [
            Fact("run", f"running since {since} (run {latest.run_id}, try {latest.attempt}{pid})")
        ]
    tried = f", try {latest.attempt}" if latest.attempt else ""
    text = f"{status} at {when.isoformat()} (run {latest.run_id}{tried})"
    if latest.reason:
        text += f": {latest.reason}"
    facts = [Fact("run", text)]
    if status is RunStatus.MISSED:
        facts.append(
            Fact(
                "catch-up",
                f'catchup = "{job.catchup}" (max_catchup {job.max_catchup}): cronflow was not '
                "deciding at that tick, and its catch-up policy did not run it",
            )
        )
    if try_owed(latest, job.retry.attempts):
        due = retry_at(job, latest, now).astimezone(zone).isoformat()
        facts.append(
            Fact("retry", f"try {latest.attempt + 1} of {job.retry.attempts} is owed, at {due}")
        )
    elif status.is_failed_try:
        facts.append(Fact("retry", f"no try left ({latest.attempt} of {job.retry.attempts} made)"))
    return facts


def _no_record(job: Job, tick: datetime, now: datetime, known: Known) -> str:
    forgotten = known.history.forgotten_through(job.name)
    if forgotten is not None and tick <= forgotten:
        return "forgotten by retention (keep_history_days): whether it ran cannot be told"
    if tick > now:
        return "not yet: it is in the future"
    mark = known.watermark
    if mark is None:
        return (
            "no run recorded: cronflow has not decided with this job yet; the clock runs "
            "only ticks from its first decision on (a backfill runs older ones)"
        )
    if mark is not None and mark.first_seen is not None and tick < mark.first_seen:
        seen = mark.first_seen.astimezone(job.timezone).isoformat()
        return (
            f"no run recorded: the job was first seen {seen}, after this tick; the clock never "
            "runs ticks from before that (a backfill does)"
        )
    if tick > mark.decided:
        return "no run recorded: not decided yet (the next decision takes it)"
    missed = _missed_with(job, tick, known.history)
    if missed is not None:
        when = missed.logical_time.astimezone(job.timezone).isoformat()
        return (
            f"missed: one of the {missed.missed_ticks} tick(s) recorded missed up to {when} "
            f'(catchup = "{job.catchup}", max_catchup {job.max_catchup}): {missed.reason}'
        )
    return (
        "no run recorded, though this tick was decided (a run held by its upstreams "
        "leaves none until they end)"
    )


def _missed_with(job: Job, tick: datetime, history: RunRecords) -> RunEvent | None:
    """The `missed` record that counts `tick` among its ticks (one record stands for the
    ticks missed together, at the newest of them), looked for among the next ticks."""
    schedule = schedule_of(job.cadence)
    later: datetime | None = tick
    for _ in range(_MISSED_LOOKAHEAD):
        later = schedule.next_after(later) if later else None
        if later is None:
            return None
        found = history.latest(RunKey(job.name, later))
        if found is not None:
            if found.status is not RunStatus.MISSED:
                return None
            ticks = schedule.ticks(tick - timedelta(microseconds=1), later)
            return found if len(ticks) <= found.missed_ticks else None
    return None


def _upstream_facts(
    jobfile: JobFile, job: Job, tick: datetime, history: RunRecords
) -> tuple[list[Fact], RunKey | None]:
    """How its upstream runs stand and what its run_if makes of them; and the upstream run
    that holds it back, if one does."""
    keys = [upstream_key(jobfile.jobs[name], job, tick) for name in job.depends_on]
    known = [(key, history.status(key)) for key in keys if key is not None]
    if not known:
        return [], None
    said = [
        f"{describe_key(jobfile, key)} {'has not run' if status is None else status}"
        for key, status in known
    ]
    facts = [Fact("upstreams", "; ".join(said))]
    verdict = gate(jobfile, job, known)
    rule = f"run_if = {job.run_if}"
    if verdict.held is None:
        facts.append(Fact("run_if", f"{rule}: met"))
    elif verdict.blocking is not None and verdict.held is not RunStatus.UPSTREAM_FAILED:
        facts.append(Fact("run_if", f"{rule}: waiting ({verdict.reason})"))
    else:
        facts.append(Fact("run_if", f"{rule}: not met, {verdict.held} ({verdict.reason})"))
    return facts, verdict.blocking


def _overlap_facts(job: Job, tick: datetime, history: RunRecords) -> list[Fact]:
    others = [
        run
        for run in history.unfinished(RunStatus.RUNNING)
        if run.job == job.name and run.logical_time != tick
    ]
    if not others:
        return []
    run = others[0]
    held = run.logical_time.astimezone(job.timezone).isoformat()
    what = {
        Overlap.SKIP: "a tick due meanwhile is recorded skipped",
        Overlap.QUEUE: "a tick due meanwhile waits for it, oldest first",
        Overlap.ALLOW: "a tick due meanwhile runs beside it",
    }[job.overlap]
    return [
        Fact("overlap", f"the run of {held} holds the job's lock; overlap = {job.overlap}: {what}")
    ]


def _clock_facts(tick: datetime, event: ClockSetBack | None) -> list[Fact]:
    if event is None or tick > event.reached:
        return []
    return [
        Fact(
            "clock",
            f"the clock went back at {event.noticed_at.isoformat()} ({event.reason}); ticks "
            "decided before that are never run again",
        )
    ]


def _now_facts(job: Job, known: Known) -> list[Fact]:
    """What the next decision does with the job, as `cronflow run --dry-run` says it."""
    facts = []
    for verdict in known.verdicts:
        when = (
            ""
            if verdict.logical_time is None
            else f" {verdict.logical_time.astimezone(job.timezone).isoformat()}"
        )
        detail = f" ({verdict.detail})" if verdict.detail else ""
        facts.append(Fact("next", f"now: {verdict.action}{when}{detail}"))
    return facts


def _what_to_do(
    job: Job, tick: datetime, latest: RunEvent | None, now: datetime, blocking: RunKey | None
) -> list[Fact]:
    if tick > now or (
        latest is not None and latest.status in (RunStatus.SUCCESS, RunStatus.RUNNING)
    ):
        return []
    if latest is not None and try_owed(latest, job.retry.attempts):
        return []
    day = tick.astimezone(job.timezone).date()
    if latest is not None and latest.status is RunStatus.UPSTREAM_FAILED and blocking:
        return [
            Fact(
                "to do",
                f"rerun its upstream and what follows: cronflow run --date {day} "
                f"--job {blocking.job} --downstream",
            )
        ]
    rerun = "" if latest is None else " (it reruns what did not succeed)"
    return [Fact("to do", f"to run it now: cronflow run --date {day} --job {job.name}{rerun}")]
