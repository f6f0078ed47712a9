"""The business-day forms (L, L-n, LW, nW, d#n, dL/Ld), as Quartz's CronTrigger documents
them: a table of the reference's own cases and edges, then a property test against a model
written here from the definitions alone (a brute force over each month's dates, sharing no
code with cronflow), and the command line around them (validate, next, import-crontab)."""

from __future__ import annotations

import calendar
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cronflow.decide.schedule import ScheduleError, check, compile_schedule
from cronflow.decide.schedule_words import describe
from tests.conftest import run_cli


def days_of(expression: str, start: date, count: int) -> list[date]:
    schedule = compile_schedule(check(expression), ZoneInfo("UTC"))
    found, at = [], datetime.combine(start, datetime.min.time(), tzinfo=UTC) - timedelta(seconds=1)
    for _ in range(count):
        at = schedule.next_after(at)
        found.append(at.date())
    return found


# (expression, first day searched from, the days it must give), from Quartz's CronTrigger
# tutorial and its edge cases, on 2026's calendar (2026-08-01 is a Saturday, 2026-03-15 and
# 2026-05-31 Sundays, 2026-02-28 a Saturday).
REFERENCE = [
    ("0 10 L * *", date(2026, 1, 1), [date(2026, 1, 31), date(2026, 2, 28), date(2026, 3, 31)]),
    ("0 10 L * *", date(2028, 2, 1), [date(2028, 2, 29)]),  # a leap year's February
    ("0 10 L-1 * *", date(2026, 1, 1), [date(2026, 1, 30), date(2026, 2, 27)]),
    ("0 10 L-3 * *", date(2026, 2, 1), [date(2026, 2, 25), date(2026, 3, 28)]),
    ("0 10 15W * *", date(2026, 8, 1), [date(2026, 8, 14)]),  # Saturday: the Friday before
    ("0 10 15W * *", date(2026, 3, 1), [date(2026, 3, 16)]),  # Sunday: the Monday after
    ("0 10 15W * *", date(2026, 4, 1), [date(2026, 4, 15)]),  # a weekday: itself
    ("0 10 1W * *", date(2026, 8, 1), [date(2026, 8, 3)]),  # never into the month before
    ("0 10 31W * *", date(2026, 5, 1), [date(2026, 5, 29)]),  # never into the month after
    ("0 10 31W * *", date(2026, 4, 1), [date(2026, 5, 29)]),  # April has no 31st
    ("0 10 LW * *", date(2026, 2, 1), [date(2026, 2, 27), date(2026, 3, 31)]),
    ("0 10 LW * *", date(2026, 5, 1), [date(2026, 5, 29)]),
    ("0 10 * * 5L", date(2026, 1, 1), [date(2026, 1, 30), date(2026, 2, 27)]),
    ("0 10 * * L5", date(2026, 1, 1), [date(2026, 1, 30), date(2026, 2, 27)]),
    ("0 10 * * friL", date(2026, 1, 1), [date(2026, 1, 30)]),
    ("0 10 * * 5#3", date(2026, 1, 1), [date(2026, 1, 16), date(2026, 2, 20)]),
    ("0 10 * * 5#5", date(2026, 1, 1), [date(2026, 1, 30), date(2026, 5, 29)]),  # not in Feb
    (
        "0 10 1,15W,L * *",
        date(2026, 8, 1),
        [date(2026, 8, 1), date(2026, 8, 14), date(2026, 8, 31)],
    ),
    # Both day fields restricted: OR, as cron; one of them `*`: AND
    ("0 10 LW * 1", date(2026, 1, 26), [date(2026, 1, 26), date(2026, 1, 30), date(2026, 2, 2)]),
    ("0 10 L-3 2 *", date(2026, 1, 1), [date(2026, 2, 25), date(2027, 2, 25)]),
]


@pytest.mark.parametrize(("expression", "start", "expected"), REFERENCE)
def test_the_reference_cases(expression, start, expected):
    assert days_of(expression, start, len(expected)) == expected


@pytest.mark.parametrize(
    ("expression", "words"),
    [
        ("0 18 LW * *", "at 18:00 on the last weekday of the month"),
        ("0 7 L-3 * *", "at 07:00 on 3 days before the last day of the month"),
        ("0 8 15W * *", "at 08:00 on the weekday nearest the 15th"),
        ("0 6 * * 5#3", "at 06:00 on the third Friday of the month"),
        ("0 6 * * 5L", "at 06:00 on the last Friday of the month"),
        (
            "0 6 LW 3,6,9,12 *",
            "at 06:00 on the last weekday of the month in March, June, September and December",
        ),
    ],
)
def test_in_words(expression, words):
    assert describe(expression) == words


@pytest.mark.parametrize(
    ("expression", "why"),
    [
        ("0 0 31W 2 *", "never matches any date"),
        ("0 0 L-31 * *", '"L-31": L-n takes n from 1 to 30'),
        ("0 0 32W * *", '"32W": nW takes a day from 1 to 31'),
        ("0 0 * * 5#6", "d#n takes n from 1 to 5"),
        ("0 0 LW,foo * *", '"foo" is not a day-of-month value'),
    ],
)
def test_what_cannot_be_used_says_why(expression, why):
    with pytest.raises(ScheduleError, match=why.replace("(", r"\(")):
        check(expression)


# ---- an independent model: each form from its definition, by brute force over a month ----


def month_days(day: date) -> list[date]:
    count = calendar.monthrange(day.year, day.month)[1]
    return [date(day.year, day.month, number) for number in range(1, count + 1)]


def weekdays_in(day: date) -> list[date]:
    return [each for each in month_days(day) if each.weekday() < 5]


def model_dom(item: str, day: date) -> bool:
    days = month_days(day)
    if item == "L":
        return day == days[-1]
    if item == "LW":
        return day == weekdays_in(day)[-1]
    if item.startswith("L-"):
        back = int(item[2:])
        return back < len(days) and day == days[-1 - back]
    if item.endswith("W"):
        wanted = int(item[:-1])
        if wanted > len(days):
            return False
        nearest = min(weekdays_in(day), key=lambda each: abs(each.day - wanted))
        return day == nearest
    return day.day == int(item)


def cron_weekday(day: date) -> int:
    return (day.weekday() + 1) % 7


def model_dow(item: str, day: date) -> bool:
    if "#" in item:
        weekday, nth = (int(part) for part in item.split("#"))
        same = [each for each in month_days(day) if cron_weekday(each) == weekday % 7]
        return len(same) >= nth and day == same[nth - 1]
    if item.endswith("L"):
        weekday = int(item[:-1]) % 7
        return day == [each for each in month_days(day) if cron_weekday(each) == weekday][-1]
    return cron_weekday(day) == int(item) % 7


def model_days(dom: list[str], dow: list[str], start: date, end: date) -> list[date]:
    either = bool(dom) and bool(dow)  # neither field `*`: cron's OR
    found = []
    day = start
    while day <= end:
        on_dom = any(model_dom(item, day) for item in dom) if dom else True
        on_dow = any(model_dow(item, day) for item in dow) if dow else True
        if (on_dom or on_dow) if either else (on_dom and on_dow):
            found.append(day)
        day += timedelta(days=1)
    return found


DOM_ITEMS = st.one_of(
    st.just("L"),
    st.just("LW"),
    st.integers(1, 30).map(lambda n: f"L-{n}"),
    st.integers(1, 31).map(lambda n: f"{n}W"),
    st.integers(1, 31).map(str),
)
DOW_ITEMS = st.one_of(
    st.tuples(st.integers(0, 7), st.integers(1, 5)).map(lambda pair: f"{pair[0]}#{pair[1]}"),
    st.integers(0, 7).map(lambda n: f"{n}L"),
    st.integers(0, 7).map(str),
)


@settings(max_examples=150, deadline=None)
@given(
    dom=st.lists(DOM_ITEMS, max_size=3, unique=True),
    dow=st.lists(DOW_ITEMS, max_size=2, unique=True),
    year=st.integers(2024, 2031),
)
def test_every_combination_agrees_with_the_model(dom, dow, year):
    if not dom and not dow:
        dom = ["LW"]
    expression = f"0 12 {','.join(dom) or '*'} * {','.join(dow) or '*'}"
    start, end = date(year, 1, 1), date(year, 12, 31)
    expected = model_days(dom, dow, start, end)
    try:
        schedule = compile_schedule(check(expression), ZoneInfo("UTC"))
    except ScheduleError as error:
        assert not expected and "never matches" in str(error), error
        return
    ticks = schedule.ticks(
        datetime.combine(start, datetime.min.time(), tzinfo=UTC) - timedelta(seconds=1),
        datetime.combine(end, datetime.max.time(), tzinfo=UTC),
    )
    assert [tick.date() for tick in ticks] == expected


def test_next_and_validate_take_them_and_import_crontab_still_refuses_them(tmp_path):
    (tmp_path / "jobs.toml").write_text(
        '[jobs.close]\ncommand = "true"\nschedule = "30 18 LW * *"\ntimezone = "UTC"\n'
    )
    assert run_cli("validate", cwd=tmp_path).returncode == 0
    shown = run_cli("next", "--job", "close", "--count", "2", "--from", "2026-02-01", cwd=tmp_path)
    assert shown.returncode == 0, shown.stderr
    assert "2026-02-27" in shown.stdout and "2026-03-31" in shown.stdout
    (tmp_path / "crontab").write_text("30 18 LW * * /usr/local/bin/close\n")
    imported = run_cli("import-crontab", "crontab", cwd=tmp_path)
    assert "Debian cron has no L, W, # or ?" in imported.stdout + imported.stderr
