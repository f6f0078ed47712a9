"""Schedules in explicit zones, with Debian cron's DST rules.

Transitions used below (from the tz database):
  America/New_York  2024-03-10 02:00 EST -> 03:00 EDT (07:00Z); 2024-11-03 02:00 EDT -> 01:00 EST (06:00Z)
  Australia/Lord_Howe  2024-10-06 02:00 -> 02:30 (+10:30 -> +11, 30-minute shift)
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from croniter import croniter
from hypothesis import given, settings
from hypothesis import strategies as st

from cronflow.decide.schedule import ScheduleError, check, compile_schedule
from cronflow.decide.schedule_words import describe

NEW_YORK = ZoneInfo("America/New_York")


def local_ticks(expression: str, day: date, zone=NEW_YORK) -> list[str]:
    return [
        t.astimezone(zone).isoformat() for t in compile_schedule(expression, zone).ticks_on(day)
    ]


def test_a_fixed_time_in_the_skipped_hour_runs_once_at_the_jump():
    assert local_ticks("30 2 * * *", date(2024, 3, 10)) == ["2024-03-10T03:00:00-04:00"]
    assert local_ticks("30 2 * * *", date(2024, 3, 11)) == ["2024-03-11T02:30:00-04:00"]


def test_a_fixed_time_in_the_repeated_hour_runs_once_on_the_first_pass():
    assert local_ticks("30 1 * * *", date(2024, 11, 3)) == ["2024-11-03T01:30:00-04:00"]


def test_wildcard_hours_keep_their_real_cadence_across_dst():
    spring = local_ticks("0 * * * *", date(2024, 3, 10))
    autumn = local_ticks("0 * * * *", date(2024, 11, 3))
    assert len(spring) == 23 and "2024-03-10T02:00:00-04:00" not in spring
    assert len(autumn) == 25
    assert autumn[1:4] == [
        "2024-11-03T01:00:00-04:00",
        "2024-11-03T01:00:00-05:00",
        "2024-11-03T02:00:00-05:00",
    ]


def test_a_thirty_minute_dst_shift():
    zone = ZoneInfo("Australia/Lord_Howe")
    assert local_ticks("15 2 * * *", date(2024, 10, 6), zone) == ["2024-10-06T02:30:00+11:00"]


def test_every_tick_is_in_utc():
    [tick] = compile_schedule("0 6 * * *", ZoneInfo("Asia/Tokyo")).ticks_on(date(2026, 1, 14))
    assert tick == datetime(2026, 1, 13, 21, 0, tzinfo=UTC) and tick.tzinfo is UTC


def test_next_and_latest_tick():
    schedule = compile_schedule("0 9 * * MON", NEW_YORK)
    wednesday = datetime(2026, 1, 14, 12, tzinfo=UTC)
    assert (
        schedule.next_after(wednesday).astimezone(NEW_YORK).isoformat()
        == "2026-01-19T09:00:00-05:00"
    )
    assert (
        schedule.latest_at_or_before(wednesday).astimezone(NEW_YORK).isoformat()
        == "2026-01-12T09:00:00-05:00"
    )
    exact = datetime(2026, 1, 12, 14, tzinfo=UTC)
    assert schedule.latest_at_or_before(exact) == exact


@pytest.mark.parametrize(
    "expression, fields",
    [
        ("@daily", "0 0 * * *"),
        ("@MIDNIGHT", "0 0 * * *"),
        ("@annually", "0 0 1 1 *"),
        ("0  6 * *   MON-FRI", "0 6 * * MON-FRI"),
        ("0 0 L * *", "0 0 L * *"),
        ("0 9 * * MON#2", "0 9 * * MON#2"),
        ("*/15 9-17 * JAN,JUL *", "*/15 9-17 * JAN,JUL *"),
    ],
)
def test_valid_expressions(expression, fields):
    assert check(expression) == fields


@pytest.mark.parametrize(
    "expression",
    ["0 0 31 2 *", "61 * * * *", "* * * *", "* * * * * *", "@reboot", "0 0 * * 8", "H * * * *", ""],
)
def test_invalid_expressions(expression):
    with pytest.raises(ScheduleError):
        check(expression)


ZONES = [
    ZoneInfo(name)
    for name in ("UTC", "America/New_York", "Europe/Riga", "Australia/Lord_Howe", "Pacific/Chatham")
]
EXPRESSIONS = [
    "0 * * * *",
    "30 1 * * *",
    "30 2 * * *",
    "*/20 * * * *",
    "0 3 * * SUN",
    "15 2,14 * * *",
    "0 0 1 * *",
    "45 23 * * *",
]
instants = st.datetimes(
    min_value=datetime(2024, 1, 1), max_value=datetime(2026, 12, 31), timezones=st.just(UTC)
)


@settings(max_examples=150, deadline=None)
@given(
    st.sampled_from(EXPRESSIONS),
    st.sampled_from(ZONES),
    instants,
    st.integers(1, 72 * 60),
    st.integers(1, 72 * 60),
)
def test_split_invariance(expression, zone, start, first_minutes, second_minutes):
    """Asking for (a, c] gives the same ticks as (a, b] then (b, c]: one-shot equals daemon."""
    schedule = compile_schedule(expression, zone)
    middle = start + timedelta(minutes=first_minutes)
    end = middle + timedelta(minutes=second_minutes)
    whole = schedule.ticks(start, end)
    assert whole == schedule.ticks(start, middle) + schedule.ticks(middle, end)
    assert whole == sorted(set(whole))
    assert all(start < tick <= end and tick.tzinfo is UTC for tick in whole)


@settings(max_examples=150, deadline=None)
@given(st.sampled_from(EXPRESSIONS), st.sampled_from(ZONES), instants)
def test_ticks_match_the_expression_unless_moved_to_a_dst_jump(expression, zone, start):
    schedule = compile_schedule(expression, zone)
    ticks = schedule.ticks(start, start + timedelta(days=3))
    walls = [tick.astimezone(zone).replace(tzinfo=None) for tick in ticks]
    for wall, tick in zip(walls, ticks, strict=False):
        if not croniter.match(schedule.expression, wall):
            # Only a fixed-time job whose wall time was skipped moves, to the jump itself.
            before = (tick - timedelta(seconds=1)).astimezone(zone).utcoffset()
            assert schedule.is_fixed_time and tick.astimezone(zone).utcoffset() > before
    if schedule.is_fixed_time:
        assert len(walls) == len(set(walls)), "a fixed-time job fired twice at one wall time"


def croniter_accepts(fields: str) -> bool:
    try:
        croniter(fields, datetime(2000, 1, 1)).get_next(datetime)
    except (ValueError, KeyError):
        return False
    return True


field_item = st.one_of(
    st.just("*"),
    st.integers(0, 70).map(str),
    st.tuples(st.integers(0, 40), st.integers(0, 40)).map(lambda r: f"{r[0]}-{r[1]}"),
    st.tuples(st.sampled_from(["*", "1-20", "3", "10-5"]), st.integers(0, 70)).map(
        lambda s: f"{s[0]}/{s[1]}"
    ),
    st.sampled_from(
        [
            "jan",
            "FEB",
            "mon",
            "Sun",
            "sat-sun",
            "mon-fri",
            "L",
            "1#2",
            "15W",
            "?",
            "jan-mar",
            "x",
            "",
            "-1",
            "1-",
            "5/",
        ]
    ),
)
field = st.lists(field_item, min_size=1, max_size=3).map(",".join)


@settings(max_examples=2000, deadline=None)
@given(st.tuples(field, field, field, field, field).map(" ".join))
def test_expressions_vouched_for_without_croniter_are_accepted_by_croniter(fields):
    from cronflow.decide.schedule import _plainly_valid

    if _plainly_valid(fields):
        assert croniter_accepts(fields), fields


@pytest.mark.parametrize(
    "fields",
    [
        "0 6 * * *",
        "*/15 9-17 * * MON-FRI",
        "0 0 29 2 *",
        "30 1 1,15 * *",
        "0 0 * * 7",
        "5/15 * * * *",
    ],
)
def test_common_expressions_are_vouched_for_without_croniter(fields):
    from cronflow.decide.schedule import _plainly_valid

    assert _plainly_valid(fields) and croniter_accepts(fields)


def test_a_run_with_nothing_due_does_not_import_croniter(tmp_path):
    import subprocess
    import sys

    (tmp_path / "jobs.toml").write_text('[jobs.a]\ncommand = "true"\nschedule = "0 3 29 2 *"\n')
    code = (
        "import sys; from cronflow.cli.main import main; sys.argv = ['cronflow', 'run']\n"
        "try:\n    main()\nexcept SystemExit:\n    pass\n"
        "print('croniter loaded:', 'croniter' in sys.modules)"
    )
    run = [sys.executable, "-c", code]
    first = subprocess.run(run, capture_output=True, text=True, cwd=tmp_path)
    assert "croniter loaded: True" in first.stdout  # first sight computes the next tick
    second = subprocess.run(run, capture_output=True, text=True, cwd=tmp_path)
    assert "croniter loaded: False" in second.stdout, second.stdout + second.stderr


@pytest.mark.parametrize(
    "expression, words",
    [
        ("* * * * *", "every minute"),
        ("*/5 * * * *", "every 5 minutes"),
        ("15 * * * *", "hourly at :15"),
        ("0,30 * * * *", "hourly at :00 and :30"),
        ("30 */2 * * *", "every 2 hours at :30"),
        ("0 1-23/2 * * *", "every 2 hours at :00 from 01:00"),
        ("0 */6 * * *", "every 6 hours at :00"),
        ("0 8,12,16 * * *", "daily at 08:00, 12:00 and 16:00"),
        ("23 0-20/2 * * *", "every 2 hours at :23 from 00:23 to 20:23"),
        ("0 8-18 * * *", "hourly at :00 from 08:00 to 18:59"),
        ("* 9 * * *", "every minute from 09:00 to 09:59"),
        ("0 6 * * *", "daily at 06:00"),
        ("0 6,18 * * *", "daily at 06:00 and 18:00"),
        ("15 4 * * 1", "at 04:15 on Mondays"),
        ("15 4 * * MON", "at 04:15 on Mondays"),
        ("@weekly", "at 00:00 on Sundays"),
        ("0 0 * * 7", "at 00:00 on Sundays"),
        ("5 4 * * sun", "at 04:05 on Sundays"),
        ("0 9 * * 1-5", "at 09:00 on weekdays (Monday to Friday)"),
        ("0 9 * * mon-wed", "at 09:00 on Monday to Wednesday"),
        ("0 9 * * mon,wed,fri", "at 09:00 on Mondays, Wednesdays and Fridays"),
        ("0 10 * * 6,0", "at 10:00 on Saturdays and Sundays"),
        ("@monthly", "at 00:00 on the 1st"),
        ("0 0 1,15 * *", "at 00:00 on the 1st and 15th"),
        ("0 0 22 * *", "at 00:00 on the 22nd"),
        ("0 0 1-7 * *", "at 00:00 on the 1st to 7th"),
        ("0 0 */3 * *", "at 00:00 on every 3rd day from the 1st"),
        ("@yearly", "at 00:00 on the 1st of January"),
        ("0 0 1 1,4,7,10 *", "at 00:00 on the 1st of January, April, July and October"),
        ("0 3 * 6-8 *", "daily at 03:00 from June to August"),
        ("0 12 * jan *", "daily at 12:00 in January"),
        ("0 0 */2 * 1", "at 00:00 on Mondays falling on odd days"),
        ("0 0 1,15 * 1", "at 00:00 on the 1st and 15th and on Mondays"),
        (
            "*/10 9-17 * * 1-5",
            "every 10 minutes from 09:00 to 17:59 on weekdays (Monday to Friday)",
        ),
        ("0 0 L * *", "at 00:00 on the last day of the month"),  # Quartz's L, in words
    ],
)
def test_schedules_are_described_in_english(expression, words):
    assert describe(expression) == words
