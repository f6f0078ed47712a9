"""Cron schedules evaluated in an explicit time zone, with Debian cron's DST rules.

This is the only module that uses croniter. croniter iterates *wall-clock* (naive) times
here; this module alone maps each wall time to real instants, so that the DST rules are
ours and written down in one place:

- A fixed-time job (neither the minute nor the hour field starts with `*`, cronie's rule)
  whose wall time falls in a skipped hour (spring forward) runs once, at the instant the
  clocks jump. Whose wall time occurs twice (fall back) runs once, on the first pass.
- Any other job keeps its real cadence: a skipped wall time never happens, and a repeated
  wall time happens twice.

Every instant returned is an aware datetime in UTC.
"""

from __future__ import annotations

import bisect
import heapq
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

from cronflow.calendars import Days, Shift
from cronflow.decide import day_forms
from cronflow.decide.wall_times import exists, instant_of_wall, jump_instant
from cronflow.model import Cadence

MACROS = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}

_JUST_BEFORE = timedelta(microseconds=1)
# Wider than any daylight-saving shift the tz database has ever held (2 hours).
_DST_MARGIN = timedelta(hours=3)
# Far enough to find the next tick of any satisfiable expression (29 February on a Monday
# recurs within 28 years).
_HORIZON = timedelta(days=366 * 30)


class ScheduleError(ValueError):
    """An expression that is not a usable 5-field cron schedule."""


def expand(expression: str) -> str:
    """The 5-field form of an expression: macros expanded, whitespace normalised."""
    text = " ".join(expression.split())
    if text.startswith("@"):
        if text.lower() not in MACROS:
            valid = ", ".join(MACROS)
            raise ScheduleError(f'"{expression}" is not a known macro (valid: {valid})')
        return MACROS[text.lower()]
    return text


SEPARATOR = " | "  # between the expressions of a job with several schedules


@lru_cache(maxsize=4096)  # thousands of jobs share a few dozen schedules
def check(expression: str) -> str:
    """Validate an expression and return its 5-field form; raise ScheduleError saying why not.
    Several expressions joined by `|` (a job's list of schedules) are checked each, and come
    back joined by SEPARATOR, each once."""
    if "|" in expression:
        parts = [check(part) for part in expression.split("|")]
        return SEPARATOR.join(dict.fromkeys(parts))
    fields = expand(expression)
    if len(fields.split(" ")) != 5:
        raise ScheduleError(
            f'"{expression}" has {len(fields.split(" "))} fields; cron schedules have 5 '
            "(minute hour day-of-month month day-of-week) or are a macro such as @daily"
        )
    if _plainly_valid(fields):
        return fields
    if day_forms.has_forms(fields):
        why = day_forms.problem(fields, field_values)
        if why:
            raise ScheduleError(f'"{expression}" {why}')
        return fields
    from croniter import (  # type: ignore[import-untyped]  # croniter ships no types
        CroniterBadCronError,
        CroniterBadDateError,
        croniter,
    )

    try:
        croniter(_for_croniter(fields), datetime(2000, 1, 1), day_or=days_or(fields)).get_next(
            datetime
        )
    except CroniterBadDateError:
        raise ScheduleError(f'"{expression}" never matches any date') from None
    except (CroniterBadCronError, ValueError, KeyError) as error:
        why = _bad_token(fields) or f"({error})"
        raise ScheduleError(f'"{expression}" is not a valid cron expression: {why}') from None
    return fields


def days_or(fields: str) -> bool:
    """Whether a day matches by day-of-month OR day-of-week (else AND), as in Vixie and Debian
    cron: OR only when neither field starts with `*`. So `0 0 */2 * 1` is the odd days that
    are Mondays, and `0 0 1,15 * 1` is the 1st, the 15th and every Monday. (croniter alone
    would OR `*/2` with `1`.)"""
    parts = fields.split(" ")
    return not (parts[2].startswith("*") or parts[4].startswith("*"))


# (lowest, highest, names) of each field, as croniter reads them (day-of-week 7 is Sunday).
FIELDS = (
    (0, 59, ()),
    (0, 23, ()),
    (1, 31, ()),
    (1, 12, ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")),
    (0, 7, ("sun", "mon", "tue", "wed", "thu", "fri", "sat")),
)
_LONGEST_MONTH = (31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)


def field_matches(
    expression: str, local: datetime, day_and: bool = False
) -> list[tuple[str, str, bool | None]]:
    """(field name, its text, whether `local`'s value matches it) for each field of a
    5-field expression, as `cronflow why` tells it; None where the field uses what only
    croniter reads (L, W, #). Day-of-week 7 is Sunday, as 0."""
    values = (local.minute, local.hour, local.day, local.month, (local.isoweekday()) % 7)
    found: list[tuple[str, str, bool | None]] = []
    for name, text, value, (low, high, names) in zip(
        _FIELD_NAMES, expression.split(" "), values, FIELDS, strict=False
    ):
        chosen = field_values(text.lower(), low, high, names)
        if chosen is not None and name == "day-of-week" and 7 in chosen:
            chosen.add(0)
        found.append((name, text, None if chosen is None else value in chosen))
    if day_forms.has_forms(expression):
        rule = day_forms.day_rule(expression, field_values, day_and)
        found[2] = (*found[2][:2], rule.dom_matches(local.date()))
        found[4] = (*found[4][:2], rule.dow_matches(local.date()))
    return found


def _plainly_valid(fields: str) -> bool:
    """True for the common expressions this module can vouch for without importing croniter.

    Only `*`, numbers, names, ascending ranges, steps and lists, each in range, and a
    day-of-month that exists in some chosen month. Anything else (L, #, W, wrapped ranges,
    errors) is left to croniter, which then decides and explains. A test checks that every
    expression accepted here is accepted by croniter too. Importing croniter costs ~45 ms,
    which a one-shot `cronflow run` with nothing due should not pay.
    """
    values = []
    for text, (low, high, names) in zip(fields.split(" "), FIELDS, strict=False):
        chosen = field_values(text.lower(), low, high, names)
        if chosen is None:
            return False
        values.append(chosen)
    days, months = values[2], values[3]
    return days_or(fields) or any(
        day <= _LONGEST_MONTH[month - 1] for day in days for month in months
    )


def field_values(text: str, low: int, high: int, names: tuple[str, ...]) -> set[int] | None:
    chosen: set[int] = set()
    for item in text.split(","):
        span, slash, step_text = item.partition("/")
        step = (int(step_text) if step_text.isdigit() else None) if slash else 1
        if step is None or not 1 <= step <= high - low + 1:
            return None
        if span == "*":
            first, last = low, high
        else:
            start, dash, end = span.partition("-")
            begins, ends = _value(start, names, low), _value(end if dash else start, names, low)
            if begins is None or ends is None or not low <= begins <= ends <= high:
                return None
            first, last = begins, high if slash and not dash else ends  # "5/15": 5-high/15
        chosen.update(range(first, last + 1, step))
    return chosen


_FIELD_NAMES = ("minute", "hour", "day-of-month", "month", "day-of-week")
_VALID = (
    "0-59",
    "0-23",
    "1-31 (or L, the last day; L-3, three days before it; LW, the last weekday; 15W, the "
    "weekday nearest the 15th)",
    "1-12 or jan, feb, mar, apr, may, jun, jul, aug, sep, oct, nov, dec",
    "0-7 (0 and 7 are Sunday) or sun, mon, tue, wed, thu, fri, sat (or 1#2, the second "
    "Monday; 5L or L5, the last Friday)",
)
# Items croniter reads beyond plain values: L, W, #, ? (only checked, never explained here).
_EXTENSION = re.compile(r"\?|l|\d{1,2}w|l[0-7]|[0-7]#[1-5]|[a-z]{3}#[1-5]")


def _bad_token(fields: str) -> str:
    """Which field of an expression croniter refused, the token it holds and the values that
    field takes; "" if no single token is to blame."""
    for text, name, valid, (low, high, names) in zip(
        fields.split(" "), _FIELD_NAMES, _VALID, FIELDS, strict=False
    ):
        for item in text.split(","):
            lowered = item.lower()
            if _EXTENSION.fullmatch(lowered) or field_values(lowered, low, high, names):
                continue
            where = f'the {name} field "{text}"' + (f' (its "{item}")' if item != text else "")
            return f"in {where}, {_what_is_wrong(item, name, low, high, names)}. Valid: {valid}"
    return ""


def _what_is_wrong(item: str, name: str, low: int, high: int, names: tuple[str, ...]) -> str:
    span, slash, step = item.partition("/")
    if slash and not (step.isdigit() and 1 <= int(step) <= high - low + 1):
        return f'the step "/{step}" must be a number from 1 to {high - low + 1}'
    for part in [] if span == "*" else span.split("-", 1):
        value = _value(part.lower(), names, low)
        if value is None:
            return f'"{part}" is not a {name} value'
        if not low <= value <= high:
            return f"{part} is out of range"
    return f'"{item}" cannot be read'


@lru_cache(maxsize=1024)
def _for_croniter(fields: str) -> str:
    """The expression as croniter should read it: every field this module can parse spelled
    out as a plain list of numbers, others (`L`, `#`, ...) left to croniter.

    croniter misreads some valid fields (`0-0` in the hour field fires every hour), so it is
    given only the values; how the day fields combine is passed to it apart (`days_or`),
    because spelling them out would hide which of them started with `*`.
    """
    spelled = []
    for text, (low, high, names) in zip(fields.split(" "), FIELDS, strict=False):
        values = None if text == "*" else field_values(text.lower(), low, high, names)
        if values is None:
            spelled.append(text)
        else:
            if high == 7:  # day-of-week: 7 is Sunday, as is 0
                values = {value % 7 for value in values}
            spelled.append(",".join(str(value) for value in sorted(values)))
    return " ".join(spelled)


def _value(text: str, names: tuple[str, ...], low: int) -> int | None:
    if text.isdigit():
        return int(text)
    if text in names:
        return names.index(text) + low
    return None


@dataclass(frozen=True, slots=True)
class Schedule:
    """A checked 5-field cron expression in a time zone."""

    expression: str
    zone: ZoneInfo
    day_and: bool = False  # day_rule = "and": both day fields must match (cron: either)
    days: Days | None = None  # the calendars its ticks obey (skip_on, run_on, shift)

    @property
    def raw(self) -> Schedule:
        """The cron schedule alone, its calendars not applied."""
        return (
            self
            if self.days is None
            else compile_schedule(self.expression, self.zone, self.day_and)
        )

    @property
    def parts(self) -> tuple[Schedule, ...]:
        """The schedules of a job that has several (itself when it has one)."""
        if SEPARATOR not in self.expression:
            return (self,)
        return tuple(
            compile_schedule(part, self.zone, self.day_and)
            for part in self.expression.split(SEPARATOR)
        )

    @property
    def days_or(self) -> bool:
        """Whether the day fields combine with OR: cron's rule, unless day_rule = "and"."""
        return days_or(self.expression) and not self.day_and

    @property
    def is_fixed_time(self) -> bool:
        """True when neither minute nor hour starts with `*` (cronie's test for DST handling)."""
        minute, hour = self.expression.split(" ")[:2]
        return not (minute.startswith("*") or hour.startswith("*"))

    def ticks(self, start: datetime, end: datetime) -> list[datetime]:
        """Ticks t with start < t <= end, oldest first, as aware UTC datetimes."""
        _require_aware(start, end)
        start, end = start.astimezone(UTC), end.astimezone(UTC)
        if end <= start:
            return []
        return list(_ticks_between(self, start, end))

    def _uncached_ticks(self, start: datetime, end: datetime) -> tuple[datetime, ...]:
        result = []
        for instant in self._instants(self._wall(start) - self._margin_near(start)):
            if instant > end:  # instants come in increasing order
                break
            if instant > start:
                result.append(instant)
        return tuple(result)

    def ticks_on(self, day: date) -> list[datetime]:
        """Ticks whose local date in this schedule's zone is `day`, oldest first."""
        return self.ticks(
            _local_midnight(day, self.zone) - timedelta(microseconds=1),
            _local_midnight(day + timedelta(days=1), self.zone) - timedelta(microseconds=1),
        )

    def next_after(self, instant: datetime) -> datetime | None:
        """The first tick strictly after `instant`, or None if there is none within 30 years."""
        _require_aware(instant)
        return _next_after(self, instant.astimezone(UTC))

    def _uncached_next_after(self, instant: datetime) -> datetime | None:
        from croniter import CroniterBadDateError

        try:
            for tick in self._instants(self._wall(instant) - self._margin_near(instant)):
                if tick > instant:
                    return tick
        except CroniterBadDateError:
            return None
        return None

    def latest_at_or_before(self, instant: datetime) -> datetime | None:
        """The last tick at or before `instant`, or None within the previous 30 years.

        Searched in windows aligned to whole UTC days, so that the runs of a backfill (a
        minutely job's upstream asked 1,440 times a day) share each day's ticks, computed
        once (see _ticks_between), and find theirs by bisection."""
        _require_aware(instant)
        instant = instant.astimezone(UTC)
        day = instant.replace(hour=0, minute=0, second=0, microsecond=0)
        today = self.ticks(day, day + timedelta(days=1))  # day < tick <= the next midnight
        before = bisect.bisect_right(today, instant)
        if before:
            return today[before - 1]
        window = timedelta(days=1)
        while window <= _HORIZON:
            found = self.ticks(day - window, day)
            if found:
                return found[-1]
            window *= 4
        return None

    def dst_note(self, tick: datetime) -> str:
        """How daylight saving time shaped this tick, or "" when it did not."""
        if self.days is not None:  # a tick its calendars moved was not shaped by DST
            raw = self.raw
            return raw.dst_note(tick) if raw.next_after(tick - _JUST_BEFORE) == tick else ""
        if len(self.parts) > 1:  # told by the schedule the tick is one of
            mine = [part for part in self.parts if part.next_after(tick - _JUST_BEFORE) == tick]
            return mine[0].dst_note(tick) if mine else ""
        local = tick.astimezone(self.zone)
        wall = local.replace(tzinfo=None, fold=0)
        if not self._matches(wall):
            return "moved: its time did not exist (clocks jumped forward), runs at the jump"
        first, second = (wall.replace(tzinfo=self.zone, fold=fold) for fold in (0, 1))
        if first.utcoffset() == second.utcoffset():
            return ""
        if self.is_fixed_time:
            return "once: this wall time happens twice (clocks go back), runs on the first"
        return f"{'second' if local.fold else 'first'} of two {wall:%H:%M} (clocks go back)"

    def _matches(self, wall: datetime) -> bool:
        """Whether a wall time is one of the schedule's own (a tick moved by DST is not)."""
        if day_forms.has_forms(self.expression):
            return day_forms.matches(self.expression, wall, field_values, self.day_and)
        from croniter import croniter

        return bool(croniter.match(_for_croniter(self.expression), wall, day_or=self.days_or))

    def _wall(self, instant: datetime) -> datetime:
        return instant.astimezone(self.zone).replace(tzinfo=None, fold=0)

    def _margin_near(self, instant: datetime) -> timedelta:
        """Extra wall-clock time to scan when a DST change is near `instant`."""
        offsets = {
            (instant + delta).astimezone(self.zone).utcoffset()
            for delta in (-_DST_MARGIN, timedelta(0), _DST_MARGIN)
        }
        return _DST_MARGIN if len(offsets) > 1 else timedelta(0)

    def _walls(self, after_wall: datetime) -> Iterator[datetime]:
        """Every wall time of the schedule after `after_wall`: the business-day forms read
        here (decide/day_forms.py), the rest by croniter."""
        if day_forms.has_forms(self.expression):
            yield from day_forms.walls(
                self.expression, after_wall, field_values, _HORIZON, self.day_and
            )
            return
        from croniter import croniter

        walls = croniter(
            _for_croniter(self.expression),
            after_wall,
            max_years_between_matches=30,
            day_or=self.days_or,
        )
        while True:
            yield walls.get_next(datetime)

    def _instants(self, after_wall: datetime) -> Iterator[datetime]:
        """Every tick instant from wall time `after_wall` on, in increasing UTC order, its
        calendars applied (see calendar_days.py)."""
        if self.days is None:
            return self._cron_instants(after_wall)
        from cronflow.decide import calendar_days

        if self.days.shift is Shift.NEXT:  # an earlier skipped day's tick may move past it
            first = self.days.skipped_run_before(after_wall.date())
            after_wall = min(after_wall, datetime.combine(first, time()) - _JUST_BEFORE)
        return calendar_days.on_business_days(self.raw, after_wall, self.days)

    def _cron_instants(self, after_wall: datetime) -> Iterator[datetime]:
        """Every instant of the cron expression(s) from wall time `after_wall` on, in
        increasing UTC order; of several schedules, each instant once however many have it."""
        if len(self.parts) > 1:
            merged = heapq.merge(*(part._cron_instants(after_wall) for part in self.parts))
            yield from _each_once(merged)
            return
        second_passes: list[datetime] = []  # repeated wall times, second occurrence
        last: datetime | None = None
        for wall in self._walls(after_wall):
            for instant in self._instants_of_wall(wall, second_passes):
                while second_passes and second_passes[0] < instant:
                    yield (last := heapq.heappop(second_passes))
                if last is None or instant > last:
                    yield (last := instant)

    def _instants_of_wall(self, wall: datetime, second_passes: list[datetime]) -> list[datetime]:
        """The instant(s) a wall time stands for; second passes of repeated hours go to the heap."""
        first = wall.replace(tzinfo=self.zone, fold=0)
        second = wall.replace(tzinfo=self.zone, fold=1)
        if first.utcoffset() == second.utcoffset():
            return [first.astimezone(UTC)]
        if exists(first):  # a repeated wall time (fall back)
            if not self.is_fixed_time:
                heapq.heappush(second_passes, second.astimezone(UTC))
            return [first.astimezone(UTC)]
        # A skipped wall time (spring forward): only fixed-time jobs run, at the jump.
        return [jump_instant(first, second)] if self.is_fixed_time else []


def _each_once(instants: Iterator[datetime]) -> Iterator[datetime]:
    """Increasing instants, each once (two schedules may share a tick)."""
    previous = None
    for instant in instants:
        if instant != previous:
            yield instant
            previous = instant


# The two caches below are keyed by instants, which keep coming: a long-running daemon fills
# them. 512 entries hold what one decision or one backfill day asks (a few hundred schedules);
# 4,096 each grew the daemon by about 4 MiB over its first two days (bench/bench_week.py).
_INSTANT_CACHE = 512


@lru_cache(maxsize=_INSTANT_CACHE)
def _ticks_between(schedule: Schedule, start: datetime, end: datetime) -> tuple[datetime, ...]:
    """Schedule.ticks, remembered: thousands of jobs share a few hundred schedules, and a
    backfill asks each of them for the same days."""
    return schedule._uncached_ticks(start, end)


@lru_cache(maxsize=_INSTANT_CACHE)
def _next_after(schedule: Schedule, instant: datetime) -> datetime | None:
    """Schedule.next_after, remembered: a decision asks every job whose tick is not cached
    in its watermark (all of them, the first time) from the same instant, and jobs share
    schedules (2,000 jobs on 60 schedules ask croniter 60 times)."""
    return schedule._uncached_next_after(instant)


@lru_cache(maxsize=16384)
def compile_schedule(
    expression: str, zone: ZoneInfo, day_and: bool = False, days: Days | None = None
) -> Schedule:
    """A Schedule for an expression already accepted by check()."""
    return Schedule(expand(expression), zone, day_and, days)


def _local_midnight(day: date, zone: ZoneInfo) -> datetime:
    """The first instant of `day` in `zone` (after the jump, if midnight itself is skipped)."""
    return instant_of_wall(datetime.combine(day, time(0)), zone)


def _require_aware(*instants: datetime) -> None:
    for instant in instants:
        if instant.tzinfo is None:
            raise ValueError(f"{instant!r} has no time zone; cronflow only handles aware times")


# An unscheduled job with no scheduled upstream runs for midnight of the date it is run for.
_MIDNIGHT = "0 0 * * *"


def schedule_of(cadence: Cadence) -> Schedule:
    """A job's schedule; an unscheduled job's runs fall at midnight of their date."""
    return compile_schedule(
        cadence.expression or _MIDNIGHT, cadence.timezone, cadence.day_and, cadence.days
    )
