"""A schedule's ticks with its calendars applied (skip_on, run_on, shift), and what they
did to each tick, for `next`, `why`, dry runs and the count `status` shows.

A tick on a day the calendars refuse is not a run. With `shift`, it moves to the same wall
time of the next (or previous) business day; a tick landing where one already is stands
once. The day a tick moves to never decreases as ticks go on (both shifts keep the order
of days), so the ticks are produced in order, a day at a time.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, tzinfo
from typing import Protocol

from cronflow.calendars import Days, Shift
from cronflow.decide.wall_times import instant_of_wall


class Schedule(Protocol):
    """What of decide/schedule.py's Schedule this module uses (it imports this one)."""

    @property
    def zone(self) -> tzinfo: ...

    @property
    def days(self) -> Days | None: ...

    @property
    def raw(self) -> Schedule: ...

    def ticks(self, start: datetime, end: datetime) -> list[datetime]: ...

    def ticks_on(self, day: date) -> list[datetime]: ...

    def next_after(self, instant: datetime) -> datetime | None: ...

    def _cron_instants(self, after_wall: datetime) -> Iterator[datetime]: ...


_MICRO = timedelta(microseconds=1)
# Calendars that allow no day for this long leave a job no tick (`validate` warns).
BUSINESS_DAY_HORIZON = 366 * 5


@dataclass(frozen=True, slots=True)
class SkippedTick:
    """A tick of the cron expression that its calendars keep from running, and why."""

    tick: datetime  # aware UTC
    reason: str  # "holidays: Christmas Day (DE-BY)"


def on_business_days(raw: Schedule, after_wall: datetime, days: Days) -> Iterator[datetime]:
    """The instants of the cron schedule `raw` from `after_wall` on, on the job's business
    days, skipped days' ticks moved per `days.shift` or dropped; increasing, each once."""
    if days.shift is not None:
        yield from _shifted(raw._cron_instants(after_wall), days, raw.zone)
        return
    business_day = None
    while True:  # nothing moves: the order is raw's; a skipped day's ticks are jumped over
        for instant in raw._cron_instants(after_wall):
            day = instant.astimezone(raw.zone).date()
            if day == business_day or days.refusal(day) is None:
                business_day = day
                yield instant
                continue
            following = _next_business_day(days, day)
            if following is None:
                return  # no business day for years: no tick either
            after_wall = datetime.combine(following, time()) - _MICRO
            break
        else:
            return


def _next_business_day(days: Days, day: date) -> date | None:
    """The first day after `day` that the calendars allow, within BUSINESS_DAY_HORIZON."""
    for ahead in range(1, BUSINESS_DAY_HORIZON + 1):
        candidate = day + timedelta(days=ahead)
        if days.refusal(candidate) is None:
            return candidate
    return None


def _shifted(raw: Iterator[datetime], days: Days, zone: tzinfo) -> Iterator[datetime]:
    """on_business_days with a shift: a day's ticks, its own and those moved to it, are
    gathered and given in order once a tick for a later day comes."""
    batch: list[datetime] = []
    batch_day: date | None = None
    refused: dict[date, bool] = {}
    for instant in raw:
        local = instant.astimezone(zone)
        day = local.date()
        if batch_day is not None and (day - batch_day).days > BUSINESS_DAY_HORIZON:
            break  # no business day for years: no tick either
        if day not in refused:
            refused[day] = days.refusal(day) is not None
        target = day
        if refused[day]:
            moved = days.shifted(day)
            if moved is None:
                continue
            target, instant = moved, moved_instant(local, moved, zone)
        if target != batch_day:
            yield from sorted(set(batch))
            batch, batch_day = [], target
            refused = {day: refused[day]}  # only the days still to come are asked again
        batch.append(instant)
    yield from sorted(set(batch))


def moved_instant(local: datetime, day: date, zone: tzinfo) -> datetime:
    """The instant of `local`'s wall time on `day` (a wall time that day lacks, in a DST
    gap, at the jump; one it has twice, on the first pass)."""
    return instant_of_wall(datetime.combine(day, local.time()), zone)


def skipped_ticks(schedule: Schedule, start: datetime, end: datetime) -> list[SkippedTick]:
    """The ticks of the cron expression in (start, end] that the calendars drop (not the
    ones they move)."""
    days = schedule.days
    if days is None:
        return []
    found = []
    reasons: dict[date, str | None] = {}
    for tick in schedule.raw.ticks(start, end):
        day = tick.astimezone(schedule.zone).date()
        if day not in reasons:
            refusal = days.refusal(day)
            moved = refusal is not None and days.shifted(day) is not None
            reasons[day] = None if moved else refusal
        if reasons[day] is not None:
            found.append(SkippedTick(tick, reasons[day] or ""))
    return found


def skipped_on(schedule: Schedule, day: date) -> list[SkippedTick]:
    """The ticks of the cron expression on `day` (in the schedule's zone) that the
    calendars drop."""
    days = schedule.days
    refusal = None if days is None else days.refusal(day)
    if days is None or refusal is None or days.shifted(day) is not None:
        return []
    return [SkippedTick(tick, refusal) for tick in schedule.raw.ticks_on(day)]


def moved_from(schedule: Schedule, tick: datetime) -> str:
    """How the calendars placed `tick`: "moved from Fri 2026-12-25 (holidays: Christmas
    Day (DE-BY))" for a tick a shift brought there, else ""."""
    days = schedule.days
    if days is None or days.shift is None:
        return ""
    raw = schedule.raw
    if raw.next_after(tick - _MICRO) == tick and days.refusal(_day(schedule, tick)) is None:
        return ""  # a tick of its own day
    local = tick.astimezone(schedule.zone)
    for origin in _origins(days, local.date()):
        candidate = moved_instant(local, origin, schedule.zone)
        if raw.next_after(candidate - _MICRO) == candidate:
            return f"moved from {origin:%a %Y-%m-%d} ({days.refusal(origin)})"
    return ""


def _origins(days: Days, day: date) -> Iterator[date]:
    """The skipped days whose ticks a shift would move to `day`, nearest first."""
    step = timedelta(days=-1 if days.shift is Shift.NEXT else 1)
    origin = day + step
    while days.refusal(origin) is not None and days.shifted(origin) == day:
        yield origin
        origin += step


def _day(schedule: Schedule, tick: datetime) -> date:
    return tick.astimezone(schedule.zone).date()
