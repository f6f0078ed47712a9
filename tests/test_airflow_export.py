"""The Airflow DAG generator, read back with Python's own parser (no Airflow needed here;
tests/test_airflow_integration.py loads and runs the files with a real Airflow)."""

from __future__ import annotations

import ast
import os
import shlex
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cronflow.errors import UsageError
from cronflow.interop.airflow import export_airflow
from cronflow.interop.python_source import literal
from cronflow.load import jobs_toml
from tests.conftest import run_cli

NOW = datetime(2026, 11, 24, 16, 41, 27, tzinfo=UTC)
ROOT = Path(__file__).resolve().parent.parent


def export(path: Path, **options):
    return {
        f.dag_id: f
        for f in export_airflow(
            jobs_toml.load(path), now=NOW, decided=options.pop("decided", {}), **options
        )
    }


class DagSource:
    """A generated file, parsed: the DAG's arguments, each task's arguments and the edges."""

    def __init__(self, text: str) -> None:
        self.text = text
        module = ast.parse(text)
        block = next(node for node in module.body if isinstance(node, ast.With))
        self.dag = self._arguments(block.items[0].context_expr)
        self.tasks: dict[str, dict[str, ast.expr]] = {}
        self.operator: dict[str, str] = {}
        variables: dict[str, str] = {}
        for statement in block.body:
            if isinstance(statement, ast.Assign):
                arguments = self._arguments(statement.value)
                task_id = ast.literal_eval(arguments["task_id"])
                self.tasks[task_id] = arguments
                self.operator[task_id] = statement.value.func.id
                variables[statement.targets[0].id] = task_id
        self.edges = set()
        for statement in block.body:
            if isinstance(statement, ast.Expr) and isinstance(statement.value, ast.BinOp):
                left, right = statement.value.left, statement.value.right
                for upstream in left.elts if isinstance(left, ast.List) else [left]:
                    self.edges.add((variables[upstream.id], variables[right.id]))

    @staticmethod
    def _arguments(call: ast.Call) -> dict[str, ast.expr]:
        return {keyword.arg: keyword.value for keyword in call.keywords}

    def value(self, task: str, argument: str):
        """A task argument's value, for literals and timedelta(...)."""
        node = self.tasks[task][argument]
        return eval(compile(ast.Expression(node), "<arg>", "eval"), {"timedelta": timedelta})

    def source(self, task: str, argument: str) -> str | None:
        node = self.tasks[task].get(argument)
        return None if node is None else ast.unparse(node)

    def dag_source(self, argument: str) -> str | None:
        node = self.dag.get(argument)
        return None if node is None else ast.unparse(node)


@pytest.fixture
def example():
    return export(ROOT / "jobs.toml.example")


def test_the_example_becomes_one_dag_per_flow(example):
    assert list(example) == ["extract", "disk_check"]
    assert example["extract"].tasks == ("extract", "transform", "load", "report")
    sales = DagSource(example["extract"].text)
    assert sales.edges == {("extract", "transform"), ("transform", "load"), ("load", "report")}
    assert sales.dag_source("schedule") == "CronTriggerTimetable('15 6 * * *', timezone='UTC')"
    assert sales.dag_source("catchup") == "False"  # catchup = "latest"
    assert sales.dag_source("max_active_tasks") == "4"
    assert sales.dag_source("tags") == "['cronflow']"


def test_each_job_keeps_command_cwd_env_retries_and_timeout(example):
    jobfile = jobs_toml.load(ROOT / "jobs.toml.example")
    sales = DagSource(example["extract"].text)
    for name in ("extract", "transform", "load", "report"):
        job = jobfile.jobs[name]
        assert sales.operator[name] == "BashOperator"
        assert sales.value(name, "bash_command") == job.command
        assert sales.value(name, "cwd") == str(job.cwd)
        assert sales.value(name, "retries") == 2
        assert sales.value(name, "retry_delay") == timedelta(seconds=2)
        assert sales.value(name, "retry_exponential_backoff") == 2.0
        assert sales.value(name, "max_retry_delay") == timedelta(minutes=10)
        assert sales.value(name, "execution_timeout") == timedelta(minutes=5)
        assert sales.value(name, "skip_on_exit_code") is None
        assert sales.value(name, "append_env") is True
        assert sales.source(name, "env") == (
            f"{{'DATA_DIR': 'demo-data', **cronflow_env({name!r}, 'UTC')}}"
        )
        assert sales.value(name, "doc") == job.description
    disk = DagSource(example["disk_check"].text)
    assert disk.value("disk_check", "retries") == 0
    assert disk.source("disk_check", "retry_delay") is None  # no retries: no retry settings
    assert disk.value("disk_check", "execution_timeout") == timedelta(seconds=30)


def test_the_cronflow_variables_come_from_airflow_templates(example):
    text = example["extract"].text
    assert "(dag_run.logical_date or dag_run.run_after).astimezone(ZoneInfo(zone))" in text
    assert '"CRONFLOW_ATTEMPT": "{{ ti.try_number }}"' in text
    assert '"CRONFLOW_RUN_ID": "{{ run_id }}"' in text
    assert '"CRONFLOW_LOGICAL_TIME": "{{ " + when + ".isoformat() }}"' in text
    assert DagSource(text).dag_source("user_defined_macros") == (
        "{'cronflow_time': cronflow_time, 'cronflow_run_kind': cronflow_run_kind}"
    )


def test_generated_files_are_deterministic_and_valid_python(example):
    again = export(ROOT / "jobs.toml.example")
    for dag_id, dag_file in example.items():
        assert again[dag_id].text == dag_file.text
        compile(dag_file.text, dag_file.filename, "exec")


FEATURES = """
    [cronflow]
    timezone = "Europe/Berlin"
    max_parallel = 2

    [defaults]
    retry_backoff = 1.0

    [alerts]
    urls = ["json://127.0.0.1:9/hook?token=s3cret"]
    on = ["failure", "retry", "recovery", "missed", "success"]
    repeat = "1h"

    [jobs.hourly]
    schedule = "5 * * * *"
    command = "echo hourly"
    overlap = "queue"

    [jobs.nightly]
    schedule = "30 2 * * *"
    depends_on = ["hourly"]
    command = "./nightly.sh"
    retries = 3
    retry_delay = "1m"
    catchup = "all"
    alert_tags = ["ops"]

    [jobs."summary-2"]
    depends_on = ["nightly"]
    timezone = "America/New_York"
    command = 'x=ab; echo "${#x} {{ not jinja }}"'
    env = { GREETING = "{% raw %}" }
    overlap = "allow"
    enabled = false

    [jobs.morning]
    schedule = "0 7 * * *"
    depends_on = ["hourly"]
    command = "echo endraw {{ x }}"
    catchup = "none"
    alerts = false

    [jobs.by_hand]
    command = "echo by hand"
    enabled = false
"""


@pytest.fixture
def features(write_jobs):
    return export(write_jobs(FEATURES))


def test_a_dependency_on_another_schedule_becomes_a_sensor(features):
    assert list(features) == ["hourly", "nightly", "morning", "by_hand"]
    nightly = DagSource(features["nightly"].text)
    assert nightly.operator["wait_for_hourly"] == "ExternalTaskSensor"
    assert nightly.value("wait_for_hourly", "external_dag_id") == "hourly"
    assert nightly.value("wait_for_hourly", "external_task_id") == "hourly"
    assert nightly.source("wait_for_hourly", "execution_date_fn") == (
        "latest_tick('5 * * * *', 'Europe/Berlin')"
    )
    assert nightly.value("wait_for_hourly", "mode") == "reschedule"
    assert nightly.edges == {("wait_for_hourly", "nightly"), ("nightly", "summary-2")}
    morning = DagSource(features["morning"].text)
    assert morning.edges == {("wait_for_hourly", "morning")}


def test_schedules_catchup_and_start(features):
    nightly = DagSource(features["nightly"].text)
    assert nightly.dag_source("schedule") == (
        "CronTriggerTimetable('30 2 * * *', timezone='Europe/Berlin')"
    )
    assert nightly.dag_source("catchup") == "True"
    # Never run by cronflow: Airflow starts at the export's minute and replays nothing.
    assert nightly.dag_source("start_date") == "datetime.fromisoformat('2026-11-24T16:41:00+00:00')"
    assert DagSource(features["morning"].text).dag_source("catchup") == "False"
    by_hand = DagSource(features["by_hand"].text)
    assert by_hand.dag_source("schedule") == "None"
    assert by_hand.dag_source("is_paused_upon_creation") == "True"
    assert DagSource(features["nightly"].text).dag_source("is_paused_upon_creation") is None


def test_a_catching_up_dag_starts_at_the_first_tick_cronflow_has_not_decided(write_jobs):
    decided = {"nightly": datetime(2026, 11, 20, 1, 30, tzinfo=UTC)}  # 02:30 Berlin
    nightly = DagSource(export(write_jobs(FEATURES), decided=decided)["nightly"].text)
    assert nightly.dag_source("start_date") == "datetime.fromisoformat('2026-11-21T01:30:00+00:00')"


def test_overlap_retries_alerts_and_zones_per_task(features):
    hourly = DagSource(features["hourly"].text)
    assert hourly.value("hourly", "max_active_tis_per_dag") == 1  # queue
    assert hourly.source("hourly", "retry_exponential_backoff") is None  # backoff 1: constant
    nightly = DagSource(features["nightly"].text)
    assert nightly.value("nightly", "max_active_tis_per_dag") == 1  # skip
    assert nightly.value("nightly", "retries") == 3
    assert nightly.value("nightly", "retry_delay") == timedelta(minutes=1)
    assert nightly.source("nightly", "on_failure_callback") == (
        "apprise_alert('failure', tags=['ops'])"
    )
    assert nightly.source("nightly", "on_retry_callback") == "apprise_alert('retry', tags=['ops'])"
    assert nightly.source("nightly", "on_success_callback") == (
        "apprise_alert('success', tags=['ops'])"
    )
    assert nightly.source("summary-2", "max_active_tis_per_dag") is None  # allow
    assert nightly.source("summary-2", "env") == (
        "{'GREETING': '{% raw %}{% raw %}{% endraw %}', "
        "**cronflow_env('summary-2', 'America/New_York')}"
    )
    assert 'ALERT_URLS = ["json://127.0.0.1:9/hook?token=s3cret"]' in features["nightly"].text
    morning = DagSource(features["morning"].text)
    assert morning.source("morning", "on_failure_callback") is None  # alerts = false


def test_commands_reach_the_shell_exactly(features):
    nightly = DagSource(features["nightly"].text)
    assert nightly.value("nightly", "bash_command") == "./nightly.sh "  # not a template file
    assert nightly.value("summary-2", "bash_command") == (
        '{% raw %}x=ab; echo "${#x} {{ not jinja }}"{% endraw %}'
    )
    morning = DagSource(features["morning"].text)
    assert morning.value("morning", "bash_command") == '{{ "echo endraw {{ x }}" }}'


def test_task_variables_are_valid_names_for_any_job_name(features):
    assert "    summary_2 = BashOperator(" in features["nightly"].text
    assert "    nightly >> summary_2" in features["nightly"].text


def warning_about(dag_file, start: str) -> str:
    found = [warning for warning in dag_file.warnings if warning.startswith(start)]
    assert len(found) == 1, f"{start!r} not among {dag_file.warnings}"
    assert all(word in dag_file.text for word in found[0].split()[:4])
    return found[0]


def test_every_difference_is_warned_and_heads_the_file(features):
    hourly, nightly, morning = features["hourly"], features["nightly"], features["morning"]
    assert "oldest first" in warning_about(hourly, 'overlap = "queue" (hourly)')
    assert "wait for it instead" in warning_about(nightly, 'overlap = "skip" (nightly)')
    assert "max_catchup = 100" in warning_about(nightly, 'catchup = "all"')
    assert "newest missed tick" in warning_about(morning, 'catchup = "none"')
    assert "second pass" in warning_about(nightly, 'DST: "30 2 * * *" in Europe/Berlin')
    assert "per-task switch" in warning_about(nightly, "enabled = false (summary-2)")
    assert "secrets" in warning_about(nightly, "env (summary-2)")
    assert "not sent" in warning_about(nightly, "alerts on missed, recovery")
    assert "every 1 hour" in warning_about(nightly, "failure alerts")
    assert "secrets" in warning_about(nightly, "alert URLs")
    assert "# Not translated exactly" in nightly.text
    for dag_file in features.values():
        for warning in dag_file.warnings:
            assert " ".join(warning.split()[:6]) in " ".join(
                line.lstrip("# -") for line in dag_file.text.splitlines()[:40]
            ).replace("  ", " ")


def test_what_translates_exactly_is_not_warned(features, example):
    assert not [w for w in features["hourly"].warnings if w.startswith(("DST", "retry_backoff"))]
    assert not [w for w in features["morning"].warnings if w.startswith(("DST", "alert"))]
    assert not [w for w in features["by_hand"].warnings if w.startswith("enabled")]
    assert not [w for w in example["disk_check"].warnings if w.startswith("DST")]
    assert "spreads each backed-off retry delay" in warning_about(
        example["extract"], "retry_backoff (extract, transform, load, report)"
    )
    assert "SIGTERM" in warning_about(example["extract"], "kill_grace (extract,")


@pytest.mark.parametrize(
    ("schedule", "zone", "warned"),
    [
        ("30 2 * * *", "Europe/Berlin", True),  # in the spring gap and the autumn repeat
        ("0 */2 * * *", "Europe/Berlin", True),  # 02:00 is skipped once a year
        ("30 * * * *", "Europe/Berlin", False),  # hour "*": both keep the real cadence
        ("0 12 * * *", "Europe/Berlin", False),
        ("30 2 * * *", "UTC", False),
        ("0 2 * * *", "Australia/Lord_Howe", True),  # a 30-minute DST shift
    ],
)
def test_the_dst_warning_only_where_ticks_meet_a_dst_change(write_jobs, schedule, zone, warned):
    dag_file = export(
        write_jobs(f"""
        [jobs.job]
        schedule = "{schedule}"
        timezone = "{zone}"
        command = "true"
        overlap = "allow"
    """)
    )["job"]
    assert any(w.startswith("DST") for w in dag_file.warnings) is warned


def test_a_prefix_names_dags_files_and_sensor_targets(write_jobs):
    files = export(write_jobs(FEATURES), dag_id_prefix="team.a-")
    assert list(files) == ["team.a-hourly", "team.a-nightly", "team.a-morning", "team.a-by_hand"]
    assert files["team.a-nightly"].filename == "team.a-nightly.py"
    nightly = DagSource(files["team.a-nightly"].text)
    assert nightly.value("wait_for_hourly", "external_dag_id") == "team.a-hourly"
    with pytest.raises(UsageError, match="letters, digits"):
        export(write_jobs(FEATURES), dag_id_prefix="team a/")


@given(st.text())
def test_any_text_round_trips_through_a_python_literal(text):
    assert ast.literal_eval(literal(text)) == text


def test_the_command_writes_files_warns_and_names_stale_ones(write_jobs, tmp_path):
    jobs = write_jobs(FEATURES)
    result = run_cli("export", "airflow", "--jobs", str(jobs), "--out", "dags", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        "wrote dags/hourly.py (DAG hourly: 1 task)",
        "wrote dags/nightly.py (DAG nightly: 3 tasks)",
        "wrote dags/morning.py (DAG morning: 2 tasks)",
        "wrote dags/by_hand.py (DAG by_hand: 1 task)",
    ]
    assert 'warning: hourly.py: overlap = "queue" (hourly)' in result.stderr
    assert "s3cret" not in result.stdout + result.stderr
    assert not (tmp_path / ".cronflow").exists()  # exporting records nothing
    unchanged = (tmp_path / "dags" / "hourly.py").stat().st_mtime_ns

    jobs.write_text(FEATURES.replace("[jobs.by_hand]", "[jobs.manual]"))
    again = run_cli("export", "airflow", "--jobs", str(jobs), "--out", "dags", cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    assert (tmp_path / "dags" / "hourly.py").stat().st_mtime_ns == unchanged
    assert "unchanged: dags/hourly.py (DAG hourly: 1 task)" in again.stdout.splitlines()
    assert "wrote dags/manual.py (DAG manual: 1 task)" in again.stdout.splitlines()
    assert (
        f"warning: dags/by_hand.py was exported from {jobs} earlier but holds no flow of it now"
    ) in again.stderr
    assert (tmp_path / "dags" / "by_hand.py").exists()  # named, never deleted


def test_a_bad_prefix_is_a_clear_error(write_jobs, tmp_path):
    result = run_cli(
        "export",
        "airflow",
        "--jobs",
        str(write_jobs(FEATURES)),
        "--dag-id-prefix",
        "a b",
        cwd=tmp_path,
    )
    assert result.returncode == 2
    assert "--dag-id-prefix 'a b' holds characters Airflow does not allow" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "dags").exists()


def test_users_and_env_files_are_carried_or_warned(write_jobs, tmp_path):
    (tmp_path / "job.env").write_text("TOKEN=abc\n")
    if os.geteuid() != 0:
        pytest.skip("user needs cronflow as root to load")
    files = export(
        write_jobs("""
        [jobs.backup]
        command = "true"
        user = "nobody"
        group = "daemon"
        env_file = "job.env"
    """)
    )
    backup = files["backup"]
    assert DagSource(backup.text).value("backup", "run_as_user") == "nobody"
    assert "passwordless sudo" in warning_about(backup, "user (backup)")
    assert "user's own" in warning_about(backup, "group (backup)")
    assert "run without its variables" in warning_about(backup, "env_file (backup)")
    assert "abc" not in backup.text  # the env_file's values are never copied


@pytest.mark.parametrize(
    "schedule, warned",
    [
        ("0 0 */2 * 1", True),  # cron: odd days that are Mondays; croniter ORs them
        ("0 0 1-7 * */2", True),
        ("0 0 1,15 * 1", False),  # both restricted, neither starts with *: OR in both
        ("0 0 * * 1", False),
        ("0 0 */2 * *", False),
    ],
)
def test_the_day_rule_is_warned_where_airflow_would_or_the_days(write_jobs, schedule, warned):
    dag_file = export(
        write_jobs(f"""
        [jobs.job]
        schedule = "{schedule}"
        command = "true"
        overlap = "allow"
    """)
    )["job"]
    assert any(w.startswith("day fields") for w in dag_file.warnings) is warned


def test_a_job_with_its_own_shell_runs_in_it_under_airflow(write_jobs):
    dag_file = export(
        write_jobs("""
        [jobs.job]
        schedule = "0 6 * * *"
        command = "echo 'it''s' $0"
        shell = "/bin/dash"
        overlap = "allow"
    """)
    )["job"]
    assert DagSource(dag_file.text).value("job", "bash_command") == (
        "/bin/dash -c " + shlex.quote("echo 'it''s' $0")
    )


def test_a_ping_url_is_warned_without_showing_it(write_jobs):
    files = export(
        write_jobs("""
        [jobs.backup]
        command = "true"
        ping_url = "https://hc-ping.com/5f0e4c1b-9a53-4b1e-8a43-2d9c1f6e7a10"
    """)
    )
    backup = files["backup"]
    assert "does not ping monitors" in warning_about(backup, "ping_url (backup)")
    assert "5f0e4c1b" not in backup.text


def test_exit_code_policy_is_carried_or_warned(write_jobs):
    files = export(
        write_jobs("""
        [jobs.rsync]
        command = "rsync -a src/ dst/"
        success_exit_codes = [24, 23]
        no_retry_exit_codes = [2]
        retries = 2
    """)
    )
    rsync = files["rsync"]
    command = DagSource(rsync.text).value("rsync", "bash_command")
    assert command == (
        "(\nrsync -a src/ dst/\n)\nstatus=$?\ncase $status in 23|24) exit 0;; esac\nexit $status"
    )
    assert DagSource(rsync.text).value("rsync", "skip_on_exit_code") is None
    assert "retried there" in warning_about(rsync, "no_retry_exit_codes (rsync)")


def test_assets_become_airflow_outlets_and_inlets(write_jobs):
    files = export(
        write_jobs("""
        [assets."crm.contacts"]
        external = true
        [jobs.load]
        command = "true"
        schedule = "0 6 * * *"
        uses = ["crm.contacts"]
        produces = ["warehouse.sales"]
        [jobs.report]
        command = "true"
        uses = ["warehouse.sales"]
    """)
    )
    text = files["load"].text
    assert 'outlets=[Asset("warehouse.sales")]' in text
    assert 'inlets=[Asset("crm.contacts")]' in text
    assert 'inlets=[Asset("warehouse.sales")]' in text  # report, in the same DAG
    assert "from airflow.sdk import DAG, Asset, CronTriggerTimetable" in text


def test_slow_and_late_keys_are_warned_per_key(write_jobs):
    files = export(
        write_jobs("""
        [assets.sales]
        deadline = "07:00"
        [jobs.extract]
        command = "true"
        schedule = "0 5 * * *"
        max_runtime = "auto"
        [jobs.load]
        command = "true"
        depends_on = ["extract"]
        produces = ["sales"]
        finish_by = "+2h"
    """)
    )
    flow = files["extract"]
    assert "only kills" in warning_about(flow, "max_runtime (extract)")
    assert "DAGRUN_LOGICAL_DATE" in warning_about(flow, "finish_by (load)")
    assert "predicts no lateness" in warning_about(flow, "deadline (sales)")


def test_calendars_become_a_first_task_that_skips_the_days_they_refuse(write_jobs):
    files = export(
        write_jobs("""
        [cronflow]
        timezone = "Europe/Berlin"
        [calendars.closed]
        holidays = "DE-BY"
        dates = ["2026-12-31"]
        [calendars.workdays]
        weekdays = ["Mon", "Tue", "Wed", "Thu", "Fri"]
        [jobs.payroll]
        schedule = "0 7 * * *"
        skip_on = ["closed"]
        run_on = ["workdays"]
        command = "true"
        [jobs.ledger]
        command = "true"
        depends_on = ["payroll"]
        [jobs.moved]
        schedule = "0 8 * * *"
        skip_on = ["closed"]
        shift = "next_business_day"
        command = "true"
    """)
    )
    payroll = DagSource(files["payroll"].text)
    assert files["payroll"].tasks[0] == "_calendars"
    assert payroll.operator["_calendars"] == "ShortCircuitOperator"
    assert ("_calendars", "payroll") in payroll.edges and ("payroll", "ledger") in payroll.edges
    refused = {}
    for line in payroll.text.splitlines():  # the two constants the check reads
        if line.startswith(("REFUSED_WEEKDAYS = ", "REFUSED_DAYS = ")):
            name, _, value = line.partition(" = ")
            refused[name] = value
    assert refused["REFUSED_WEEKDAYS"] == "[6, 7]"  # outside the weekday-only run_on
    days = payroll.text.split("REFUSED_DAYS = ")[1].split("]")[0]
    # Bavaria's holidays and the listed date, from 2025 (backfills) through next year; a
    # holiday on a weekend is left to the weekdays.
    for listed in ("2025-01-06", "2026-12-25", "2026-12-31", "2027-01-06"):
        assert f'"{listed}"' in days
    assert '"2026-12-26"' not in days  # a Saturday: REFUSED_WEEKDAYS says it
    assert '"2028-01-06"' not in days
    said = warning_about(files["payroll"], "calendars (")
    assert "listed for 2025-01-01..2027-12-31 (export again before its end" in said
    assert "not exported (a shift" in warning_about(files["moved"], "calendars (")
    assert "ShortCircuitOperator" not in files["moved"].text
