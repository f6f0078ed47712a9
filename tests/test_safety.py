"""Safe to run as root: private state, refusing files others could change, jobs as other
users, env_file, and crafted input that runs nothing (secrets: test_secrets.py). Real files, owners, modes and processes.

Tests that chown or run a job as another user need root (CI runs the suite as root); run
as anyone else they are skipped with that reason.
"""

from __future__ import annotations

import os
import pwd
import shutil
import stat
import tempfile
from datetime import date
from pathlib import Path

import pytest

from cronflow.act.runner import read_exit_status
from cronflow.decide.selection import runs_for_date
from cronflow.errors import ConfigError
from cronflow.load import jobs_toml
from cronflow.load.env_files import EnvFileError, parse_env
from cronflow.model import RunKind, RunStatus
from tests.conftest import run_cli

IS_ROOT = os.geteuid() == 0
needs_root = pytest.mark.skipif(
    not IS_ROOT,
    reason="changing file owners and running a job "
    "as another user need root (CI runs the tests as root)",
)
NOBODY = pwd.getpwnam("nobody")

MARKER_JOB = """
    [jobs.mark]
    command = "touch ran"
"""


# ---- permissions ----------------------------------------------------------------------------


def test_every_state_file_is_private_whatever_the_umask(write_jobs, tmp_path):
    write_jobs("""
        [jobs.first]
        command = "echo out; echo err >&2"
        schedule = "0 6 * * *"
        [jobs.second]
        command = "exit 1"
        depends_on = ["first"]
        retries = 1
        retry_delay = 0
    """)
    for args in (["run", "--date", "2026-01-14"], ["run"], ["status"], ["history"]):
        run_cli(*args, cwd=tmp_path, umask=0)
    state = tmp_path / ".cronflow"
    found = {
        path.relative_to(state).as_posix(): stat.S_IMODE(path.stat().st_mode)
        for path in [state, *state.rglob("*")]
    }
    assert {"runs.jsonl", "index.sqlite3", "watermarks.json", "locks", "output/second"} <= set(
        found
    ), found
    assert any(name.startswith("locks/") for name in found)
    assert any(name.endswith(".stderr") for name in found)
    wrong = {
        name: f"{mode:04o}"
        for name, mode in found.items()
        if mode != (0o700 if (state / name).is_dir() else 0o600)
    }
    assert wrong == {}


def test_an_open_state_directory_is_left_alone_and_warned_about_once(write_jobs, tmp_path):
    write_jobs(MARKER_JOB)
    state = tmp_path / ".cronflow"
    state.mkdir(mode=0o755)
    state.chmod(0o755)
    first = run_cli("run", cwd=tmp_path)
    assert f"the state directory {state} is open to group or others (mode 0755)" in first.stderr
    assert f"Fix: chmod 700 {state}" in first.stderr
    assert "warning" not in run_cli("run", cwd=tmp_path).stderr  # once
    assert stat.S_IMODE(state.stat().st_mode) == 0o755  # never changed by cronflow
    state.chmod(0o750)
    assert "(mode 0750)" in run_cli("run", cwd=tmp_path).stderr  # a new mode: said again
    state.chmod(0o700)
    assert "warning" not in run_cli("run", cwd=tmp_path).stderr


# ---- files others could change ----------------------------------------------------------------


def test_a_file_is_replaced_whole_never_through_a_link_planted_at_its_temporary_name(
    tmp_path, monkeypatch
):
    """Another user who can write the directory (a web server's, node_exporter's) plants a
    link where the temporary file will be (here they even guessed its random part): the
    write fails, nothing the link points to changes, the file keeps what it had, the link
    stays (not ours), and a later write (under a name not taken) goes through."""
    import _thread

    from cronflow.state import files

    target, victim = tmp_path / "status.html", tmp_path / "victim"
    target.write_text("old")
    victim.write_text("root's file")
    planted = tmp_path / f".status.html.{os.getpid()}.{_thread.get_ident()}.{'ab' * 4}"
    planted.symlink_to(victim)
    monkeypatch.setattr(files.os, "urandom", lambda size: b"\xab" * size)
    with pytest.raises(OSError):
        files.replace_whole(target, b"new", mode=0o644)
    monkeypatch.undo()
    assert victim.read_text() == "root's file" and target.read_text() == "old"
    assert planted.is_symlink()  # not ours to remove: it is another user's entry
    planted.unlink()
    files.replace_whole(target, b"new", mode=0o640)
    assert target.read_text() == "new" and stat.S_IMODE(target.stat().st_mode) == 0o640
    assert sorted(path.name for path in tmp_path.iterdir()) == ["status.html", "victim"]


def make_group_writable(path: Path) -> None:
    path.chmod(0o664 if path.is_file() else 0o775)


def make_other_writable(path: Path) -> None:
    path.chmod(0o646 if path.is_file() else 0o757)


def give_to_nobody(path: Path) -> None:
    os.chown(path, NOBODY.pw_uid, -1)


FIXES = {
    make_group_writable: ("is writable by group", "chmod go-w"),
    make_other_writable: ("is writable by others", "chmod go-w"),
    give_to_nobody: ("is owned by nobody", "chown root"),
}


@pytest.fixture
def guarded(write_jobs, tmp_path):
    """A jobs file with an apprise config and an env_file, all safe to start with."""
    (tmp_path / "conf").mkdir()
    (tmp_path / "conf" / "apprise.yml").write_text("urls:\n  - json://127.0.0.1:9/hook\n")
    (tmp_path / "conf" / "job.env").write_text("GREETING=hello\n")
    return write_jobs("""
        [alerts]
        config = "conf/apprise.yml"
        [jobs.mark]
        command = "touch ran"
        env_file = "conf/job.env"
    """)


@needs_root
@pytest.mark.parametrize("change", list(FIXES), ids=lambda change: change.__name__)
@pytest.mark.parametrize("target", ["jobs.toml", "conf/apprise.yml", "conf/job.env", "conf"])
def test_root_refuses_what_others_could_change(guarded, tmp_path, target, change):
    path = tmp_path / target
    change(path)
    result = run_cli("run", "--date", "2026-01-14", cwd=tmp_path)
    assert result.returncode == 2
    problem, fix = FIXES[change]
    assert (
        f"cronflow runs as root and {'' if target != 'conf' else f'{path}, a directory above '}"
        in result.stderr
    )
    assert problem in result.stderr
    assert f"Run: {fix} {path}" in result.stderr
    assert "nothing was run" in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "ran").exists() and not (tmp_path / ".cronflow").exists()


@needs_root
def test_a_sticky_world_writable_directory_is_fine_for_its_own_entries(tmp_path):
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o1777)  # like /tmp
    (shared / "jobs.toml").write_text('[jobs.mark]\ncommand = "touch ran"\n')
    result = run_cli("run", "--date", "2026-01-14", cwd=shared)
    assert result.returncode == 0, result.stderr
    assert (shared / "ran").exists()


@needs_root
def test_not_as_root_the_same_findings_only_warn(guarded, tmp_path):
    for path in (tmp_path, tmp_path / "conf", *(tmp_path / "conf").iterdir(), guarded):
        os.chown(path, NOBODY.pw_uid, -1)  # as if nobody had written it all
    make_group_writable(guarded)
    jobfile = jobs_toml.load(guarded, euid=NOBODY.pw_uid)  # cronflow running as nobody
    assert jobfile.warnings == (
        f"the jobs file is writable by group (mode 0664); as root cronflow would refuse it. "
        f"Fix: chmod go-w {guarded}",
    )
    with pytest.raises(ConfigError, match="owned by nobody"):
        jobs_toml.load(guarded, euid=0)


def test_an_env_file_that_others_can_change_after_loading_fails_only_its_run(
    guarded, tmp_path, make_executor
):
    jobfile = jobs_toml.load(guarded)
    run = runs_for_date(jobfile, ["mark"], date(2026, 1, 14), RunKind.BACKFILL)
    make_other_writable(tmp_path / "conf" / "job.env")
    [outcome] = make_executor(jobfile).execute(run)
    if IS_ROOT:
        assert outcome.status is RunStatus.FAILED
        assert outcome.event.reason.startswith(f"env_file {tmp_path / 'conf' / 'job.env'}: ")
        assert "refused as root. Run: chmod go-w" in outcome.event.reason
        assert not (tmp_path / "ran").exists()
    else:
        assert outcome.status is RunStatus.SUCCESS  # only root refuses


# ---- jobs as other users ----------------------------------------------------------------------


@pytest.fixture
def open_folder():
    """A folder another user can enter (tmp_path's parents are private to root)."""
    folder = Path(tempfile.mkdtemp(prefix="cronflow-user-"))
    folder.chmod(0o755)
    yield folder
    shutil.rmtree(folder)


@needs_root
def test_a_job_runs_as_its_user_with_that_users_identity(open_folder):
    out = open_folder / "out"
    out.mkdir()
    out.chmod(0o777)
    (open_folder / "jobs.toml").write_text("""
[jobs.who]
command = 'id -u > out/id; id -g >> out/id; id -G >> out/id; echo "$HOME|$USER|$LOGNAME" >> out/id; echo "${SECRET_ROOT_VAR-unset}" >> out/id'
user = "nobody"
""")
    result = run_cli(
        "run", "--date", "2026-01-14", cwd=open_folder, env={"SECRET_ROOT_VAR": "root-only"}
    )
    assert result.returncode == 0, result.stdout + result.stderr
    uid, gid, groups, identity, leaked = (out / "id").read_text().splitlines()
    assert int(uid) == NOBODY.pw_uid and int(gid) == NOBODY.pw_gid
    assert sorted(map(int, groups.split())) == sorted(set(os.getgrouplist("nobody", NOBODY.pw_gid)))
    assert identity == f"{NOBODY.pw_dir}|nobody|nobody"
    assert leaked == "unset"  # root's environment is not handed to the user
    outputs = list((open_folder / ".cronflow" / "output" / "who").iterdir())
    assert sorted(path.suffix for path in outputs) == [".exit", ".stderr", ".stdout"]
    [exit_file] = [path for path in outputs if path.suffix == ".exit"]
    assert read_exit_status(exit_file) == 0  # written by the wrapper, running as nobody
    assert {(path.stat().st_uid, path.stat().st_gid) for path in outputs} == {
        (NOBODY.pw_uid, NOBODY.pw_gid)
    }


@needs_root
def test_a_group_replaces_the_users_own(open_folder):
    (open_folder / "out").mkdir(mode=0o777)
    (open_folder / "out").chmod(0o777)
    (open_folder / "jobs.toml").write_text(
        '[jobs.who]\ncommand = "id -g > out/gid"\nuser = "nobody"\ngroup = "daemon"\n'
    )
    assert run_cli("run", "--date", "2026-01-14", cwd=open_folder).returncode == 0
    import grp

    assert int((open_folder / "out" / "gid").read_text()) == grp.getgrnam("daemon").gr_gid


@pytest.mark.parametrize(
    ("keys", "message"),
    [
        (
            'user = "no-such-user-x"',
            ':3: job "who", key "user": user "no-such-user-x" does not exist',
        ),
        (
            'user = "nobody"\ngroup = "no-such-group-x"',
            ':4: job "who", key "group": group "no-such-group-x" does not exist',
        ),
        ('group = "daemon"', ':3: job "who", key "group": group is set without user'),
    ],
)
def test_accounts_are_checked_by_validate(write_jobs, tmp_path, keys, message):
    if not IS_ROOT and "user" in keys:
        pytest.skip("user needs cronflow as root; the non-root error is tested below")
    write_jobs(f'[jobs.who]\ncommand = "true"\n{keys}\n')
    result = run_cli("validate", cwd=tmp_path)
    assert result.returncode == 2
    assert f"jobs.toml{message}" in result.stderr


def test_a_user_needs_cronflow_to_run_as_root(write_jobs):
    path = write_jobs('[jobs.who]\ncommand = "true"\nuser = "nobody"\n')
    with pytest.raises(ConfigError) as error:
        jobs_toml.load(path, euid=NOBODY.pw_uid)
    assert (
        'job "who", key "user": user = "nobody" needs cronflow to run as root, and it runs '
        "as nobody"
    ) in str(error.value)


# ---- env_file ---------------------------------------------------------------------------------


def test_env_file_values_come_before_env_and_are_read_at_each_run(write_jobs, tmp_path):
    (tmp_path / "a.env").write_text("FROM_FILE=one\nBOTH=file\n")
    write_jobs("""
        [defaults]
        env_file = "a.env"
        [jobs.show]
        command = 'echo "$FROM_FILE $BOTH" >> seen'
        env = { BOTH = "env" }
    """)
    assert run_cli("run", "--date", "2026-01-14", cwd=tmp_path).returncode == 0
    (tmp_path / "a.env").write_text("FROM_FILE=two\nBOTH=file\n")  # no reload needed
    assert run_cli("run", "--date", "2026-01-15", cwd=tmp_path).returncode == 0
    assert (tmp_path / "seen").read_text() == "one env\ntwo env\n"


def test_a_broken_env_file_is_named_with_its_line_never_its_values(write_jobs, tmp_path):
    (tmp_path / "a.env").write_text("GOOD=fine\nAPI_TOKEN = 'unclosed-s3cret\n")
    write_jobs('[jobs.show]\ncommand = "true"\nenv_file = "a.env"\n')
    result = run_cli("validate", cwd=tmp_path)
    assert result.returncode == 2
    assert (
        f'key "env_file": "{tmp_path / "a.env"}": line 2 opens a \'-quoted value that never closes'
    ) in result.stderr
    assert "s3cret" not in result.stderr
    (tmp_path / "a.env").unlink()
    missing = run_cli("validate", cwd=tmp_path)
    assert f'"{tmp_path / "a.env"}" cannot be read (No such file or directory)' in missing.stderr


def test_an_env_file_broken_after_loading_fails_the_run_with_a_reason(
    write_jobs, tmp_path, make_executor
):
    (tmp_path / "a.env").write_text("OK=1\n")
    jobfile = jobs_toml.load(write_jobs('[jobs.show]\ncommand = "touch ran"\nenv_file = "a.env"\n'))
    (tmp_path / "a.env").write_text("OK=1\nnot an assignment s3cret\n")
    run = runs_for_date(jobfile, ["show"], date(2026, 1, 14), RunKind.BACKFILL)
    [outcome] = make_executor(jobfile).execute(run)
    assert outcome.status is RunStatus.FAILED
    assert outcome.event.reason == f"env_file {tmp_path / 'a.env'}: line 2 is not NAME=value"
    assert not (tmp_path / "ran").exists()


@pytest.mark.parametrize(
    ("text", "values"),
    [
        ("A=1\n# comment\n\nexport B = two words  # note\n", {"A": "1", "B": "two words"}),
        ("C='$HOME \\n # kept'\n", {"C": "$HOME \\n # kept"}),
        ('D="tab\\there \\"q\\" \\\\ \\$X"\n', {"D": 'tab\there "q" \\ $X'}),
        (
            'KEY="-----BEGIN-----\nabc\n-----END-----"\nNEXT=1',
            {"KEY": "-----BEGIN-----\nabc\n-----END-----", "NEXT": "1"},
        ),
        ("EMPTY=\nHASH=a#b\n", {"EMPTY": "", "HASH": "a#b"}),
    ],
)
def test_env_file_syntax(text, values):
    assert parse_env(text) == values


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("OK=1\nnot-a-name=2\n", "line 2 is not NAME=value"),
        ("A=1\nB='x\n\n", "line 2 opens a '-quoted value that never closes"),
        ('A="x" y\n', "line 1 has text after its closing quote"),
        ('A="x\ny"\nbad\n', "line 3 is not NAME=value"),
    ],
)
def test_env_file_errors_name_the_line(text, message):
    with pytest.raises(EnvFileError) as error:
        parse_env(text)
    assert str(error.value) == message


# ---- no injection -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "args",
    [
        ["run", "--date", "2026-01-14;touch pwned"],
        ["run", "--date", "$(touch pwned)"],
        ["run", "--date", "2026-01-14", "--job", "mark;touch pwned"],
        ["logs", "mark;touch pwned"],
        ["history", "--job", "$(touch pwned)"],
    ],
)
def test_crafted_arguments_run_nothing(write_jobs, tmp_path, args):
    write_jobs(MARKER_JOB)
    result = run_cli(*args, cwd=tmp_path)
    assert result.returncode == 2, result.stdout
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "pwned").exists() and not (tmp_path / "ran").exists()


def test_a_job_name_with_shell_in_it_is_refused(write_jobs, tmp_path):
    write_jobs('[jobs."a;touch${IFS}pwned"]\ncommand = "true"\n')
    result = run_cli("run", "--date", "2026-01-14", cwd=tmp_path)
    assert result.returncode == 2
    assert 'job name "a;touch${IFS}pwned" is not allowed' in result.stderr
    assert not (tmp_path / "pwned").exists()


def test_what_cronflow_knows_reaches_the_job_only_through_its_environment(write_jobs, tmp_path):
    write_jobs("""
        [jobs."odd.name-1"]
        command = 'printf "%s|%s" "$CRONFLOW_JOB" "$CRONFLOW_DATE" > seen'
    """)
    assert run_cli("run", "--date", "2026-01-14", cwd=tmp_path).returncode == 0
    assert (tmp_path / "seen").read_text() == "odd.name-1|2026-01-14"


@needs_root
def test_every_command_on_an_unwritable_state_directory_says_so_in_one_paragraph(open_folder):
    import subprocess
    import sys

    if shutil.which("setpriv") is None:
        pytest.skip("setpriv (util-linux) is needed to run cronflow as nobody")
    (open_folder / "jobs.toml").write_text('[jobs.a]\ncommand = "true"\nschedule = "0 6 * * *"\n')
    assert run_cli("run", "--date", "2026-01-14", cwd=open_folder).returncode == 0
    (open_folder / ".cronflow").chmod(0o755)  # readable, but not writable, by nobody
    for command in (["run"], ["run", "--date", "2026-01-14"], ["status"], ["history"], ["reindex"]):
        result = subprocess.run(
            [
                "setpriv",
                "--reuid=nobody",
                "--regid=nogroup",
                "--clear-groups",
                sys.executable,
                "-m",
                "cronflow",
                *command,
            ],
            cwd=open_folder,
            capture_output=True,
            text=True,
            timeout=60,
            env={"PATH": os.environ["PATH"], "HOME": "/tmp"},
        )
        assert result.returncode == 1, (command, result.stderr)
        assert result.stderr.startswith("cronflow: cannot ") and result.stderr.count("\n") == 1


def test_a_job_cannot_write_into_the_run_lock_it_inherits(write_jobs, tmp_path):
    """The run's lock is handed to the job (it stays locked while any of its processes
    lives); it is opened read-only, so a job, whoever it runs as, cannot write into it."""
    write_jobs(r"""
        [jobs.probe]
        command = '''
        for fd in /proc/$$/fd/*; do
          case "$(readlink "$fd")" in *.lock)
            n=$(basename "$fd")
            echo "$n $(sed -n 's/^flags:[[:space:]]*//p' /proc/$$/fdinfo/$n)" >> locks
            (echo pwned >&"$n") 2>/dev/null && echo "wrote $n" >> locks ;;
          esac
        done
        true
        '''
    """)
    assert run_cli("run", "--date", "2026-01-14", cwd=tmp_path).returncode == 0
    seen = (tmp_path / "locks").read_text().split("\n")[:-1]
    assert seen and not [line for line in seen if line.startswith("wrote")], seen
    assert all(int(line.split()[1], 8) & os.O_ACCMODE == os.O_RDONLY for line in seen), seen
    lock_files = list((tmp_path / ".cronflow" / "locks").iterdir())
    assert lock_files and all(path.stat().st_size == 0 for path in lock_files)
