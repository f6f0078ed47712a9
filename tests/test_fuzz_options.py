"""Every option of every command, drawn from typer's own description of the app: odd dates,
counts, names, paths and control characters, against a state directory that has runs in it.
Each command line ends with exit status 0, 1 or 2, never a traceback, and one that ends in 2
wrote nothing to the state directory.

`make test` draws a short, fixed set of cases (CI draws the same ones every run); `make fuzz`
draws thousands (CRONFLOW_FUZZ_EXAMPLES).
"""

from __future__ import annotations

import contextlib
import io
import os
import shutil
import stat
import tempfile
from pathlib import Path

import pytest
import typer
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from cronflow.cli.main import app
from cronflow.errors import CronflowError
from cronflow.state.layout import INDEX_NAME
from tests.conftest import run_cli
from tests.test_bad_input import DATES, NAMES, ODD_TEXT

EXAMPLES = int(os.environ.get("CRONFLOW_FUZZ_EXAMPLES", "150"))
# Never drawn: `daemon` and `serve` run until stopped (their own tests drive them), and
# `systemd install` writes to /etc unless --dry-run (drawn with --dry-run only). (`top`
# is drawn: without a terminal it ends at once, status 2.)
LEFT_OUT = {"daemon", "serve"}
JOBS = """
[cronflow]
state_dir = "state"
[jobs.one]
command = "echo one; echo oops >&2"
schedule = "0 6 * * *"
produces = ["sales"]
[jobs.two]
command = "exit 3"
depends_on = ["one"]
"""


def commands() -> dict[str, list]:
    """Every command's words and its parameters, as typer built them."""
    found: dict[str, list] = {}

    def walk(command, words: tuple[str, ...]) -> None:
        if hasattr(command, "commands"):
            for name, sub in command.commands.items():
                walk(sub, (*words, name))
        elif " ".join(words) not in LEFT_OUT:
            found[" ".join(words)] = command.params

    walk(typer.main.get_command(app), ())
    return found


COMMANDS = commands()
INTEGERS = st.one_of(
    st.integers(-(2**70), 2**70), st.sampled_from([0, -1, 1, 10**6, 2**31, 2**63]), ODD_TEXT
)
# Paths stay inside the case's folder: never the machine's own /dev/null (as root, a bug that
# renamed a file over it once replaced /dev/null and /dev/zero for every program). The folder
# has a device node and a FIFO of its own, checked after each case.
SPECIAL = ("null-device", "fifo")
OUTPUT_PATHS = st.one_of(
    ODD_TEXT.map(lambda text: "out-" + text.replace("/", "_").replace("\0", "")),
    st.sampled_from(["-", *SPECIAL, "/nonexistent/x", "jobs.toml", "state", "state/runs.jsonl"]),
)
INPUT_PATHS = OUTPUT_PATHS


def value_for(param) -> st.SearchStrategy[str]:
    name = param.name or ""
    kind = getattr(param.type, "name", "")
    if kind == "choice":
        return st.one_of(st.sampled_from(list(param.type.choices)), ODD_TEXT)
    if kind == "integer" or kind == "int":
        return INTEGERS.map(str)
    if name in ("date", "since", "start"):
        return DATES.map(str)
    if name in ("job", "exclude", "asset", "name"):
        return st.one_of(st.sampled_from(["one", "two", "sales"]), NAMES)
    if name in ("run_id",):
        return st.one_of(st.just("20260114T060000Z-abcdef"), ODD_TEXT)
    if name in ("source",):
        return INPUT_PATHS
    if name in ("output", "out", "path", "html"):
        return OUTPUT_PATHS
    return ODD_TEXT


@st.composite
def command_lines(draw) -> list[str]:
    words = draw(st.sampled_from(sorted(COMMANDS)))
    line = words.split()
    for param in COMMANDS[words]:
        if param.name == "jobs":
            continue  # added below: the case's own jobs file
        if param.param_type_name == "argument":
            line.append(draw(value_for(param)))
            continue
        if not draw(st.booleans()):
            continue
        option = param.opts[0]
        if getattr(param, "is_flag", False):
            line.append(option)
            continue
        for _ in range(draw(st.integers(1, 2)) if param.multiple else 1):
            line += [option, draw(value_for(param))]
    if words == "systemd install":
        line.append("--dry-run")
    return line


def invoke(args: list[str]) -> int:
    """The cronflow command in this process; any exception but cronflow's own propagates."""
    out = io.TextIOWrapper(io.BytesIO(), encoding="utf-8")  # `logs` writes bytes to .buffer
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(io.StringIO()):
            app(args, prog_name="cronflow")
    except SystemExit as exit_status:
        code = exit_status.code
        return code if isinstance(code, int) else 0 if code is None else 2
    except CronflowError as error:
        return error.exit_code
    return 0


def state_of(folder: Path) -> dict[str, tuple[int, int]]:
    """Every file of the state directory, its size and modification time, but the index: a
    cache of the log that any reader brings up to date (and SQLite gives files of its own)."""
    return {
        str(path.relative_to(folder)): (path.stat().st_size, path.stat().st_mtime_ns)
        for path in sorted((folder / "state").rglob("*"))
        if path.is_file() and not path.name.startswith(INDEX_NAME)
    }


@pytest.fixture(scope="module")
def history(tmp_path_factory) -> Path:
    """A folder whose state directory holds runs: a success, a failure, output files."""
    folder = tmp_path_factory.mktemp("with-history")
    (folder / "jobs.toml").write_text(JOBS)
    ran = run_cli("run", "--date", "2026-01-14", cwd=folder)
    assert ran.returncode == 1, ran.stderr  # `two` fails
    return folder


@settings(
    max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), database=None
)
@given(line=command_lines())
def test_any_option_of_any_command_ends_in_0_1_or_2_and_a_2_writes_nothing(history, line):
    with tempfile.TemporaryDirectory() as name:
        folder = Path(name)
        shutil.copytree(history, folder, dirs_exist_ok=True)
        _make_special_files(folder)
        before = state_of(folder)
        with contextlib.chdir(folder):
            code = invoke(
                [*line, "--jobs", str(folder / "jobs.toml")] if _takes_jobs(line) else line
            )
        event(f"{line[0]}: exit {code}")
        assert code in (0, 1, 2), line
        if code == 2:
            assert state_of(folder) == before, line
        assert [_kind(folder / name) for name in SPECIAL] == ["device", "fifo"], line


def _make_special_files(folder: Path) -> None:
    """A character device (as /dev/null is, where root may make one) and a FIFO."""
    null = os.stat("/dev/null")
    try:
        os.mknod(folder / SPECIAL[0], 0o666 | stat.S_IFCHR, null.st_rdev)
    except PermissionError:
        os.mkfifo(folder / SPECIAL[0])  # not root: a FIFO stands in for the device
    os.mkfifo(folder / SPECIAL[1])


def _kind(path: Path) -> str:
    mode = path.lstat().st_mode
    if stat.S_ISFIFO(mode):
        return "fifo" if path.name == SPECIAL[1] or os.geteuid() else "device"
    return "device" if stat.S_ISCHR(mode) else "replaced"


def _takes_jobs(line: list[str]) -> bool:
    words = " ".join(word for word in line[:2] if not word.startswith("-"))
    for known in (words, line[0]):
        if known in COMMANDS:
            return any(param.name == "jobs" for param in COMMANDS[known])
    return False
