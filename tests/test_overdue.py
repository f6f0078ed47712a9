"""Slow and late: `max_runtime` (fixed and "auto"), `finish_by`, an asset's `deadline`
predicted from its chain. Real jobs (shell processes held running by a file the test
removes), real one-shot ticks on an injected clock, the daemon on its own loop, alerts to a
real HTTP receiver and pings to a real monitor; each alert once per episode."""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from cronflow.act.daemon import Daemon
from cronflow.act.runner import ShellRunner
from cronflow.decide import overdue
from cronflow.model import Deadline, EventType, RunEvent, RunKind, RunStatus
from cronflow.state.store import Store, new_run_id
from tests.conftest import load, real_engine, run_cli
from tests.fakes import FakeClock
from tests.waiting import wait_for

SIX = datetime(2026, 1, 14, 6, 0, tzinfo=UTC)
HELD = "while [ -e hold ]; do sleep 0.02; done"  # runs until the test removes `hold`


def titles(receiver) -> list[str]:
    return [message.body["title"] for message in receiver.everything()]


def bodies(receiver) -> list[str]:
    return [message.body["message"] for message in receiver.everything()]


class Ticks:
    """One-shot ticks as cron makes them: each a fresh engine on the shared clock, each
    waiting for its alerts as a one-shot cronflow does before it exits. A tick that starts
    a held job runs in a thread (cron would start the next one meanwhile)."""

    def __init__(self, path: Path, clock: FakeClock) -> None:
        self.path, self.clock = path, clock
        self.threads: list[threading.Thread] = []

    def tick(self) -> None:
        engine = real_engine(load(self.path), self.clock)
        engine.tick()
        engine.executor.alerter.wait()

    def tick_in_background(self) -> None:
        thread = threading.Thread(target=self.tick)
        thread.start()
        self.threads.append(thread)

    def minutes(self, count: int) -> None:
        for _ in range(count):
            self.clock.advance(timedelta(minutes=1))
            self.tick()

    def join(self) -> None:
        for thread in self.threads:
            thread.join(timeout=60)
            assert not thread.is_alive()


def status(folder: Path) -> dict:
    """`status`, `status --json`, `status --check` and `status --html -`, as run by hand."""
    text = run_cli("status", cwd=folder)
    as_json = run_cli("status", "--json", cwd=folder)
    page = run_cli("status", "--html", "-", cwd=folder)
    assert "Traceback" not in text.stderr + as_json.stderr + page.stderr
    return {
        "text": text.stdout,
        "json": json.loads(as_json.stdout),
        "check": run_cli("status", "--check", cwd=folder).returncode,
        "page": page.stdout,
    }


def started(folder: Path, job: str, tick: datetime = SIX) -> bool:
    events = Store(folder / ".cronflow").read().events
    return any(
        e.job == job and e.logical_time == tick and e.event is EventType.STARTED for e in events
    )


def test_a_run_past_max_runtime_alerts_once_and_once_more_when_it_ends(tmp_path, receiver):
    (tmp_path / "hold").touch()
    (tmp_path / "jobs.toml").write_text(
        f'[alerts]\nurls = ["{receiver.url()}"]\n'
        f'[jobs.etl]\ncommand = "{HELD}"\nschedule = "0 6 * * *"\nmax_runtime = "20m"\n'
    )
    clock = FakeClock(SIX + timedelta(seconds=30))
    ticks = Ticks(tmp_path / "jobs.toml", clock)
    ticks.tick_in_background()  # starts etl, which runs on
    wait_for(lambda: started(tmp_path, "etl"), "etl started")
    ticks.minutes(19)
    assert titles(receiver) == []
    ticks.minutes(3)  # past 06:20:30
    assert titles(receiver) == ["cronflow: etl is slow (2026-01-14)"]
    assert "running 20m (try 1), max_runtime 20m" in bodies(receiver)[0]
    ticks.minutes(5)
    assert len(titles(receiver)) == 1  # once per run, not at every tick
    shown = status(tmp_path)
    assert shown["json"]["jobs"][0]["slow"].startswith("running 20m")
    assert shown["check"] == 0 and 'data-state="slow"' in shown["page"]  # slow is no failure
    (tmp_path / "hold").unlink()
    ticks.join()
    ticks.minutes(1)
    assert titles(receiver)[1:] == ["cronflow: etl finished (2026-01-14)"]
    assert "success after" in bodies(receiver)[1]
    alerts = [e for e in Store(tmp_path / ".cronflow").read().events if e.event is EventType.ALERT]
    assert [(e.job, e.alert["on"], e.alert["delivered"]) for e in alerts] == [
        ("etl", "slow", 1),
        ("etl", "slow", 1),
    ]
    assert Store(tmp_path / ".cronflow").overdue() == {}


def seed_successes(folder: Path, job: str, minutes: list[float], hour: int = 6) -> None:
    """Earlier days' successful runs of `job`, as a cronflow that ran them recorded them."""
    store = Store(folder / ".cronflow")
    store.prepare()
    for days, took in enumerate(minutes, start=1):
        tick = SIX.replace(hour=hour) - timedelta(days=days)
        for event, status in ((EventType.STARTED, RunStatus.RUNNING), (EventType.FINISHED, None)):
            store.append(
                RunEvent(
                    event=event,
                    job=job,
                    logical_time=tick,
                    run_id=new_run_id(tick),
                    status=status or RunStatus.SUCCESS,
                    kind=RunKind.SCHEDULED,
                    attempt=1,
                    max_attempts=1,
                    started_at=tick,
                    ended_at=None if status else tick + timedelta(minutes=took),
                    duration_s=None if status else took * 60,
                )
            )


def test_max_runtime_auto_learns_from_the_jobs_successes_and_says_its_rule(tmp_path, receiver):
    (tmp_path / "hold").touch()
    (tmp_path / "jobs.toml").write_text(
        f'[alerts]\nurls = ["{receiver.url()}"]\n'
        f'[jobs.etl]\ncommand = "{HELD}"\nschedule = "0 6 * * *"\nmax_runtime = "auto"\n'
    )
    seed_successes(tmp_path, "etl", [12, 11, 13, 12, 15, 9, 12])  # median 12, MAD 1
    clock = FakeClock(SIX + timedelta(seconds=30))
    ticks = Ticks(tmp_path / "jobs.toml", clock)
    ticks.tick_in_background()
    wait_for(lambda: started(tmp_path, "etl"), "etl started")
    ticks.minutes(17)  # 06:17:30: past 12 + 5 x 1 = 17 minutes? not before 1.5 x 12 = 18
    assert titles(receiver) == []
    ticks.minutes(2)  # 06:19:30: past 18 minutes
    assert titles(receiver) == ["cronflow: etl is slow (2026-01-14)"]
    assert "usually 12m ± 1m over its last 7 successes" in bodies(receiver)[0]
    (tmp_path / "hold").unlink()
    ticks.join()


@pytest.mark.parametrize(
    ("durations", "threshold"),
    [
        ([600] * 4, None),  # 4 successes: nothing learnt yet
        ([600] * 5, 900),  # no spread: 1.5 x the median
        ([20] * 10, 80),  # short jobs: the median and a minute
        ([600, 660, 540, 600, 720, 480, 600], 900),  # MAD 60: 600 + 5 x 60 = 1.5 x 600
        ([600, 720, 480, 600, 840, 360, 600], 1200),  # MAD 120: 600 + 5 x 120
        ([600, 900, 300, 600, 1200, 60, 600], 2100),  # MAD 300: 600 + 1500
        ([600, 600, 600, 600, 36000], 900),  # one very slow night does not stretch it
    ],
)
def test_the_auto_rule_median_plus_five_mads_with_its_floors(durations, threshold):
    from cronflow.model import Cadence, Job

    job = Job(
        name="etl",
        command="true",
        schedule="0 6 * * *",
        timezone=ZoneInfo("UTC"),
        cadence=Cadence("0 6 * * *", ZoneInfo("UTC")),
        cwd=Path("/"),
        max_runtime_auto=True,
    )
    limit = overdue.slow_after(job, overdue.usual_of(durations))
    if threshold is None:
        assert limit is None
    else:
        assert limit is not None and limit[0] == timedelta(seconds=threshold)


def test_a_job_not_succeeded_by_finish_by_is_late_once_also_when_it_never_started(
    tmp_path, receiver
):
    """load waits for extract, which is stuck: load never starts, and is late at 06:10."""
    (tmp_path / "hold").touch()
    (tmp_path / "jobs.toml").write_text(
        f'[alerts]\nurls = ["{receiver.url()}"]\n'
        f'[jobs.extract]\ncommand = "{HELD}"\nschedule = "0 6 * * *"\n'
        '[jobs.load]\ncommand = "true"\ndepends_on = ["extract"]\nfinish_by = "+10m"\n'
    )
    clock = FakeClock(SIX + timedelta(seconds=30))
    ticks = Ticks(tmp_path / "jobs.toml", clock)
    ticks.tick_in_background()
    wait_for(lambda: started(tmp_path, "extract"), "extract started")
    ticks.minutes(9)  # 06:09:30
    assert titles(receiver) == []
    ticks.minutes(1)  # 06:10:30
    assert titles(receiver) == ["cronflow: load is late (2026-01-14)"]
    assert "not succeeded by 2026-01-14 06:10 UTC" in bodies(receiver)[0]
    ticks.minutes(10)
    assert len(titles(receiver)) == 1
    shown = status(tmp_path)  # what the on-call sees meanwhile, from real commands
    assert "load is late: not succeeded by 2026-01-14 06:10 UTC" in shown["text"]
    assert shown["json"]["jobs"][1]["late"].startswith("not succeeded by")
    assert shown["check"] == 1 and 'data-state="late"' in shown["page"]
    (tmp_path / "hold").unlink()  # extract ends, load runs and succeeds
    ticks.join()
    ticks.minutes(1)
    assert titles(receiver)[1:] == ["cronflow: load is on time again (2026-01-14)"]
    assert status(tmp_path)["json"]["jobs"][1]["late"] is None
    recorded = Store(tmp_path / ".cronflow").read().host_events
    assert [(e.about, e.alert["on"]) for e in recorded] == [("load", "late"), ("load", "late")]


def test_finish_by_a_time_of_day_in_the_jobs_zone_over_a_dst_night(tmp_path, receiver):
    """Berlin springs forward at 02:00 on 2026-03-29: finish_by 02:30 falls in the gap and
    comes as late as the gap, 03:30 CEST (01:30 UTC)."""
    (tmp_path / "jobs.toml").write_text(
        f'[alerts]\nurls = ["{receiver.url()}"]\n'
        '[jobs.nightly]\ncommand = "false"\nschedule = "0 1 * * *"\n'
        'timezone = "Europe/Berlin"\nfinish_by = "02:30"\n'
    )
    berlin = ZoneInfo("Europe/Berlin")
    deadline = overdue.deadline_of(
        Deadline(at=datetime(2026, 1, 1, 2, 30).time()),
        datetime(2026, 3, 29, 1, 0, tzinfo=berlin).astimezone(UTC),
        berlin,
    )
    assert deadline == datetime(2026, 3, 29, 1, 30, tzinfo=UTC)
    clock = FakeClock(datetime(2026, 3, 29, 0, 0, 30, tzinfo=UTC))  # 01:00:30 CET: it runs
    ticks = Ticks(tmp_path / "jobs.toml", clock)
    ticks.tick()
    ticks.minutes(89)  # 01:29:30 UTC
    assert titles(receiver) == ["cronflow: nightly failed (2026-03-29)"]
    ticks.minutes(1)
    assert titles(receiver)[1:] == ["cronflow: nightly is late (2026-03-29)"]


def seed_chain(folder: Path) -> None:
    seed_successes(folder, "extract", [20] * 5)
    seed_successes(folder, "load", [30] * 5)


def test_an_asset_deadline_alerts_as_soon_as_the_chain_cannot_make_it(tmp_path, receiver):
    """extract usually takes 20m, load 30m, the deadline is 07:00. extract runs on past its
    usual 20m: from 06:30 on, load's 30m cannot end before 07:00, and that is said then."""
    (tmp_path / "hold").touch()
    (tmp_path / "jobs.toml").write_text(
        f'[alerts]\nurls = ["{receiver.url()}"]\n'
        '[assets.sales]\ndeadline = "07:00"\n'
        f'[jobs.extract]\ncommand = "{HELD}"\nschedule = "0 6 * * *"\n'
        '[jobs.load]\ncommand = "true"\ndepends_on = ["extract"]\nproduces = ["sales"]\n'
    )
    seed_chain(tmp_path)
    clock = FakeClock(SIX + timedelta(seconds=30))
    ticks = Ticks(tmp_path / "jobs.toml", clock)
    ticks.tick_in_background()
    wait_for(lambda: started(tmp_path, "extract"), "extract started")
    ticks.minutes(29)  # 06:29:30: done at 06:59:30 at the earliest
    assert titles(receiver) == []
    ticks.minutes(1)  # 06:30:30
    assert titles(receiver) == ["cronflow: sales will miss its deadline (2026-01-14)"]
    assert "predicted done at 2026-01-14 07:00 UTC, after its deadline" in bodies(receiver)[0]
    assert "extract 0s, load 30m" in bodies(receiver)[0]
    (tmp_path / "hold").unlink()
    ticks.join()  # load ran and succeeded
    ticks.minutes(1)
    assert titles(receiver)[1:] == ["cronflow: sales is on time again (2026-01-14)"]


def test_an_asset_deadline_cannot_be_met_once_its_chain_failed_for_good(tmp_path, receiver):
    (tmp_path / "jobs.toml").write_text(
        f'[alerts]\nurls = ["{receiver.url()}"]\n'
        '[assets.sales]\ndeadline = "07:00"\n'
        '[jobs.extract]\ncommand = "false"\nschedule = "0 6 * * *"\n'
        '[jobs.load]\ncommand = "true"\ndepends_on = ["extract"]\nproduces = ["sales"]\n'
    )
    seed_chain(tmp_path)
    clock = FakeClock(SIX + timedelta(seconds=30))
    ticks = Ticks(tmp_path / "jobs.toml", clock)
    ticks.tick()  # extract fails, load is upstream_failed
    ticks.minutes(1)
    assert "cronflow: sales will miss its deadline (2026-01-14)" in titles(receiver)
    body = bodies(receiver)[
        titles(receiver).index("cronflow: sales will miss its deadline (2026-01-14)")
    ]
    assert "cannot be met: extract @ 2026-01-14T06:00:00+00:00 failed" in body
    assert "cronflow run --date 2026-01-14 --job extract --downstream" in body


def test_the_idle_tick_wakes_up_for_a_deadline(tmp_path, receiver):
    from cronflow.act import idle_tick

    (tmp_path / "jobs.toml").write_text(
        f'[cronflow]\nkeep_days = 0\nkeep_history_days = 0\n[alerts]\nurls = ["{receiver.url()}"]\n'
        '[jobs.load]\ncommand = "false"\nschedule = "0 6 * * *"\nfinish_by = "07:00"\n'
    )
    jobfile = load(tmp_path / "jobs.toml")
    clock = FakeClock(SIX + timedelta(seconds=30))
    real_engine(jobfile, clock).tick()  # runs 06:00: fails
    real_engine(jobfile, clock).tick()  # decides again, leaves the stamp
    seven = SIX + timedelta(hours=1)
    assert idle_tick.answer(str(jobfile.path), seven - timedelta(seconds=1))
    assert not idle_tick.answer(str(jobfile.path), seven)  # a full tick: it alerts


def test_a_slow_run_logs_to_healthchecks_without_changing_the_check(tmp_path, monitor):
    (tmp_path / "hold").touch()
    url = monitor.check_url("etl")
    (tmp_path / "jobs.toml").write_text(
        f'[jobs.etl]\ncommand = "{HELD}"\nschedule = "0 6 * * *"\nmax_runtime = "5m"\n'
        f'ping_url = "{url}"\n'
    )
    clock = FakeClock(SIX + timedelta(seconds=30))
    ticks = Ticks(tmp_path / "jobs.toml", clock)
    ticks.tick_in_background()
    wait_for(lambda: started(tmp_path, "etl"), "etl started")
    ticks.minutes(6)
    wait_for(lambda: len(monitor.pings("etl")) >= 2, "the slow ping")
    (tmp_path / "hold").unlink()
    ticks.join()
    pings = monitor.pings("etl")
    assert [ping.signal for ping in pings] == ["start", "log", "success"]
    assert pings[1].body.startswith(b"slow: running 5m (try 1), max_runtime 5m")
    assert len({ping.run for ping in pings}) == 1  # one run


class StopAfter(FakeClock):
    """The daemon's clock: moves to each wake-up at once; stops the daemon past `end`."""

    def __init__(self, start: datetime, end: datetime, stop) -> None:
        super().__init__(start)
        self.end, self.stop = end, stop

    def sleep_until(self, when, wake) -> None:
        if when > self.end:
            self.stop()
            return
        super().sleep_until(when, wake)


class StopOnceHeard(StopAfter):
    """Stops the daemon past `end` only once `heard()` holds (its alert delivered: a stop
    abandons the deliveries still under way, which a loaded machine can leave)."""

    def __init__(self, start: datetime, end: datetime, stop, heard) -> None:
        super().__init__(start, end, stop)
        self.heard = heard

    def sleep_until(self, when, wake) -> None:
        if when > self.end:
            wait_for(self.heard, "the alert delivered")
        super().sleep_until(when, wake)


def test_the_daemon_wakes_up_at_a_deadline_and_alerts(tmp_path, receiver):
    """finish_by = "+95s": the deadline is 06:01:35, between two of the daemon's minutes."""
    (tmp_path / "jobs.toml").write_text(
        f'[alerts]\nurls = ["{receiver.url()}"]\n'
        '[jobs.load]\ncommand = "false"\nschedule = "0 6 * * *"\nfinish_by = "+95s"\n'
    )
    holder: list[Daemon] = []
    late = "cronflow: load is late (2026-01-14)"
    clock = StopOnceHeard(
        SIX + timedelta(seconds=30),
        SIX + timedelta(minutes=3),
        lambda: holder[0].request_stop(),
        lambda: late in titles(receiver),
    )
    daemon = Daemon(
        jobs_path=tmp_path / "jobs.toml", clock=clock, runner=ShellRunner(), log=lambda line: None
    )
    holder.append(daemon)
    daemon.serve()
    assert SIX + timedelta(seconds=95) in clock.wake_times
    wait_for(lambda: "cronflow: load is late (2026-01-14)" in titles(receiver), "late alert")
    assert titles(receiver).count("cronflow: load is late (2026-01-14)") == 1


def test_pausing_a_late_job_ends_its_episode_as_no_longer_late(tmp_path, receiver):
    (tmp_path / "jobs.toml").write_text(
        f'[alerts]\nurls = ["{receiver.url()}"]\non = ["late"]\n'
        '[jobs.load]\ncommand = "false"\nschedule = "0 6 * * *"\nfinish_by = "+10m"\n'
    )
    clock = FakeClock(SIX + timedelta(seconds=30))
    ticks = Ticks(tmp_path / "jobs.toml", clock)
    ticks.tick()
    ticks.minutes(10)
    assert titles(receiver) == ["cronflow: load is late (2026-01-14)"]
    assert run_cli("pause", "load", "--reason", "fixing it", cwd=tmp_path).returncode == 0
    ticks.minutes(1)
    assert titles(receiver)[1:] == ["cronflow: load is no longer late (2026-01-14)"]
    assert "**Run of that time:** failed" in bodies(receiver)[1]
    assert Store(tmp_path / ".cronflow").overdue() == {}
