"""`cronflow export dagster`, proven by Dagster itself.

Dagster is installed once per machine into a cache outside the checkout (pinned in
tests/dagster/requirements.txt; tests/cached_venvs.py). `dagster definitions validate` loads
the exports of the example, of a file that uses every job key and of a pipeline; the pipeline
is then materialised in-process for two partitions (tests/dagster/proof.py), after cronflow
itself ran the day before and the export's history marked it in Dagster; Dagster's own
freshness daemon is asked, on a frozen clock, what cronflow's assets say for the same times.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import textwrap
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path
from types import SimpleNamespace

import pytest

from cronflow.decide import freshness
from cronflow.interop.dagster_plan import MAPPED_KEYS
from cronflow.load import jobs_toml
from cronflow.load.values import ASSET_KEYS, JOB_KEYS
from cronflow.state.store import Store
from tests.cached_venvs import python_for_the_proof
from tests.conftest import run_cli
from tests.receivers import start_receiver

ROOT = Path(__file__).resolve().parent.parent
HELPERS = ROOT / "tests" / "dagster"
REQUIREMENTS = HELPERS / "requirements.txt"

PIPELINE = """
[cronflow]
timezone = "Europe/Berlin"

[alerts]
urls = ["ALERTS_URL"]
config = "apprise.yml"
on = ["failure", "retry"]

[assets.raw]
fresh_within = "2h"

[jobs.extract]
schedule = "0 6 * * *"
produces = ["raw"]
retries = 1
retry_delay = "200ms"
env = { OUT = "effects" }
command = '''
echo "extract $CRONFLOW_DATE $CRONFLOW_ATTEMPT $CRONFLOW_LOGICAL_TIME $CRONFLOW_RUN_KIND" >> "$OUT"
[ "$CRONFLOW_ATTEMPT" -ge 2 ]  # the first try of every run fails
'''

[jobs.transform]
uses = ["raw"]
produces = ["sales"]
env_file = "secret.env"
command = 'echo "transform $CRONFLOW_DATE $TOKEN" >> effects'

[jobs.publish]
depends_on = ["transform"]
retries = 2
alert_tags = ["other"]
no_retry_exit_codes = [3]
command = '''
echo "publish $CRONFLOW_DATE" >> effects
[ "$CRONFLOW_DATE" != 2026-01-15 ] || exit 3  # fails for good on the 15th
'''

[jobs.notify]
depends_on = ["publish"]
success_exit_codes = [4]
alert_on = ["success"]
command = 'echo "notify $CRONFLOW_DATE" >> effects; exit 4'

[jobs.summary]
schedule = "0 7 * * *"
depends_on = ["extract"]
command = 'echo "summary $CRONFLOW_DATE" >> effects'

[jobs.stuck]
schedule = "0 6 * * *"
alert_tags = ["dead"]
timeout = "500ms"
kill_grace = "200ms"
command = 'echo "stuck $CRONFLOW_DATE" >> effects; sleep 60'
"""

# The config file's targets hear of the jobs that carry their tag: nothing answers on port 9.
APPRISE_CONFIG = """\
urls:
  - json://127.0.0.1:9/dead:
      tag: dead
  - {other}:
      tag: other
"""

# A value for every job key (tests fail when a key is added without one here): each job of
# the every-key file uses one of them, and the export must map it or name it in a warning.
EVERY_KEY = {
    "command": '"true"',
    "description": '"says what it does"',
    "schedule": '"*/15 * * * *"',
    "timezone": '"America/New_York"',
    "cwd": '"/tmp"',
    "shell": '"/bin/bash"',
    "env": '{ A = "1" }',
    "env_file": '"secret.env"',
    "user": '"nobody"',
    "group": '"nogroup"',
    "depends_on": '["base"]',
    "produces": '["made"]',
    "uses": '["outside"]',
    "run_if": '"all_done"',
    "retries": "2",
    "retry_delay": '"5s"',
    "retry_backoff": "3.0",
    "retry_max_delay": '"1m"',
    "timeout": '"1m"',
    "kill_grace": '"5s"',
    "random_delay": '"1m"',
    "random_offset": '"1m"',
    "catchup": '"all"',
    "max_catchup": "5",
    "overlap": '"allow"',
    "enabled": "false",
    "alerts": "false",
    "alert_on": '["failure"]',
    "alert_tags": '["ops"]',
    "alert_after_failures": "3",
    "pause_after_failures": "3",
    "ping_url": '"https://hc-ping.com/5d1b2c3e-0000-4000-8000-000000000000"',
    "ping_protocol": '"healthchecks"',
    "max_runtime": '"10m"',
    "day_rule": '"and"',
    "skip_on": '["closed"]',
    "run_on": '["open"]',
    "shift": '"next_business_day"',
    "pool": '"db"',
    "pool_slots": "2",
    "pool_priority": "5",
    "pool_timeout": '"1h"',
    "finish_by": '"07:00"',
    "success_exit_codes": "[4]",
    "no_retry_exit_codes": "[3]",
}
NEEDS = {  # what a key needs beside it to be valid or to matter
    "group": {"user": '"nobody"'},
    "run_if": {"depends_on": '["base"]'},
    "day_rule": {"schedule": '"0 6 1-7 * 1"'},
    "shift": {"skip_on": '["closed"]'},
    "pool_slots": {"pool": '"db"'},
    "pool_priority": {"pool": '"db"'},
    "pool_timeout": {"pool": '"db"'},
    "ping_protocol": {"ping_url": EVERY_KEY["ping_url"]},
    "kill_grace": {"timeout": '"1m"'},
    "retry_delay": {"retries": "2"},
    "retry_backoff": {"retries": "2"},
    "retry_max_delay": {"retries": "2"},
}
# A day the every-key file's calendar "closed" lists: ahead of the export's day, so inside
# its partitions whatever the date.
CLOSED = date.today() + timedelta(days=20)
EVERY_KEY_HEAD = """
[cronflow]
timezone = "UTC"
[alerts]
urls = ["json://127.0.0.1:9/hook"]
[pools.db]
slots = 2
[calendars.closed]
dates = ["CLOSED"]
[calendars.open]
weekdays = ["Mon", "Tue", "Wed", "Thu", "Fri"]
[assets.outside]
external = true
description = "made by another team"
fresh_within = "1d"
[assets.made]
description = "what k_produces makes"
fresh_within = "2d"
deadline = "07:00"
[jobs.base]
schedule = "0 6 * * *"
command = "true"
[jobs.hourly]
schedule = "5 * * * *"
command = "true"
[jobs.weekly]
schedule = "30 7 * * 1"
command = "true"
[jobs.monthly]
schedule = "0 3 1 * *"
command = "true"
[jobs.workdays]
schedule = "0 6 * * 1-5"
command = "true"
[jobs.month_end]
schedule = "0 22 L * *"
command = "true"
[jobs.secretive]
schedule = "0 6 * * *"
env = { API_TOKEN = "tok-0123456789" }
command = "true"
[jobs.twice]
schedule = ["0 6 * * *", "30 18 * * 5"]
command = "true"
"""


def every_key_file() -> str:
    jobs = []
    for key, value in EVERY_KEY.items():
        values = {"schedule": '"0 6 * * *"', "command": '"true"', **NEEDS.get(key, {})}
        values[key] = value
        if "depends_on" in values:
            del values["schedule"]
        lines = "".join(f"{name} = {text}\n" for name, text in values.items())
        jobs.append(f"[jobs.k_{key}]\n{lines}")
    return EVERY_KEY_HEAD.replace("CLOSED", CLOSED.isoformat()) + "\n".join(jobs)


@pytest.fixture(scope="module")
def dagster_python() -> Path:
    """The Python of the machine's cached Dagster environment (tests/cached_venvs.py)."""
    return python_for_the_proof(
        "dagster", REQUIREMENTS, "Dagster", "load and run the exported code location"
    )


def export(folder: Path, *options: str) -> subprocess.CompletedProcess:
    done = run_cli(
        "export", "dagster", "--jobs", "jobs.toml", "--out", "dagster", *options, cwd=folder
    )
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    return done


def in_dagster(python: Path, folder: Path, *command: str) -> subprocess.CompletedProcess:
    env = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}
    env.update(NO_COLOR="1", DAGSTER_HOME="")
    done = subprocess.run(
        [str(python.parent / command[0]), *command[1:]],
        cwd=folder,
        env={k: v for k, v in env.items() if v},
        capture_output=True,
        text=True,
        timeout=600,
        stdin=subprocess.DEVNULL,
    )
    return done


@pytest.fixture(scope="module")
def world(dagster_python, tmp_path_factory) -> Iterator[SimpleNamespace]:
    """The example, the every-key file and the pipeline, each exported; cronflow itself ran
    the pipeline for 2026-01-13 before the export (its history)."""
    base = tmp_path_factory.mktemp("dagster")
    folders = {name: base / name for name in ("example", "every_key", "pipeline")}
    for folder in folders.values():
        folder.mkdir()
        (folder / "secret.env").write_text("TOKEN=s3cr3t-from-the-env-file\n")
    shutil.copy(ROOT / "jobs.toml.example", folders["example"] / "jobs.toml")
    (folders["every_key"] / "jobs.toml").write_text(every_key_file())
    pipeline = folders["pipeline"]
    receiver = start_receiver()
    jobs = textwrap.dedent(PIPELINE).replace("ALERTS_URL", receiver.url(path="alerts"))
    (pipeline / "jobs.toml").write_text(jobs)
    (pipeline / "apprise.yml").write_text(APPRISE_CONFIG.format(other=receiver.url(path="other")))
    ran = run_cli("run", "--jobs", "jobs.toml", "--date", "2026-01-13", cwd=pipeline)
    assert ran.returncode == 1, ran.stderr  # publish and stuck ran as they do in Dagster
    cronflow_saw = (pipeline / "effects").read_text().splitlines()
    (pipeline / "effects").unlink()
    said = {name: export(folder) for name, folder in folders.items() if name != "pipeline"}
    said["pipeline"] = export(pipeline, "--history")
    yield SimpleNamespace(
        python=dagster_python,
        folders=folders,
        said=said,
        cronflow_saw=cronflow_saw,
        cronflow_alerts=[message.body["title"] for message in receiver.messages()],
        receiver=receiver,
    )
    receiver.server.shutdown()


def test_dagster_validates_every_export_and_ruff_finds_them_formatted(world):
    files = [str(folder / "dagster" / "definitions.py") for folder in world.folders.values()]
    options = [part for path in files for part in ("-f", path)]
    validated = in_dagster(
        world.python, world.folders["example"], "dagster", "definitions", "validate", *options
    )
    assert validated.returncode == 0, validated.stdout + validated.stderr
    assert "All code locations passed validation" in validated.stdout + validated.stderr
    formatted = in_dagster(
        world.python, world.folders["example"], "ruff", "format", "--check", "--no-cache", *files
    )
    assert formatted.returncode == 0, formatted.stdout + formatted.stderr


def test_each_plain_cron_shape_gets_its_partitions(world):
    said = world.said["every_key"].stdout
    for flow, partitions in (
        ("base_flow", "daily"),
        ("hourly_flow", "hourly"),
        ("weekly_flow", "weekly"),
        ("monthly_flow", "monthly"),
        ("workdays_flow", "timewindow"),
        ("month_end_flow", "none"),
        ("twice_flow", "none"),
    ):
        assert (
            f"flow {flow}: " in said
            and f"(partitions: {partitions})" in said.split(f"flow {flow}: ")[1].split("\n")[0]
        )
    assert (
        'month_end_flow: schedule "0 22 L * *": not partitioned' in world.said["every_key"].stderr
    )


def test_every_key_is_carried_over_or_named_in_a_warning(world):
    assert set(EVERY_KEY) == set(JOB_KEYS), "give every job key a value in EVERY_KEY"
    warnings = world.said["every_key"].stderr
    text = (world.folders["every_key"] / "dagster" / "definitions.py").read_text()
    dropped = [
        key for key in [*JOB_KEYS, *ASSET_KEYS] if key not in MAPPED_KEYS and key not in warnings
    ]
    assert dropped == [], warnings
    for line in warnings.splitlines():  # each warning is also in the file, as a comment
        first_words = line.split(": ", 2)[-1][:40]
        assert first_words in " ".join(text.replace("#  ", "").split()), line
    assert "s3cr3t" not in text  # an env_file's values are read at run time, never copied
    assert "env (secretive): values whose names look secret are written into this file" in warnings


def steps(world, *listed: dict, of: str = "pipeline") -> list:
    folder = world.folders[of]
    (folder / "steps.json").write_text(json.dumps(listed))
    done = in_dagster(
        world.python,
        folder,
        "python",
        str(HELPERS / "proof.py"),
        "dagster/definitions.py",
        "steps.json",
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-5000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_the_pipeline_runs_in_dagster_as_under_cronflow(world):
    (
        history,
        _,
        early,
        runs,
        late,
        stuck,
        materialised,
        scheduled,
        fresh,
        _,
        overlapped,
        _,
        blind,
    ) = steps(
        world,
        {"report_history": True},
        {"set": {"UPSTREAM_WAIT": 0.3, "UPSTREAM_POLL": 0.1}},
        {"materialise": "summary_flow", "partitions": ["2026-01-14"]},
        {"materialise": "extract_flow", "partitions": ["2026-01-14", "2026-01-15"]},
        {"materialise": "summary_flow", "partitions": ["2026-01-14"]},
        {"materialise": "stuck_flow", "partitions": ["2026-01-14"]},
        {"materialised": ["raw"]},
        {"schedule": "extract_flow_schedule", "at": "2026-01-16T06:00:00+01:00"},
        {"freshness": [["raw"]], "after": [3600, 7200 + 60]},
        {"going": "extract_flow"},
        {"schedule": "extract_flow_schedule", "at": "2026-01-17T06:00:00+01:00"},
        {"hide": "apprise"},
        {"materialise": "stuck_flow", "partitions": ["2026-01-15"]},
    )
    effects = (world.folders["pipeline"] / "effects").read_text().splitlines()
    # Dependency order, the logical date from the partition, the retry as configured:
    assert [line for line in effects if "2026-01-14" in line and "summary" not in line] == [
        "extract 2026-01-14 1 2026-01-14T06:00:00+01:00 backfill",
        "extract 2026-01-14 2 2026-01-14T06:00:00+01:00 backfill",
        "transform 2026-01-14 s3cr3t-from-the-env-file",
        "publish 2026-01-14",
        "notify 2026-01-14",
        "stuck 2026-01-14",
    ]
    # What cronflow's own run of the 13th saw, the same:
    skipped = ("stuck", "summary")
    assert [line for line in world.cronflow_saw if not line.startswith(skipped)] == [
        "extract 2026-01-13 1 2026-01-13T06:00:00+01:00 backfill",
        "extract 2026-01-13 2 2026-01-13T06:00:00+01:00 backfill",
        "transform 2026-01-13 s3cr3t-from-the-env-file",
        "publish 2026-01-13",
        "notify 2026-01-13",
    ]
    assert runs["2026-01-14"]["success"]
    extract_steps = runs["2026-01-14"]["steps"]["extract"]
    assert extract_steps.count("STEP_UP_FOR_RETRY") == 1 and extract_steps[-1] == "STEP_SUCCESS"
    # A failure for good (a no-retry exit status) stops the downstream:
    fifteenth = runs["2026-01-15"]
    assert not fifteenth["success"]
    assert fifteenth["steps"]["publish"][-1].endswith("Failure: publish exited 3")
    assert "STEP_UP_FOR_RETRY" not in fifteenth["steps"]["publish"]
    assert "notify" not in fifteenth["steps"]
    assert "notify 2026-01-15" not in effects
    # A job after an upstream on another schedule waits for the upstream's partition (here
    # for 0.3 s, then it fails without running), and runs once it is there:
    assert early["2026-01-14"]["steps"]["summary"][-1].endswith(
        "summary: its upstream raw has not been made for 2026-01-14T07:00:00+01:00 (waited 0.3s)"
    )
    assert late["2026-01-14"]["success"]
    assert effects.count("summary 2026-01-14") == 1
    # The timeout stops the command (and its sleep) and says so:
    assert stuck["2026-01-14"]["steps"]["stuck"][-1].endswith("Failure: stuck timed out after 0.5s")
    # Alerts, through apprise from the step, as cronflow words them (its own run of the 13th
    # said "extract try 1 failed, retrying" too): a retry to come, a failure for good (also
    # the upstream that was not there, and the timeout), notify's success.
    assert "cronflow: extract try 1 failed, retrying (2026-01-13)" in world.cronflow_alerts
    received = world.receiver.messages()
    alerts = {message.body["title"]: message.body["message"] for message in received}
    titles = {
        path: sorted(m.body["title"] for m in received if m.path == path)
        for path in ("/alerts", "/other")
    }
    # The config file's targets hear of the jobs without alert_tags and of those with theirs:
    # "other" of all but stuck (tagged "dead": nothing answers there, and the failed
    # deliveries change no step's outcome).
    assert titles["/other"] == [title for title in titles["/alerts"] if "stuck" not in title]
    assert titles["/alerts"] == [
        "cronflow: extract try 1 failed, retrying (2026-01-14)",
        "cronflow: extract try 1 failed, retrying (2026-01-15)",
        "cronflow: notify succeeded (2026-01-14)",
        "cronflow: publish failed (2026-01-15)",
        "cronflow: stuck failed (2026-01-14)",
        "cronflow: summary failed (2026-01-14)",
    ]
    publish = alerts["cronflow: publish failed (2026-01-15)"]
    assert "**Logical time:** 2026-01-15T06:00:00+01:00" in publish
    assert "**Attempt:** 1 of 3" in publish and "**Error:** publish exited 3" in publish
    assert (
        "**Error:** extract exited 1"
        in alerts["cronflow: extract try 1 failed, retrying (2026-01-14)"]
    )
    assert "timed out after 0.5s" in alerts["cronflow: stuck failed (2026-01-14)"]
    ours = [said for said in stuck["2026-01-14"]["warned"] if said.startswith("stuck:")]
    assert ours == ["stuck: its failure alert did not reach every target"]
    # Without apprise in Dagster's environment the step says so and ends as it would:
    assert blind["2026-01-15"]["steps"]["stuck"][-1].endswith("Failure: stuck timed out after 0.5s")
    ours = [said for said in blind["2026-01-15"]["warned"] if said.startswith("stuck:")]
    assert ours == ["stuck: its failure alert needs apprise (pip install 'apprise>=2.3')"]
    # History: the 13th, which cronflow made, is marked once; the 14th and 15th made above.
    assert history == [5, 0]  # raw, sales, jobs/publish, jobs/notify, jobs/summary; then none
    assert materialised == ["2026-01-13", "2026-01-14", "2026-01-15"]
    # The schedule runs a tick at the tick, for the partition of that date:
    (request,) = scheduled
    assert request["partition"] == "2026-01-16"
    assert request["tags"]["cronflow/logical_time"] == "2026-01-16T06:00:00+01:00"
    # ... and none while a run of the flow is still going (overlap = "skip", the default):
    assert overlapped == []
    # Freshness: Dagster's daemon and cronflow agree, 1h and 2h01m after a run.
    assert fresh == {"raw": ["PASS", "FAIL"]}
    jobfile = jobs_toml.load(world.folders["pipeline"] / "jobs.toml")
    store = Store(jobfile.settings.state_dir)
    made = store.index().newest_success("extract")
    assert made is not None
    said = [
        {
            state.name: state.state
            for state in freshness.states(jobfile, store.index(), made + after)
        }["raw"]
        for after in (timedelta(hours=1), timedelta(hours=2, minutes=1))
    ]
    assert said == [freshness.Freshness.FRESH, freshness.Freshness.STALE]


def test_calendars_become_partition_exclusions_and_the_schedule_skips_their_ticks(world):
    days = [CLOSED + timedelta(days=offset) for offset in range(-7, 8)]
    until = f"{days[-1].isoformat()}T12:00:00+00:00"
    skip_on, run_on, *ticks = steps(
        world,
        {"partition_keys": "k_skip_on_flow", "until": until},
        {"partition_keys": "k_run_on_flow", "until": until},
        *(
            {"schedule": "k_skip_on_flow_schedule", "at": f"{day.isoformat()}T06:00:00+00:00"}
            for day in (CLOSED, CLOSED + timedelta(days=1))
        ),
        of="every_key",
    )
    # skip_on = ["closed"] (a listed date): that day's tick is not a partition, nor a run.
    wanted = [day.isoformat() for day in days]
    assert [key for key in skip_on if key in wanted] == [
        key for key in wanted if key != CLOSED.isoformat()
    ]
    assert ticks[0] == [] and ticks[1][0]["partition"] == (CLOSED + timedelta(days=1)).isoformat()
    # run_on = ["open"] (Monday to Friday): no weekend partition, by a cron exclusion.
    assert {date.fromisoformat(key).isoweekday() for key in run_on} == {1, 2, 3, 4, 5}
    said = world.said["every_key"].stderr
    assert "k_run_on_flow: skip_on, run_on (only on days of open): the partitions exclude" in said
    assert "k_shift_flow: skip_on, run_on, shift (" in said and "not exported (a shift" in said


def test_history_lists_what_cronflow_made_per_asset(world):
    history = json.loads((world.folders["pipeline"] / "dagster" / "history.json").read_text())
    assert history["assets"]["raw"] == {
        "key": ["raw"],
        "producer": "extract",
        "partitions": ["2026-01-13"],
        "last": "2026-01-13T06:00:00+01:00",
    }
    made = {"raw", "sales", "jobs/publish", "jobs/notify", "jobs/summary"}
    assert set(history["assets"]) == made  # not stuck: it timed out
    assert (
        "history: raw: newest success 2026-01-13T06:00:00+01:00, 1 partition(s)"
        in world.said["pipeline"].stdout
    )


def test_the_generated_file_names_its_source_and_never_imports_cronflow(world):
    text = (world.folders["example"] / "dagster" / "definitions.py").read_text()
    assert f"# from {world.folders['example'] / 'jobs.toml'}." in text
    assert "import cronflow" not in text and "from cronflow" not in text
