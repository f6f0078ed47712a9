"""Schedules in English, for `status`, `graph`, `why` and the Airflow export: `15 4 * * 1` is
"at 04:15 on Mondays", `0 0 */2 * 1` "at 00:00 on Mondays falling on odd days", `0 18 LW * *`
"at 18:00 on the last weekday of the month"."""

from __future__ import annotations

from functools import lru_cache

from cronflow.decide import day_forms
from cronflow.decide.day_forms import ordinal
from cronflow.decide.schedule import FIELDS, days_or, expand, field_values

_DAY_NAMES = ("Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday")
_MONTH_NAMES = (
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
)


@lru_cache(maxsize=4096)
def describe(expression: str, day_and: bool = False) -> str:
    """The schedule in English: `15 4 * * 1` is "at 04:15 on Mondays", `0 0 */2 * 1` "at
    00:00 on Mondays falling on odd days"; the business-day forms (decide/day_forms.py) in
    words too. Anything else cron lacks is shown as written."""
    if "|" in expression:  # several schedules
        return " and ".join(describe(part.strip(), day_and) for part in expression.split("|"))
    fields = expand(expression)
    parts = fields.split(" ")
    values = [
        field_values(text.lower(), low, high, names)
        for text, (low, high, names) in zip(parts, FIELDS, strict=False)
    ]
    if len(parts) == 5 and day_forms.has_forms(fields) and None not in values[:2]:
        when, _ = _times(
            sorted(values[0] or ()) if parts[0] != "*" else list(range(60)),
            sorted(values[1] or ()) if parts[1] != "*" else list(range(24)),
        )
        months = sorted(values[3] or ())
        in_months = f" in {_month_phrase(months)}" if parts[3] != "*" and months else ""
        return f"{when} {day_forms.phrase(fields)}{in_months}"
    if len(parts) != 5 or any(chosen is None for chosen in values):
        return fields
    minutes, hours, days, months, weekdays = (sorted(chosen or ()) for chosen in values)
    weekdays = sorted({day % 7 for day in weekdays}, key=lambda day: (day + 6) % 7)  # Monday first
    when, clock_times = _times(
        minutes if parts[0] != "*" else list(range(60)),
        hours if parts[1] != "*" else list(range(24)),
    )
    either = days_or(fields) and not day_and
    on = _days(days, weekdays, months, [text != "*" for text in parts[2:]], either)
    if clock_times and not on.startswith("on "):
        return f"daily {when} {on}".strip()
    return f"{when} {on}".strip()


def _times(minutes: list[int], hours: list[int]) -> tuple[str, bool]:
    """The times of day in words, and whether they are plain clock times ("at 06:00")."""
    every_hour = hours == list(range(24))
    if minutes == list(range(60)):
        return ("every minute" if every_hour else f"every minute {_hour_span(hours)}"), False
    if (step := _step(minutes)) and step[0] == 0 and minutes[-1] + step[1] == 60:
        every = f"every {step[1]} minutes"
        return (every if every_hour else f"{every} {_hour_span(hours)}"), False
    past = _join([f":{minute:02d}" for minute in minutes])
    if every_hour:
        return f"hourly at {past}", False
    step = _step(hours)
    if step and len(minutes) == 1 and step[0] < step[1] and hours[-1] + step[1] >= 24:
        start = f" from {step[0]:02d}:{minutes[0]:02d}" if step[0] else ""
        return f"every {step[1]} hours at {past}{start}", False  # all day long: */6, 1-23/2
    if len(minutes) * len(hours) <= 4:
        return "at " + _join(
            [f"{hour:02d}:{minute:02d}" for hour in hours for minute in minutes]
        ), True
    if _contiguous(hours):
        return f"hourly at {past} {_hour_span(hours)}", False
    if step := _step(hours):
        first, last = hours[0], hours[-1]
        span = (
            ""
            if first == 0 and last + step[1] >= 24
            else f" from {first:02d}{past[:3] if len(minutes) == 1 else ':00'} to "
            f"{last:02d}{past[:3] if len(minutes) == 1 else ':59'}"
        )
        return f"every {step[1]} hours at {past}{span}", False
    return f"at {past} {_hour_span(hours)}", False


def _hour_span(hours: list[int]) -> str:
    if hours == list(range(hours[0], hours[-1] + 1)):
        return f"from {hours[0]:02d}:00 to {hours[-1]:02d}:59"
    return f"during hours {_join([f'{hour:02d}' for hour in hours])}"


def _days(
    days: list[int], weekdays: list[int], months: list[int], restricted: list[bool], either: bool
) -> str:
    some_days, some_months, some_weekdays = restricted
    some_days = some_days and days != list(range(1, 32))
    some_weekdays = some_weekdays and weekdays != list(range(7))
    some_months = some_months and months != list(range(1, 13))
    in_months = _month_phrase(months) if some_months else ""
    if some_days:
        on_days = f"on {_day_phrase(days)}" + (f" of {in_months}" if in_months else "")
        in_months = ""
    else:
        on_days = ""
    on_weekdays = f"on {_weekday_phrase(weekdays)}" if some_weekdays else ""
    if on_days and on_weekdays:
        on = f"{on_days} and {on_weekdays}" if either else f"{on_weekdays} falling {on_days}"
    else:
        on = on_days or on_weekdays
    if in_months:
        on = f"{on} {'from' if _contiguous(months) else 'in'} {in_months}".strip()
    return on


def _day_phrase(days: list[int]) -> str:
    if days == list(range(1, 32, 2)):
        return "odd days"
    if (step := _step(days)) and step[0] + step[1] > 1 and days[-1] + step[1] > 31:
        return f"every {ordinal(step[1])} day from the {ordinal(step[0])}"
    if _contiguous(days):
        return f"the {ordinal(days[0])} to {ordinal(days[-1])}"
    return "the " + _join([ordinal(day) for day in days])


def _weekday_phrase(weekdays: list[int]) -> str:
    if weekdays == [1, 2, 3, 4, 5]:
        return "weekdays (Monday to Friday)"
    if _contiguous(weekdays):
        return f"{_DAY_NAMES[weekdays[0]]} to {_DAY_NAMES[weekdays[-1]]}"
    return _join([f"{_DAY_NAMES[day]}s" for day in weekdays])


def _month_phrase(months: list[int]) -> str:
    if _contiguous(months):
        return f"{_MONTH_NAMES[months[0] - 1]} to {_MONTH_NAMES[months[-1] - 1]}"
    return _join([_MONTH_NAMES[month - 1] for month in months])


def _step(values: list[int]) -> tuple[int, int] | None:
    """(first, step) when the values are first, first+step, ... (at least three, step > 1):
    what `*/n` and `a-b/n` spell."""
    if len(values) < 3:
        return None
    step = values[1] - values[0]
    if step < 2 or any(b - a != step for a, b in zip(values, values[1:], strict=False)):
        return None
    return values[0], step


def _contiguous(values: list[int]) -> bool:
    return len(values) >= 3 and values == list(range(values[0], values[-1] + 1))


def _join(words: list[str]) -> str:
    return words[0] if len(words) == 1 else ", ".join(words[:-1]) + " and " + words[-1]
