"""Bad input of every kind: exit 2 with one clear paragraph, never a traceback, nothing written.

First the inputs that once crashed cronflow, each through a real `cronflow` process; then a
property test that generates jobs files across the whole key grammar, with extreme and
wrongly typed values, and command lines with odd dates and names.
"""

from __future__ import annotations

import contextlib
import io
import os
import stat
import tempfile
from datetime import date, datetime
from pathlib import Path

import pytest
import tomli_w
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cronflow.cli.main import app
from cronflow.errors import CronflowError
from cronflow.load import values
from tests.conftest import refused, run_cli

GOOD_JOB = '[jobs.one]\ncommand = "true"\nschedule = "0 6 * * *"\n'


@pytest.mark.parametrize(
    "text, args",
    [
        ('[jobs.one]\ncommand = "true"\ntimeout = 1e15\n', ["validate"]),
        ('[jobs.one]\ncommand = "true"\nretry_delay = "100000000000000s"\n', ["validate"]),
        ('[jobs.one]\ncommand = "true"\nretries = 1\nretry_max_delay = 1e14\n', ["validate"]),
        ('[jobs.one]\ncommand = "true"\nkill_grace = 1e14\n', ["validate"]),
        ("[cronflow]\nshutdown_grace = 1e14\n" + GOOD_JOB, ["validate"]),
        (
            '[jobs.one]\ncommand = "true"\nretries = 2\nretry_backoff = inf\n',
            ["run", "--date", "2026-01-14"],
        ),
        ('[jobs.one]\ncommand = "true"\nretries = 2\nretry_backoff = nan\n', ["validate"]),
        ("[cronflow]\nkeep_days = 1000000000000\n" + GOOD_JOB, ["run"]),
        (f'[jobs.{"j" * 300}]\ncommand = "true"\n', ["run", "--date", "2026-01-14"]),
        ('[jobs.one]\ncommand = "tr\\u0000ue"\n', ["validate"]),
        ('[jobs.one]\ncommand = "true"\nenv = { A = "x\\u0000y" }\n', ["validate"]),
        ("a = " + "[" * 100_000 + "]" * 100_000 + "\n" + GOOD_JOB, ["validate"]),
        (f'[jobs.one]\ncommand = "{"x" * 5_000_000}"\n', ["validate"]),
        ('[cronflow]\nstate_dir = "a-file"\n' + GOOD_JOB, ["validate"]),
        (
            f'[cronflow]\ntimezone = "{"x" * 300}"\n' + GOOD_JOB,
            ["validate"],
        ),  # found by the test below
        (f'[jobs.one]\ncommand = "true"\ncwd = "/tmp/{"x" * 300}"\n', ["validate"]),
        (GOOD_JOB, ["run", "--date", "0001-01-01"]),
        (GOOD_JOB, ["run", "--date", "9999-12-31"]),
        (GOOD_JOB, ["history", "--since", "0001-01-01"]),
        (GOOD_JOB, ["next", "--from", "0001-01-01T00:00"]),
        ("[" + ".".join(["a"] * 1000) + "]\n" + GOOD_JOB, ["validate"]),
        (f'[cronflow]\nhtml_file = "{"x" * 300}"\n' + GOOD_JOB, ["validate"]),  # CI found it
        (GOOD_JOB, ["next", "--count", "100000"]),
        (GOOD_JOB, ["history", "--limit", "10001"]),
        (GOOD_JOB, ["logs", "one", "--attempt", "102"]),
        (GOOD_JOB, ["status", "--html", "/"]),
        (GOOD_JOB, ["status", "--html", "/nowhere/page.html"]),
        (GOOD_JOB, ["status", "--html", "a-file/page.html"]),
        (GOOD_JOB + 'ping_url = "http://[::1/x"\n', ["validate"]),
        (GOOD_JOB + 'ping_url = "http://hc-ping.com:99999/x"\n', ["validate"]),
        ('[alerts]\nurls = ["json://[::1"]\n' + GOOD_JOB, ["run", "--date", "2026-01-14"]),
        ('[cronflow]\nheartbeat_url = "http://[::1"\n' + GOOD_JOB, ["run"]),
    ],
    ids=lambda value: value if isinstance(value, str) and len(value) < 40 else None,
)
def test_an_input_that_once_crashed_is_a_clear_error(tmp_path, text, args):
    (tmp_path / "jobs.toml").write_text(text)
    (tmp_path / "a-file").write_text("not a directory\n")
    result = run_cli(*args, cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr and result.stderr.startswith("cronflow: ")
    assert "jobs.toml" in result.stderr or "--" in result.stderr  # names the file or option
    assert not (tmp_path / ".cronflow").exists()


@pytest.mark.parametrize("kind", ["a device", "a FIFO", "too large", "a directory"])
def test_a_jobs_env_or_crontab_file_that_is_no_regular_file_is_refused_unread(tmp_path, kind):
    """Once, `--jobs /dev/zero` grew to 6 GiB and a FIFO blocked for ever."""
    path = {"a device": Path("/dev/zero"), "a directory": tmp_path / "folder"}.get(
        kind, tmp_path / "odd"
    )
    if kind == "a FIFO":
        os.mkfifo(path)
    elif kind == "too large":
        path.write_bytes(b"#" * (5 * 1024 * 1024))
    elif kind == "a directory":
        path.mkdir()
    (tmp_path / "jobs.toml").write_text(GOOD_JOB + f'env_file = "{path}"\n')
    for args in (
        ["validate", "--jobs", str(path)],
        ["validate"],
        ["import-crontab", str(path)],
    ):
        if kind == "a directory" and args[0] == "validate" and len(args) > 1:
            continue  # --jobs itself refuses a directory (click's own check)
        result = run_cli(*args, cwd=tmp_path, timeout=30)
        assert result.returncode == 2, (args, result.stderr)
        assert "Traceback" not in result.stderr and result.stderr.startswith("cronflow: ")
        assert str(path) in result.stderr
        said = ("regular file", "larger than", "Is a directory")
        assert any(words in result.stderr for words in said), result.stderr
    assert not (tmp_path / ".cronflow").exists()


# ---- generated ---------------------------------------------------------------------------------

ODD_TEXT = st.one_of(
    st.text(max_size=12),
    st.sampled_from(
        [
            "",
            " ",
            "\0",
            "x" * 300,
            "é",
            "../..",
            "/",
            "*/0 * * * *",
            "@reboot",
            "60 * * * *",
            "0 0 31 2 *",
            "0 0 */2 * 1",
            "1e99",
            "inf",
            "nan",
            "-1s",
            "1h30",
            "99999999999d",
            "never",
            "UTC",
            "Mars/Olympus",
            "true",
            "~root",
            "root",
            "nobody",
            "%",
            "5/15",
            "0 0 L * *",
            "failure",
            "skip",
            "all",
            "\x1b[31mred\x1b[0m",
            "a\rb",
            "a\nb",
            "line\u2028break",
            "next\x85line",
            "http://[::1",
            "http://u:p@[::1]:99999/x",
        ]
    ),
)
NUMBERS = st.one_of(
    st.integers(-(2**63), 2**63 - 1),
    st.sampled_from([0, -1, 1, 10**12, 2**63 - 1]),
    st.floats(allow_nan=True, allow_infinity=True),
)
SCALARS = st.one_of(
    ODD_TEXT,
    NUMBERS,
    st.booleans(),
    st.datetimes(datetime(1, 1, 1), datetime(9999, 12, 31)),
    st.dates(date(1, 1, 1), date(9999, 12, 31)),
)
VALUES = st.recursive(
    SCALARS,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(ODD_TEXT, inner, max_size=3)
    ),
    max_leaves=6,
)
NAMES = st.one_of(st.sampled_from(["one", "two", "a.b-c_d", "x" * 101]), ODD_TEXT)


def table_of(keys: list[str]):
    known = st.sampled_from(keys + ["nonsense", "Command"])
    return st.dictionaries(known, VALUES, max_size=4)


JOB_TABLES = st.builds(
    lambda extra, command: {**extra, **command},
    table_of(sorted(values.JOB_KEYS)),
    st.one_of(
        st.just({"command": "true"}),
        st.just({}),
        st.builds(lambda value: {"command": value}, VALUES),
    ),
)
JOBS_FILES = st.fixed_dictionaries(
    {"jobs": st.dictionaries(NAMES, JOB_TABLES, min_size=1, max_size=3)},
    optional={
        "cronflow": table_of(sorted(values.SETTINGS_KEYS)),
        "alerts": table_of(sorted(values.ALERT_KEYS)),
        "defaults": table_of(sorted(values.JOB_KEYS)),
        "assets": st.dictionaries(NAMES, table_of(sorted(values.ASSET_KEYS)), max_size=2),
    },
)
DATES = st.one_of(
    st.dates(date(1, 1, 1), date(9999, 12, 31)).map(str),
    st.tuples(st.dates(), st.dates()).map(lambda pair: f"{pair[0]}..{pair[1]}"),
    st.sampled_from(["today", "yesterday", "-7d..today", "-0d", "-99999999d", "today..-3d"]),
    ODD_TEXT,
)
COMMANDS = st.one_of(
    st.just(["validate"]),
    st.just(["run", "--dry-run"]),
    st.just(["status"]),
    st.just(["status", "--json"]),
    st.just(["next"]),
    st.just(["graph"]),
    DATES.map(lambda day: ["run", "--date", day, "--dry-run"]),
    DATES.map(lambda day: ["history", "--since", day]),
    st.tuples(NAMES, DATES).map(
        lambda pair: ["run", "--date", pair[1], "--job", pair[0], "--dry-run"]
    ),
    ODD_TEXT.map(lambda text: ["next", "--from", text]),
    NAMES.map(lambda name: ["run", "--job", name, "--dry-run"]),
)


def invoke(args: list[str]) -> int:
    """The cronflow command in this process, as `cronflow.cli.main` runs it; an exception
    other than cronflow's own errors propagates (that would be the traceback)."""
    try:
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            app(args, prog_name="cronflow")
    except SystemExit as exit_status:
        return exit_status.code or 0
    except CronflowError as error:
        return error.exit_code
    return 0


@settings(
    max_examples=int(os.environ.get("CRONFLOW_FUZZ_EXAMPLES", "300")),
    deadline=None,
    suppress_health_check=list(HealthCheck),
)
@given(document=JOBS_FILES, command=COMMANDS)
def test_any_jobs_file_and_command_line_ends_in_0_or_a_clear_2(document, command):
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        jobs = root / "jobs.toml"
        document.setdefault("cronflow", {})["state_dir"] = "state"  # never / or /etc
        try:
            jobs.write_text(tomli_w.dumps(document))
        except (ValueError, TypeError):
            return  # not expressible in TOML (tomli_w refuses it): not an input anyone can write
        code = invoke([*command, "--jobs", str(jobs)])
        assert code in (0, 2)
        if code == 2:
            assert sorted(path.name for path in root.iterdir()) == ["jobs.toml"]


def test_control_characters_from_the_jobs_file_never_reach_the_terminal_raw(tmp_path):
    """Escape sequences and carriage returns in values are shown escaped, in errors and in
    every view: a jobs file cannot rewrite what its reader sees."""
    odd = "\\u001b[31mRED\\u001b[0m\\r\\u0008"
    good = f"""
[jobs.a]
command = "echo {odd}"
description = "made {odd}"
schedule = "0 6 * * *"
produces = ["sales"]
alert_tags = ["{odd}"]
[jobs.b]
command = "true"
depends_on = ["a"]
"""
    bad = good + f'cwd = "/nowhere/{odd}"\n'
    for text, commands in (
        (bad, [["validate"], ["run", "--dry-run"]]),
        (good, [["validate"], ["status"], ["assets"], ["graph"], ["next"], ["history"]]),
        (good, [["run", "--date", "2026-01-14"], ["history"], ["status", "--all"]]),
    ):
        (tmp_path / "jobs.toml").write_text(text)
        for command in commands:
            result = run_cli(*command, cwd=tmp_path, env={"COLUMNS": "200"})
            shown = result.stdout + result.stderr
            assert "Traceback" not in shown, (command, shown)
            for raw in ("\x1b", "\r", "\x08"):
                assert raw not in shown, (command, shown)
            if text is bad:
                assert "\\x1b[31mRED" in shown and result.returncode == 2, (command, shown)


@pytest.mark.parametrize("kind", ["a FIFO", "a device"])
def test_a_device_or_fifo_is_never_replaced_by_a_page_or_metrics_file(tmp_path, kind):
    """Once, `status --html /dev/null` as root renamed the page over /dev/null, and every
    program on the machine then wrote into a file. Here on a node of the test's own."""
    special = tmp_path / "special.prom"
    if kind == "a FIFO":
        os.mkfifo(special)
    else:
        try:
            os.mknod(special, 0o666 | stat.S_IFCHR, os.stat("/dev/null").st_rdev)
        except PermissionError:
            pytest.skip("making a device node needs root (CI runs the tests as root)")
    before = special.lstat()
    (tmp_path / "jobs.toml").write_text(GOOD_JOB)
    for args in (["status", "--html", str(special)], ["export", "airflow", "--out", str(special)]):
        result = run_cli(*args, cwd=tmp_path, timeout=30)
        assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
    for key in ("html_file", "metrics_file"):
        (tmp_path / "jobs.toml").write_text(f'[cronflow]\n{key} = "{special}"\n' + GOOD_JOB)
        said = refused(tmp_path, (tmp_path / "jobs.toml").read_text())
        assert "is not a regular file" in said, said
    after = special.lstat()
    assert (after.st_mode, after.st_ino) == (before.st_mode, before.st_ino)
