"""A flow's calendars (`skip_on`, `run_on`) as the exports carry them: the weekdays they
refuse every week (`weekdays = ["Sat", "Sun"]` in a `skip_on` calendar, or outside
weekday-only `run_on` calendars), exact for ever, and every other day or tick they refuse
(holidays, dates, ranges) listed from the flow's start to the end of the next year.

Dagster: the partitions' exclusions (the weekdays as one cron expression, the other ticks as
instants). Airflow: a ShortCircuitOperator at the DAG's start that skips the run's tasks on
a refused day. A `shift` moves ticks to other days, which neither can say: not exported.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from cronflow.calendars import Calendar, Days
from cronflow.decide.schedule import schedule_of
from cronflow.model import Cadence

LISTED_YEARS = 1  # refused days are listed through the end of the year after the export's
MOST_LISTED = 2000  # more refused ticks than this (an hourly job off holidays): not exported
_JUST_BEFORE = timedelta(microseconds=1)


@dataclass(frozen=True, slots=True)
class Exclusions:
    """The ticks a flow's calendars refuse (`refused`): those on its weekdays as the cron
    expression `cron`, the others listed as `ticks` (aware, UTC)."""

    refused: RefusedDays
    cron: str | None
    ticks: tuple[datetime, ...]

    def note(self, days: Days) -> str:
        """What the export did with the calendars, for the file's header and the warnings."""
        parts = []
        if self.refused.weekdays:
            parts.append(f"each {weekday_names(self.refused.weekdays)} by a cron exclusion")
        if self.refused.open_ended:
            parts.append(
                f"{len(self.ticks)} other tick(s) listed through {self.refused.until} "
                "(export again before then: later holidays and dates are not excluded)"
            )
        return (
            f"skip_on, run_on ({days.describe()}): the partitions exclude the ticks the "
            f"calendars refuse, and the schedule skips them: {'; '.join(parts) or 'none'}."
        )


def exclusions(cadence: Cadence, cron: str, start: datetime, now: datetime) -> Exclusions | None:
    """The exclusions of a flow's partitions (the flow's cadence; the partitions' cron
    expression `cron` and first tick `start`), or None when the flow has no calendars,
    shifts its ticks, or would list more than MOST_LISTED ticks."""
    days = cadence.days
    if days is None or days.shift is not None:
        return None
    schedule = schedule_of(cadence)
    refused = refused_days(days, start.astimezone(schedule.zone).date(), now)
    listed_days = set(refused.days)
    end = datetime.combine(refused.until + timedelta(days=1), time(), schedule.zone)
    listed = tuple(
        tick
        for tick in schedule.raw.ticks(start - _JUST_BEFORE, end)
        if tick.astimezone(schedule.zone).date() in listed_days
    )
    if len(listed) > MOST_LISTED:
        return None
    minute, hour = cron.split(" ")[:2]
    weekdays = ",".join(str(day % 7) for day in refused.weekdays)  # cron: 0 = Sunday
    every_week = f"{minute} {hour} * * {weekdays}" if weekdays else None
    return Exclusions(refused=refused, cron=every_week, ticks=listed)


@dataclass(frozen=True, slots=True)
class RefusedDays:
    """The days a flow's calendars refuse: `weekdays` every week, and the `days` listed."""

    weekdays: tuple[int, ...]  # 1 = Monday ... 7 = Sunday
    days: tuple[date, ...]  # the others, from `since` through `until`
    since: date
    until: date
    open_ended: bool  # more are refused outside since..until

    def note(self, describe: str) -> str:
        """What the Airflow export did with the calendars, for the file and the warnings."""
        parts = [f"each {weekday_names(self.weekdays)}"] if self.weekdays else []
        if self.open_ended:
            parts.append(
                f"{len(self.days)} other day(s) listed for {self.since}..{self.until} "
                "(export again before its end: later holidays and dates are not skipped)"
            )
        return (
            f"calendars ({describe}): the DAG's first task, _calendars (a "
            "ShortCircuitOperator), skips every task of a run on a day they refuse (the run "
            f"itself succeeds): {'; '.join(parts) or 'none'}."
        )


def refused_days(days: Days, first: date, now: datetime) -> RefusedDays:
    """The days the calendars refuse: the weekdays every week, and every other day from
    the start of the year before `first`'s (room for backfills) through the end of the year
    after `now`'s."""
    weekly = _refused_every_week(days)
    since, until = date(first.year - 1, 1, 1), date(now.year + LISTED_YEARS, 12, 31)
    listed, day = [], since
    while day <= until:
        if day.isoweekday() not in weekly and days.refusal(day) is not None:
            listed.append(day)
        day += timedelta(days=1)
    return RefusedDays(tuple(sorted(weekly)), tuple(listed), since, until, open_ended(days))


def weekday_names(weekdays: tuple[int, ...]) -> str:
    """ "Sat, Sun" for (6, 7)."""
    return ", ".join(date(2024, 1, day).strftime("%a") for day in weekdays)  # a Monday


def open_ended(days: Days) -> bool:
    """Whether the calendars refuse more than weekdays (days a list must end somewhere)."""
    return not all(_weekdays_only(calendar) for calendar in (*days.skip_on, *days.run_on))


def _refused_every_week(days: Days) -> set[int]:
    """The weekdays (1 = Monday) the calendars refuse whatever the date."""
    refused = {day for calendar in days.skip_on for day in calendar.weekdays}
    if days.run_on and all(_weekdays_only(calendar) for calendar in days.run_on):
        allowed = {day for calendar in days.run_on for day in calendar.weekdays}
        refused |= set(range(1, 8)) - allowed
    return refused


def _weekdays_only(calendar: Calendar) -> bool:
    return calendar.holidays is None and not calendar.dates and not calendar.ranges
