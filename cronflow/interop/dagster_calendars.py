"""A flow's calendars (`skip_on`, `run_on`) as its Dagster partitions' exclusions.

Dagster leaves out of a time-window partitions definition every tick that matches an
excluded cron expression or an excluded instant. The weekdays the calendars refuse every
week (`weekdays = ["Sat", "Sun"]` in a `skip_on` calendar, or outside weekday-only `run_on`
calendars) become one cron expression, exact for ever; every other tick they refuse
(holidays, dates, ranges) is listed, from the partitions' start to the end of the next year.
A `shift` moves ticks to other days, which partitions cannot say: not exported.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from cronflow.calendars import Calendar, Days
from cronflow.decide.schedule import schedule_of
from cronflow.interop.airflow_flows import Flow

LISTED_YEARS = 1  # refused days are listed through the end of the year after the export's
MOST_LISTED = 2000  # more refused ticks than this (an hourly job off holidays): not exported
_JUST_BEFORE = timedelta(microseconds=1)


@dataclass(frozen=True, slots=True)
class Exclusions:
    """The ticks a flow's calendars refuse: those on `weekdays` as the cron expression
    `cron`, the others listed as `ticks` (aware, UTC) up to the end of `until`."""

    cron: str | None
    weekdays: tuple[int, ...]  # 1 = Monday ... 7 = Sunday
    ticks: tuple[datetime, ...]
    until: date
    open_ended: bool  # the calendars refuse more days after `until` than the weekdays

    def note(self, days: Days) -> str:
        """What the export did with the calendars, for the file's header and the warnings."""
        parts = []
        if self.weekdays:
            names = ", ".join(date(2024, 1, day).strftime("%a") for day in self.weekdays)
            parts.append(f"each {names} by a cron exclusion")
        if self.open_ended:
            parts.append(
                f"{len(self.ticks)} other tick(s) listed through {self.until.isoformat()} "
                "(export again before then: later holidays and dates are not excluded)"
            )
        return (
            f"skip_on, run_on ({days.describe()}): the partitions exclude the ticks the "
            f"calendars refuse, and the schedule skips them: {'; '.join(parts) or 'none'}."
        )


def exclusions(flow: Flow, cron: str, start: datetime, now: datetime) -> Exclusions | None:
    """The exclusions of the flow's partitions (their cron expression `cron`, their first
    tick `start`), or None when the flow has no calendars, shifts its ticks, or would list
    more than MOST_LISTED ticks."""
    days = flow.cadence.days
    if days is None or days.shift is not None:
        return None
    schedule = schedule_of(flow.cadence)
    until = date(now.year + LISTED_YEARS, 12, 31)
    end = datetime.combine(until + timedelta(days=1), time(), schedule.zone)
    runs = set(schedule.ticks(start - _JUST_BEFORE, end))
    weekly = _refused_every_week(days)
    listed = tuple(
        tick
        for tick in schedule.raw.ticks(start - _JUST_BEFORE, end)
        if tick not in runs and tick.astimezone(schedule.zone).isoweekday() not in weekly
    )
    if len(listed) > MOST_LISTED:
        return None
    minute, hour = cron.split(" ")[:2]
    weekdays = tuple(sorted(weekly))
    every_week = f"{minute} {hour} * * {','.join(str(day % 7) for day in weekdays)}"
    calendars = (*days.skip_on, *days.run_on)
    return Exclusions(
        cron=every_week if weekdays else None,
        weekdays=weekdays,
        ticks=listed,
        until=until,
        open_ended=not all(_weekdays_only(calendar) for calendar in calendars),
    )


def _refused_every_week(days: Days) -> set[int]:
    """The weekdays (1 = Monday) the calendars refuse whatever the date."""
    refused = {day for calendar in days.skip_on for day in calendar.weekdays}
    if days.run_on and all(_weekdays_only(calendar) for calendar in days.run_on):
        allowed = {day for calendar in days.run_on for day in calendar.weekdays}
        refused |= set(range(1, 8)) - allowed
    return refused


def _weekdays_only(calendar: Calendar) -> bool:
    return calendar.holidays is None and not calendar.dates and not calendar.ranges
