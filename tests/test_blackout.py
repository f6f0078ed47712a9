"""`[blackout]` windows: nothing starts inside one (the clock's ticks, retries, manual runs);
the ticks inside are decided when it ends, each job's catch-up policy saying which run and
which are recorded missed with the window's name. Runs go through a real engine on an
injected clock, counted by the effects of their processes."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from cronflow.calendars import held_until
from cronflow.decide.tick import Housekeeping, decide_tick
from cronflow.load.calendar_tables import window
from cronflow.model import EventType, RunStatus
from cronflow.state.store import Store
from tests.conftest import load, real_engine, refused, run_cli
from tests.fakes import FakeClock

BERLIN = ZoneInfo("Europe/Berlin")


def berlin(*args: int) -> datetime:
    return datetime(*args, tzinfo=BERLIN)


def effects(folder: Path) -> list[str]:
    path = folder / "effects"
    return path.read_text().splitlines() if path.exists() else []


def events(folder: Path):
    return Store(folder / ".cronflow").read().events


JOBS = """
[cronflow]
timezone = "Europe/Berlin"

[blackout]
maintenance = "01:00..02:00"

[jobs.latest]
command = 'echo "latest ${CRONFLOW_LOGICAL_TIME#*T}" >> effects'
schedule = "*/20 * * * *"

[jobs.all]
command = 'echo "all ${CRONFLOW_LOGICAL_TIME#*T}" >> effects'
schedule = "*/20 * * * *"
catchup = "all"
"""


def test_nothing_starts_inside_and_the_held_ticks_follow_catchup_when_it_ends(write_jobs, tmp_path):
    path = write_jobs(JOBS)
    clock = FakeClock(berlin(2026, 3, 2, 0, 40, 5))
    engine = real_engine(load(path), clock)
    engine.tick()
    for _ in range(9):  # every 10 minutes to 02:10
        clock.advance(timedelta(minutes=10))
        engine.tick()
    ran = [line[: line.index("+")] for line in effects(tmp_path)]
    assert sorted(ran[:2]) == ["all 00:40:00", "latest 00:40:00"]
    # 01:00 .. 01:40 held; at 02:00 the window is over
    assert sorted(ran[2:]) == [
        "all 01:00:00",
        "all 01:20:00",
        "all 01:40:00",
        "all 02:00:00",
        "latest 02:00:00",
    ]
    missed = [e for e in events(tmp_path) if e.event is EventType.MISSED]
    assert [(e.job, e.missed_ticks) for e in missed] == [("latest", 3)]
    assert (
        "blackout maintenance (01:00..02:00) held them, then catchup = latest" in missed[0].reason
    )


def test_a_decision_inside_a_window_wakes_when_it_ends(write_jobs):
    jobfile = load(write_jobs(JOBS))
    decision = decide_tick(
        jobfile,
        history=Store(jobfile.settings.state_dir).index(),
        watermarks={},
        now=berlin(2026, 3, 2, 1, 10),
        boot=None,
        stale_alerted=frozenset(),
        asset_states=(),
        housekeeping=Housekeeping(last_prune=None, last_retention=None),
    )
    assert decision.runs == [] and decision.watermarks == {}
    assert decision.wake.at == berlin(2026, 3, 2, 2, 0)


RETRIED = """
[cronflow]
timezone = "Europe/Berlin"

[blackout]
maintenance = "01:00..02:00"

[jobs.flaky]
command = 'echo "try $CRONFLOW_ATTEMPT" >> effects; test -e fixed || { touch fixed; exit 1; }'
schedule = "50 0 * * *"
retries = 1
retry_delay = "15m"
"""


def test_a_retry_due_inside_a_window_waits_for_its_end_with_its_tries_counted(write_jobs, tmp_path):
    path = write_jobs(RETRIED)
    clock = FakeClock(berlin(2026, 3, 2, 0, 50, 5))
    engine = real_engine(load(path), clock)
    engine.tick()  # try 1 fails at 00:50; try 2 would be at 01:05, inside the window
    assert effects(tmp_path) == ["try 1"]
    latest = events(tmp_path)[-1]
    assert latest.status is RunStatus.INTERRUPTED and latest.attempt == 1
    assert "held by blackout maintenance (01:00..02:00) until 2026-03-02 02:00" in latest.reason
    clock.advance(timedelta(minutes=30))
    engine.tick()  # 01:35: still inside
    assert effects(tmp_path) == ["try 1"]
    clock.advance(timedelta(minutes=30))
    engine.tick()  # 02:05
    assert effects(tmp_path) == ["try 1", "try 2"]
    assert events(tmp_path)[-1].status is RunStatus.SUCCESS


def test_a_run_asked_for_inside_a_window_waits_and_status_says_until_when(write_jobs, tmp_path):
    now = datetime.now(BERLIN)
    start, end = now - timedelta(minutes=30), now + timedelta(minutes=30)
    path = write_jobs(
        '[cronflow]\ntimezone = "Europe/Berlin"\n[blackout]\nnow = "'
        f'{start:%Y-%m-%d %H:%M}..{end:%Y-%m-%d %H:%M}"\n'
        "[jobs.a]\ncommand = 'echo a >> effects'\n"
    )
    done = run_cli("run", "--job", "a", "--jobs", str(path), cwd=tmp_path)
    assert "Traceback" not in done.stderr
    assert effects(tmp_path) == []
    (held,) = events(tmp_path)
    assert held.status is RunStatus.WAITING and f"until {end:%Y-%m-%d %H:%M}" in held.reason
    status = run_cli("status", "--json", "--jobs", str(path), cwd=tmp_path)
    said = json.loads(status.stdout)["cronflow"]["blackout"]
    assert said.startswith("blackout now (") and f"until {end:%Y-%m-%d %H:%M}" in said
    # the first decision after the window runs it
    clock = FakeClock(end.astimezone(UTC) + timedelta(minutes=1))
    real_engine(load(path), clock).tick()
    assert effects(tmp_path) == ["a"]


def test_windows_in_a_row_hold_as_one_and_weekly_windows_cross_the_week_end():
    chained = (window("a", "Sat 22:00..Sun 06:00"), window("b", "Sun 06:00..Sun 07:30"))
    found = held_until(chained, berlin(2026, 3, 7, 23, 0), BERLIN)
    assert found is not None and found[0].name == "a"
    assert found[1] == berlin(2026, 3, 8, 7, 30)
    assert held_until(chained, berlin(2026, 3, 8, 7, 30), BERLIN) is None
    round_week = (window("w", "Sun 23:00..Mon 01:00"),)
    assert held_until(round_week, berlin(2026, 3, 9, 0, 30), BERLIN) is not None
    assert held_until(round_week, berlin(2026, 3, 9, 1, 0), BERLIN) is None
    dated = (window("d", "2026-12-24..2026-12-26"),)
    assert held_until(dated, berlin(2026, 12, 26, 23, 59), BERLIN)[1] == berlin(2026, 12, 27)


@pytest.mark.parametrize(
    ("value", "said"),
    [
        ('"Sat 22:00..Sux 06:00"', '"Sux" is not a day of the week'),
        ('"25:00..26:00"', "holds a time that does not exist"),
        ('"02:00..02:00"', "is empty (it ends where it begins)"),
        ('"2026-12-27..2026-12-24"', "ends before it begins"),
        ('"weekends"', '"weekends" is not a window'),
        ("3", "must be a window or a list of them, not a number"),
    ],
)
def test_bad_windows_are_refused_with_the_forms_that_work(tmp_path, value, said):
    message = refused(tmp_path, f'[blackout]\nx = {value}\n[jobs.a]\ncommand = "true"\n')
    assert said in message and "Sat 22:00..Sun 06:00" in message, message


def test_next_and_why_say_which_runs_a_window_holds(write_jobs, tmp_path):
    write_jobs(JOBS)
    shown = run_cli(
        "next",
        "--job",
        "latest",
        "--count",
        "5",
        "--from",
        "2026-03-02T00:50+01:00",
        "--json",
        "--jobs",
        "jobs.toml",
        cwd=tmp_path,
    )
    assert shown.returncode == 0, shown.stderr
    notes = {t["logical_time"][11:16]: t["note"] for t in json.loads(shown.stdout)["ticks"]}
    assert (
        notes["01:00"]
        == notes["01:40"]
        == ("held by blackout maintenance (01:00..02:00): decided when it ends (catchup = latest)")
    )
    assert notes["02:00"] == ""
    story = run_cli(
        "why", "latest", "--at", "2026-03-02T01:20", "--json", "--jobs", "jobs.toml", cwd=tmp_path
    )
    facts = {f["topic"]: f["text"] for f in json.loads(story.stdout)["facts"]}
    assert facts["blackout"].startswith(
        "its start falls in blackout maintenance (01:00..02:00): nothing starts inside one"
    )
