"""The container: the Dockerfile's daemon as PID 1 of a PID namespace, stopped as `docker
stop` stops it (SIGTERM to PID 1), its state in the directory a volume would hold; and, where
a container engine runs here, the image itself built and stopped."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from cronflow.model import EventType, RunStatus
from cronflow.state.store import Store
from tests.test_daemon import children_of, namespaces_work
from tests.waiting import wait_for

ROOT = Path(__file__).parent.parent
DOCKERFILE = (ROOT / "Dockerfile").read_text()
JOBS = """
[cronflow]
shutdown_grace = "1s"
[jobs.long]
command = 'echo $$ > {folder}/long.pid; exec sleep 60'
schedule = "* * * * *"
"""


def test_the_dockerfile_runs_the_daemon_as_pid_1_with_state_on_a_volume():
    assert 'ENTRYPOINT ["cronflow", "daemon", "--jobs", "/etc/cronflow/jobs.toml"]' in DOCKERFILE
    assert re.search(r"ENV CRONFLOW_STATE_DIR=/var/lib/cronflow", DOCKERFILE)
    assert "VOLUME /var/lib/cronflow" in DOCKERFILE
    assert "--init" not in DOCKERFILE.replace("no --init needed", "")


def test_docker_stop_waits_for_the_running_job_records_it_and_exits_0(tmp_path):
    """SIGTERM to the daemon as PID 1 of its own PID namespace (what `docker stop` does):
    it waits shutdown_grace, stops the job, records it interrupted in the state directory
    named by CRONFLOW_STATE_DIR (the volume), and exits 0, well before docker's SIGKILL."""
    why = namespaces_work()
    if why:
        pytest.skip(why)
    volume = tmp_path / "volume"
    (tmp_path / "jobs.toml").write_text(JOBS.format(folder=tmp_path))
    process = subprocess.Popen(
        [
            "unshare",
            "--fork",
            "--pid",
            "--mount-proc",
            sys.executable,
            "-m",
            "tests.fast_daemon",
            str(tmp_path / "jobs.toml"),
            "1",
        ],
        cwd=ROOT,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env={**os.environ, "CRONFLOW_STATE_DIR": str(volume)},
    )
    daemon = process.pid  # until its namespace's PID 1 is found: stop unshare itself
    try:
        wait_for(lambda: children_of(process.pid), "the daemon in its namespace")
        [(daemon, _, _)] = children_of(process.pid)
        wait_for(lambda: (tmp_path / "long.pid").exists(), "the job to start", within=60)
    finally:
        os.kill(daemon, signal.SIGTERM)
        _, log = process.communicate(timeout=30)  # docker would SIGKILL after 10 s or more
    assert process.returncode == 0, log.decode()
    assert "cronflow daemon stopped" in log.decode()
    [finished] = [e for e in Store(volume).read().events if e.event is EventType.FINISHED]
    assert finished.status is RunStatus.INTERRUPTED


def engine_missing() -> str:
    """Why no image can be built and run here, or "" when one can."""
    docker = shutil.which("docker")
    if docker is None:
        return "no container engine (docker) is installed here"
    info = subprocess.run([docker, "info"], capture_output=True, text=True, timeout=60)
    if info.returncode != 0:
        return f"docker cannot reach a daemon here: {info.stderr.strip()[-200:]}"
    return ""


def test_the_image_builds_and_stops_cleanly(tmp_path):
    why = engine_missing()
    if why:
        pytest.skip(why)
    built = subprocess.run(
        ["docker", "build", "-t", "cronflow-test", str(ROOT)],
        capture_output=True,
        text=True,
        timeout=1800,
    )
    if built.returncode != 0 and "pull" in built.stderr.lower():
        pytest.skip(f"the base image cannot be pulled here: {built.stderr.strip()[-300:]}")
    assert built.returncode == 0, built.stderr
    name = f"cronflow-test-{os.getpid()}"
    subprocess.run(["docker", "run", "-d", "--name", name, "cronflow-test"], check=True)
    try:
        stopped = subprocess.run(
            ["docker", "stop", "-t", "45", name], capture_output=True, text=True, timeout=120
        )
        assert stopped.returncode == 0, stopped.stderr
        state = subprocess.run(
            ["docker", "inspect", "-f", "{{.State.ExitCode}}", name],
            capture_output=True,
            text=True,
            check=True,
        )
        assert state.stdout.strip() == "0"
        logs = subprocess.run(["docker", "logs", name], capture_output=True, text=True)
        assert "cronflow daemon stopped" in logs.stderr + logs.stdout
    finally:
        subprocess.run(["docker", "rm", "-f", name], capture_output=True)
