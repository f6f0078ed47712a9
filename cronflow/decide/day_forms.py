"""The business-day forms cron lacks, read by cronflow itself as Quartz's CronTrigger
defines them (the one reference followed; docs/jobs-toml.md, Business days, shows each), with
cron's day numbers (0 or 7 is Sunday, 5 is Friday):

day-of-month
    `L` the last day of the month; `L-3` three days before it (`L-1` in January is the 30th);
    `LW` the last weekday (Monday to Friday) of the month; `15W` the weekday nearest the 15th:
    a Saturday moves to the Friday before, a Sunday to the Monday after, never across the
    month's edge (`1W` on a Saturday is Monday the 3rd; `31W` on a Sunday is Friday the 29th),
    and a day the month does not have (`31W` in April) never matches.
day-of-week
    `5#3` the third Friday of the month (1 to 5); `5L` (Quartz's spelling) or `L5` (croniter's)
    the last Friday of the month. Names work too: `fri#3`, `friL`.

Each form is a list item like any other (`1,15W,L`, `mon#1,5L`), and the two day fields
combine as cron's do: OR when neither starts with `*`, else AND. Pure and self-contained:
schedule.py asks `has_forms` and then hands such an expression's days to `DayRule`.
"""

from __future__ import annotations

import calendar
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

_WEEKDAYS = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")
_MONTHS = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
# (lowest, highest, names) of the fields read as plain values; None: the day fields (read here)
_PLAIN_FIELDS = ((0, 59, ()), (0, 23, ()), (1, 31, None), (1, 12, _MONTHS), (0, 7, None))
_DAY = r"[0-7]|sun|mon|tue|wed|thu|fri|sat"
_DOM_FORM = re.compile(r"l|l-(\d{1,2})|lw|(\d{1,2})w")
_DOW_FORM = re.compile(rf"({_DAY})#(\d)|l({_DAY})|({_DAY})l")
_ORDINALS = ("first", "second", "third", "fourth", "fifth")
_DAY_NAMES = ("Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday")

Plain = Callable[[str, int, int, tuple[str, ...]], "set[int] | None"]  # schedule's parser


def has_forms(fields: str) -> bool:
    """Whether the day fields of a 5-field expression hold one of these forms."""
    parts = fields.lower().split(" ")
    if len(parts) != 5:
        return False
    return any(_DOM_FORM.fullmatch(item) for item in parts[2].split(",")) or any(
        _DOW_FORM.fullmatch(item) for item in parts[4].split(",")
    )


@dataclass(frozen=True, slots=True)
class DayRule:
    """Which dates the day fields of an expression take (cron's OR/AND between them)."""

    dom: tuple[Callable[[date], bool], ...]
    dow: tuple[Callable[[date], bool], ...]
    either: bool  # OR (neither field starts with `*`), else AND

    def matches(self, day: date) -> bool:
        on_dom = any(test(day) for test in self.dom)
        on_dow = any(test(day) for test in self.dow)
        return (on_dom or on_dow) if self.either else (on_dom and on_dow)

    def dom_matches(self, day: date) -> bool:
        return any(test(day) for test in self.dom)

    def dow_matches(self, day: date) -> bool:
        return any(test(day) for test in self.dow)


def day_rule(fields: str, plain: Plain, day_and: bool = False) -> DayRule:
    """The rule of an expression's day fields; ValueError (saying which item and why) when
    one cannot be read. `plain` reads plain items (schedule.field_values)."""
    parts = fields.lower().split(" ")
    dom = tuple(_dom_test(item, plain) for item in parts[2].split(","))
    dow = tuple(_dow_test(item, plain) for item in parts[4].split(","))
    either = not (parts[2].startswith("*") or parts[4].startswith("*") or day_and)
    return DayRule(dom=dom, dow=dow, either=either)


def problem(fields: str, plain: Plain) -> str | None:
    """Why an expression with these forms cannot be used ("is not a valid cron expression:
    ..." or "never matches any date"), or None."""
    parts = fields.lower().split(" ")
    names = ("minute", "hour", "day-of-month", "month", "day-of-week")
    for name, text, (low, high, words) in zip(names, parts, _PLAIN_FIELDS, strict=False):
        if words is not None and plain(text, low, high, words) is None:
            return f'is not a valid cron expression: "{text}" is not a {name} value'
    try:
        rule = day_rule(fields, plain)
    except ValueError as error:
        return f"is not a valid cron expression: {error}"
    months = plain(parts[3], 1, 12, _MONTHS) or set()
    day = date(2000, 1, 1)
    for _ in range(366 * 28 + 7):  # every weekday of every date of a leap cycle
        if day.month in months and rule.matches(day):
            return None
        day += timedelta(days=1)
    return "never matches any date"


def walls(
    fields: str, after_wall: datetime, plain: Plain, horizon: timedelta, day_and: bool = False
) -> Iterator[datetime]:
    """Every wall time of the expression after `after_wall`, day by day, up to `horizon`."""
    parts = fields.lower().split(" ")
    minutes = sorted(plain(parts[0], 0, 59, ()) or ())
    hours = sorted(plain(parts[1], 0, 23, ()) or ())
    months = plain(parts[3], 1, 12, _MONTHS) or set()
    rule = day_rule(fields, plain, day_and)
    times = [time(hour, minute) for hour in hours for minute in minutes]
    day, last = after_wall.date(), (after_wall + horizon).date()
    while day <= last:
        if day.month in months and rule.matches(day):
            for at in times:
                wall = datetime.combine(day, at)
                if wall > after_wall:
                    yield wall
        day += timedelta(days=1)


def matches(fields: str, wall: datetime, plain: Plain, day_and: bool = False) -> bool:
    """Whether a wall time is one of the expression's."""
    parts = fields.lower().split(" ")
    return (
        wall.minute in (plain(parts[0], 0, 59, ()) or ())
        and wall.hour in (plain(parts[1], 0, 23, ()) or ())
        and wall.month in (plain(parts[3], 1, 12, _MONTHS) or ())
        and day_rule(fields, plain, day_and).matches(wall.date())
    )


def _dom_test(item: str, plain: Plain) -> Callable[[date], bool]:
    matched = _DOM_FORM.fullmatch(item)
    if matched is None:
        values = plain(item, 1, 31, ())
        if values is None:
            raise ValueError(f'"{item}" is not a day-of-month value')
        return lambda day: day.day in values
    if item == "l":
        return lambda day: day.day == _last(day)
    if item == "lw":
        return lambda day: day.day == _last_weekday(day)
    if matched[1] is not None:
        before = int(matched[1])
        if not 1 <= before <= 30:
            raise ValueError(f'"{item.upper()}": L-n takes n from 1 to 30')
        return lambda day: day.day == _last(day) - before
    nearest = int(matched[2])
    if not 1 <= nearest <= 31:
        raise ValueError(f'"{item.upper()}": nW takes a day from 1 to 31')
    return lambda day: day.day == _nearest_weekday(day, nearest)


def _dow_test(item: str, plain: Plain) -> Callable[[date], bool]:
    matched = _DOW_FORM.fullmatch(item)
    if matched is None:
        values = plain(item, 0, 7, _WEEKDAYS)
        if values is None:
            raise ValueError(f'"{item}" is not a day-of-week value')
        weekdays = {value % 7 for value in values}
        return lambda day: _cron_weekday(day) in weekdays
    if matched[1] is not None:
        weekday, nth = _weekday_number(matched[1]), int(matched[2])
        if not 1 <= nth <= 5:
            raise ValueError(f'"{item}": d#n takes n from 1 to 5')
        return lambda day: _cron_weekday(day) == weekday and (day.day - 1) // 7 + 1 == nth
    weekday = _weekday_number(matched[3] or matched[4])
    return lambda day: _cron_weekday(day) == weekday and day.day + 7 > _last(day)


def phrase(fields: str) -> str:
    """The day fields in words, for `describe`: "on the last weekday of the month"."""
    parts = fields.lower().split(" ")
    dom = [_dom_words(item) for item in parts[2].split(",") if parts[2] != "*"]
    dow = [_dow_words(item) for item in parts[4].split(",") if parts[4] != "*"]
    words = [" or ".join(dom), " or ".join(dow)]
    either = not (parts[2].startswith("*") or parts[4].startswith("*"))
    return ("on " + (" or " if either else " when also ").join(w for w in words if w)).strip()


def _dom_words(item: str) -> str:
    matched = _DOM_FORM.fullmatch(item)
    if matched is None:
        return f"the {ordinal(int(item))}" if item.isdigit() else f"days {item}"
    if item == "l":
        return "the last day of the month"
    if item == "lw":
        return "the last weekday of the month"
    if matched[1] is not None:
        days = int(matched[1])
        return f"{days} day{'s' if days > 1 else ''} before the last day of the month"
    return f"the weekday nearest the {ordinal(int(matched[2]))}"


def _dow_words(item: str) -> str:
    matched = _DOW_FORM.fullmatch(item)
    if matched is None:
        return f"day-of-week {item}"
    if matched[1] is not None:
        name = _DAY_NAMES[_weekday_number(matched[1])]
        return f"the {_ORDINALS[int(matched[2]) - 1]} {name} of the month"
    return f"the last {_DAY_NAMES[_weekday_number(matched[3] or matched[4])]} of the month"


def ordinal(number: int) -> str:
    suffix = (
        "th" if 10 <= number % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(number % 10, "th")
    )
    return f"{number}{suffix}"


def _weekday_number(text: str) -> int:
    return int(text) % 7 if text.isdigit() else _WEEKDAYS.index(text)


def _cron_weekday(day: date) -> int:
    return day.isoweekday() % 7  # Sunday 0


def _last(day: date) -> int:
    return calendar.monthrange(day.year, day.month)[1]


def _last_weekday(day: date) -> int:
    last = _last(day)
    weekday = date(day.year, day.month, last).weekday()  # Monday 0
    return last - max(0, weekday - 4)  # Saturday: the day before, Sunday: two days before


def _nearest_weekday(day: date, nearest: int) -> int | None:
    """The weekday nearest day `nearest` of `day`'s month, within the month (Quartz's W)."""
    last = _last(day)
    if nearest > last:
        return None  # the month has no such day
    weekday = date(day.year, day.month, nearest).weekday()
    if weekday == 5:  # Saturday: Friday, unless that is in the month before
        return nearest - 1 if nearest > 1 else nearest + 2
    if weekday == 6:  # Sunday: Monday, unless that is in the month after
        return nearest + 1 if nearest < last else nearest - 2
    return nearest
