"""Root trusts nothing another local user can write. As root, with a second user this module
creates: a state directory that user owns or may write is refused before anything is
touched; in the directories of the page and the metrics (which that user's group may write),
a link or a file planted at any name cronflow writes never makes root write, read or change
anything outside; inside the state directory, a link in place of any file is never followed.
"""

from __future__ import annotations

import os
import pwd
import subprocess
from pathlib import Path

import pytest

from cronflow.state import layout
from tests.conftest import run_cli

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0,
    reason="planting files as a second local user needs root (CI runs the tests as root)",
)

VICTIM_TEXT = "root's own file: nobody else may change it\n"
SCHEDULED = """
    [jobs.a]
    command = "echo ran >> {out}"
    schedule = "0 6 * * *"
"""


@pytest.fixture(scope="module")
def eve():
    """A second local user (and her group), made for these tests and removed after them."""
    name = f"cfeve{os.getpid() % 100000}"
    made = subprocess.run(
        ["useradd", "--system", "--user-group", "--no-create-home", "--shell", "/bin/false", name],
        capture_output=True,
        text=True,
    )
    if made.returncode != 0:
        pytest.skip(f"useradd could not create a second user here: {made.stderr.strip()}")
    try:
        yield pwd.getpwnam(name)
    finally:
        subprocess.run(["userdel", name], capture_output=True)


class Victim:
    """A root-only file that every planted link points at; check() says it is untouched."""

    def __init__(self, folder: Path) -> None:
        self.path = folder / "root-only" / "victim"
        self.path.parent.mkdir(mode=0o700)
        self.path.write_text(VICTIM_TEXT)
        self.path.chmod(0o600)
        self.before = self.path.stat()

    def check(self) -> None:
        now = self.path.stat()
        assert self.path.read_text() == VICTIM_TEXT
        assert (now.st_mode, now.st_uid, now.st_gid) == (
            self.before.st_mode,
            0,
            self.before.st_gid,
        )
        assert [p.name for p in self.path.parent.iterdir()] == ["victim"]


@pytest.fixture
def victim(tmp_path):
    return Victim(tmp_path)


def plant_link(at: Path, target: Path, owner: pwd.struct_passwd) -> None:
    at.unlink(missing_ok=True)
    at.symlink_to(target)
    os.lchown(at, owner.pw_uid, owner.pw_gid)


def as_owner(path: Path, owner: pwd.struct_passwd, mode: int) -> Path:
    os.chown(path, owner.pw_uid, owner.pw_gid)
    path.chmod(mode)
    return path


# ---- a state directory another user controls ----------------------------------------------

STATE_FILES = [
    layout.LOG_NAME,
    layout.WATERMARKS_NAME,
    layout.INDEX_NAME,
    layout.LAST_TICK,
    layout.IDLE_STAMP_NAME,
    layout.BOOTS_NAME,
    layout.RESERVE_NAME,
    layout.EXPOSURE_WARNED,
    layout.VALIDATED_NAME,
]


@pytest.mark.parametrize("how", ["owned by eve", "writable by all"])
def test_a_state_directory_another_user_controls_is_refused_before_anything(
    write_jobs, tmp_path, eve, victim, how
):
    write_jobs(SCHEDULED.format(out=tmp_path / "out"))
    state = tmp_path / ".cronflow"
    state.mkdir()
    (state / "locks").mkdir()
    (state / "output").mkdir()
    for name in STATE_FILES:
        plant_link(state / name, victim.path, eve)
    plant_link(state / "locks" / "a.lock", victim.path, eve)
    plant_link(state / "output" / "a", victim.path.parent, eve)
    if how == "owned by eve":
        as_owner(state, eve, 0o700)
    else:
        state.chmod(0o777)
    listing = sorted(str(p.relative_to(state)) for p in state.rglob("*"))
    for command in (["run"], ["run", "--date", "2026-01-14"], ["status"], ["history"], ["reindex"]):
        result = run_cli(*command, cwd=tmp_path)
        assert result.returncode == 2, (command, result.stdout, result.stderr)
        assert "Traceback" not in result.stderr
        assert "state directory" in result.stderr and "Run: ch" in result.stderr, result.stderr
    victim.check()
    assert sorted(str(p.relative_to(state)) for p in state.rglob("*")) == listing
    assert not (tmp_path / "out").exists()


def test_a_state_directory_below_a_directory_another_user_owns_is_refused(
    write_jobs, tmp_path, eve
):
    above = tmp_path / "eves"
    above.mkdir()
    as_owner(above, eve, 0o755)
    jobs = write_jobs(f'[cronflow]\nstate_dir = "{above}/state"\n' + SCHEDULED.format(out="out"))
    result = run_cli("run", "--date", "2026-01-14", "--jobs", str(jobs), cwd=tmp_path)
    assert result.returncode == 2 and "is owned by" in result.stderr, result.stderr
    assert not (above / "state").exists()


# ---- a link in place of a state file ------------------------------------------------------


@pytest.mark.parametrize(
    "name", STATE_FILES + ["locks/a.lock", "locks/a@runs.lock", "locks/@plan.lock", "output/a"]
)
def test_a_link_in_place_of_a_state_file_is_never_followed(write_jobs, tmp_path, victim, name):
    """However it got there (the directory was someone else's once), a link where cronflow
    keeps a file is refused, or replaced, but never followed: the file it points at keeps
    its content, mode and owner."""
    write_jobs(SCHEDULED.format(out=tmp_path / "out"))
    assert run_cli("run", "--date", "2026-01-13", cwd=tmp_path).returncode == 0
    state = tmp_path / ".cronflow"
    target = victim.path.parent if name.startswith("output/") else victim.path
    at = state / name
    if at.is_dir():
        for child in at.iterdir():
            child.unlink()
        at.rmdir()
    at.unlink(missing_ok=True)
    at.symlink_to(target)
    for command in (["run", "--date", "2026-01-14"], ["run"], ["status"]):
        result = run_cli(*command, cwd=tmp_path)
        assert result.returncode in (0, 1, 2), (command, result.stderr)
        assert "Traceback" not in result.stderr, result.stderr
    victim.check()


# ---- the page's and the metrics' directories --------------------------------------------


def test_links_and_files_planted_where_the_page_and_metrics_go_are_never_followed(
    write_jobs, tmp_path, eve, victim
):
    """The page's directory may be written by the web server's group (eve's, here): every
    name cronflow writes there, planted as a link to a root-only file or as eve's own file,
    is replaced by root's file, and the root-only file is untouched, at a full tick and at
    the idle tick that renews the page between them."""
    for folder in ("www", "textfile"):
        (tmp_path / folder).mkdir()
        os.chown(tmp_path / folder, 0, eve.pw_gid)
        (tmp_path / folder).chmod(0o2775)
    write_jobs(
        '[cronflow]\nhtml_file = "www/index.html"\nmetrics_file = "textfile/cronflow.prom"\n'
        + SCHEDULED.format(out=tmp_path / "out")
    )
    page, metrics = tmp_path / "www" / "index.html", tmp_path / "textfile" / "cronflow.prom"
    for step in range(3):
        plant_link(page, victim.path, eve)
        if step == 1:
            metrics.unlink(missing_ok=True)
            metrics.write_text("eve's\n")
            as_owner(metrics, eve, 0o666)
        else:
            plant_link(metrics, victim.path, eve)
        for command in (["run", "--date", "2026-01-14"], ["run"], ["run"]):
            result = run_cli(*command, cwd=tmp_path)
            assert result.returncode in (0, 1), (command, result.stderr)
        victim.check()
        for written in (page, metrics):
            status = written.lstat()
            assert not written.is_symlink() and status.st_uid == 0, (step, written)
            assert VICTIM_TEXT not in written.read_text()
    assert "cronflow" in page.read_text() and "cronflow_" in metrics.read_text()
