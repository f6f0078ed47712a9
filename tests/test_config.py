"""jobs.toml validation: every class of bad input, through the real CLI and the parser."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from cronflow.errors import ConfigError
from cronflow.load import jobs_toml, values
from cronflow.model import CatchUp, Overlap
from tests.conftest import load, refused, run_cli

ROOT = Path(__file__).resolve().parent.parent

# (case, jobs.toml text, line expected in the message, words expected in the message)
BAD_FILES = [
    (
        "a list written as one string",
        '[jobs.a]\ncommand = "x"\n[jobs.b]\ncommand = "x"\ndepends_on = "a, c"\n',
        "jobs.toml:5:",
        'is one string, "a, c", where a list of job names belongs. Write depends_on = ["a", "c"]',
    ),
    (
        "a weekday cron does not know",
        '[jobs.a]\ncommand = "x"\nschedule = "0 6 * * 1,MO"\n',
        "jobs.toml:3:",
        'in the day-of-week field "1,MO" (its "MO"), "MO" is not a day-of-week value. Valid: 0-7',
    ),
    (
        "a minute out of range",
        '[jobs.a]\ncommand = "x"\nschedule = "0-60 * * * *"\n',
        "jobs.toml:3:",
        'in the minute field "0-60", 60 is out of range. Valid: 0-59',
    ),
    (
        "a step of zero",
        '[jobs.a]\ncommand = "x"\nschedule = "0 */0 * * *"\n',
        "jobs.toml:3:",
        'the step "/0" must be a number from 1 to 24. Valid: 0-23',
    ),
    (
        "tags as one string",
        '[jobs.a]\ncommand = "x"\nalert_tags = "ops"\n',
        "jobs.toml:3:",
        'Write it as a list: ["ops"]',
    ),
    ("syntax", '[jobs.a]\ncommand = "unterminated\n', "jobs.toml:2:", "TOML syntax error"),
    (
        "unknown key",
        '[jobs.a]\ncommand = "x"\nschedul = "@daily"\n',
        "jobs.toml:3:",
        'Did you mean "schedule"',
    ),
    ("unknown table", '[job.a]\ncommand = "x"\n', "jobs.toml:1:", 'Did you mean "jobs"'),
    (
        "wrong type",
        '[jobs.a]\ncommand = "x"\nretries = "three"\n',
        "jobs.toml:3:",
        "must be a whole number",
    ),
    (
        "bad duration",
        '[jobs.a]\ncommand = "x"\ntimeout = "1 hour"\n',
        "jobs.toml:3:",
        "is not a duration",
    ),
    (
        "bad cron",
        '[jobs.a]\ncommand = "x"\nschedule = "61 * * * *"\n',
        "jobs.toml:3:",
        "not a valid cron expression",
    ),
    (
        "impossible cron",
        '[jobs.a]\ncommand = "x"\nschedule = "0 0 31 2 *"\n',
        "jobs.toml:3:",
        "never matches",
    ),
    (
        "six fields",
        '[jobs.a]\ncommand = "x"\nschedule = "0 0 * * * *"\n',
        "jobs.toml:3:",
        "has 6 fields",
    ),
    (
        "unknown zone",
        '[jobs.a]\ncommand = "x"\ntimezone = "Mars/Olympus"\n',
        "jobs.toml:3:",
        "not a known time zone",
    ),
    (
        "unknown dependency",
        '[jobs.a]\ncommand = "x"\n\n[jobs.b]\ncommand = "x"\ndepends_on = ["aa"]\n',
        "jobs.toml:6:",
        'Did you mean "a"',
    ),
    (
        "cycle",
        '[jobs.a]\ncommand = "x"\ndepends_on = ["b"]\n[jobs.b]\ncommand = "x"\n'
        'depends_on = ["a"]\n',
        "jobs.toml:3:",
        "a -> b -> a",
    ),
    ("no command", '[jobs.a]\nschedule = "@daily"\n', "jobs.toml:1:", "has no command"),
    (
        "bad choice",
        '[jobs.a]\ncommand = "x"\novelap = "skip"\ncatchup = "some"\n',
        "jobs.toml:4:",
        'Use one of "latest", "all", "none"',
    ),
    (
        "relative shell",
        '[jobs.a]\ncommand = "x"\nshell = "bash"\n',
        "jobs.toml:3:",
        "is not an absolute path",
    ),
    (
        "missing shell",
        '[jobs.a]\ncommand = "x"\nshell = "/no/such/shell"\n',
        "jobs.toml:3:",
        "is not an executable file",
    ),
    (
        "duration too long",
        '[jobs.a]\ncommand = "x"\ntimeout = "400d"\n',
        "jobs.toml:3:",
        "is longer than 365 days",
    ),
    (
        "too many retries",
        '[jobs.a]\ncommand = "x"\nretries = 1000\n',
        "jobs.toml:3:",
        "must be from 0 to 100",
    ),
    (
        "clashing upstream schedules",
        '[jobs.a]\ncommand = "x"\nschedule = "@daily"\n'
        '[jobs.b]\ncommand = "x"\nschedule = "@hourly"\n[jobs.c]\ncommand = "x"\n'
        'depends_on = ["a", "b"]\n',
        "jobs.toml:9:",
        "upstreams run on different schedules",
    ),
]


@pytest.mark.parametrize("case, text, line, words", BAD_FILES, ids=[c[0] for c in BAD_FILES])
def test_bad_input_exits_2_with_the_line_and_no_traceback(tmp_path, case, text, line, words):
    (tmp_path / "jobs.toml").write_text(text)
    result = run_cli("validate", cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    assert line in result.stderr and words in result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    assert "nothing was run" not in result.stderr  # validate runs nothing anyway


@pytest.mark.parametrize(
    "setup, words",
    [
        (lambda d: None, "does not exist"),
        (lambda d: (d / "jobs.toml").mkdir(), "cannot be read"),
        (lambda d: (d / "jobs.toml").write_bytes(b"\xff\xfe[jobs]"), "not UTF-8"),
    ],
    ids=["missing", "directory", "not utf-8"],
)
def test_an_unusable_file_exits_2_with_no_traceback(tmp_path, setup, words):
    setup(tmp_path)
    result = run_cli("validate", cwd=tmp_path)
    assert result.returncode == 2
    assert words in result.stderr and "jobs.toml" in result.stderr
    assert "Traceback" not in result.stderr


def test_every_problem_is_reported_at_once(write_jobs):
    path = write_jobs("""
        [cronflow]
        timezone = "Europe/Berln"
        [defaults]
        retries = -1
        [jobs.extract]
        command = "x"
        schedule = "0 25 * * *"
        [jobs.load]
        command = "x"
        depends_on = ["extrct"]
        timeuot = "5m"
    """)
    with pytest.raises(ConfigError) as raised:
        jobs_toml.load(path)
    problems = raised.value.problems
    assert [(p.line, p.job, p.key) for p in problems] == [
        (3, None, "cronflow.timezone"),
        (5, None, "defaults.retries"),
        (8, "extract", "schedule"),
        (11, "load", "depends_on"),
        (12, "load", "timeuot"),
    ]
    message = str(raised.value)
    assert message.startswith(f"{path}: 5 problems found.\n")  # validate: nothing was to run
    assert (
        raised.value.because("nothing was run")
        .args[0]
        .startswith(f"{path}: 5 problems found; nothing was run.\n")
    )
    assert 'Did you mean "Europe/Berlin"' not in message  # zones: the fix names examples
    assert 'Did you mean "extract"' in message and 'Did you mean "timeout"' in message


def test_the_jobs_file_comes_from_the_option_then_the_environment_then_the_folder(tmp_path):
    explicit, from_env = tmp_path / "a.toml", tmp_path / "b.toml"
    assert (
        jobs_toml.find_jobs_file(explicit, {"CRONFLOW_JOBS": str(from_env)}, tmp_path) == explicit
    )
    assert jobs_toml.find_jobs_file(None, {"CRONFLOW_JOBS": str(from_env)}, tmp_path) == from_env
    assert jobs_toml.find_jobs_file(None, {}, tmp_path) == tmp_path / "jobs.toml"


def test_cronflow_jobs_variable_is_used_by_the_cli(write_jobs, tmp_path):
    path = write_jobs('[jobs.only]\ncommand = "true"\n', name="elsewhere.toml")
    result = run_cli("validate", cwd=tmp_path, env={"CRONFLOW_JOBS": str(path)})
    assert result.returncode == 0 and "only: manual only" in result.stdout


@pytest.mark.parametrize(
    "text, seconds",
    [
        (30, 30),
        (1.5, 1.5),
        ("45", 45),
        ("45s", 45),
        ("10m", 600),
        ("1h30m", 5400),
        ("2d", 172800),
        ("250ms", 0.25),
        ("1h 30m".replace(" ", ""), 5400),
        ("0", 0),
    ],
)
def test_durations(text, seconds):
    assert values.parse_duration(text) == timedelta(seconds=seconds)


@pytest.mark.parametrize("text", ["", "5x", "m", "-5", -1, True, [1], "1.h"])
def test_bad_durations(text):
    with pytest.raises(values.Invalid):
        values.parse_duration(text)


def test_defaults_apply_to_every_job_that_does_not_set_the_key(write_jobs):
    jobfile = jobs_toml.load(
        write_jobs("""
        [cronflow]
        timezone = "Europe/Berlin"
        max_parallel = 2
        [defaults]
        retries = 2
        retry_delay = "1m"
        timeout = "1h"
        catchup = "all"
        overlap = "queue"
        env = { A = "1", B = "2" }
        [jobs.plain]
        command = "true"
        schedule = "@daily"
        [jobs.custom]
        command = "true"
        retries = 0
        timeout = 0
        timezone = "UTC"
        env = { B = "3" }
    """)
    )
    plain, custom = jobfile.jobs["plain"], jobfile.jobs["custom"]
    assert plain.schedule == "0 0 * * *" and plain.timezone.key == "Europe/Berlin"
    assert plain.retry.attempts == 3 and plain.retry.delay == timedelta(minutes=1)
    assert plain.timeout == timedelta(hours=1) and custom.timeout is None
    assert plain.catchup is CatchUp.ALL and plain.overlap is Overlap.QUEUE
    assert custom.retry.attempts == 1 and custom.timezone.key == "UTC"
    assert plain.env == {"A": "1", "B": "2"} and custom.env == {"A": "1", "B": "3"}
    assert jobfile.settings.max_parallel == 2
    assert plain.config_hash != custom.config_hash


def test_an_unscheduled_job_takes_the_schedule_and_zone_of_its_upstreams(write_jobs):
    jobfile = jobs_toml.load(
        write_jobs("""
        [jobs.extract]
        command = "true"
        schedule = "0 6 * * *"
        timezone = "Asia/Tokyo"
        [jobs.load]
        command = "true"
        depends_on = "extract"
        [jobs.report]
        command = "true"
        depends_on = ["load"]
    """)
    )
    report = jobfile.jobs["report"]
    assert report.schedule is None and report.cadence.expression == "0 6 * * *"
    assert report.timezone.key == "Asia/Tokyo"


def test_relative_paths_start_at_the_jobs_file(tmp_path):
    (tmp_path / "etc" / "work").mkdir(parents=True)
    path = tmp_path / "etc" / "jobs.toml"
    path.write_text('[cronflow]\nstate_dir = "state"\n[jobs.a]\ncommand = "true"\ncwd = "work"\n')
    jobfile = jobs_toml.load(path)
    assert jobfile.settings.state_dir == tmp_path / "etc" / "state"
    assert jobfile.jobs["a"].cwd == tmp_path / "etc" / "work"


def test_quoted_job_names_and_inline_tables_are_located(write_jobs):
    with pytest.raises(ConfigError) as raised:
        jobs_toml.load(
            write_jobs("""
            [jobs."db-dump"]
            command = '''
            pg_dump mydb = 1
            '''
            env = { A = [1] }
            jobs_key_after_multiline = 1
        """)
        )
    lines = {p.key: p.line for p in raised.value.problems}
    assert lines == {"env": 6, "jobs_key_after_multiline": 7}


def test_job_names_must_be_usable_as_file_names(write_jobs):
    with pytest.raises(ConfigError, match="is not allowed"):
        jobs_toml.load(write_jobs('[jobs."../x"]\ncommand = "true"\n'))


def test_the_example_jobs_file_is_valid():
    jobfile = jobs_toml.load(ROOT / "jobs.toml.example")
    assert {"extract", "transform", "load", "report"} <= set(jobfile.jobs)


def test_zero_may_be_listed_among_success_exit_codes(tmp_path):
    """`success_exit_codes = [0, 3]` is what a user reasonably writes: 0 is a success
    anyway, so it is taken (and left out), not refused."""
    (tmp_path / "jobs.toml").write_text(
        '[jobs.a]\ncommand = "exit 3"\nsuccess_exit_codes = [0, 3]\n'
    )
    assert load(tmp_path / "jobs.toml").jobs["a"].success_exit_codes == frozenset({3})
    ran = run_cli("run", "--job", "a", cwd=tmp_path)
    assert ran.returncode == 0, ran.stderr


def test_an_unquoted_text_value_is_told_to_be_quoted(tmp_path):
    for line, fix in (
        ("timeout = 1h", 'Quote it: timeout = "1h"'),
        ("schedule = @daily", 'Quote it: schedule = "@daily"'),
        ('command = echo "x"', "Quote it: command = 'echo \"x\"'"),
    ):
        said = refused(
            tmp_path,
            f'[jobs.a]\ncommand = "true"\n{line}\n'.replace('command = "true"\ncommand', "command"),
        )
        assert "jobs.toml:" in said and "must be quoted" in said and fix in said, said
