"""The systemd units: shipped files, what `cronflow systemd install` writes, and systemd's verdict."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest

from cronflow.interop import systemd
from cronflow.load import service_units
from tests.conftest import load, run_cli

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize(
    "user, folder, jobs",
    [
        (False, ROOT / "systemd", "/etc/cronflow/jobs.toml"),
        (True, ROOT / "systemd" / "user", "%h/.config/cronflow/jobs.toml"),
    ],
)
@pytest.mark.parametrize("mode", ["daemon", "timer"])
def test_the_shipped_unit_files_are_what_install_writes(user, folder, jobs, mode):
    rendered = systemd.units(
        mode=mode,
        user=user,
        command=["/usr/local/bin/cronflow"],
        jobs=Path(jobs),
        shutdown_grace=timedelta(seconds=30),
    )
    for name, text in rendered.items():
        assert (folder / name).read_text() == text


def test_install_dry_run_names_absolute_paths_that_exist(tmp_path):
    (tmp_path / "jobs.toml").write_text('[jobs.a]\ncommand = "true"\nschedule = "@daily"\n')
    result = run_cli("systemd", "install", "--dry-run", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    [exec_start] = [line for line in result.stdout.splitlines() if line.startswith("ExecStart=")]
    program, *_, jobs = exec_start.removeprefix("ExecStart=").split()
    assert Path(program).is_absolute() and Path(program).exists()
    assert Path(jobs) == tmp_path / "jobs.toml"
    assert "# /etc/systemd/system/cronflow.service" in result.stdout
    assert "sudo systemctl enable --now cronflow.service" in result.stdout
    assert not list(tmp_path.glob("*.service"))


def test_install_for_the_user_writes_readable_units(tmp_path):
    (tmp_path / "jobs.toml").write_text('[jobs.a]\ncommand = "true"\nschedule = "@daily"\n')
    result = run_cli(
        "systemd",
        "install",
        "--user",
        "--mode",
        "timer",
        cwd=tmp_path,
        env={"XDG_CONFIG_HOME": str(tmp_path / "config")},
    )
    assert result.returncode == 0, result.stderr
    folder = tmp_path / "config" / "systemd" / "user"
    assert sorted(p.name for p in folder.iterdir()) == [
        "cronflow-run.service",
        "cronflow-run.timer",
    ]
    assert all(p.stat().st_mode & 0o777 == 0o644 for p in folder.iterdir())
    assert "systemctl --user enable --now cronflow-run.timer" in result.stdout


def test_install_refuses_a_broken_jobs_file(tmp_path):
    (tmp_path / "jobs.toml").write_text('[jobs.a]\nschedule = "@daily"\n')
    result = run_cli("systemd", "install", "--dry-run", cwd=tmp_path)
    assert result.returncode == 2 and "has no command" in result.stderr


@pytest.mark.skipif(
    shutil.which("systemd-analyze") is None,
    reason="systemd-analyze is not installed (Debian package: systemd)",
)
@pytest.mark.parametrize("name", ["", "sales"])
@pytest.mark.parametrize("user", [False, True])
@pytest.mark.parametrize("mode", ["daemon", "timer"])
def test_systemd_analyze_verify_accepts_the_units(tmp_path, mode, user, name):
    jobs = tmp_path / "jobs.toml"
    jobs.write_text('[jobs.a]\ncommand = "true"\n')
    files = systemd.units(
        mode=mode,
        user=user,
        command=[sys.executable, "-m", "cronflow"],
        jobs=jobs,
        shutdown_grace=timedelta(seconds=30),
        name=name,
        serve=True,  # and the dashboard's unit beside it
    )
    paths = systemd.install(files, tmp_path / "units")
    verify = ["systemd-analyze", "verify", *(["--user"] if user else []), *map(str, paths)]
    runtime = tmp_path / "runtime"  # a user manager needs a runtime directory, even to verify
    runtime.mkdir(mode=0o700)
    result = subprocess.run(
        verify, capture_output=True, text=True, env={**os.environ, "XDG_RUNTIME_DIR": str(runtime)}
    )
    complaints = [line for line in result.stderr.splitlines() if str(tmp_path) in line]
    assert result.returncode == 0 and complaints == [], result.stderr
    assert [p.name for p in paths if p.name.endswith("-serve.service")]


def test_units_keep_state_where_systemd_keeps_it_and_names_tell_files_apart(tmp_path):
    (tmp_path / "jobs.toml").write_text('[jobs.a]\ncommand = "true"\nschedule = "@daily"\n')
    result = run_cli("systemd", "install", "--dry-run", "--name", "sales", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "# /etc/systemd/system/cronflow-sales.service" in result.stdout
    assert "StateDirectory=cronflow-sales\n" in result.stdout
    assert "Environment=CRONFLOW_STATE_DIR=%S/cronflow-sales\n" in result.stdout
    assert "sudo systemctl enable --now cronflow-sales.service" in result.stdout
    assert "its state goes to /var/lib/cronflow-sales; commands run from a shell" in result.stdout
    timer = run_cli("systemd", "install", "--dry-run", "--mode", "timer", cwd=tmp_path)
    assert "StateDirectory=cronflow\n" in timer.stdout and "cronflow-run.timer" in timer.stdout
    bad = run_cli("systemd", "install", "--dry-run", "--name", "a/b", cwd=tmp_path)
    assert bad.returncode == 2 and "cannot name a unit" in bad.stderr
    (tmp_path / "jobs.toml").write_text(
        '[cronflow]\nstate_dir = "/srv/cronflow"\n[jobs.a]\ncommand = "true"\n'
    )
    chosen = run_cli("systemd", "install", "--dry-run", cwd=tmp_path)
    assert "StateDirectory=" not in chosen.stdout  # the file's own choice is kept
    assert "# State where the jobs file's state_dir says: /srv/cronflow" in chosen.stdout


def test_the_state_directory_override_is_used_by_every_command_and_shown_by_status(tmp_path):
    """CRONFLOW_STATE_DIR (what the units set) wins over the file; status says which
    directory it reads. Once a unit of the file is installed, commands run from a shell use
    its state directory too (once, a `run --job` from the shell wrote ./.cronflow while the
    unit used ~/.local/state/cronflow): one jobs file, one state directory."""
    (tmp_path / "jobs.toml").write_text(
        "[jobs.a]\ncommand = 'echo ran >> ran.txt'\nschedule = \"* * * * *\"\n"
    )
    elsewhere = tmp_path / "state" / "cronflow"
    assert run_cli("run", cwd=tmp_path, env={"CRONFLOW_STATE_DIR": str(elsewhere)}).returncode == 0
    assert (elsewhere / "runs.jsonl").exists() and not (tmp_path / ".cronflow").exists()
    again = run_cli("run", "-v", cwd=tmp_path, env={"CRONFLOW_STATE_DIR": str(elsewhere)})
    assert again.returncode == 0  # the same state: the minute already decided runs nothing more
    assert (tmp_path / "ran.txt").read_text().count("ran") in (1, 2)  # a minute may have turned
    shown = run_cli("status", cwd=tmp_path, env={"CRONFLOW_STATE_DIR": str(elsewhere)}).stdout
    assert f"state: {elsewhere} (CRONFLOW_STATE_DIR)" in shown
    environment = {
        "XDG_CONFIG_HOME": str(tmp_path / "config"),
        "XDG_STATE_HOME": str(tmp_path / "state"),
    }
    installed = run_cli("systemd", "install", "--user", cwd=tmp_path, env=environment)
    assert installed.returncode == 0, installed.stderr
    unit = tmp_path / "config" / "systemd" / "user" / "cronflow.service"
    plain = " ".join(run_cli("status", cwd=tmp_path, env=environment).stdout.split())
    assert f"state: {elsewhere} (the systemd service {unit})" in plain
    assert "has not run by the clock" not in plain  # the service's state holds its ticks
    manual = run_cli("run", "--job", "a", cwd=tmp_path, env=environment)
    assert manual.returncode == 0, manual.stderr
    assert not (tmp_path / ".cronflow").exists()
    assert sum(1 for _ in (elsewhere / "runs.jsonl").open()) >= 4  # two runs more: there
    # Installed but never started: status says to start it, not to install it.
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "jobs.toml").write_text('[jobs.b]\ncommand = "true"\n')
    other = {**environment, "XDG_STATE_HOME": str(tmp_path / "state2")}
    folder = tmp_path / "other"
    assert (
        run_cli("systemd", "install", "--user", "--name", "b", cwd=folder, env=other).returncode
        == 0
    )
    told = " ".join(run_cli("status", cwd=folder, env=other).stdout.split())
    assert "is installed but has not decided anything yet: is it started?" in told
    assert "systemctl --user enable --now cronflow-b.service" in told


def test_a_unit_file_others_could_change_does_not_steer_the_state_directory(tmp_path, monkeypatch):
    """A unit file names where cronflow writes: one that a user other than root and the
    one running cronflow could change is ignored (the default stands)."""
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    jobs = tmp_path / "jobs.toml"
    jobs.write_text('[jobs.a]\ncommand = "true"\n')
    assert run_cli("systemd", "install", "--user", cwd=tmp_path).returncode == 0
    unit = tmp_path / "config" / "systemd" / "user" / "cronflow.service"
    euid = os.geteuid()
    assert service_units.service_state_dir(jobs, euid) == (tmp_path / "state" / "cronflow", unit)
    unit.chmod(0o666)
    assert service_units.service_state_dir(jobs, euid) is None
    assert load(jobs).settings.state_dir == tmp_path / ".cronflow"
