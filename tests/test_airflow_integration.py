"""`cronflow export airflow`, proven by Apache Airflow itself.

Airflow 3 is installed once per machine into a cache outside the checkout (pinned in
tests/airflow/requirements.txt, about a minute and 300 MB; tests/cached_venvs.py). The exported files are loaded with Airflow's
own DagBag, run with `airflow dags test` on a SQLite home in a temporary directory, and what
the jobs saw is compared with what the same jobs see under cronflow.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import textwrap
import time
from datetime import timedelta
from pathlib import Path
from types import SimpleNamespace

import pytest

from cronflow.load import jobs_toml
from cronflow.state.store import Store
from tests.cached_venvs import python_for_the_proof
from tests.conftest import CHILD_TZ, run_cli
from tests.receivers import start_receiver

ROOT = Path(__file__).resolve().parent.parent
HELPERS = ROOT / "tests" / "airflow"
REQUIREMENTS = HELPERS / "requirements.txt"

FEATURES = """
    [cronflow]
    timezone = "Europe/Berlin"
    max_parallel = 3

    [defaults]
    retries = 1
    retry_delay = "1s"
    retry_backoff = 3.0
    retry_max_delay = "5m"
    timeout = "2m"
    env = {{ OUT = "seen" }}
    {alerts}
    [jobs.hourly]
    description = "Every hour at five past; its shell text looks like Jinja"
    schedule = "5 * * * *"
    command = '''
    x=abcd
    mkdir -p "$OUT"
    echo "${{#x}} {{{{ not jinja }}}}" > "$OUT/jinja"
    env | grep ^CRONFLOW_ | sort > "$OUT/$CRONFLOW_JOB-$CRONFLOW_LOGICAL_TIME"
    '''
    overlap = "queue"

    [jobs.nightly]
    schedule = "30 2 * * *"
    depends_on = ["hourly"]
    command = '''
    [ "$CRONFLOW_ATTEMPT" -ge 2 ] || {{ echo "the first try fails" >&2; exit 1; }}
    env | grep -E '^(CRONFLOW_|GREETING)' | sort > "$OUT/$CRONFLOW_JOB-$CRONFLOW_LOGICAL_TIME"
    '''
    env = {{ GREETING = "hello {{{{ world }}}}" }}
    alert_tags = ["ops"]

    [jobs.summary]
    depends_on = ["nightly"]
    timezone = "America/New_York"
    command = "./summary.sh"
    overlap = "allow"

    [jobs.weekly]
    schedule = "0 9 * * 1"
    command = "true"
    catchup = "all"
    pool = "db"
    pool_slots = 2
    pool_priority = 3

    [pools.db]
    slots = 2
    description = "the warehouse"

    [jobs.broken]
    command = "echo about to fail >&2; exit 3"
    retries = 0

    [jobs.last_friday]
    schedule = "0 6 * * 5L"
    command = "true"

    [jobs.month_end]
    schedule = "30 18 LW * *"
    command = "true"

    [jobs.two_shifts]
    schedule = ["0 6 * * 1-5", "0 9 * * 6,7"]
    command = "true"

    [jobs.parked]
    command = "true"
    enabled = false

    [jobs.partial]
    command = "echo some files vanished >&2; exit 24"
    retries = 0
    success_exit_codes = [24]
    no_retry_exit_codes = [2]

    [jobs.flaky_step]
    command = "exit 5"
    retries = 0
    produces = ["warehouse.flaky"]
    uses = ["crm.contacts"]

    [assets."crm.contacts"]
    external = true

    [jobs.tidy]
    command = "true"
    depends_on = ["flaky_step"]
    run_if = "all_done"

    [jobs.on_failure]
    command = "true"
    depends_on = ["flaky_step"]
    run_if = "one_failed"

    [jobs.on_success]
    command = "true"
    depends_on = ["flaky_step"]
    run_if = "none_failed"

    [calendars.weekend]
    weekdays = ["Sat", "Sun"]

    [jobs.workday]
    schedule = "0 7 * * *"
    skip_on = ["weekend"]
    command = 'mkdir -p "$OUT"; echo "$CRONFLOW_DATE" >> "$OUT/workdays"'

    [jobs.workday_report]
    depends_on = ["workday"]
    run_if = "all_done"
    command = "true"
"""

ALERTS = """
    [alerts]
    urls = ["json://127.0.0.1:{port}/hook"]
    config = "apprise.yml"
    on = ["failure", "retry"]
    timeout = "5s"
"""

SUMMARY_SCRIPT = """#!/bin/sh
env | grep ^CRONFLOW_ | sort > "$OUT/$CRONFLOW_JOB-$CRONFLOW_LOGICAL_TIME"
"""


@pytest.fixture(scope="module")
def airflow_python() -> Path:
    """The Python of the machine's cached Airflow environment (tests/cached_venvs.py)."""
    return python_for_the_proof(
        "airflow", REQUIREMENTS, "Apache Airflow", "load and run the exported DAGs"
    )


@pytest.fixture(scope="module")
def world(airflow_python, tmp_path_factory):
    """Both jobs files exported into one dags folder, an Airflow home migrated beside it."""
    base = tmp_path_factory.mktemp("airflow")
    receiver = start_receiver()
    example = base / "example"
    example.mkdir()
    shutil.copy(ROOT / "jobs.toml.example", example / "jobs.toml")
    features = base / "features"
    write_feature_dir(features, ALERTS.format(port=receiver.port))
    (features / "apprise.yml").write_text(
        textwrap.dedent(f"""\
        urls:
          - json://127.0.0.1:{receiver.port}/ops:
              tag: ops
          - json://127.0.0.1:{receiver.port}/dev:
              tag: dev
    """)
    )
    dags = base / "dags"
    for folder, prefix in ((example, "example_"), (features, "feature_")):
        exported = run_cli(
            "export",
            "airflow",
            "--jobs",
            str(folder / "jobs.toml"),
            "--out",
            str(dags),
            "--dag-id-prefix",
            prefix,
            cwd=folder,
        )
        assert exported.returncode == 0, exported.stderr
    env = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}
    env.update(
        AIRFLOW_HOME=str(base / "home"),
        AIRFLOW__CORE__DAGS_FOLDER=str(dags),
        AIRFLOW__CORE__LOAD_EXAMPLES="False",
        TZ=CHILD_TZ,
        NO_COLOR="1",
    )
    found = SimpleNamespace(
        base=base,
        dags=dags,
        env=env,
        python=airflow_python,
        receiver=receiver,
        alerts=[],
        example=example,
        features=features,
    )
    airflow(found, "db", "migrate")
    found.loaded = helper_report(found, "describe_dags.py", str(dags))
    yield found
    receiver.release.set()
    receiver.server.shutdown()
    receiver.server.server_close()


def write_feature_dir(folder: Path, alerts: str) -> Path:
    folder.mkdir()
    (folder / "jobs.toml").write_text(textwrap.dedent(FEATURES.format(alerts=alerts)))
    script = folder / "summary.sh"
    script.write_text(SUMMARY_SCRIPT)
    script.chmod(0o755)
    return folder / "jobs.toml"


def airflow(world, *args: str) -> subprocess.CompletedProcess:
    command = [str(world.python.parent / "airflow"), *args]
    result = subprocess.run(
        command,
        env=world.env,
        capture_output=True,
        text=True,
        timeout=600,
        stdin=subprocess.DEVNULL,
    )
    assert result.returncode == 0, f"{' '.join(args)}:\n{result.stdout[-4000:]}"
    return result


def helper_report(world, helper: str, *args: str) -> dict:
    """Run one of tests/airflow/*.py with Airflow's Python; it writes JSON to a file."""
    report = world.base / f"{helper}.json"
    result = subprocess.run(
        [str(world.python), str(HELPERS / helper), *args, str(report)],
        env=world.env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-4000:]
    return json.loads(report.read_text())


def run_of(world, dag_id: str, logical_date: str) -> dict:
    runs = helper_report(world, "run_states.py").values()
    return next(
        run for run in runs if run["dag_id"] == dag_id and run["logical_date"] == logical_date
    )


# ---- Airflow's DAG loader ----------------------------------------------------------------


def test_airflow_loads_every_exported_file_without_errors(world):
    assert world.loaded["import_errors"] == {}
    assert sorted(world.loaded["dags"]) == sorted(
        [
            "example_extract",
            "example_disk_check",
            "feature_hourly",
            "feature_nightly",
            "feature_weekly",
            "feature_broken",
            "feature_last_friday",
            "feature_month_end",
            "feature_parked",
            "feature_partial",
            "feature_flaky_step",
            "feature_two_shifts",
            "feature_workday",
        ]
    )


def test_business_days_and_several_schedules_load_as_airflow_reads_them(world):
    dags = world.loaded["dags"]
    assert dags["feature_last_friday"]["schedule"] == "0 6 * * L5"  # croniter's spelling
    assert dags["feature_month_end"]["schedule"] is None  # croniter has no LW
    assert dags["feature_two_shifts"]["timetable"] == "MultipleCronTriggerTimetable"
    said = next(world.dags.glob("feature_month_end*.py")).read_text()
    assert "has no LW; the DAG is exported" in said and "\n#   with no schedule" in said


def test_the_loaded_example_matches_the_jobs_file(world):
    jobfile = jobs_toml.load(world.example / "jobs.toml")
    dags = world.loaded["dags"]
    for dag_id, names in (
        ("example_extract", ["extract", "transform", "load", "report"]),
        ("example_disk_check", ["disk_check"]),
    ):
        loaded = dags[dag_id]
        assert list(loaded["tasks"]) == names
        first = jobfile.jobs[names[0]]
        assert (loaded["schedule"], loaded["timezone"]) == (first.schedule, "UTC")
        assert loaded["timetable"] == "CronTriggerTimetable"
        assert loaded["catchup"] is False
        assert loaded["max_active_tasks"] == jobfile.settings.max_parallel
        for name in names:
            job, task = jobfile.jobs[name], loaded["tasks"][name]
            assert task["operator"] == "BashOperator"
            assert task["upstream"] == sorted(job.depends_on)
            assert task["bash_command"] == job.command
            assert task["cwd"] == str(job.cwd)
            assert task["retries"] == job.retry.attempts - 1
            assert task["execution_timeout"] == job.timeout.total_seconds()
            assert task["skip_on_exit_code"] == []
            assert task["env"]["DATA_DIR"] == job.env["DATA_DIR"]
            assert task["env"]["CRONFLOW_JOB"] == name
            if job.retry.attempts > 1:
                assert task["retry_delay"] == job.retry.delay.total_seconds()
                assert task["retry_exponential_backoff"] == job.retry.backoff
                assert task["max_retry_delay"] == job.retry.max_delay.total_seconds()


def test_the_loaded_feature_file_matches_the_jobs_file(world):
    dags = world.loaded["dags"]
    nightly = dags["feature_nightly"]
    assert (nightly["schedule"], nightly["timezone"]) == ("30 2 * * *", "Europe/Berlin")
    assert list(nightly["tasks"]) == ["wait_for_hourly", "nightly", "summary"]
    sensor = nightly["tasks"]["wait_for_hourly"]
    assert sensor["operator"] == "ExternalTaskSensor"
    assert (sensor["external_dag_id"], sensor["external_task_id"]) == ("feature_hourly", "hourly")
    assert nightly["tasks"]["nightly"]["upstream"] == ["wait_for_hourly"]
    assert nightly["tasks"]["summary"]["upstream"] == ["nightly"]
    assert nightly["tasks"]["nightly"]["on_failure_callback"] is True
    assert nightly["tasks"]["nightly"]["retry_delay"] == timedelta(seconds=1).total_seconds()
    assert nightly["tasks"]["nightly"]["retry_exponential_backoff"] == 3.0
    assert nightly["tasks"]["nightly"]["max_retry_delay"] == 300
    assert nightly["tasks"]["nightly"]["max_active_tis_per_dag"] == 1
    assert nightly["tasks"]["summary"]["max_active_tis_per_dag"] is None  # overlap = allow
    weekly = dags["feature_weekly"]
    assert weekly["catchup"] is True and weekly["start_date"] is not None
    pooled = weekly["tasks"]["weekly"]
    assert (pooled["pool"], pooled["pool_slots"], pooled["priority_weight"]) == ("db", 2, 3)
    assert nightly["tasks"]["nightly"]["pool"] == "default_pool"
    assert dags["feature_hourly"]["catchup"] is False
    assert dags["feature_broken"]["timetable"] == "NullTimetable"
    assert dags["feature_parked"]["paused"] is True


def test_the_generated_files_are_formatted_and_lint_clean(world):
    ruff = str(world.python.parent / "ruff")
    formatted = subprocess.run(
        [ruff, "format", "--isolated", "--check", "--diff", str(world.dags)],
        capture_output=True,
        text=True,
    )
    assert formatted.returncode == 0, formatted.stdout + formatted.stderr
    linted = subprocess.run(
        [
            ruff,
            "check",
            "--isolated",
            "--select",
            "E,F,W,I",
            "--line-length",
            "200",
            str(world.dags),
        ],
        capture_output=True,
        text=True,
    )
    assert linted.returncode == 0, linted.stdout + linted.stderr


# ---- airflow dags test --------------------------------------------------------------------

# The DAG runs the tests below look at, in the order they must happen (nightly's sensor
# waits for hourly's run), all in one Airflow process (tests/airflow/dag_tests.py).
DAG_TESTS = (
    "example_extract@2026-01-14T06:15:00+00:00",
    "feature_partial@2026-01-14T00:00:00+00:00",
    "feature_flaky_step@2026-01-14T00:00:00+00:00",
    "feature_hourly@2026-01-14T01:05:00+00:00",
    "feature_nightly@2026-01-14T01:30:00+00:00",
    "feature_broken@2026-01-13T23:00:00+00:00",
    "feature_workday@2026-01-16T06:00:00+00:00",
    "feature_workday@2026-01-17T06:00:00+00:00",
)


@pytest.fixture(scope="module")
def dag_tests(world) -> dict[str, str]:
    """How each `airflow dags test` of DAG_TESTS ended ("ok" or the failure)."""
    return helper_report(world, "dag_tests.py", *DAG_TESTS)


def test_airflow_runs_the_example_flow_as_cronflow_does(world, dag_tests, tmp_path):
    assert dag_tests["example_extract@2026-01-14T06:15:00+00:00"] == "ok"
    run = run_of(world, "example_extract", "2026-01-14T06:15:00+00:00")
    assert run["state"] == "success"
    assert {task: state["state"] for task, state in run["tasks"].items()} == {
        "extract": "success",
        "transform": "success",
        "load": "success",
        "report": "success",
    }
    assert run["tasks"]["extract"]["try_number"] == 2  # the shop API fails the first try

    shutil.copy(ROOT / "jobs.toml.example", tmp_path / "jobs.toml")
    under_cronflow = run_cli(
        "run",
        "--jobs",
        "jobs.toml",
        "--date",
        "2026-01-14",
        "--job",
        "extract",
        "--downstream",
        cwd=tmp_path,
    )
    assert under_cronflow.returncode == 0, under_cronflow.stderr
    warehouse = "demo-data/warehouse.csv"
    assert (world.example / warehouse).read_text() == (tmp_path / warehouse).read_text()
    assert (tmp_path / warehouse).read_text().startswith("2026-01-14,")


def test_an_exit_status_cronflow_counts_as_success_succeeds_under_airflow(world, dag_tests):
    assert dag_tests["feature_partial@2026-01-14T00:00:00+00:00"] == "ok"
    run = run_of(world, "feature_partial", "2026-01-14T00:00:00+00:00")
    assert run["state"] == "success"
    assert run["tasks"]["partial"]["state"] == "success"


def test_a_day_the_calendars_refuse_skips_every_task_under_airflow(world, dag_tests):
    friday, saturday = (f"2026-01-{day}T06:00:00+00:00" for day in (16, 17))
    states = {}
    for when in (friday, saturday):
        assert dag_tests[f"feature_workday@{when}"] == "ok"
        tasks = run_of(world, "feature_workday", when)["tasks"]
        states[when] = {task: state["state"] for task, state in tasks.items()}
    assert states[friday] == dict.fromkeys(["_calendars", "workday", "workday_report"], "success")
    # skip_on = ["weekend"]: skipped, the all_done report with it, as cronflow skips the day.
    assert states[saturday] == {
        "_calendars": "success",
        "workday": "skipped",
        "workday_report": "skipped",
    }
    assert (world.features / "seen" / "workdays").read_text() == "2026-01-16\n"


def test_trigger_rules_decide_under_airflow_as_under_cronflow(world, dag_tests, tmp_path):
    when = "2026-01-14T00:00:00+00:00"
    assert dag_tests[f"feature_flaky_step@{when}"] != "ok"  # its flaky step fails
    under_airflow = {
        task: state["state"]
        for task, state in run_of(world, "feature_flaky_step", when)["tasks"].items()
    }
    cronflow_run = run_cli(
        "run", "--date", "2026-01-14", "--job", "flaky_step", "--downstream", cwd=world.features
    )
    assert cronflow_run.returncode == 1, cronflow_run.stderr
    events = Store(world.features / ".cronflow").read().events
    runs = [e for e in events if e.job in under_airflow and e.event.value != "alert"]
    under_cronflow = {e.job: e.status.value for e in runs}
    decided = {"flaky_step": "failed", "tidy": "success", "on_failure": "success"}
    # An unmet none_failed: cronflow says skipped (its rule), Airflow upstream_failed (warned).
    assert under_cronflow == {**decided, "on_success": "skipped"}, cronflow_run.stdout
    assert under_airflow == {**decided, "on_success": "upstream_failed"}


def test_jobs_see_the_same_cronflow_variables_under_airflow(world, dag_tests, tmp_path):
    assert dag_tests["feature_hourly@2026-01-14T01:05:00+00:00"] == "ok"
    # The sensor found hourly's 02:05 run: the latest tick at or before 02:30 Berlin.
    assert dag_tests["feature_nightly@2026-01-14T01:30:00+00:00"] == "ok"
    run = run_of(world, "feature_nightly", "2026-01-14T01:30:00+00:00")
    assert {task: state["state"] for task, state in run["tasks"].items()} == {
        "wait_for_hourly": "success",
        "nightly": "success",
        "summary": "success",
    }
    assert run["tasks"]["nightly"]["try_number"] == 2

    cronflow_jobs = write_feature_dir(tmp_path / "under-cronflow", alerts="")
    under_cronflow = run_cli(
        "run",
        "--jobs",
        str(cronflow_jobs),
        "--date",
        "2026-01-14",
        "--job",
        "hourly",
        "--downstream",
        cwd=tmp_path,
    )
    assert under_cronflow.returncode == 0, under_cronflow.stderr
    for seen in (
        "hourly-2026-01-14T02:05:00+01:00",
        "nightly-2026-01-14T02:30:00+01:00",
        "summary-2026-01-13T20:30:00-05:00",
    ):
        airflow_values = variables(world.features / "seen" / seen)
        cronflow_values = variables(tmp_path / "under-cronflow" / "seen" / seen)
        assert airflow_values.pop("CRONFLOW_RUN_ID") and cronflow_values.pop("CRONFLOW_RUN_ID")
        assert airflow_values == cronflow_values
    assert variables(world.features / "seen" / "nightly-2026-01-14T02:30:00+01:00") == {
        "CRONFLOW_ATTEMPT": "2",
        "CRONFLOW_DATE": "2026-01-14",
        "CRONFLOW_JOB": "nightly",
        "CRONFLOW_LOGICAL_TIME": "2026-01-14T02:30:00+01:00",
        "CRONFLOW_RUN_KIND": "backfill",
        "GREETING": "hello {{ world }}",
        "CRONFLOW_RUN_ID": variables(world.features / "seen" / "nightly-2026-01-14T02:30:00+01:00")[
            "CRONFLOW_RUN_ID"
        ],
    }
    assert (world.features / "seen" / "jinja").read_text() == "4 {{ not jinja }}\n"
    retries = wait_for_alerts(world, "cronflow: nightly failed, will retry (2026-01-14)", 2)
    assert sorted(message.path for message in retries) == ["/hook", "/ops"]  # tag ops


def test_a_failed_job_alerts_through_apprise_from_airflow(world, dag_tests):
    assert dag_tests["feature_broken@2026-01-13T23:00:00+00:00"] != "ok"
    run = run_of(world, "feature_broken", "2026-01-13T23:00:00+00:00")
    assert run["tasks"]["broken"]["state"] == "failed"
    alerts = wait_for_alerts(world, "cronflow: broken failed (2026-01-14)", 3)
    assert sorted(message.path for message in alerts) == ["/dev", "/hook", "/ops"]  # no tags
    assert "**Logical time:** 2026-01-14T00:00:00+01:00" in alerts[0].body["message"]
    assert "**Attempt:** 1 of 1" in alerts[0].body["message"]


def variables(path: Path) -> dict[str, str]:
    return dict(line.split("=", 1) for line in path.read_text().splitlines())


def wait_for_alerts(world, title: str, count: int, timeout: float = 30) -> list:
    """The alerts with this title, once `count` have arrived (deliveries are asynchronous)."""
    deadline = time.monotonic() + timeout
    while True:
        world.alerts += world.receiver.messages()
        found = [message for message in world.alerts if message.body.get("title") == title]
        if len(found) >= count or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert len(found) == count, f"{len(found)} alerts titled {title!r}"
    return found
