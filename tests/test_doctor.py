"""`cronflow doctor` on real file systems: the disk under the tests, and a tmpfs too small
for the disk-full reserve (a check that fails, said plainly)."""

from __future__ import annotations

import subprocess

import pytest

from cronflow.act.doctor import mount_of
from tests.conftest import run_cli

CHECKS = [
    "file system",
    "room",
    "flock between processes",
    "run lock kept by a child",
    "appends land whole",
    "rename replaces at once",
    "fsync",
]


def lines_of(output: str) -> dict[str, str]:
    """check name -> its verdict word (ok, warning, FAIL)."""
    found = {}
    for line in output.splitlines()[1:]:
        word, _, rest = line.strip().partition(" ")
        name = rest.strip().partition(":")[0]
        if name in CHECKS:
            found[name] = word
    return found


def test_doctor_checks_the_state_directorys_file_system_and_leaves_nothing(tmp_path):
    (tmp_path / "jobs.toml").write_text('[jobs.a]\ncommand = "true"\n')
    result = run_cli("doctor", cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    verdicts = lines_of(result.stdout)
    assert list(verdicts) == CHECKS
    assert set(verdicts.values()) <= {"ok", "warning"}, result.stdout
    assert result.stdout.rstrip().endswith("cronflow can keep its promises here.")
    assert [p.name for p in (tmp_path / ".cronflow").iterdir()] == []  # its scratch is gone


def test_doctor_says_plainly_what_does_not_hold(tmp_path):
    state = tmp_path / "state"
    state.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=1m,mode=700", "tmpfs", str(state)],
        capture_output=True,
        text=True,
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs ({mounted.stderr.strip()}): this needs root")
    try:
        assert mount_of(state)[0] == "tmpfs"
        (tmp_path / "jobs.toml").write_text(
            f'[cronflow]\nstate_dir = "{state}"\n[jobs.a]\ncommand = "true"\n'
        )
        result = run_cli("doctor", cwd=tmp_path)
        assert result.returncode == 1, result.stdout + result.stderr
        verdicts = lines_of(result.stdout)
        assert verdicts["room"] == "FAIL" and verdicts["flock between processes"] == "ok"
        assert "less than twice the 1 MiB reserve" in result.stdout
        assert "Put the state directory on a local disk" in result.stdout
    finally:
        subprocess.run(["umount", "-l", str(state)], check=True)
