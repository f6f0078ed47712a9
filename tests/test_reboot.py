"""@reboot: once per boot of the machine (the kernel's boot id), in both modes, with the
boot's time as the logical time; counted by the effects real processes leave."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cronflow.act import idle_tick
from cronflow.act.assemble import assemble
from cronflow.act.processes import boot_id
from cronflow.model import Boot
from cronflow.state import layout
from tests.conftest import load, refused, run_cli
from tests.fakes import FakeClock
from tests.fast_daemon import START

JOBS = """
[jobs.mount_check]
command = 'echo "mount_check $CRONFLOW_LOGICAL_TIME" >> effects'
schedule = "@reboot"

[jobs.announce]
command = 'echo "announce $CRONFLOW_LOGICAL_TIME" >> effects'
depends_on = ["mount_check"]

[jobs.hourly]
command = "true"
schedule = "0 * * * *"
"""
BOOTED = datetime(2026, 1, 14, 5, 58, 17, 400_000, tzinfo=UTC)


def effects(folder: Path) -> list[str]:
    path = folder / "effects"
    return path.read_text().splitlines() if path.exists() else []


class Machine:
    """A fake machine's boots, as the scheduler asks for them: (boot id, time it began by
    the clock asked with); `step` moves the clock the estimate is made with (an NTP step)."""

    def __init__(self) -> None:
        self.id, self.began, self.step = "boot-1", BOOTED, timedelta(0)

    def __call__(self, now: datetime) -> Boot:
        return Boot(self.id, self.began + self.step)

    def reboot(self, at: datetime) -> None:
        self.id, self.began, self.step = f"boot-{int(self.id[5:]) + 1}", at, timedelta(0)


def engine_on(folder: Path, machine: Machine, clock: FakeClock):
    """An engine wired as cronflow's, on this fake machine's boots."""
    return assemble(load(folder / "jobs.toml"), clock=clock, boot=machine)


def ticks(folder: Path, machine: Machine, clock: FakeClock, minutes: int) -> None:
    for _ in range(minutes):
        engine_on(folder, machine, clock).tick()
        clock.advance(timedelta(minutes=1))


def test_once_per_boot_with_the_boot_time_as_its_logical_time(tmp_path):
    (tmp_path / "jobs.toml").write_text(JOBS)
    machine, clock = Machine(), FakeClock(datetime(2026, 1, 14, 6, 0, 30, tzinfo=UTC))
    ticks(tmp_path, machine, clock, 5)
    booted = "2026-01-14T05:58:17+00:00"
    assert effects(tmp_path) == [f"mount_check {booted}", f"announce {booted}"]
    machine.step = timedelta(minutes=7)  # NTP set the clock: a later estimate of the boot
    ticks(tmp_path, machine, clock, 3)
    assert len(effects(tmp_path)) == 2  # the boot recorded first still stands
    machine.reboot(clock.now() - timedelta(seconds=40))
    ticks(tmp_path, machine, clock, 3)
    assert effects(tmp_path)[2:] == [
        "mount_check 2026-01-14T06:07:50+00:00",
        "announce 2026-01-14T06:07:50+00:00",
    ]


def test_the_idle_tick_answers_only_on_the_boot_it_was_left_on(tmp_path):
    (tmp_path / "jobs.toml").write_text(JOBS)
    clock = FakeClock(datetime(2026, 1, 14, 6, 0, 30, tzinfo=UTC))
    this_machine = Machine()
    this_machine.id = boot_id()  # the stamp is checked against the real kernel's boot id
    engine = engine_on(tmp_path, this_machine, clock)
    engine.tick()
    store, jobfile = engine.store, engine.jobfile
    stamp = (store.state_dir / layout.IDLE_STAMP_NAME).read_text()
    assert f"boot {boot_id()}" in stamp
    assert idle_tick.answer(str(jobfile.path), clock.now() + timedelta(minutes=5))
    (store.state_dir / layout.IDLE_STAMP_NAME).write_text(stamp.replace(boot_id(), "another-boot"))
    assert not idle_tick.answer(str(jobfile.path), clock.now() + timedelta(minutes=5))


def test_side_by_side_one_shots_at_boot_run_it_once(tmp_path):
    """Four real `cronflow run` processes at once on this machine's real boot."""
    (tmp_path / "jobs.toml").write_text(JOBS)
    runs = [
        subprocess.Popen(
            [sys.executable, "-m", "cronflow", "run", "--verbose"],
            cwd=tmp_path,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        for _ in range(4)
    ]
    assert [run.wait(timeout=120) for run in runs] == [0] * 4
    assert [line.split()[0] for line in effects(tmp_path)] == ["mount_check", "announce"]
    again = run_cli("run", "--verbose", cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    assert len(effects(tmp_path)) == 2
    shown = run_cli("status", "--wide", cwd=tmp_path, env={"COLUMNS": "200"})
    assert "once per boot" in shown.stdout


def test_the_daemon_runs_it_at_its_first_loop(tmp_path):
    (tmp_path / "jobs.toml").write_text(JOBS)
    daemon = subprocess.Popen(
        [sys.executable, "-m", "tests.fast_daemon", str(tmp_path / "jobs.toml"), "2"],
        cwd=Path(__file__).parent.parent,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    from tests.waiting import wait_for

    try:
        wait_for(lambda: len(effects(tmp_path)) >= 2, "the @reboot job and the one after it")
    finally:
        daemon.terminate()
        daemon.communicate(timeout=60)
    assert [line.split()[0] for line in effects(tmp_path)] == ["mount_check", "announce"]
    assert START  # the fast daemon's clock starts at 06:00:30 on the day of these tests


def test_the_dry_run_says_why_it_runs_or_not(tmp_path):
    (tmp_path / "jobs.toml").write_text(JOBS)
    before = run_cli("run", "--dry-run", "--verbose", cwd=tmp_path, env={"COLUMNS": "200"})
    assert "@reboot: the first decision since this boot began" in before.stdout
    assert run_cli("run", cwd=tmp_path).returncode == 0
    after = run_cli("run", "--dry-run", "--verbose", cwd=tmp_path, env={"COLUMNS": "200"})
    assert "@reboot: this boot's run is success" in after.stdout
    assert not effects(tmp_path)[2:]  # the dry runs ran nothing


def test_a_reboot_job_with_upstreams_is_a_clear_error(tmp_path):
    said = refused(
        tmp_path,
        '[jobs.a]\ncommand = "true"\n[jobs.b]\ncommand = "true"\nschedule = "@reboot"\n'
        'depends_on = ["a"]\n',
    )
    assert "@reboot runs once per boot" in said
