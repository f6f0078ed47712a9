"""Turn a jobs file into Apache Airflow 3 DAG files: one per flow, each a readable Python file.

A flow here is a group of jobs joined by dependencies that run for the same ticks (one
cadence). A dependency across cadences becomes an ExternalTaskSensor in the downstream DAG,
waiting for the upstream's run at the latest tick at or before the downstream's logical time,
as cronflow does. Whatever Airflow cannot express exactly is listed at the top of the file and
returned as a warning; nothing is dropped silently. Pure text generation: no Airflow import.
"""

from __future__ import annotations

import keyword
import re
import shlex
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from cronflow import __version__
from cronflow.decide.schedule import SEPARATOR
from cronflow.decide.schedule_words import describe
from cronflow.errors import UsageError
from cronflow.interop.airflow_flows import (
    APPRISE_TARGETS,
    CALLBACKS,
    Flow,
    airflow_cron,
    alert_constants,
    differences,
    flows,
    start_of_flow,
)
from cronflow.interop.calendar_exclusions import RefusedDays, refused_days
from cronflow.interop.python_source import (
    argument_lines,
    call,
    comment,
    dict_literal,
    formatted_call,
    list_literal,
    literal,
    origin_line,
    sequence_literal,
    timedelta_literal,
    verbatim,
    write_generated,
)
from cronflow.model import CatchUp, Job, JobFile, Overlap, RunIf
from cronflow.tell.alerts import alerted_events

DAG_ID_PREFIX = re.compile(r"[A-Za-z0-9_.-]*\Z")  # what Airflow allows in a dag_id
SENSOR_POKE_INTERVAL = 60  # seconds between an ExternalTaskSensor's checks
_SENSOR = "sensor:"  # key prefix of a sensor's task in _variable_names
CALENDAR_TASK = "_calendars"  # the calendars' check (no job name starts with "_")
_TEMPLATE_FILE_ENDINGS = (".sh", ".bash")  # BashOperator reads such a command as a file
# Names the generated module defines itself, which a task variable must not shadow.
_RESERVED = {
    "BashOperator",
    "CronTriggerTimetable",
    "DAG",
    "ExternalTaskSensor",
    "ZoneInfo",
    "annotations",
    "REFUSED_DAYS",
    "REFUSED_WEEKDAYS",
    "ShortCircuitOperator",
    "apprise_alert",
    "apprise_targets",
    "croniter",
    "cronflow_env",
    "cronflow_run_kind",
    "cronflow_time",
    "dag",
    "datetime",
    "latest_tick",
    "on_calendar_days",
    "timedelta",
    "ALERT_URLS",
    "ALERT_CONFIG",
    "ALERT_TIMEOUT",
    "ZONES",
    "socket",
}


@dataclass(frozen=True, slots=True)
class DagFile:
    """One generated DAG file and what in it differs from cronflow's behaviour."""

    dag_id: str
    filename: str
    tasks: tuple[str, ...]  # task ids, sensors included
    text: str
    warnings: tuple[str, ...]


def export_airflow(
    jobfile: JobFile, *, now: datetime, decided: dict[str, datetime], dag_id_prefix: str = ""
) -> list[DagFile]:
    """The DAG files for every flow of `jobfile`, in the order the file declares the jobs.

    `decided` is each job's newest tick cronflow already decided (its watermark), `now` the
    export's time: a DAG that catches up starts at its root's first undecided tick, or at
    `now` when cronflow never ran it, so Airflow neither replays nor skips anything.
    """
    if not DAG_ID_PREFIX.match(dag_id_prefix):
        raise UsageError(
            f"--dag-id-prefix {dag_id_prefix!r} holds characters Airflow does "
            "not allow in a DAG id. Use only letters, digits, '_', '.' and '-'."
        )
    planned = flows(jobfile, dag_id_prefix)
    dag_of = {job.name: flow.dag_id for flow in planned for job in flow.jobs}
    return [
        _render(jobfile, flow, dag_of, start_of_flow(flow, now, decided), now) for flow in planned
    ]


# ---- grouping jobs into DAGs ------------------------------------------------------------


# ---- what does not translate exactly ----------------------------------------------------


# ---- writing the file -------------------------------------------------------------------


def _render(
    jobfile: JobFile, flow: Flow, dag_of: dict[str, str], start: datetime | None, now: datetime
) -> DagFile:
    days = flow.cadence.days
    refused = None
    if days is not None and days.shift is None and flow.cadence.expression is not None:
        first = min(start or now, now).astimezone(flow.cadence.timezone).date()
        refused = refused_days(days, first, now)
    warnings = differences(jobfile, flow, refused)
    names = _variable_names(flow, refused is not None)
    has_alerts = any(alerted_events(jobfile, job) for job in flow.jobs)
    body = "\n\n\n".join(
        [
            _helpers(flow, jobfile if has_alerts else None, refused),
            _dag_block(jobfile, flow, names, dag_of, start, refused),
        ]
    )
    # isort's rule: one blank line after the imports before a constant, two before a def
    after_imports = "\n\n\n" if body.startswith("def ") else "\n\n"
    text = (
        _header(jobfile, flow, warnings)
        + "\n\n"
        + _imports(flow, body)
        + after_imports
        + body
        + "\n"
    )
    tasks = [_sensor_task_id(flow, upstream) for upstream in flow.sensors]
    if refused is not None:
        tasks.insert(0, CALENDAR_TASK)
    return DagFile(
        dag_id=flow.dag_id,
        filename=f"{flow.dag_id}.py",
        tasks=tuple(tasks + [job.name for job in flow.jobs]),
        text=text,
        warnings=tuple(warnings),
    )


def _header(jobfile: JobFile, flow: Flow, warnings: list[str]) -> str:
    chain = " -> ".join(job.name for job in flow.jobs)
    expression = flow.cadence.expression
    when = (
        f'"{expression}" in {flow.cadence.timezone.key} ({describe(expression)})'
        if expression
        else "only when triggered (the jobs have no schedule)"
    )
    lines = [
        f"# Airflow DAG {flow.dag_id!r}, generated by `cronflow export airflow` "
        f"(cronflow {__version__})",
        origin_line(jobfile.path),
        "#",
        *comment(f"Jobs: {chain}. Runs {when}."),
    ]
    pools = sorted({job.pool.pool for job in flow.jobs if job.pool is not None})
    if pools:
        lines += ["#", "# Create its pools in Airflow first (cronflow's [pools] tables):"]
        for name in pools:
            pool = jobfile.pools[name]
            lines.append(
                f"#   airflow pools set {name} {pool.slots} {shlex.quote(pool.description or name)}"
            )
    if warnings:
        lines += ["#", "# Not translated exactly (the export printed these as warnings too):"]
        for warning in warnings:
            lines += comment(warning, bullet=True)
    return "\n".join(lines)


def _imports(flow: Flow, body: str) -> str:
    """The import block, sorted as isort does, importing only what `body` uses."""
    uses_timedelta = "timedelta(" in body
    stdlib = [
        f"from datetime import datetime{', timedelta' if uses_timedelta else ''}",
        "from zoneinfo import ZoneInfo",
    ]
    if "socket." in body:
        stdlib.insert(0, "import socket")
    third_party = [
        "from airflow.providers.standard.operators.bash import BashOperator",
        *(
            ["from airflow.providers.standard.operators.python import ShortCircuitOperator"]
            if "ShortCircuitOperator(" in body
            else []
        ),
        "from airflow.sdk import DAG"
        + (", Asset" if "Asset(" in body else "")
        + (
            ", CronTriggerTimetable"
            if re.search(r"(?<!Multiple)CronTriggerTimetable\(", body)
            else ""
        )
        + (", MultipleCronTriggerTimetable" if "MultipleCronTriggerTimetable(" in body else ""),
    ]
    if flow.external:
        third_party[-1:-1] = [
            "from airflow.providers.standard.sensors.external_task import ExternalTaskSensor"
        ]
        third_party.append("from croniter import croniter")
    blocks = ["from __future__ import annotations", "\n".join(stdlib), "\n".join(third_party)]
    return "\n\n".join(blocks)


_TIME_HELPERS = '''
def cronflow_time(dag_run, zone: str) -> datetime:
    """The run's logical time in the job's zone, as cronflow gives it to a job."""
    return (dag_run.logical_date or dag_run.run_after).astimezone(ZoneInfo(zone))


def cronflow_run_kind(dag_run) -> str:
    """cronflow's name for why a run happens: a manual trigger is what cronflow calls a
    backfill (a run for a chosen logical date)."""
    kinds = {"backfill": "backfill", "manual": "backfill"}
    return kinds.get(dag_run.run_type.value, "scheduled")


def cronflow_env(job: str, zone: str) -> dict[str, str]:
    """The CRONFLOW_* variables cronflow sets for a job, filled in by Airflow's templates.
    CRONFLOW_RUN_ID is Airflow's run id, shared by the tasks of one DAG run."""
    when = f"cronflow_time(dag_run, {zone!r})"
    return {
        "CRONFLOW_JOB": job,
        "CRONFLOW_LOGICAL_TIME": "{{ " + when + ".isoformat() }}",
        "CRONFLOW_DATE": "{{ " + when + ".date().isoformat() }}",
        "CRONFLOW_RUN_ID": "{{ run_id }}",
        "CRONFLOW_ATTEMPT": "{{ ti.try_number }}",
        "CRONFLOW_RUN_KIND": "{{ cronflow_run_kind(dag_run) }}",
    }
'''.strip("\n")

_SENSOR_HELPER = '''
def latest_tick(cron: str, zone: str):
    """For ExternalTaskSensor: the upstream's latest tick at or before this run's logical
    time, the run cronflow waits for when a job depends on one with another schedule."""

    def at_or_before(logical_date: datetime, **context) -> datetime:
        wall = logical_date.astimezone(ZoneInfo(zone)).replace(tzinfo=None)
        tick = croniter(cron, wall + timedelta(seconds=1)).get_prev(datetime)
        # fold=1: a repeated wall time means its second pass, as Airflow schedules it
        return tick.replace(tzinfo=ZoneInfo(zone), fold=1).astimezone(ZoneInfo("UTC"))

    return at_or_before
'''.strip("\n")

_CALENDAR_HELPER = '''
def on_calendar_days(weekdays: list[int], days: list[str], zone: str):
    """The test of the DAG's first task: whether the run's logical day in the jobs' zone is
    one their calendars allow (not one of `weekdays`, 1 = Monday, nor of `days`). When it is
    not, every task of the run is skipped, as cronflow skips the day."""

    def allowed(dag_run) -> bool:
        day = cronflow_time(dag_run, zone).date()
        return day.isoweekday() not in weekdays and day.isoformat() not in days

    return allowed
'''.strip("\n")

_ALERT_HELPER = '''
def apprise_alert(on: str, tags: list[str]):
    """A task callback that sends cronflow's `on` alert through apprise (needed on workers)."""

    def send(context) -> None:
        import apprise

        ti = context["ti"]
        targets = apprise_targets(apprise, tags)
        local = cronflow_time(context["dag_run"], ZONES[ti.task_id])
        verb = {
            "failure": "failed",
            "retry": "failed, will retry",
            "success": "succeeded",
        }[on]
        body = [
            f"**Job:** {ti.task_id} (Airflow DAG {ti.dag_id})",
            f"**Logical time:** {local.isoformat()}",
            f"**Attempt:** {ti.try_number} of {ti.max_tries + 1}",
            f"**Host:** {ti.hostname or socket.gethostname()}",
        ]
        if context.get("exception"):
            body.append(f"**Error:** {context['exception']}")
        targets.notify(
            title=f"cronflow: {ti.task_id} {verb} ({local.date()})",
            body="\\n".join(body),
            notify_type="success" if on == "success" else "failure",
            body_format=apprise.NotifyFormat.MARKDOWN,
            timeout=ALERT_TIMEOUT,
        )

    return send
'''.strip("\n")


def _helpers(flow: Flow, alerting: JobFile | None, refused: RefusedDays | None) -> str:
    parts = [_TIME_HELPERS]
    if flow.external:
        parts.append(_SENSOR_HELPER)
    if refused is not None:
        parts += [_refused_constants(refused), _CALENDAR_HELPER]
    if alerting is not None:
        constants = [
            *alert_constants(alerting.alerts),
            "ZONES = "
            + dict_literal(
                {literal(job.name): literal(job.timezone.key) for job in flow.jobs},
                indent=0,
                start=len("ZONES = "),
            ),
        ]
        parts.insert(0, "\n".join(constants))
        parts += [APPRISE_TARGETS, _ALERT_HELPER]
    return "\n\n\n".join(parts)


def _dag_block(
    jobfile: JobFile,
    flow: Flow,
    names: dict[str, str],
    dag_of: dict[str, str],
    start: datetime | None,
    refused: RefusedDays | None,
) -> str:
    cadence = flow.cadence
    root = flow.jobs[0]
    arguments = [("dag_id", literal(flow.dag_id))]
    spelled = airflow_cron(cadence.expression)[0] if cadence.expression else None
    if spelled:
        kind = "MultipleCronTriggerTimetable" if SEPARATOR in spelled else "CronTriggerTimetable"
        parts = [literal(cron) for cron in spelled.split(SEPARATOR)]
        parts.append(f"timezone={literal(cadence.timezone.key)}")
        arguments.append(("schedule", formatted_call(kind, parts, "schedule=", indent=4)))
        arguments.append(("catchup", str(root.catchup is CatchUp.ALL)))
        if start is not None:  # cronflow's first undecided tick, or the export's time
            arguments.append(
                ("start_date", f"datetime.fromisoformat({literal(start.isoformat())})")
            )
    else:
        arguments.append(("schedule", "None"))
    arguments += [
        ("max_active_tasks", str(jobfile.settings.max_parallel)),
        (
            "user_defined_macros",
            dict_literal(
                {'"cronflow_time"': "cronflow_time", '"cronflow_run_kind"': "cronflow_run_kind"},
                indent=4,
                start=len("    user_defined_macros="),
            ),
        ),
        ("tags", '["cronflow"]'),
    ]
    if not any(job.enabled for job in flow.jobs):
        arguments.append(("is_paused_upon_creation", "True"))
    lines = ["with DAG(", *argument_lines(arguments, indent=4), ") as dag:"]
    blocks = [] if refused is None else [_calendar_check(flow, names[CALENDAR_TASK])]
    for upstream in flow.sensors:
        blocks.append(_sensor(flow, upstream, names[_SENSOR + upstream.name], dag_of))
    for job in flow.jobs:
        blocks.append(_task(jobfile, job, names[job.name]))
    blocks.append(_dependencies(flow, names))
    return "\n".join(lines) + "\n" + "\n\n".join(block for block in blocks if block)


_BASHES = (
    "/bin/sh",
    "/bin/bash",
    "/usr/bin/bash",
)  # BashOperator runs bash; /bin/sh: see docs/interop.md


def _task(jobfile: JobFile, job: Job, variable: str) -> str:
    command = verbatim(
        job.command if job.shell in _BASHES else f"{job.shell} -c {shlex.quote(job.command)}"
    )
    if job.success_exit_codes:  # BashOperator fails on any non-zero exit: say which succeed
        codes = "|".join(str(code) for code in sorted(job.success_exit_codes))
        command = (
            f"(\n{command}\n)\nstatus=$?\ncase $status in {codes}) exit 0;; esac\nexit $status"
        )
    if command.endswith(_TEMPLATE_FILE_ENDINGS):
        command += " "  # else BashOperator would load the command as a template file
    env = "cronflow_env(" + literal(job.name) + ", " + literal(job.timezone.key) + ")"
    if job.env:
        pairs = {literal(name): literal(verbatim(value)) for name, value in job.env.items()}
        env = dict_literal({**pairs, "**": env}, indent=8, start=len("        env="))
    arguments = [
        ("task_id", literal(job.name)),
        ("bash_command", literal(command)),
        ("cwd", literal(verbatim(str(job.cwd)))),
        ("env", env),
        ("append_env", "True"),  # the worker's environment, then env, as cronflow does
        ("skip_on_exit_code", "None"),  # cronflow never skips a run by its exit status
        ("do_xcom_push", "False"),
        ("retries", str(job.retry.attempts - 1)),
    ]
    if job.retry.attempts > 1:
        arguments.append(("retry_delay", timedelta_literal(job.retry.delay)))
        if job.retry.backoff != 1:
            arguments.append(("retry_exponential_backoff", repr(job.retry.backoff)))
        arguments.append(("max_retry_delay", timedelta_literal(job.retry.max_delay)))
    if job.timeout is not None:
        arguments.append(("execution_timeout", timedelta_literal(job.timeout)))
    if job.overlap is not Overlap.ALLOW:
        arguments.append(("max_active_tis_per_dag", "1"))
    if job.run_if is not RunIf.ALL_SUCCESS:  # Airflow's trigger rules bear the same names
        arguments.append(("trigger_rule", literal(job.run_if.value)))
    for key, names in (("outlets", job.produces), ("inlets", job.uses)):  # Airflow Assets
        if names:
            arguments.append((key, "[" + ", ".join(f"Asset({literal(n)})" for n in names) + "]"))
    if job.pool is not None:  # an Airflow pool of the same name and slots (see _header)
        arguments.append(("pool", literal(job.pool.pool)))
        if job.pool.slots != 1:
            arguments.append(("pool_slots", str(job.pool.slots)))
        if job.pool.priority:
            arguments += [
                ("priority_weight", str(job.pool.priority)),
                ("weight_rule", '"absolute"'),
            ]
    if job.user:
        arguments.append(("run_as_user", literal(job.user)))
    for on in alerted_events(jobfile, job):
        if on in CALLBACKS:
            arguments.append(
                (
                    CALLBACKS[on],
                    f"apprise_alert({literal(on.value)}, tags={list_literal(job.alert_tags)})",
                )
            )
    if job.description:
        arguments.append(("doc", literal(job.description)))
    return call(variable, "BashOperator", arguments)


def _sensor(flow: Flow, upstream: Job, variable: str, dag_of: dict[str, str]) -> str:
    cadence = upstream.cadence
    arguments = [
        ("task_id", literal(_sensor_task_id(flow, upstream))),
        ("external_dag_id", literal(dag_of[upstream.name])),
        ("external_task_id", literal(upstream.name)),
        (
            "execution_date_fn",
            f"latest_tick({literal(_sensor_cron(cadence.expression))}, "
            f"{literal(cadence.timezone.key)})",
        ),
        ("mode", '"reschedule"'),  # free the worker slot between checks
        ("poke_interval", str(SENSOR_POKE_INTERVAL)),
    ]
    return call(variable, "ExternalTaskSensor", arguments)


def _sensor_task_id(flow: Flow, upstream: Job) -> str:
    task_id = f"wait_for_{upstream.name}"
    while any(job.name == task_id for job in flow.jobs):
        task_id += "_run"
    return task_id


def _dependencies(flow: Flow, names: dict[str, str]) -> str:
    lines = []
    members = {job.name for job in flow.jobs}
    roots = [names[_SENSOR + upstream.name] for upstream in flow.sensors]
    for job in flow.jobs:
        upstreams = [names[u] for u in job.depends_on if u in members]
        upstreams += [names[_SENSOR + u.name] for u in flow.external.get(job.name, ())]
        if len(upstreams) == 1:
            lines.append(f"    {upstreams[0]} >> {names[job.name]}")
        elif upstreams:
            lines.append(f"    [{', '.join(upstreams)}] >> {names[job.name]}")
        else:
            roots.append(names[job.name])
    if CALENDAR_TASK in names:  # the calendars' check comes before everything else
        after = roots[0] if len(roots) == 1 else "[" + ", ".join(roots) + "]"
        lines.insert(0, f"    {names[CALENDAR_TASK]} >> {after}")
    return "\n".join(lines)


def _calendar_check(flow: Flow, variable: str) -> str:
    zone = literal(flow.cadence.timezone.key)
    test = formatted_call(
        "on_calendar_days",
        ["REFUSED_WEEKDAYS", "REFUSED_DAYS", zone],
        "python_callable=",
        indent=8,
    )
    arguments = [
        ("task_id", literal(CALENDAR_TASK)),
        ("python_callable", test),
        ("ignore_downstream_trigger_rules", "True"),  # skip them all, whatever their run_if
    ]
    return call(variable, "ShortCircuitOperator", arguments)


def _refused_constants(refused: RefusedDays) -> str:
    days = [literal(day.isoformat()) for day in refused.days]
    return (
        "# The days the jobs' calendars refuse: these weekdays (1 = Monday), and these days.\n"
        f"REFUSED_WEEKDAYS = [{', '.join(map(str, refused.weekdays))}]\n"
        f"REFUSED_DAYS = {sequence_literal(days, indent=0, start=len('REFUSED_DAYS = '))}"
    )


def _variable_names(flow: Flow, calendars: bool) -> dict[str, str]:
    """A Python name for each task (job names may hold '.' and '-'); sensors are keyed
    by _SENSOR + the upstream's name, the calendars' check by CALENDAR_TASK."""
    wanted = [(CALENDAR_TASK, "calendars")] if calendars else []
    wanted += [(job.name, job.name) for job in flow.jobs]
    wanted += [
        (_SENSOR + upstream.name, _sensor_task_id(flow, upstream)) for upstream in flow.sensors
    ]
    names: dict[str, str] = {}
    taken = set(_RESERVED)
    for key, task_id in wanted:
        base = re.sub(r"\W", "_", task_id)
        if base[0].isdigit() or keyword.iskeyword(base):
            base = f"job_{base}"
        name, number = base, 2
        while name in taken:
            name, number = f"{base}_{number}", number + 1
        taken.add(name)
        names[key] = name
    return names


# ---- Python and Jinja literals -----------------------------------------------------------


def write_dag_files(
    files: list[DagFile], out: Path, source: Path
) -> tuple[list[tuple[Path, bool]], list[Path]]:
    """Write each file into `out` (created if needed), each atomically; an unchanged file is
    left untouched. Returns each file's path and whether it changed, and the files an
    earlier export of `source` left in `out` that no flow produces any more (for the caller
    to mention, not delete)."""
    written = write_generated({dag_file.filename: dag_file.text for dag_file in files}, out)
    paths = {path for path, _ in written}
    origin = origin_line(source)
    stale = [
        path
        for path in sorted(out.glob("*.py"))
        if path not in paths
        and origin in path.read_text(encoding="utf-8", errors="replace").split("\n")[:3]
    ]
    return written, stale


def _sensor_cron(expression: str | None) -> str:
    """The upstream's schedule as the sensor's croniter reads it ("" for none: midnight)."""
    return (airflow_cron(expression)[0] or "") if expression else ""
