"""Business calendars: `[calendars.NAME]` (public holidays from the `holidays` package,
dates, ranges, weekdays), a job's `skip_on` / `run_on` / `shift`. A skipped day's tick is
not a run: the clock never runs it, a backfill leaves it out, `next`, `why` and dry runs say
why, and `status` counts it. Schedules are real (croniter and the holidays data); the runs
go through a real engine on an injected clock and are counted by their processes' effects."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cronflow.calendars import Calendar, Days, Shift, coverage_gaps
from cronflow.decide.calendar_days import moved_from, skipped_ticks
from cronflow.decide.schedule import compile_schedule
from cronflow.load.calendar_tables import weekdays
from tests.conftest import load, real_engine, refused, run_cli
from tests.fakes import FakeClock

BERLIN = ZoneInfo("Europe/Berlin")
HOLIDAYS = Calendar("holidays", holidays="DE-BY", dates=frozenset({date(2026, 12, 24)}))
WEEKEND = Calendar("weekend", weekdays=frozenset({6, 7}))


def local(instants: list[datetime]) -> list[str]:
    return [i.astimezone(BERLIN).strftime("%a %m-%d %H:%M") for i in instants]


def berlin(*args: int) -> datetime:
    return datetime(*args, tzinfo=BERLIN)


# ---- the days a schedule fires on ---------------------------------------------------------------


def test_skip_on_leaves_out_holidays_listed_dates_and_weekends_with_the_reason():
    schedule = compile_schedule("0 6 * * *", BERLIN, False, Days(skip_on=(HOLIDAYS, WEEKEND)))
    ticks = schedule.ticks(berlin(2026, 12, 22), berlin(2026, 12, 29, 12))
    assert local(ticks) == [
        "Tue 12-22 06:00",
        "Wed 12-23 06:00",
        "Mon 12-28 06:00",
        "Tue 12-29 06:00",
    ]
    skipped = skipped_ticks(schedule, berlin(2026, 12, 22), berlin(2026, 12, 29, 12))
    assert [(s.tick.astimezone(BERLIN).day, s.reason) for s in skipped] == [
        (24, "holidays: 2026-12-24 is listed"),
        (25, "holidays: Christmas Day (DE-BY)"),
        (26, "holidays: Second Day of Christmas (DE-BY)"),
        (27, "weekend: a Sunday"),
    ]
    # next_after and the latest tick agree with the same days
    assert schedule.next_after(berlin(2026, 12, 23, 7)) == berlin(2026, 12, 28, 6)
    assert schedule.latest_at_or_before(berlin(2026, 12, 27, 23)) == berlin(2026, 12, 23, 6)


def test_run_on_keeps_only_the_calendars_days_and_a_calendar_of_past_days_gives_no_tick():
    closing = Calendar("closing", ranges=((date(2027, 1, 28), date(2027, 2, 2)),))
    schedule = compile_schedule("0 18 * * *", BERLIN, False, Days(run_on=(closing,)))
    ticks = schedule.ticks(berlin(2027, 1, 1), berlin(2027, 3, 1))
    assert [t.astimezone(BERLIN).day for t in ticks] == [28, 29, 30, 31, 1, 2]
    gone = Calendar("gone", dates=frozenset({date(2020, 1, 1)}))
    never = compile_schedule("* * * * *", BERLIN, False, Days(run_on=(gone,)))
    assert never.next_after(berlin(2026, 12, 1)) is None  # and it does not hang


def test_shift_previous_business_day_pays_before_the_holiday_and_names_where_from():
    payroll = compile_schedule(
        "0 9 25 * *", BERLIN, False, Days(skip_on=(HOLIDAYS, WEEKEND), shift=Shift.PREVIOUS)
    )
    ticks = payroll.ticks(berlin(2026, 1, 1), berlin(2027, 1, 1))
    assert len(ticks) == 12  # once a month, whatever the day
    assert local([ticks[4], ticks[11]]) == ["Fri 05-22 09:00", "Wed 12-23 09:00"]
    assert moved_from(payroll, ticks[11]) == (
        "moved from Fri 2026-12-25 (holidays: Christmas Day (DE-BY))"
    )
    assert moved_from(payroll, ticks[1]) == ""  # 25 February 2026 is a Wednesday
    # the moved tick is due on the 23rd: it comes before the day it stands for
    assert payroll.next_after(berlin(2026, 12, 1)) == berlin(2026, 12, 23, 9)


def test_shift_next_business_day_and_a_daily_job_shifted_onto_its_own_tick_runs_once():
    payroll = compile_schedule(
        "0 9 25 * *", BERLIN, False, Days(skip_on=(HOLIDAYS, WEEKEND), shift=Shift.NEXT)
    )
    assert payroll.next_after(berlin(2026, 12, 1)) == berlin(2026, 12, 28, 9)
    # from inside the holidays: the 25th's tick still comes on the 28th
    assert payroll.ticks(berlin(2026, 12, 27), berlin(2026, 12, 29)) == [berlin(2026, 12, 28, 9)]
    daily = compile_schedule(
        "0 9 * * *", BERLIN, False, Days(skip_on=(HOLIDAYS,), shift=Shift.NEXT)
    )
    ticks = daily.ticks(berlin(2026, 12, 23), berlin(2026, 12, 28, 12))
    assert local(ticks) == ["Wed 12-23 09:00", "Sun 12-27 09:00", "Mon 12-28 09:00"]


def test_a_tick_shifted_into_a_dst_gap_runs_at_the_jump():
    # 28 March 2027, Berlin: 02:00 jumps to 03:00. The 27th's 02:30 moves onto the 28th.
    skip = Calendar("skip", dates=frozenset({date(2027, 3, 27)}))
    schedule = compile_schedule(
        "30 2 27 3 *", BERLIN, False, Days(skip_on=(skip,), shift=Shift.NEXT)
    )
    (tick,) = schedule.ticks(berlin(2027, 3, 1), berlin(2027, 4, 1))
    assert tick == datetime(2027, 3, 28, 1, 0, tzinfo=UTC)  # 03:00 summer time, the jump


def test_weekday_names_ranges_and_ranges_round_the_week_end():
    assert weekdays("mon-fri") == frozenset({1, 2, 3, 4, 5})
    assert weekdays("sat,sun") == weekdays(["Saturday", "Sunday"]) == frozenset({6, 7})
    assert weekdays("fri-mon") == frozenset({5, 6, 7, 1})


DAY_SETS = st.frozensets(st.dates(date(2026, 1, 1), date(2026, 3, 31)), max_size=40)


@given(
    skipped=DAY_SETS,
    expression=st.sampled_from(["0 9 * * *", "0 */7 * * *", "15 9 1,15 * *", "0 9 * * 1-5"]),
    shift=st.sampled_from([None, Shift.NEXT, Shift.PREVIOUS]),
)
def test_ticks_agree_with_a_model_that_moves_each_tick_by_itself(skipped, expression, shift):
    """The model: take every tick of the expression, move or drop each on its own, sort,
    keep each instant once. cronflow produces ticks a day at a time, lazily."""
    calendar = Calendar("c", dates=skipped)
    days = Days(skip_on=(calendar,), shift=shift)
    schedule = compile_schedule(expression, BERLIN, False, days)
    start, end = berlin(2026, 1, 20), berlin(2026, 3, 10)
    raw = compile_schedule(expression, BERLIN).ticks(
        start - timedelta(days=120), end + timedelta(days=120)
    )
    model = set()
    for tick in raw:
        day = tick.astimezone(BERLIN).date()
        target = day
        while target in skipped and shift is not None:
            target += timedelta(days=1 if shift is Shift.NEXT else -1)
        if target in skipped:
            continue
        wall = datetime.combine(target, tick.astimezone(BERLIN).time()).replace(tzinfo=BERLIN)
        model.add(wall.astimezone(UTC))
    expected = sorted(t for t in model if start < t <= end)
    assert schedule.ticks(start, end) == expected
    if expected:
        assert schedule.next_after(start) == expected[0]
        assert schedule.latest_at_or_before(end) == expected[-1]


def test_holiday_data_that_does_not_cover_the_next_year_is_said():
    assert coverage_gaps(HOLIDAYS, date(2026, 12, 1)) == []
    beyond = coverage_gaps(Calendar("far", holidays="DE"), date(2100, 6, 1))
    assert len(beyond) == 1 and "not 2101" in beyond[0] and "calendar far" in beyond[0]
    estimated = coverage_gaps(Calendar("gulf", holidays="AE"), date(2090, 1, 1))
    assert estimated and "are estimates" in estimated[0]


# ---- the jobs file ------------------------------------------------------------------------------

CALENDARS = """
[cronflow]
timezone = "Europe/Berlin"

[calendars.holidays]
holidays = "DE-BY"
dates = ["2026-12-24", "2026-12-31"]

[calendars.weekend]
weekdays = "sat,sun"
"""


@pytest.mark.parametrize(
    ("table", "said"),
    [
        ('[calendars.x]\nholidays = "XX"\n', '"XX" is not a country the holidays package knows'),
        ('[calendars.x]\nholidays = "DE-ZZ"\n', '"ZZ" is not a subdivision of DE'),
        ('[calendars.x]\nweekdays = "mon-fry"\n', '"fry" is not a day of the week'),
        ('[calendars.x]\nranges = ["2027-01-02..2026-12-24"]\n', "ends before it begins"),
        ('[calendars.x]\ndates = ["24.12.2026"]\n', "'24.12.2026' is not a date"),
        ("[calendars.x]\n", "names no days"),
        (
            '[jobs.a]\ncommand = "true"\nschedule = "@daily"\nskip_on = ["holiday"]\n',
            '"holiday" is not a calendar of this file. Did you mean "holidays"?',
        ),
        (
            '[jobs.a]\ncommand = "true"\nschedule = "@daily"\nshift = "next_business_day"\n',
            "shift moves the tick of a day the calendars skip, and the job has no calendar",
        ),
        (
            '[jobs.a]\ncommand = "true"\nschedule = "@daily"\n[jobs.b]\ncommand = "true"\n'
            'depends_on = ["a"]\nskip_on = ["holidays"]\n',
            "skip_on applies to a job's own schedule, and b has none",
        ),
    ],
)
def test_bad_calendars_are_refused_with_the_line_and_what_to_do(tmp_path, table, said):
    message = refused(tmp_path, CALENDARS + table + ('[jobs.z]\ncommand = "true"\n'))
    assert said in message, message


def test_a_defaults_skip_on_applies_to_the_scheduled_jobs_only(write_jobs):
    path = write_jobs(
        CALENDARS
        + '[defaults]\nskip_on = ["holidays"]\n'
        + '[jobs.a]\ncommand = "true"\nschedule = "@daily"\n'
        + '[jobs.b]\ncommand = "true"\ndepends_on = ["a"]\n'
    )
    jobs = load(path).jobs
    assert jobs["a"].cadence.days is not None
    assert jobs["b"].cadence == jobs["a"].cadence  # b runs after a's ticks, calendars and all


# ---- the clock, backfills, next, why and status, through the real commands -------------------

JOBS = (
    CALENDARS
    + """
[jobs.report]
command = 'echo "report ${CRONFLOW_LOGICAL_TIME%%T*}" >> effects'
schedule = "0 6 * * *"
skip_on = ["holidays", "weekend"]

[jobs.publish]
command = 'echo "publish ${CRONFLOW_LOGICAL_TIME%%T*}" >> effects'
depends_on = ["report"]

[jobs.payroll]
command = 'echo "payroll ${CRONFLOW_LOGICAL_TIME%%T*}" >> effects'
schedule = "0 9 25 * *"
skip_on = ["holidays", "weekend"]
shift = "previous_business_day"
"""
)


def effects(folder: Path) -> list[str]:
    path = folder / "effects"
    return path.read_text().splitlines() if path.exists() else []


def cli(folder: Path, *args: str) -> str:
    done = run_cli(*args, "--jobs", str(folder / "jobs.toml"), cwd=folder)
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    return done.stdout


def tick_hourly(path: Path, start: datetime, days: int) -> None:
    """The engine's clock from `start`, a tick every hour for `days` days."""
    clock = FakeClock(start)
    engine = real_engine(load(path), clock)
    engine.tick()
    for _ in range(days * 24):
        clock.advance(timedelta(hours=1))
        engine.tick()


def test_the_clock_runs_business_days_only_and_counts_the_skipped_ticks(write_jobs, tmp_path):
    path = write_jobs(JOBS)
    tick_hourly(path, berlin(2026, 12, 22, 5, 59, 30), days=8)  # 22 .. 29 December
    assert effects(tmp_path) == [
        "report 2026-12-22",
        "publish 2026-12-22",
        "report 2026-12-23",
        "publish 2026-12-23",
        "payroll 2026-12-23",  # the 25th's pay, the business day before
        "report 2026-12-28",
        "publish 2026-12-28",
        "report 2026-12-29",
        "publish 2026-12-29",
    ]
    status = json.loads(cli(tmp_path, "status", "--json"))
    rows = {row["job"]: row for row in status["jobs"]}
    assert rows["report"]["calendar"] == (
        "4 tick(s) skipped by its calendars, the last 2026-12-27 06:00 (weekend: a Sunday)"
    )
    assert rows["publish"]["calendar"] is None and rows["payroll"]["calendar"] is None
    log = (tmp_path / ".cronflow").rglob("runs*.jsonl")
    assert not any('"skipped"' in p.read_text() for p in log)  # a count, not an event a tick


def test_a_backfill_leaves_skipped_days_out_and_its_dry_run_says_why(write_jobs, tmp_path):
    write_jobs(JOBS)
    plan = cli(tmp_path, "run", "--date", "2025-12-23..2025-12-29", "--dry-run", "-v")
    assert "skipped by calendar  holidays: Christmas Day (DE-BY)" in plan
    assert "skipped by calendar  weekend: a Sunday" in plan
    said = cli(tmp_path, "run", "--date", "2025-12-23..2025-12-29")
    assert "4 tick(s) skipped by calendar" in said
    assert sorted(effects(tmp_path)) == [
        "payroll 2025-12-24",  # the 25th's pay: Christmas Day, so the business day before
        "publish 2025-12-23",
        "publish 2025-12-24",
        "publish 2025-12-29",
        "report 2025-12-23",
        "report 2025-12-24",
        "report 2025-12-29",
    ]


def test_next_and_why_show_skipped_days_and_moved_ticks(write_jobs, tmp_path):
    write_jobs(JOBS)
    upcoming = json.loads(
        cli(tmp_path, "next", "--count", "2", "--from", "2026-12-23T07:00+01:00", "--json")
    )["ticks"]
    rows = [(t["job"], t["logical_time"][:10], t["note"], t["skipped_ticks"]) for t in upcoming]
    assert rows[:5] == [
        ("payroll", "2026-12-23", "moved from Fri 2026-12-25 (holidays: Christmas Day (DE-BY))", 0),
        ("report", "2026-12-24", "skipped by calendar: holidays: 2026-12-24 is listed", 1),
        ("report", "2026-12-25", "skipped by calendar: holidays: Christmas Day (DE-BY)", 1),
        (
            "report",
            "2026-12-26",
            "skipped by calendar: holidays: Second Day of Christmas (DE-BY)",
            1,
        ),
        ("report", "2026-12-27", "skipped by calendar: weekend: a Sunday", 1),
    ]
    assert ("report", "2026-12-28", "", 0) in rows
    story = json.loads(cli(tmp_path, "why", "report", "--at", "2026-12-25T06:00", "--json"))
    facts = [(f["topic"], f["text"]) for f in story["facts"]]
    assert ("calendar", "skipping days of holidays and weekend") in facts
    assert (
        "skipped",
        "2026-12-25 is skipped by its calendars (holidays: Christmas Day (DE-BY)): not runs",
    ) in facts
    assert not any("is not a tick" in text for _, text in facts)


def test_the_airflow_export_warns_about_calendars_and_blackout_windows(write_jobs):
    from cronflow.interop.airflow import export_airflow

    path = write_jobs(JOBS + '[blackout]\nbackups = "Sat 22:00..Sun 06:00"\n')
    exported = {f.dag_id: f for f in export_airflow(load(path), now=datetime.now(UTC), decided={})}
    warnings = exported["report"].warnings
    assert any(
        w.startswith(
            "calendars (skipping days of holidays and weekend): the DAG's first task, _calendars"
        )
        for w in warnings
    ), warnings
    assert "blackout backups (Sat 22:00..Sun 06:00): not exported" in " ".join(warnings)


def test_an_idle_tick_with_calendars_loads_neither_the_file_nor_the_holidays(tmp_path):
    """As cron runs it: the second `cronflow run` answers from the idle stamp, which knows
    the next tick its calendars allow."""
    import os
    import subprocess
    import sys

    path = tmp_path / "jobs.toml"
    path.write_text(
        CALENDARS
        + '[blackout]\nbackups = "Sat 22:00..Sun 06:00"\n'
        + '[jobs.leap]\ncommand = "true"\nschedule = "0 3 29 2 *"\nskip_on = ["holidays"]\n'
    )
    env = {k: v for k, v in os.environ.items() if k != "CRONFLOW_JOBS"}
    command = [sys.executable, "-m", "cronflow", "run", "--jobs", str(path)]
    first = subprocess.run(command, capture_output=True, text=True, env=env)
    assert first.returncode == 0, first.stderr
    probe = (
        "import sys; sys.argv = ['cronflow', 'run', '--jobs', sys.argv[1]];"
        "from cronflow.__main__ import main; main();"
        "print(sorted(m for m in ('typer', 'cronflow.load.jobs_toml', 'holidays') if m in sys.modules))"
    )
    second = subprocess.run(
        [sys.executable, "-c", probe, str(path)], capture_output=True, text=True, env=env
    )
    assert second.returncode == 0, second.stderr
    assert second.stdout.strip() == "[]"


def test_a_scheduled_job_after_a_skipped_day_uses_its_upstreams_newest_tick(write_jobs, tmp_path):
    """`digest` runs every day at 07:00 after `report`, which skips holidays: on Christmas
    it takes the report of the 23rd instead of waiting for one that never comes."""
    path = write_jobs(
        JOBS
        + """
[jobs.digest]
command = 'echo "digest ${CRONFLOW_LOGICAL_TIME%%T*}" >> effects'
schedule = "0 7 * * *"
depends_on = ["report"]
"""
    )
    tick_hourly(path, berlin(2026, 12, 23, 5, 59, 30), days=3)  # 23 .. 25 December
    digests = [line for line in effects(tmp_path) if line.startswith("digest")]
    assert digests == ["digest 2026-12-23", "digest 2026-12-24", "digest 2026-12-25"]
