"""Jitter: random_delay (fresh for each run) and random_offset (the same for every run of a
host), with real processes ticked minute by minute on a fake clock. The logical time is
always the tick; each run starts at its own later minute, and no earlier."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cronflow.act import idle_tick
from cronflow.decide import jitter
from cronflow.decide.tick import next_wake
from cronflow.state.store import Store
from tests.conftest import load, real_engine, refused, run_cli
from tests.fakes import FakeClock

T0 = datetime(2026, 1, 14, 6, 0, 30, tzinfo=UTC)


def jobs(folder: Path, keys: str) -> Path:
    (folder / "jobs.toml").write_text(
        "[jobs.report]\n"
        "command = 'echo \"$CRONFLOW_LOGICAL_TIME\" >> effects'\n"
        f'schedule = "0 * * * *"\n{keys}\n'
    )
    return folder / "jobs.toml"


def started_minutes(folder: Path, clock: FakeClock, minutes: int) -> dict[str, datetime]:
    """Tick every minute; the minute each logical time's run happened."""
    jobfile = load(folder / "jobs.toml")
    seen: dict[str, datetime] = {}
    effects = folder / "effects"
    for _ in range(minutes):
        real_engine(jobfile, clock).tick()
        for line in effects.read_text().splitlines() if effects.exists() else []:
            seen.setdefault(line, clock.now())
        clock.advance(timedelta(minutes=1))
    return seen


def test_random_delay_starts_each_run_at_its_own_later_minute(tmp_path):
    jobfile = load(jobs(tmp_path, 'random_delay = "20m"'))
    job = jobfile.jobs["report"]
    seen = started_minutes(tmp_path, FakeClock(T0), 5 * 60)
    ticks = [datetime(2026, 1, 14, hour, tzinfo=UTC) for hour in range(7, 11)]
    delays = []
    for tick in ticks:
        start = jitter.start_of(jobfile, job, tick)
        ran = seen[tick.isoformat()]  # the logical time is the tick
        assert start <= ran < start + timedelta(minutes=1), (tick, start, ran)
        delays.append(start - tick)
    assert all(timedelta(0) <= delay < timedelta(minutes=20) for delay in delays)
    assert len(set(delays)) > 1  # fresh for each run


def test_random_offset_is_the_same_for_every_run_of_a_host_and_differs_between_hosts(tmp_path):
    jobfile = load(jobs(tmp_path, 'random_offset = "30m"'))
    job = jobfile.jobs["report"]
    ticks = [datetime(2026, 1, 14, hour, tzinfo=UTC) for hour in range(24)]
    offsets = {jitter.start_of(jobfile, job, tick) - tick for tick in ticks}
    assert len(offsets) == 1 and timedelta(0) <= offsets.pop() < timedelta(minutes=30)
    hosts = {
        jitter.start_of(
            replace(jobfile, settings=replace(jobfile.settings, host_seed=f"host-{n}")),
            job,
            ticks[0],
        )
        for n in range(8)
    }
    assert len(hosts) > 1  # a fleet spreads out
    seen = started_minutes(tmp_path, FakeClock(T0), 3 * 60)
    for tick in ticks[7:9]:
        start = jitter.start_of(jobfile, job, tick)
        assert start <= seen[tick.isoformat()] < start + timedelta(minutes=1)


def test_the_idle_tick_the_daemon_and_next_wait_for_the_start_not_the_tick(tmp_path):
    path = jobs(tmp_path, 'random_delay = "45m"')
    text = "[cronflow]\nkeep_days = 0\nkeep_history_days = 0\n" + path.read_text()
    path.write_text(text)  # no housekeeping: the next start is the only thing ahead
    jobfile = load(path)
    job = jobfile.jobs["report"]
    clock = FakeClock(T0)
    real_engine(jobfile, clock).tick()
    watermarks = Store(jobfile.settings.state_dir).read_watermarks()
    pending = watermarks["report"].next_tick  # 06:00 if its run has not started, else 07:00
    start = jitter.start_of(jobfile, job, pending)
    assert start > clock.now()
    assert idle_tick.answer(str(path), start - timedelta(seconds=1))  # nothing has started yet
    assert not idle_tick.answer(str(path), start)  # its run starts: a full tick
    history = Store(jobfile.settings.state_dir).index()
    assert next_wake(jobfile, history, watermarks, start - timedelta(seconds=30)).at == start
    status = json.loads(run_cli("status", "--json", cwd=tmp_path).stdout)
    assert status["jobs"][0]["next_due"] == start.isoformat()  # when it starts
    listed = json.loads(
        run_cli(
            "next", "--json", "--count", "1", "--from", "2026-01-14T06:30:00Z", cwd=tmp_path
        ).stdout
    )["ticks"]
    seven = datetime(2026, 1, 14, 7, tzinfo=UTC)
    assert listed[0]["logical_time"] == seven.isoformat()
    assert listed[0]["starts"] == jitter.start_of(jobfile, job, seven).isoformat()
    table = run_cli("next", "--count", "1", cwd=tmp_path, env={"COLUMNS": "160"})
    assert "starts" in table.stdout


def test_catch_up_stays_right_with_a_delay(tmp_path):
    """Down from 06:00 to 09:30 with catchup = "latest": the newest started tick runs once,
    the older ones are recorded missed, none runs twice."""
    jobs(tmp_path, 'random_delay = "10m"')
    clock = FakeClock(datetime(2026, 1, 14, 5, 59, 30, tzinfo=UTC))
    started_minutes(tmp_path, clock, 1)
    clock.advance(timedelta(hours=3, minutes=30))
    started_minutes(tmp_path, clock, 40)
    ran = (tmp_path / "effects").read_text().splitlines()
    assert ran == sorted(set(ran))  # none twice
    assert "2026-01-14T09:00:00+00:00" in ran and "2026-01-14T08:00:00+00:00" not in ran
    events = Store(tmp_path / ".cronflow").read().events
    assert any(e.status.value == "missed" for e in events)


def test_a_negative_delay_is_a_clear_error(tmp_path):
    said = refused(tmp_path, jobs(tmp_path, "random_delay = -5").read_text())
    assert "random_delay" in said and "must not be negative" in said
