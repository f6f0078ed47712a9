"""Which days a job may run on, and when nothing may start at all: the model of
`[calendars.NAME]`, a job's `skip_on` / `run_on` / `shift`, and `[blackout]` windows.

A calendar is a set of days: the union of its public holidays (the maintained `holidays`
package, imported only when a holiday is looked up), its `dates`, its `ranges` and its
`weekdays`. A job runs on a day when the day is in one of its `run_on` calendars (any day
when it has none) and in none of its `skip_on` calendars: a "business day" of the job.
Days are the job's own, in its schedule's zone. Pure: no clock, no files.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta, tzinfo
from enum import StrEnum
from functools import lru_cache

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
# How far a shift looks for a business day, and a blackout window chain for its end.
SHIFT_HORIZON = 366
ESTIMATED = "(estimated)"  # what `holidays` appends to a date it only estimates


class Shift(StrEnum):
    """Where the tick of a day the calendars skip goes instead."""

    NEXT = "next_business_day"
    PREVIOUS = "previous_business_day"


@dataclass(frozen=True, slots=True)
class Calendar:
    """One [calendars.NAME] table: a set of days."""

    name: str
    holidays: str | None = None  # "DE-BY": country, then subdivision, for the holidays package
    dates: frozenset[date] = frozenset()
    ranges: tuple[tuple[date, date], ...] = ()  # first and last day, both included
    weekdays: frozenset[int] = frozenset()  # 1 = Monday ... 7 = Sunday (date.isoweekday)

    def reason(self, day: date) -> str | None:
        """Why `day` is one of this calendar's days ("Christmas Day (DE-BY)"), else None."""
        if self.holidays is not None:
            name = holidays_of(self.holidays, day.year).get(day)
            if name is not None:
                return f"{name} ({self.holidays})"
        if day in self.dates:
            return f"{day.isoformat()} is listed"
        for first, last in self.ranges:
            if first <= day <= last:
                return f"in {first.isoformat()}..{last.isoformat()}"
        if day.isoweekday() in self.weekdays:
            return f"a {day:%A}"
        return None

    @property
    def canonical(self) -> str:
        """Everything that decides the calendar's days, as text (for fingerprints)."""
        dates = ",".join(sorted(d.isoformat() for d in self.dates))
        ranges = ",".join(f"{a}..{b}" for a, b in self.ranges)
        weekdays = ",".join(map(str, sorted(self.weekdays)))
        return f"{self.name}:{self.holidays}:{dates}:{ranges}:{weekdays}"


@dataclass(frozen=True, slots=True)
class Days:
    """The days a job's schedule may fire on (its calendars), and what a skipped day's
    tick does instead (`shift`: moves to a business day; None: is not a run)."""

    run_on: tuple[Calendar, ...] = ()
    skip_on: tuple[Calendar, ...] = ()
    shift: Shift | None = None

    def refusal(self, day: date) -> str | None:
        """Why the job does not run on `day` ("holidays: Christmas Day (DE-BY)"), else None."""
        for calendar in self.skip_on:
            why = calendar.reason(day)
            if why is not None:
                return f"{calendar.name}: {why}"
        if self.run_on and not any(c.reason(day) is not None for c in self.run_on):
            names = " or ".join(c.name for c in self.run_on)
            return f"not a day of {names}"
        return None

    def shifted(self, day: date) -> date | None:
        """The business day a skipped `day`'s tick moves to (None: no shift, or no business
        day within SHIFT_HORIZON days)."""
        if self.shift is None:
            return None
        step = timedelta(days=1 if self.shift is Shift.NEXT else -1)
        candidate = day
        for _ in range(SHIFT_HORIZON):
            candidate += step
            if self.refusal(candidate) is None:
                return candidate
        return None

    def skipped_run_before(self, day: date) -> date:
        """The first day of the run of skipped days that ends the day before `day` (`day`
        itself when the day before is a business day): ticks from there on can shift to
        `day` or later (next_business_day)."""
        first = day
        for _ in range(SHIFT_HORIZON):
            if self.refusal(first - timedelta(days=1)) is None:
                break
            first -= timedelta(days=1)
        return first

    def describe(self) -> str:
        """In words, for schedules: "skipping holidays, only on workdays, moved to ..."."""
        words = []
        if self.run_on:
            words.append(f"only on days of {' or '.join(c.name for c in self.run_on)}")
        if self.skip_on:
            words.append(f"skipping days of {' and '.join(c.name for c in self.skip_on)}")
        if self.shift is not None:
            words.append(f"a skipped day's run moved to the {self.shift.value.replace('_', ' ')}")
        return ", ".join(words)

    @property
    def fingerprint(self) -> str:
        """A short digest of every calendar and the shift (watermarks cache ticks by it)."""
        text = "|".join(
            [
                *(f"run:{c.canonical}" for c in self.run_on),
                *(f"skip:{c.canonical}" for c in self.skip_on),
                f"shift:{self.shift}",
            ]
        )
        return hashlib.sha256(text.encode()).hexdigest()[:12]


@lru_cache(maxsize=256)
def holidays_of(spec: str, year: int) -> Mapping[date, str]:
    """The public holidays of "CC" or "CC-SUB" in `year`, by date (empty outside the years
    the package knows: coverage_gaps says so)."""
    import holidays

    country, _, subdivision = spec.partition("-")
    found = holidays.country_holidays(country, subdiv=subdivision or None, years=year)
    return dict(found)


def holidays_problem(spec: str) -> str | None:
    """What is wrong with a `holidays` value (an unknown country or subdivision), or None."""
    import holidays

    country, _, subdivision = spec.partition("-")
    supported = holidays.list_supported_countries()
    if country not in supported:
        return f'"{country}" is not a country the holidays package knows (ISO 3166 codes: DE, US, FR ...)'
    if subdivision and subdivision not in supported[country]:
        known = ", ".join(supported[country][:12]) or "none"
        return f'"{subdivision}" is not a subdivision of {country} (known: {known})'
    return None


def coverage_gaps(calendar: Calendar, today: date) -> list[str]:
    """What the holiday data of `calendar` does not know for the 12 months from `today`:
    years outside the package's, and holidays whose dates it only estimates. One peer's
    seeded list silently ran out in its second year; cronflow says so instead."""
    if calendar.holidays is None:
        return []
    import holidays

    spec = calendar.holidays
    country, _, subdivision = spec.partition("-")
    gaps = []
    for year in sorted({today.year, (today + timedelta(days=365)).year}):
        entity = holidays.country_holidays(country, subdiv=subdivision or None)
        if not entity.start_year <= year <= entity.end_year:
            gaps.append(
                f"calendar {calendar.name}: the holidays package knows {spec}'s holidays for "
                f"{entity.start_year}-{entity.end_year} only, not {year}: its days count as "
                "business days. Add them as `dates`, or upgrade the holidays package"
            )
            continue
        estimated = sorted(d for d, name in holidays_of(spec, year).items() if ESTIMATED in name)
        if estimated:
            listed = ", ".join(d.isoformat() for d in estimated[:4])
            gaps.append(
                f"calendar {calendar.name}: {len(estimated)} holiday date(s) of {spec} in "
                f"{year} are estimates ({listed}): list the official ones as `dates` once "
                "they are announced"
            )
    return gaps


# ---- blackout windows --------------------------------------------------------------------------

WEEK = timedelta(days=7)
DAY = timedelta(days=1)
_MONDAY = datetime(2001, 1, 1)  # a Monday: weekly and daily windows are kept as offsets from it


@dataclass(frozen=True, slots=True)
class Blackout:
    """One [blackout] window, in the file's zone: nothing starts inside it.

    `period` WEEK or DAY: a window that recurs, from `start` to `end` (offsets into the
    period; end before start crosses the period's end); None: once, `start` to `end` as
    wall times (a date range is whole days). The end itself is outside."""

    name: str
    text: str  # as written: "Sat 22:00..Sun 06:00"
    start: timedelta | datetime
    end: timedelta | datetime
    period: timedelta | None

    def end_of(self, wall: datetime) -> datetime | None:
        """The wall time the window ends at when the wall time `wall` is inside it, else None."""
        if self.period is None:
            assert isinstance(self.start, datetime) and isinstance(self.end, datetime)
            return self.end if self.start <= wall < self.end else None
        assert isinstance(self.start, timedelta) and isinstance(self.end, timedelta)
        into = (wall.replace(tzinfo=None) - _MONDAY) % self.period
        if self.start <= self.end:
            inside = self.start <= into < self.end
        else:
            inside = into >= self.start or into < self.end
        return wall + (self.end - into) % self.period if inside else None

    def describe(self) -> str:
        return f"blackout {self.name} ({self.text})"


def held_until(
    blackouts: tuple[Blackout, ...], instant: datetime, zone: tzinfo
) -> tuple[Blackout, datetime] | None:
    """The window holding `instant` (aware) and the instant starts are free again (windows
    that follow one another hold as one), or None when no window holds it."""
    if not blackouts:
        return None
    first, at = None, instant
    for _ in range(len(blackouts) * 4 + 1):  # each window can hand over only so often
        wall = at.astimezone(zone).replace(tzinfo=None)
        ends = [end for end in (window.end_of(wall) for window in blackouts) if end is not None]
        if not ends:
            break
        first = first or next(w for w in blackouts if w.end_of(wall) is not None)
        later = max(ends).replace(tzinfo=zone).astimezone(at.tzinfo)
        if later <= at:  # a wall time repeated by DST: one more minute past it
            later = at + timedelta(minutes=1)
        at = later
    return None if first is None else (first, at)


def blackout_of(
    blackouts: tuple[Blackout, ...], instant: datetime, zone: tzinfo
) -> Blackout | None:
    """The window `instant` falls in, else None."""
    wall = instant.astimezone(zone).replace(tzinfo=None)
    return next((w for w in blackouts if w.end_of(wall) is not None), None)
