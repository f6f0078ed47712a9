"""The `[calendars.NAME]` tables, a job's `skip_on` / `run_on` / `shift`, and the
`[blackout]` windows of a jobs file, checked (the model: cronflow/calendars.py)."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from datetime import date, datetime, time, timedelta
from typing import Any

from cronflow.calendars import (
    DAY,
    WEEK,
    WEEKDAYS,
    Blackout,
    Calendar,
    Days,
    holidays_problem,
)
from cronflow.load.checker import Checker, section_of
from cronflow.load.values import Invalid, close_matches, type_name

CALENDAR_EXAMPLE = '[calendars.holidays] holidays = "DE-BY", dates = ["2026-12-24"]'


# ---- [calendars.NAME] --------------------------------------------------------------------------


def _holidays(value: Any) -> str:
    if not isinstance(value, str) or not re.fullmatch(r"[A-Za-z]{2,3}(-[A-Za-z0-9]{1,12})?", value):
        raise Invalid(
            f"must be a country code with an optional subdivision, not {value!r}",
            'Write holidays = "DE" or holidays = "DE-BY" (ISO 3166 codes)',
        )
    spec = value.upper()
    problem = holidays_problem(spec)
    if problem is not None:
        raise Invalid(problem, "See https://holidays.readthedocs.io for the codes it knows")
    return spec


def _day(text: Any) -> date:
    try:
        if isinstance(text, date) and not isinstance(text, datetime):
            return text  # a TOML local date: 2026-12-24 written without quotes
        return date.fromisoformat(text)
    except (TypeError, ValueError):
        raise Invalid(f"{text!r} is not a date", 'Write dates as "2026-12-24"') from None


def _dates(value: Any) -> frozenset[date]:
    if not isinstance(value, list):
        raise Invalid(f"must be a list of dates, not {type_name(value)}", 'Write ["2026-12-24"]')
    return frozenset(_day(item) for item in value)


def _range(text: Any) -> tuple[date, date]:
    first, dots, last = str(text).partition("..")
    if not dots:
        raise Invalid(f"{text!r} is not a range", 'Write "2026-12-24..2027-01-01" (both included)')
    start, end = _day(first.strip()), _day(last.strip())
    if end < start:
        raise Invalid(f"{text!r} ends before it begins", "Put the earlier date first")
    return start, end


def _ranges(value: Any) -> tuple[tuple[date, date], ...]:
    if not isinstance(value, list):
        raise Invalid(
            f"must be a list of ranges, not {type_name(value)}", 'Write ["2026-12-24..2027-01-01"]'
        )
    return tuple(_range(item) for item in value)


def _weekday(name: str) -> int:
    short = name.strip().lower()[:3]
    if short not in WEEKDAYS or not name.strip().isalpha():
        raise Invalid(f'"{name.strip()}" is not a day of the week', 'Write "mon-fri" or "sat,sun"')
    return WEEKDAYS.index(short) + 1


def weekdays(value: Any) -> frozenset[int]:
    """ "mon-fri", "sat,sun", "fri-mon" (round the week end) or a list of such: ISO numbers."""
    items = value if isinstance(value, list) else [value]
    if not all(isinstance(item, str) for item in items):
        raise Invalid(f"must be day names, not {type_name(value)}", 'Write weekdays = "sat,sun"')
    found: set[int] = set()
    for part in ",".join(items).split(","):
        first, dash, last = part.partition("-")
        start = _weekday(first)
        end = _weekday(last) if dash else start
        found.update((start - 1 + step) % 7 + 1 for step in range((end - start) % 7 + 1))
    return frozenset(found)


CALENDAR_KEYS: dict[str, Callable[[Any], Any]] = {
    "holidays": _holidays,
    "dates": _dates,
    "ranges": _ranges,
    "weekdays": weekdays,
    "description": lambda value: str(value),
}


def calendars(checker: Checker) -> dict[str, Calendar]:
    """Every [calendars.NAME] table, checked; each must name some days."""
    tables = section_of(checker, "calendars", f"Write {CALENDAR_EXAMPLE}")
    found = {}
    for name in tables:
        values = checker._table(("calendars", name), CALENDAR_KEYS)
        values.pop("description", None)
        if not values and isinstance(tables[name], dict):
            checker._report(
                ("calendars", name),
                "names no days",
                "Give it holidays, dates, ranges or weekdays",
            )
        found[name] = Calendar(name=name, **values)
    return found


def job_days(
    checker: Checker,
    name: str,
    values: Mapping[str, Any],
    known: Mapping[str, Calendar],
    own_schedule: bool,
) -> Days | None:
    """The job's calendars (None: it has none). Only a job with a schedule of its own has
    them: a job after its upstreams runs for their ticks, calendars applied there."""
    keys = [key for key in ("skip_on", "run_on", "shift") if key in values]
    if not keys:
        return None
    if not own_schedule:
        if any(key in checker.raw["jobs"][name] for key in keys):  # not from [defaults]
            checker._report(
                ("jobs", name, keys[0]),
                f"{keys[0]} applies to a job's own schedule, and {name} has none",
                "Set it on the scheduled job it runs after: its runs follow that job's ticks",
            )
        return None
    chosen: dict[str, tuple[Calendar, ...]] = {}
    for key in ("skip_on", "run_on"):
        for calendar in values.get(key, ()):
            if calendar not in known:
                close = close_matches(calendar, list(known))
                checker._report(
                    ("jobs", name, key),
                    f'"{calendar}" is not a calendar of this file',
                    f'Did you mean "{close[0]}"?' if close else f"Declare it: {CALENDAR_EXAMPLE}",
                )
        chosen[key] = tuple(known[c] for c in values.get(key, ()) if c in known)
    if "shift" in values and not (chosen["skip_on"] or chosen["run_on"]):
        checker._report(
            ("jobs", name, "shift"),
            "shift moves the tick of a day the calendars skip, and the job has no calendar",
            'Add skip_on = ["holidays"] (or run_on), or remove shift',
        )
    return Days(run_on=chosen["run_on"], skip_on=chosen["skip_on"], shift=values.get("shift"))


# ---- [blackout] --------------------------------------------------------------------------------

_CLOCK = r"(\d{1,2}):(\d{2})"
_WEEKLY = re.compile(rf"([A-Za-z]+) {_CLOCK}\.\.([A-Za-z]+) {_CLOCK}")
_DAILY = re.compile(rf"{_CLOCK}\.\.{_CLOCK}")
_DATED = re.compile(
    r"(\d{4}-\d{2}-\d{2})( \d{1,2}:\d{2})?(?:\.\.(\d{4}-\d{2}-\d{2})( \d{1,2}:\d{2})?)?"
)
BLACKOUT_FIX = (
    'Write a window as "Sat 22:00..Sun 06:00" (each week), "01:00..03:00" (each day), '
    '"2026-12-24..2027-01-01" (whole days) or "2026-12-24 18:00..2026-12-27 08:00"'
)


def _clock(hour: str, minute: str, text: str) -> timedelta:
    if int(hour) > 24 or int(minute) > 59 or (int(hour) == 24 and int(minute)):
        raise Invalid(f'"{text}" holds a time that does not exist', BLACKOUT_FIX)
    return timedelta(hours=int(hour), minutes=int(minute))


def _wall(day: str, clock: str | None, text: str) -> datetime:
    start = datetime.combine(_day(day), time())
    if clock is None:
        return start
    hour, minute = clock.strip().split(":")
    return start + _clock(hour, minute, text)


def window(name: str, text: Any) -> Blackout:
    """One blackout window as written (see BLACKOUT_FIX)."""
    try:
        return _window(name, text)
    except Invalid as invalid:
        raise Invalid(invalid.problem, BLACKOUT_FIX) from None


def _window(name: str, text: Any) -> Blackout:
    if not isinstance(text, str):
        raise Invalid(f"must be a window or a list of them, not {type_name(text)}", BLACKOUT_FIX)
    spelled = " ".join(text.split())
    if match := _WEEKLY.fullmatch(spelled):
        day1, h1, m1, day2, h2, m2 = match.groups()
        start = DAY * (_weekday(day1) - 1) + _clock(h1, m1, text)
        end = DAY * (_weekday(day2) - 1) + _clock(h2, m2, text)
        blackout = Blackout(name, spelled, start % WEEK, end % WEEK, WEEK)
    elif match := _DAILY.fullmatch(spelled):
        h1, m1, h2, m2 = match.groups()
        start, end = _clock(h1, m1, text) % DAY, _clock(h2, m2, text) % DAY
        blackout = Blackout(name, spelled, start, end, DAY)
    elif match := _DATED.fullmatch(spelled):
        day1, clock1, day2, clock2 = match.groups()
        begin = _wall(day1, clock1, text)
        end_day = day2 or day1
        finish = _wall(end_day, clock2, text) if clock2 else _wall(end_day, None, text) + DAY
        if finish <= begin:
            raise Invalid(f'"{text}" ends before it begins', "Put the earlier time first")
        blackout = Blackout(name, spelled, begin, finish, None)
    else:
        raise Invalid(f'"{text}" is not a window', BLACKOUT_FIX)
    if blackout.period is not None and blackout.start == blackout.end:
        raise Invalid(f'"{text}" is empty (it ends where it begins)', BLACKOUT_FIX)
    return blackout


def blackouts(checker: Checker) -> tuple[Blackout, ...]:
    """Every [blackout] window: NAME = "window" or NAME = ["window", ...]."""
    table = section_of(checker, "blackout", f"{BLACKOUT_FIX}, as name = ...")
    found = []
    for name, value in table.items():
        for text in value if isinstance(value, list) else [value]:
            try:
                found.append(window(name, text))
            except Invalid as invalid:
                checker._report(("blackout", name), invalid.problem, invalid.fix)
    return tuple(found)
