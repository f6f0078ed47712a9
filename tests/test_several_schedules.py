"""A job with several schedules: one logical time per tick of any of them, each tick once
where two coincide; proven by the effects of the job's own processes over a week of
one-shot ticks on an injected clock, and by the commands around it (validate, next, why)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from cronflow.decide.schedule import ScheduleError, check, compile_schedule
from cronflow.decide.schedule_words import describe
from tests.conftest import load, real_engine, run_cli
from tests.fakes import FakeClock

BERLIN = ZoneInfo("Europe/Berlin")
JOBS = """
[cronflow]
timezone = "Europe/Berlin"
[jobs.shifts]
command = 'echo "$CRONFLOW_LOGICAL_TIME" >> effects'
schedule = ["0 6 * * 1-5", "0 9 * * 6,7", "0 6 * * 1"]  # Monday 06:00 is in two of them
"""


def test_the_ticks_of_every_schedule_each_once():
    expression = check("0 6 * * 1-5|0 9 * * 6,7|0 6 * * 1")
    assert expression == "0 6 * * 1-5 | 0 9 * * 6,7 | 0 6 * * 1"
    schedule = compile_schedule(expression, BERLIN)
    start = datetime(2026, 1, 2, tzinfo=BERLIN)  # a Friday
    ticks = schedule.ticks(start, start + timedelta(days=7))
    assert [tick.astimezone(BERLIN).strftime("%a %H:%M") for tick in ticks] == [
        "Fri 06:00",
        "Sat 09:00",
        "Sun 09:00",
        "Mon 06:00",  # once, though two schedules have it
        "Tue 06:00",
        "Wed 06:00",
        "Thu 06:00",
    ]
    assert schedule.latest_at_or_before(ticks[2] + timedelta(hours=1)) == ticks[2]
    assert schedule.next_after(ticks[2]) == ticks[3]
    assert describe(expression) == (
        "at 06:00 on weekdays (Monday to Friday) and at 09:00 on Saturdays and Sundays "
        "and at 06:00 on Mondays"
    )


def test_over_a_dst_night_each_schedule_keeps_its_own_rule():
    """Berlin, 2026-03-29: 02:30 is skipped. The fixed-time schedule runs at the jump; the
    every-30-minutes one has no 02:00 or 02:30 that night (cron's rules, each its own)."""
    schedule = compile_schedule(check("30 2 * * *|*/30 1-3 29 3 *"), BERLIN)
    night = datetime(2026, 3, 29, 0, 0, tzinfo=BERLIN)
    walls = [
        t.astimezone(BERLIN).strftime("%H:%M")
        for t in schedule.ticks(night, night + timedelta(hours=5))
    ]
    assert walls == ["01:00", "01:30", "03:00", "03:30"]  # 02:30 at the jump is 03:00


def test_a_week_of_one_shot_ticks_runs_each_tick_once(tmp_path):
    (tmp_path / "jobs.toml").write_text(JOBS)
    jobfile = load(tmp_path / "jobs.toml")
    clock = FakeClock(datetime(2026, 1, 2, 5, 0, 30, tzinfo=UTC))  # Friday 06:00:30 in Berlin
    for _ in range(7 * 24):
        real_engine(jobfile, clock).tick()
        clock.advance(timedelta(hours=1))
    ran = (tmp_path / "effects").read_text().split()
    assert len(ran) == len(set(ran)) == 7  # Fri, Sat, Sun, Mon (once), Tue, Wed, Thu
    assert [datetime.fromisoformat(t).astimezone(BERLIN).strftime("%a %H:%M") for t in ran] == [
        "Fri 06:00",
        "Sat 09:00",
        "Sun 09:00",
        "Mon 06:00",
        "Tue 06:00",
        "Wed 06:00",
        "Thu 06:00",
    ]


def test_validate_next_and_why_take_a_list(tmp_path):
    (tmp_path / "jobs.toml").write_text(JOBS)
    assert run_cli("validate", cwd=tmp_path).returncode == 0
    shown = run_cli("next", "--from", "2026-01-03", "--count", "2", "--json", cwd=tmp_path)
    assert shown.returncode == 0, shown.stderr
    assert [tick["logical_time"][:16] for tick in json.loads(shown.stdout)["ticks"]] == [
        "2026-01-03T09:00",
        "2026-01-04T09:00",
    ]
    told = run_cli("why", "shifts", "--at", "2026-01-03T06:00", "--json", cwd=tmp_path)
    facts = [fact["text"] for fact in json.loads(told.stdout)["facts"]]
    assert any(
        'is not a tick of "0 9 * * 6,7": minute 0 matches, hour 9 does not' in f for f in facts
    )


@pytest.mark.parametrize(
    ("schedule", "words"),
    [
        ("[]", "must list one cron expression at least, and no @reboot"),
        ('["@reboot", "0 6 * * *"]', "must list one cron expression at least, and no @reboot"),
        ('["0 6 * * *", "0 25 * * *"]', '"0 25 * * *" is not a valid cron expression'),
    ],
)
def test_a_bad_list_is_a_clear_error(tmp_path, schedule, words):
    (tmp_path / "jobs.toml").write_text(f'[jobs.a]\ncommand = "true"\nschedule = {schedule}\n')
    checked = run_cli("validate", cwd=tmp_path)
    assert checked.returncode == 2 and words in checked.stderr and "Traceback" not in checked.stderr
    assert 'jobs.toml:3: job "a", key "schedule"' in checked.stderr


def test_check_names_the_bad_expression_of_a_list():
    with pytest.raises(ScheduleError, match='"0 25 \\* \\* \\*"'):
        check("0 6 * * *|0 25 * * *")


def test_day_rule_and_needs_both_day_fields(tmp_path):
    """`0 0 1-7 * 1`: cron runs on the 1st to the 7th and on every Monday; with day_rule =
    "and", on the first Monday of the month only (Prefect's day_or = False)."""
    (tmp_path / "jobs.toml").write_text(
        '[cronflow]\ntimezone = "UTC"\n'
        '[jobs.either]\ncommand = "true"\nschedule = "0 0 1-7 * 1"\n'
        '[jobs.both]\ncommand = "true"\nschedule = "0 0 1-7 * 1"\nday_rule = "and"\n'
    )
    shown = run_cli("next", "--from", "2026-01-31", "--count", "12", "--json", cwd=tmp_path)
    assert shown.returncode == 0, shown.stderr
    ticks = json.loads(shown.stdout)["ticks"]
    both = [t["logical_time"][:10] for t in ticks if t["job"] == "both"]
    either = [t["logical_time"][:10] for t in ticks if t["job"] == "either"]
    assert both[:2] == ["2026-02-02", "2026-03-02"]  # first Mondays
    assert either[:8] == [f"2026-02-0{day}" for day in range(1, 8)] + ["2026-02-09"]
    status = json.loads(run_cli("status", "--json", "--all", cwd=tmp_path).stdout)
    words = {row["job"]: row["schedule_words"] for row in status["jobs"]}
    assert words["both"] == "at 00:00 on Mondays falling on the 1st to 7th"
    assert words["either"] == "at 00:00 on the 1st to 7th and on Mondays"
