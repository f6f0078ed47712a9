"""The idle tick: a one-shot run that finds nothing due, answered from the stamp a full tick
left. It must never change a decision: proven by running the same minutes with and without it
and counting what the jobs' real processes did."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from cronflow.act import idle_tick
from cronflow.clock import CLOCK_TOLERANCE
from cronflow.model import EventType, RunEvent, RunKind, RunStatus
from cronflow.state import idle_stamp, layout
from cronflow.state.store import Store
from tests.conftest import load, real_engine
from tests.fakes import FakeClock

T0 = datetime(2026, 3, 28, 22, 0, tzinfo=UTC)  # Berlin moves to summer time at 01:00Z

JOBS = """
    [cronflow]
    keep_days = 0

    [jobs.every_seven]
    command = 'echo "every_seven $CRONFLOW_LOGICAL_TIME" >> {effects}'
    schedule = "*/7 * * * *"

    [jobs.berlin_night]
    command = 'echo "berlin_night $CRONFLOW_LOGICAL_TIME" >> {effects}'
    schedule = "30 1,2,3 * * *"
    timezone = "Europe/Berlin"

    [jobs.after_night]
    command = 'echo "after_night $CRONFLOW_LOGICAL_TIME" >> {effects}'
    depends_on = ["berlin_night"]

    [jobs.off]
    command = 'echo "off $CRONFLOW_LOGICAL_TIME" >> {effects}'
    schedule = "* * * * *"
    enabled = false
"""


def effects_of_minutes(folder: Path, minutes: int, use_idle: bool) -> tuple[list[str], int]:
    """Tick every minute from T0 as cron would; return what the jobs did, and how many ticks
    the idle stamp answered."""
    folder.mkdir()
    effects = folder / "effects"
    path = folder / "jobs.toml"
    path.write_text(JOBS.format(effects=effects).replace("\n    ", "\n"))
    jobfile = load(path)
    clock = FakeClock(T0)
    answered = 0
    for _ in range(minutes):
        if use_idle and idle_tick.answer(str(path), clock.now()):
            answered += 1
        else:
            real_engine(jobfile, clock).tick()
        clock.advance(timedelta(minutes=1))
    return (effects.read_text().splitlines() if effects.exists() else []), answered


def test_idle_ticks_decide_exactly_what_full_ticks_decide_across_a_dst_night(tmp_path):
    minutes = 5 * 60
    with_idle, answered = effects_of_minutes(tmp_path / "idle", minutes, use_idle=True)
    without, _ = effects_of_minutes(tmp_path / "full", minutes, use_idle=False)
    assert sorted(with_idle) == sorted(without)  # runs of one minute run side by side
    assert len(with_idle) == len(set(with_idle))  # each tick once
    assert (
        sum(line.startswith("every_seven") for line in with_idle) == 5 * 9
    )  # :00 to :56 each hour
    nights = [line.split()[1] for line in with_idle if line.startswith("berlin_night")]
    assert len(nights) >= 2  # 01:30 CET, the gap's 02:30, 03:30 CEST as schedule.py decides
    assert [line.split()[1] for line in with_idle if line.startswith("after_night")] == nights
    assert not any(line.startswith("off") for line in with_idle)
    assert answered > minutes * 0.8  # the point: most minutes never load the jobs file


NOON = datetime(2026, 1, 10, 12, 0, 30, tzinfo=UTC)


def ticked(folder: Path, jobs: str):
    """A jobs file (retention off, so no hourly prune) and the state a full tick left at NOON."""
    path = folder / "jobs.toml"
    path.write_text("[cronflow]\nkeep_days = 0\n" + jobs)
    clock = FakeClock(NOON)
    engine = real_engine(load(path), clock)
    engine.tick()
    return path, clock, engine


def event(job: str, logical_time: datetime, **fields) -> RunEvent:
    return RunEvent(
        job=job,
        logical_time=logical_time,
        run_id=f"{logical_time:%Y%m%dT%H%M%SZ}-abcdef",
        kind=RunKind.SCHEDULED,
        **fields,
    )


@pytest.fixture
def quiet_state(tmp_path):
    """One hourly job, and the state a full tick left at 12:00:30."""
    path, clock, _ = ticked(tmp_path, '[jobs.hourly]\ncommand = "true"\nschedule = "0 * * * *"\n')
    return path, clock


def test_the_stamp_answers_until_the_next_tick_and_writes_the_heartbeat(quiet_state):
    path, clock = quiet_state
    heartbeat = path.parent / ".cronflow" / layout.LAST_TICK
    assert idle_tick.answer(str(path), clock.now() + timedelta(minutes=20))
    assert heartbeat.read_text().startswith("2026-01-10T12:20:30")
    assert idle_tick.answer(str(path), datetime(2026, 1, 10, 12, 59, 59, tzinfo=UTC))
    assert not idle_tick.answer(str(path), datetime(2026, 1, 10, 13, 0, tzinfo=UTC))  # due


def test_anything_changed_means_a_full_tick(quiet_state):
    path, clock = quiet_state
    later = clock.now() + timedelta(minutes=5)
    text = path.read_text()

    path.write_text(text.replace('"true"', '"echo"'))  # same size, other bytes
    assert not idle_tick.answer(str(path), later)
    path.write_text(text)
    assert idle_tick.answer(str(path), later)

    path.chmod(0o666)  # trust: a file others may change is refused as root
    assert not idle_tick.answer(str(path), later)
    path.chmod(0o644)
    assert idle_tick.answer(str(path), later)

    # Anything recorded (here a run another invocation held back) invalidates the stamp.
    Store(path.parent / ".cronflow").append(
        event(
            "hourly",
            datetime(2026, 1, 10, 12, 0, tzinfo=UTC),
            event=EventType.SKIPPED,
            status=RunStatus.SKIPPED,
        )
    )
    assert not idle_tick.answer(str(path), later)


def test_a_clock_set_back_behind_the_decision_means_a_full_tick(quiet_state):
    path, clock = quiet_state
    assert idle_tick.answer(str(path), clock.now() - timedelta(seconds=50))  # an NTP step
    assert not idle_tick.answer(str(path), clock.now() - timedelta(minutes=5))


def test_a_retry_owed_by_a_dead_cronflow_is_due_at_its_delay(tmp_path):
    path, clock, engine = ticked(
        tmp_path,
        '[jobs.daily]\ncommand = "true"\nschedule = "0 3 * * *"\nretries = 2\nretry_delay = "10m"\n',
    )
    # A try failed at 12:01 and its cronflow died before the retry.
    engine.store.append(
        event(
            "daily",
            datetime(2026, 1, 10, 3, 0, tzinfo=UTC),
            event=EventType.FINISHED,
            status=RunStatus.FAILED,
            attempt=1,
            max_attempts=3,
            ended_at=datetime(2026, 1, 10, 12, 1, tzinfo=UTC),
            exit_code=1,
        )
    )
    clock.advance(timedelta(minutes=1))
    engine.tick()  # the retry is not due yet: the stamp says when it is
    assert idle_tick.answer(str(path), datetime(2026, 1, 10, 12, 10, tzinfo=UTC))
    assert not idle_tick.answer(str(path), datetime(2026, 1, 10, 12, 11, tzinfo=UTC))


def test_no_stamp_while_a_run_runs(tmp_path):
    _, _, engine = ticked(tmp_path, '[jobs.slow]\ncommand = "true"\nschedule = "0 * * * *"\n')
    assert (tmp_path / ".cronflow" / layout.IDLE_STAMP_NAME).exists()
    started = engine.store.append(
        event(
            "slow",
            datetime(2026, 1, 10, 12, 0, tzinfo=UTC),
            event=EventType.STARTED,
            status=RunStatus.RUNNING,
            attempt=1,
            max_attempts=1,
        )
    )
    with engine.locks.hold_run(started.key) as held:  # as the run's processes hold it
        assert held is not None
        engine.tick()
    assert engine.store.index().latest(started.key).status is RunStatus.RUNNING
    assert not (tmp_path / ".cronflow" / layout.IDLE_STAMP_NAME).exists()


@pytest.mark.parametrize(
    ("setting", "found"),
    [
        ("", ".cronflow"),
        ('state_dir = "state"', "state"),
        ("state_dir = 'lit'", "lit"),
        ('state_dir = "sp\\u0061ce"', None),  # an escape: told only by the TOML parser
    ],
)
def test_the_stamp_is_where_idle_ticks_look_or_nowhere(tmp_path, setting, found):
    path, clock, engine = ticked(
        tmp_path, f'{setting}\n[jobs.a]\ncommand = "true"\nschedule = "0 * * * *"\n'
    )
    state_dir = engine.jobfile.settings.state_dir
    assert (state_dir / layout.IDLE_STAMP_NAME).exists() == (found is not None)
    if found:
        assert state_dir == tmp_path / found
        assert idle_tick.answer(str(path), clock.now() + timedelta(minutes=1))


def test_a_real_idle_tick_never_loads_the_command_line_framework(tmp_path):
    """End to end, as cron runs it: the second `cronflow run` answers from the stamp."""
    path = tmp_path / "jobs.toml"
    path.write_text('[jobs.leap]\ncommand = "true"\nschedule = "0 3 29 2 *"\n')
    env = {k: v for k, v in os.environ.items() if k != "CRONFLOW_JOBS"}
    first = subprocess.run(
        [sys.executable, "-m", "cronflow", "run", "--jobs", str(path)],
        capture_output=True,
        text=True,
        env=env,
    )
    assert first.returncode == 0, first.stderr
    probe = (
        "import sys; sys.argv = ['cronflow', 'run', '--jobs', sys.argv[1]];"
        "from cronflow.__main__ import main; main();"
        "print(sorted(m for m in ('typer', 'cronflow.cli.main', 'cronflow.load.jobs_toml') if m in sys.modules))"
    )
    heartbeat = tmp_path / ".cronflow" / layout.LAST_TICK
    before = heartbeat.read_text()
    second = subprocess.run(
        [sys.executable, "-c", probe, str(path)], capture_output=True, text=True, env=env
    )
    assert second.returncode == 0, second.stderr
    assert second.stdout.strip() == "[]"
    assert heartbeat.read_text() > before


def test_a_stamp_others_could_have_written_is_not_trusted(quiet_state):
    path, clock = quiet_state
    stamp = path.parent / ".cronflow" / layout.IDLE_STAMP_NAME
    later = clock.now() + timedelta(minutes=5)
    assert idle_tick.answer(str(path), later)
    stamp.chmod(0o622)  # writable by group and others
    assert not idle_tick.answer(str(path), later)


@pytest.mark.skipif(os.geteuid() != 0, reason="giving a file to another user needs root")
def test_a_stamp_another_user_owns_is_not_trusted(quiet_state):
    path, clock = quiet_state
    later = clock.now() + timedelta(minutes=5)
    assert idle_tick.answer(str(path), later)
    os.chown(path.parent / ".cronflow" / layout.IDLE_STAMP_NAME, 65534, -1)  # nobody's
    assert not idle_tick.answer(str(path), later)


def test_the_idle_tick_allows_the_clock_step_the_planner_allows():

    assert CLOCK_TOLERANCE.total_seconds() == idle_stamp.CLOCK_TOLERANCE_SECONDS


def test_the_idle_tick_finds_the_state_directory_where_config_does(tmp_path, monkeypatch):
    """The light reading of the jobs file and the full one agree, CRONFLOW_STATE_DIR too."""
    from cronflow.load import jobs_toml
    from cronflow.state.idle_stamp import light_state_dir

    jobs = tmp_path / "jobs.toml"
    for text in (
        '[jobs.a]\ncommand = "x"\n',
        '[cronflow]\nstate_dir = "s"\n[jobs.a]\ncommand = "x"\n',
    ):
        jobs.write_text(text)
        for override in (None, str(tmp_path / "elsewhere")):
            if override:
                monkeypatch.setenv("CRONFLOW_STATE_DIR", override)
            else:
                monkeypatch.delenv("CRONFLOW_STATE_DIR", raising=False)
            full = jobs_toml.load(jobs).settings.state_dir
            assert light_state_dir(str(jobs), text) == str(full)
