"""The schedule engine against an independent oracle of Debian cron: cronsim.

cronsim (https://github.com/cuu508/cronsim, a test-only dependency) models Debian cron,
including its day-of-month/day-of-week rule and its handling of DST for fixed-time jobs.
Expressions are generated over the whole of cron's grammar (steps, ranges, lists, names, `7`
for Sunday, macros), evaluated in zones with DST (30-minute shifts and changes at midnight
among them) from random instants across decades, and every fire time must agree.
"""

from __future__ import annotations

from datetime import UTC, datetime
from itertools import islice
from zoneinfo import ZoneInfo

import pytest
from cronsim import CronSim
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from cronflow.decide.schedule import MACROS, check, compile_schedule

ZONES = [
    "UTC",
    "America/New_York",
    "Europe/Berlin",
    "Europe/London",
    "Australia/Lord_Howe",
    "America/Sao_Paulo",
    "America/Santiago",
    "Asia/Tehran",
    "Pacific/Chatham",
    "Asia/Kolkata",
    "Africa/Casablanca",
]
MONTHS = ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"]
DAYS = ["sun", "mon", "tue", "wed", "thu", "fri", "sat"]
TICKS = 12
# Where cronsim mishandles schedules that are not fixed-time: a DST change of 30 minutes, at
# a quarter to the hour, or at midnight (the tests at the end say what cron does there).
ODD_CHANGES = {
    "Australia/Lord_Howe",
    "Pacific/Chatham",
    "America/Santiago",
    "America/Sao_Paulo",
    "Africa/Casablanca",
}


def field(low: int, high: int, names: list[str] = (), rare_star: bool = False):
    """One cron field: `*`, `*/n`, values, ranges `a-b`, `a-b/n`, names, and lists of them."""

    def value(number: int) -> str:
        if names and number - low < len(names):
            return st.sampled_from([str(number), names[number - low], names[number - low].upper()])
        return st.just(str(number))

    number = st.integers(low, high)
    single = number.flatmap(value)
    span = (
        st.tuples(number, number)
        .map(sorted)
        .flatmap(lambda pair: st.tuples(value(pair[0]), value(pair[1])).map("-".join))
    )
    # cronsim reads a stepped one-value range `a-a/n` as `a/n` (a to the end); Debian cron as
    # just a (see test_a_stepped_one_value_range_is_that_value), so stepped ranges are wider.
    wide = (
        st.tuples(number, number)
        .filter(lambda pair: pair[0] != pair[1])
        .map(sorted)
        .flatmap(lambda pair: st.tuples(value(pair[0]), value(pair[1])).map("-".join))
    )
    stepped = st.tuples(wide, st.integers(1, high - low + 1)).map(lambda p: f"{p[0]}/{p[1]}")
    star_step = st.integers(1, high - low + 1).map(lambda step: f"*/{step}")
    item = st.one_of(single, span, stepped, star_step)
    listed = st.lists(item, min_size=1, max_size=3).map(",".join)
    stars = st.sampled_from(["*", "*/2", "*/3"])
    return st.one_of(listed, stars) if not rare_star else st.one_of(listed, listed, stars)


EXPRESSIONS = st.one_of(
    st.tuples(
        field(0, 59, rare_star=True),
        field(0, 23, rare_star=True),
        field(1, 31),
        field(1, 12, MONTHS),
        field(0, 7, DAYS),
    ).map(" ".join),
    st.sampled_from(sorted(MACROS)),
)


def usable(expression: str) -> bool:
    try:
        check(expression)
    except ValueError:
        return False
    return True


def oracle(expression: str, zone: ZoneInfo, start: datetime) -> list[datetime]:
    """The next TICKS fire times after `start` by cronsim, in UTC."""
    fields = MACROS.get(expression, expression)
    return [tick.astimezone(UTC) for tick in islice(CronSim(fields, start.astimezone(zone)), TICKS)]


def ours(expression: str, zone: ZoneInfo, start: datetime) -> list[datetime]:
    schedule = compile_schedule(check(expression), zone)
    found, at = [], start
    while len(found) < TICKS and (at := schedule.next_after(at)) is not None:
        found.append(at)
    return found


@settings(max_examples=400, deadline=None)
@given(
    expression=EXPRESSIONS,
    zone=st.sampled_from(ZONES),
    start=st.datetimes(datetime(1995, 1, 1), datetime(2035, 12, 31)),
)
def test_fire_times_agree_with_debian_cron(expression, zone, start):
    if not usable(expression):
        return  # cron would reject it too (a range backwards, 30 February): tested elsewhere
    # cronsim loses Lord Howe's 03:00, repeats Chatham's 03:00-03:40 for ever and runs
    # Santiago's skipped midnight hour: only fixed-time schedules are compared there.
    assume(
        zone not in ODD_CHANGES or compile_schedule(check(expression), ZoneInfo(zone)).is_fixed_time
    )
    zone = ZoneInfo(zone)
    start = start.replace(second=0, microsecond=0, tzinfo=UTC)
    assert ours(expression, zone, start) == oracle(expression, zone, start), expression


@pytest.mark.parametrize(
    "expression, zone, start",
    [
        ("0 0 */2 * 1", "UTC", "2026-01-01T00:00:00+00:00"),  # Mondays that are odd days
        ("0 0 1,15 * 1", "UTC", "2026-01-01T00:00:00+00:00"),  # the 1st, the 15th and Mondays
        ("0 0 * * 7", "Europe/Berlin", "2026-01-01T00:00:00+00:00"),  # 7 is Sunday
        ("30 2 * * *", "America/New_York", "2024-03-09T12:00:00+00:00"),  # skipped hour
        ("30 1 * * *", "America/New_York", "2024-11-02T12:00:00+00:00"),  # repeated hour
        ("*/20 * * * *", "America/New_York", "2024-11-03T04:30:00+00:00"),
        ("15 2 * * *", "Australia/Lord_Howe", "2024-10-05T00:00:00+00:00"),  # a 30-minute jump
        ("0 0 * * *", "America/Santiago", "2024-09-07T00:00:00+00:00"),  # DST at midnight
    ],
)
def test_known_cases_agree_with_debian_cron(expression, zone, start):
    zone, start = ZoneInfo(zone), datetime.fromisoformat(start)
    assert ours(expression, zone, start) == oracle(expression, zone, start)


def test_odd_days_that_are_mondays():
    ticks = ours("0 0 */2 * 1", ZoneInfo("UTC"), datetime(2026, 1, 1, tzinfo=UTC))
    assert all(tick.weekday() == 0 and tick.day % 2 == 1 for tick in ticks)
    assert ticks[:3] == [
        datetime(2026, 1, 5, tzinfo=UTC),
        datetime(2026, 1, 19, tzinfo=UTC),
        datetime(2026, 2, 9, tzinfo=UTC),
    ]


def test_a_stepped_one_value_range_is_that_value():
    """Debian cron's get_range() sets the values low..high by step, so `0-0/1` is 0 (cronsim
    disagrees here: it reads it as `0/1`); croniter alone fires `0-0` every hour."""
    for hours in ("0-0", "0-0/1", "0-0/5"):
        ticks = ours(f"0 {hours} * * *", ZoneInfo("UTC"), datetime(2026, 1, 1, tzinfo=UTC))
        assert {tick.hour for tick in ticks} == {0}, hours


def test_a_30_minute_fall_back_keeps_every_tick():
    """Lord Howe goes from 02:00 (+11) back to 01:30 (+10:30) on 2017-04-02. A job every
    three hours keeps its cadence: 03:00 happens once, after the change, and runs (cron runs
    a schedule that is not fixed-time by the wall clock as it is; cronsim skips this 03:00)."""
    zone = ZoneInfo("Australia/Lord_Howe")
    ticks = ours("0 */3 * * *", zone, datetime(2017, 4, 1, 12, 0, tzinfo=UTC))
    assert [tick.astimezone(zone).strftime("%H:%M%z") for tick in ticks[:4]] == [
        "00:00+1100",
        "03:00+1030",
        "06:00+1030",
        "09:00+1030",
    ]


def test_a_fall_back_at_a_quarter_to_keeps_both_passes_of_a_wildcard_schedule():
    """Chatham goes from 03:45 (+13:45) back to 02:45 (+12:45) on 2008-04-06. A schedule that
    is not fixed-time runs by the wall clock as it is: 03:00-03:40 twice, then 03:50 once
    (cronsim yields the first pass again and again)."""
    zone = ZoneInfo("Pacific/Chatham")
    ticks = ours("*/10 */3 * 4 0", zone, datetime(2008, 4, 5, 13, 0, tzinfo=UTC))
    assert [tick.astimezone(zone).strftime("%H:%M%z") for tick in ticks[:11]] == [
        *(f"03:{minute}0+1345" for minute in range(5)),
        *(f"03:{minute}0+1245" for minute in range(6)),
    ]


def test_a_skipped_midnight_hour_runs_no_wildcard_tick():
    """Santiago jumps from 00:00 (-04) to 01:00 (-03) on 1999-10-10: the hour 00:xx never
    happens, so an every-minute-of-even-hours job first runs at 02:00 (cron runs only
    fixed-time jobs for skipped times; cronsim runs one at the jump)."""
    zone = ZoneInfo("America/Santiago")
    ticks = ours("* */2 * * *", zone, datetime(1999, 10, 10, 3, 59, tzinfo=UTC))
    assert ticks[0].astimezone(zone).strftime("%d %H:%M%z") == "10 02:00-0300"
