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
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from cronflow import __version__
from cronflow.decide import dag
from cronflow.decide.schedule import compile_schedule, days_or, describe, offset_change
from cronflow.errors import UsageError
from cronflow.model import AlertEvent, Cadence, CatchUp, Job, JobFile, Overlap, RunIf
from cronflow.state.files import replace_whole
from cronflow.tell.alerts import alerted_events

DAG_ID_PREFIX = re.compile(r"[A-Za-z0-9_.-]*\Z")  # what Airflow allows in a dag_id
LINE_LENGTH = 88  # the generated files are formatted as ruff and black format them
SENSOR_POKE_INTERVAL = 60  # seconds between an ExternalTaskSensor's checks
_JINJA_MARKERS = ("{{", "{%", "{#")
_SENSOR = "sensor:"  # key prefix of a sensor's task in _variable_names
_TEMPLATE_FILE_ENDINGS = (".sh", ".bash")  # BashOperator reads such a command as a file
# Callbacks Airflow offers for cronflow's alert events; the others have no equivalent.
_CALLBACKS = {
    AlertEvent.FAILURE: "on_failure_callback",
    AlertEvent.RETRY: "on_retry_callback",
    AlertEvent.SUCCESS: "on_success_callback",
}
# Names the generated module defines itself, which a task variable must not shadow.
_RESERVED = {
    "BashOperator",
    "CronTriggerTimetable",
    "DAG",
    "ExternalTaskSensor",
    "ZoneInfo",
    "annotations",
    "apprise_alert",
    "croniter",
    "cronflow_env",
    "cronflow_run_kind",
    "cronflow_time",
    "dag",
    "datetime",
    "latest_tick",
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


@dataclass(frozen=True, slots=True)
class _Flow:
    dag_id: str
    jobs: list[Job]  # in dependency order
    external: dict[str, list[Job]]  # job name -> its upstreams on other cadences

    @property
    def cadence(self) -> Cadence:
        return self.jobs[0].cadence

    @property
    def sensors(self) -> list[Job]:
        """The other-cadence upstreams, one sensor each, in the order they are first needed."""
        found: dict[str, Job] = {}
        for upstreams in self.external.values():
            found.update({upstream.name: upstream for upstream in upstreams})
        return list(found.values())


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
    flows = _flows(jobfile, dag_id_prefix)
    dag_of = {job.name: flow.dag_id for flow in flows for job in flow.jobs}
    return [_render(jobfile, flow, dag_of, _start(flow, now, decided)) for flow in flows]


def _start(flow: _Flow, now: datetime, decided: dict[str, datetime]) -> datetime | None:
    """Where a catching-up DAG starts (Airflow requires a start_date for catchup=True)."""
    root = flow.jobs[0]
    if flow.cadence.expression is None or root.catchup is not CatchUp.ALL:
        return None
    if root.name in decided:
        schedule = compile_schedule(flow.cadence.expression, flow.cadence.timezone)
        return schedule.next_after(decided[root.name]) or decided[root.name]
    return now.astimezone(UTC).replace(second=0, microsecond=0)


# ---- grouping jobs into DAGs ------------------------------------------------------------


def _flows(jobfile: JobFile, prefix: str) -> list[_Flow]:
    """Jobs joined by same-cadence dependencies, each group in dependency order."""
    jobs = jobfile.jobs
    graph = {name: list(job.depends_on) for name, job in jobs.items()}
    order = dag.topological_order(graph)
    same_cadence = {
        name: [u for u in job.depends_on if jobs[u].cadence == job.cadence]
        for name, job in jobs.items()
    }
    flows = []
    for group in dag.components(same_cadence, order):
        members = set(group)
        ordered = [jobs[member] for member in group]
        external = {
            job.name: [jobs[u] for u in job.depends_on if u not in members] for job in ordered
        }
        flows.append(
            _Flow(
                dag_id=prefix + ordered[0].name,
                jobs=ordered,
                external={name: ups for name, ups in external.items() if ups},
            )
        )
    return flows


# ---- what does not translate exactly ----------------------------------------------------

# What Airflow does differently for a job, by the jobs it applies to ({jobs} lists them).
_JOB_DIFFERENCES: tuple[tuple[Callable[[Job], bool], str], ...] = (
    (
        lambda job: job.overlap is Overlap.SKIP,
        'overlap = "skip" ({jobs}): Airflow cannot skip a run while the previous one still '
        "runs; max_active_tis_per_dag=1 makes it wait for it instead.",
    ),
    (
        lambda job: job.overlap is Overlap.QUEUE,
        'overlap = "queue" ({jobs}): max_active_tis_per_dag=1 makes a run wait for the '
        "previous one, but Airflow does not promise to start waiting runs oldest first.",
    ),
    (
        lambda job: job.retry.attempts > 1 and job.retry.backoff != 1,
        "retry_backoff ({jobs}): Airflow spreads each backed-off retry delay by up to 100% "
        "more (delay x backoff^n to twice that), still capped by max_retry_delay.",
    ),
    (
        lambda job: job.timeout is not None,
        "kill_grace ({jobs}): on timeout Airflow sends SIGTERM to the job's process group; "
        "cronflow's kill_grace and final SIGKILL have no per-task equivalent.",
    ),
    (
        lambda job: bool(job.env),
        "env ({jobs}): the values are written into this file, and Airflow shows DAG source "
        "in its UI; keep secrets in Airflow Variables or a secrets backend instead.",
    ),
    (
        lambda job: bool(job.env_files),
        "env_file ({jobs}): Airflow has no env_file; these tasks run without its variables. "
        "Put them in Airflow Variables or a secrets backend.",
    ),
    (
        lambda job: job.user is not None,
        "user ({jobs}): becomes run_as_user, which Airflow runs through sudo: the workers' "
        "Airflow user needs passwordless sudo to that user.",
    ),
    (
        lambda job: job.group is not None,
        "group ({jobs}): Airflow has no per-task group; the task runs with its user's own.",
    ),
    (
        lambda job: bool(job.random_delay or job.random_offset),
        "random_delay/random_offset ({jobs}): Airflow starts a run at its tick; spread the "
        "load with pools, or schedules of their own per DAG, instead.",
    ),
    (
        lambda job: job.at_boot,
        "@reboot ({jobs}): Airflow has no boot trigger; the DAG has no schedule. Trigger it "
        "at boot from the host (`airflow dags trigger` in a systemd unit).",
    ),
    (
        lambda job: bool(job.no_retry_exit_codes),
        "no_retry_exit_codes ({jobs}): Airflow retries a failed task whatever its exit "
        "status, so a try that fails with one of them is retried there.",
    ),
    (
        lambda job: job.ping_url is not None,
        "ping_url ({jobs}): Airflow does not ping monitors; these checks go late once the "
        "DAG replaces cronflow. Ping from the command, or watch Airflow's own metrics.",
    ),
)


def _differences(jobfile: JobFile, flow: _Flow) -> list[str]:
    """One sentence per thing Airflow will do differently from cronflow for this flow."""
    notes: list[str] = []

    def about(jobs: list[Job], text: str) -> None:
        if jobs:
            notes.append(text.format(jobs=", ".join(job.name for job in jobs)))

    root = flow.jobs[0]
    if flow.cadence.expression is not None:
        if root.catchup is CatchUp.NONE:
            notes.append(
                'catchup = "none": Airflow has no such mode; with catchup=False it '
                "still runs the newest missed tick when its scheduler comes back."
            )
        if root.catchup is CatchUp.ALL:
            notes.append(
                f'catchup = "all": Airflow runs every missed tick; cronflow\'s '
                f"max_catchup = {root.max_catchup} has no equivalent."
            )
        if _dst_differs(flow.cadence.expression, flow.cadence.timezone):
            notes.append(
                f'DST: "{flow.cadence.expression}" in {flow.cadence.timezone.key} has '
                "ticks in a skipped or repeated hour. cronflow runs them as cronie does "
                "(`cronflow next` shows each); Airflow runs a skipped time after the "
                "jump by the gap's length and a repeated time once, on its second pass."
            )
        if _days_differ(flow.cadence.expression):
            notes.append(
                f'day fields: "{flow.cadence.expression}" combines day-of-month and '
                "day-of-week with AND, as cron does when one of them starts with `*`; "
                "Airflow (croniter) combines them with OR and runs on more days."
            )
    for applies, text in _JOB_DIFFERENCES:
        about([job for job in flow.jobs if applies(job)], text)
    about(
        [j for j in flow.jobs if j.run_if is not RunIf.ALL_SUCCESS and flow.external.get(j.name)],
        "run_if ({jobs}): an upstream on another schedule is waited for by an "
        "ExternalTaskSensor, which lets the task start only after that upstream succeeded.",
    )
    about(
        [j for j in flow.jobs if j.run_if is RunIf.NONE_FAILED],
        'run_if = "none_failed" ({jobs}): when an upstream failed, Airflow marks the task '
        "upstream_failed where cronflow records it skipped (its rule not met).",
    )
    disabled = [j for j in flow.jobs if not j.enabled]
    if disabled and len(disabled) < len(flow.jobs):
        about(
            disabled,
            "enabled = false ({jobs}): Airflow has no per-task switch; these tasks "
            "run with their DAG. Remove them or keep the DAG paused.",
        )
    notes.extend(_alert_differences(jobfile, flow))
    return notes


def _alert_differences(jobfile: JobFile, flow: _Flow) -> list[str]:
    settings = jobfile.alerts
    alerted = [job for job in flow.jobs if alerted_events(jobfile, job)]
    if not alerted:
        return []
    notes = []
    untranslated = sorted(
        {on.value for job in alerted for on in alerted_events(jobfile, job) if on not in _CALLBACKS}
    )
    if untranslated:
        notes.append(
            f"alerts on {', '.join(untranslated)}: Airflow has no callback for "
            "these; they are not sent."
        )
    if any(AlertEvent.FAILURE in alerted_events(jobfile, job) for job in alerted):
        streak = (
            "once per failing streak"
            if settings.repeat is None
            else (f"once per failing streak and every {_duration_words(settings.repeat)}")
        )
        notes.append(
            f"failure alerts: Airflow calls on_failure_callback for every failed run; "
            f"cronflow alerts {streak}."
        )
    if settings.urls:
        notes.append(
            "alert URLs are written into this file with their secrets, and Airflow "
            "shows DAG source in its UI; prefer [alerts] config = an apprise config "
            "file kept on the workers."
        )
    return notes


def _days_differ(expression: str) -> bool:
    """True when cron ANDs two restricted day fields (one starts with `*`) and croniter,
    which Airflow uses, ORs them."""
    _, _, day, _, weekday = expression.split(" ")
    return "*" not in (day, weekday) and not days_or(expression)


def _dst_differs(expression: str, zone: ZoneInfo) -> bool:
    """True when some tick of this schedule lands in a DST change of its zone.

    cronflow and Airflow agree when the hour field is `*` (both keep the real cadence); for
    any other schedule, a tick inside a skipped or repeated hour is placed differently.
    """
    if expression.split(" ")[1] == "*":
        return False
    schedule = compile_schedule(expression, zone)
    start = datetime(2026, 1, 1, tzinfo=UTC)  # any two years show a zone's yearly rules
    for change in _offset_changes(zone, start, start + timedelta(days=731)):
        window = schedule.ticks(change - timedelta(hours=26), change + timedelta(hours=26))
        if any(schedule.dst_note(tick) for tick in window):
            return True
    return False


def _offset_changes(zone: ZoneInfo, start: datetime, end: datetime) -> list[datetime]:
    """The instants in [start, end) where the zone's UTC offset changes, to the second."""
    changes = []
    day = start
    while day < end:
        following = day + timedelta(days=1)
        if day.astimezone(zone).utcoffset() != following.astimezone(zone).utcoffset():
            changes.append(offset_change(zone, day, following))
        day = following
    return changes


# ---- writing the file -------------------------------------------------------------------


def _render(
    jobfile: JobFile, flow: _Flow, dag_of: dict[str, str], start: datetime | None
) -> DagFile:
    warnings = _differences(jobfile, flow)
    names = _variable_names(flow)
    has_alerts = any(alerted_events(jobfile, job) for job in flow.jobs)
    body = "\n\n\n".join(
        [
            _helpers(flow, jobfile if has_alerts else None),
            _dag_block(jobfile, flow, names, dag_of, start),
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
    return DagFile(
        dag_id=flow.dag_id,
        filename=f"{flow.dag_id}.py",
        tasks=tuple(tasks + [job.name for job in flow.jobs]),
        text=text,
        warnings=tuple(warnings),
    )


def _header(jobfile: JobFile, flow: _Flow, warnings: list[str]) -> str:
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
        _origin_line(jobfile.path),
        "#",
        *_comment(f"Jobs: {chain}. Runs {when}."),
    ]
    if warnings:
        lines += ["#", "# Not translated exactly (the export printed these as warnings too):"]
        for warning in warnings:
            lines += _comment(warning, bullet=True)
    return "\n".join(lines)


def _comment(text: str, bullet: bool = False, width: int = LINE_LENGTH) -> list[str]:
    """`text` as wrapped comment lines, optionally as a "- " bullet."""
    import textwrap

    first, rest = ("# - ", "#   ") if bullet else ("# ", "# ")
    return textwrap.wrap(
        text,
        width=width,
        initial_indent=first,
        subsequent_indent=rest,
        break_long_words=False,
        break_on_hyphens=False,
    )


def _imports(flow: _Flow, body: str) -> str:
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
        "from airflow.sdk import DAG"
        + (", Asset" if "Asset(" in body else "")
        + (", CronTriggerTimetable" if flow.cadence.expression else ""),
    ]
    if flow.external:
        third_party[1:1] = [
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

_ALERT_HELPER = '''
def apprise_alert(on: str, tags: list[str]):
    """A task callback that sends cronflow's `on` alert through apprise (needed on workers)."""

    def send(context) -> None:
        import apprise

        ti = context["ti"]
        targets = apprise.Apprise()
        for url in ALERT_URLS:  # these hear of every job
            targets.add(url)
        if ALERT_CONFIG:  # its targets hear of jobs whose alert_tags they carry
            from_file = apprise.Apprise()
            config = apprise.AppriseConfig()
            config.add(ALERT_CONFIG)
            from_file.add(config)
            for service in from_file.find(tag=tags or "all"):
                targets.add(service)
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


def _helpers(flow: _Flow, alerting: JobFile | None) -> str:
    parts = [_TIME_HELPERS]
    if flow.external:
        parts.append(_SENSOR_HELPER)
    if alerting is not None:
        settings = alerting.alerts
        constants = [
            f"ALERT_URLS = {_list_literal(settings.urls)}",
            f"ALERT_CONFIG = {_literal(str(settings.config)) if settings.config else None}",
            f"ALERT_TIMEOUT = {settings.timeout.total_seconds():g}  # seconds per delivery",
            "ZONES = "
            + _dict_literal(
                {_literal(job.name): _literal(job.timezone.key) for job in flow.jobs},
                indent=0,
                start=len("ZONES = "),
            ),
        ]
        parts.insert(0, "\n".join(constants))
        parts.append(_ALERT_HELPER)
    return "\n\n\n".join(parts)


def _dag_block(
    jobfile: JobFile,
    flow: _Flow,
    names: dict[str, str],
    dag_of: dict[str, str],
    start: datetime | None,
) -> str:
    cadence = flow.cadence
    root = flow.jobs[0]
    arguments = [("dag_id", _literal(flow.dag_id))]
    if cadence.expression:
        arguments.append(
            (
                "schedule",
                f"CronTriggerTimetable({_literal(cadence.expression)}, "
                f"timezone={_literal(cadence.timezone.key)})",
            )
        )
        arguments.append(("catchup", str(root.catchup is CatchUp.ALL)))
        if start is not None:  # cronflow's first undecided tick, or the export's time
            arguments.append(
                ("start_date", f"datetime.fromisoformat({_literal(start.isoformat())})")
            )
    else:
        arguments.append(("schedule", "None"))
    arguments += [
        ("max_active_tasks", str(jobfile.settings.max_parallel)),
        (
            "user_defined_macros",
            _dict_literal(
                {'"cronflow_time"': "cronflow_time", '"cronflow_run_kind"': "cronflow_run_kind"},
                indent=4,
                start=len("    user_defined_macros="),
            ),
        ),
        ("tags", '["cronflow"]'),
    ]
    if not any(job.enabled for job in flow.jobs):
        arguments.append(("is_paused_upon_creation", "True"))
    lines = ["with DAG(", *_arguments(arguments, indent=4), ") as dag:"]
    blocks = []
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
    command = _verbatim(
        job.command if job.shell in _BASHES else f"{job.shell} -c {shlex.quote(job.command)}"
    )
    if job.success_exit_codes:  # BashOperator fails on any non-zero exit: say which succeed
        codes = "|".join(str(code) for code in sorted(job.success_exit_codes))
        command = (
            f"(\n{command}\n)\nstatus=$?\ncase $status in {codes}) exit 0;; esac\nexit $status"
        )
    if command.endswith(_TEMPLATE_FILE_ENDINGS):
        command += " "  # else BashOperator would load the command as a template file
    env = "cronflow_env(" + _literal(job.name) + ", " + _literal(job.timezone.key) + ")"
    if job.env:
        pairs = {_literal(name): _literal(_verbatim(value)) for name, value in job.env.items()}
        env = _dict_literal({**pairs, "**": env}, indent=8, start=len("        env="))
    arguments = [
        ("task_id", _literal(job.name)),
        ("bash_command", _literal(command)),
        ("cwd", _literal(_verbatim(str(job.cwd)))),
        ("env", env),
        ("append_env", "True"),  # the worker's environment, then env, as cronflow does
        ("skip_on_exit_code", "None"),  # cronflow never skips a run by its exit status
        ("do_xcom_push", "False"),
        ("retries", str(job.retry.attempts - 1)),
    ]
    if job.retry.attempts > 1:
        arguments.append(("retry_delay", _timedelta_literal(job.retry.delay)))
        if job.retry.backoff != 1:
            arguments.append(("retry_exponential_backoff", repr(job.retry.backoff)))
        arguments.append(("max_retry_delay", _timedelta_literal(job.retry.max_delay)))
    if job.timeout is not None:
        arguments.append(("execution_timeout", _timedelta_literal(job.timeout)))
    if job.overlap is not Overlap.ALLOW:
        arguments.append(("max_active_tis_per_dag", "1"))
    if job.run_if is not RunIf.ALL_SUCCESS:  # Airflow's trigger rules bear the same names
        arguments.append(("trigger_rule", _literal(job.run_if.value)))
    for key, names in (("outlets", job.produces), ("inlets", job.uses)):  # Airflow Assets
        if names:
            arguments.append((key, "[" + ", ".join(f"Asset({_literal(n)})" for n in names) + "]"))
    if job.user:
        arguments.append(("run_as_user", _literal(job.user)))
    for on in alerted_events(jobfile, job):
        if on in _CALLBACKS:
            arguments.append(
                (
                    _CALLBACKS[on],
                    f"apprise_alert({_literal(on.value)}, tags={_list_literal(job.alert_tags)})",
                )
            )
    if job.description:
        arguments.append(("doc", _literal(job.description)))
    return _call(variable, "BashOperator", arguments)


def _sensor(flow: _Flow, upstream: Job, variable: str, dag_of: dict[str, str]) -> str:
    cadence = upstream.cadence
    arguments = [
        ("task_id", _literal(_sensor_task_id(flow, upstream))),
        ("external_dag_id", _literal(dag_of[upstream.name])),
        ("external_task_id", _literal(upstream.name)),
        (
            "execution_date_fn",
            f"latest_tick({_literal(cadence.expression or '')}, {_literal(cadence.timezone.key)})",
        ),
        ("mode", '"reschedule"'),  # free the worker slot between checks
        ("poke_interval", str(SENSOR_POKE_INTERVAL)),
    ]
    return _call(variable, "ExternalTaskSensor", arguments)


def _sensor_task_id(flow: _Flow, upstream: Job) -> str:
    task_id = f"wait_for_{upstream.name}"
    while any(job.name == task_id for job in flow.jobs):
        task_id += "_run"
    return task_id


def _dependencies(flow: _Flow, names: dict[str, str]) -> str:
    lines = []
    members = {job.name for job in flow.jobs}
    for job in flow.jobs:
        upstreams = [names[u] for u in job.depends_on if u in members]
        upstreams += [names[_SENSOR + u.name] for u in flow.external.get(job.name, ())]
        if len(upstreams) == 1:
            lines.append(f"    {upstreams[0]} >> {names[job.name]}")
        elif upstreams:
            lines.append(f"    [{', '.join(upstreams)}] >> {names[job.name]}")
    return "\n".join(lines)


def _call(variable: str, function: str, arguments: list[tuple[str, str]]) -> str:
    return "\n".join([f"    {variable} = {function}(", *_arguments(arguments, indent=8), "    )"])


def _arguments(arguments: list[tuple[str, str]], indent: int) -> list[str]:
    return [f"{' ' * indent}{name}={value}," for name, value in arguments]


def _variable_names(flow: _Flow) -> dict[str, str]:
    """A Python name for each task (job names may hold '.' and '-'); sensors are keyed
    by _SENSOR + the upstream's name."""
    wanted = [(job.name, job.name) for job in flow.jobs]
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


def _verbatim(text: str) -> str:
    """`text` as a Jinja template that renders to exactly `text` (BashOperator templates
    its command, env and cwd; shell text like `${#list}` would otherwise be read as Jinja)."""
    if not any(marker in text for marker in _JINJA_MARKERS):
        return text
    if "endraw" not in text:
        return "{% raw %}" + text + "{% endraw %}"
    escaped = text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return '{{ "' + escaped + '" }}'


def _literal(text: str) -> str:
    """A Python string literal for `text`: triple-quoted when it spans lines and can be
    written that way plainly, otherwise in double quotes with escapes."""
    lines = text.split("\n")
    if (
        len(lines) > 1
        and '"""' not in text
        and not text.endswith('"')
        and all(line.isprintable() for line in lines)
    ):
        return '"""\\\n' + text.replace("\\", "\\\\") + '"""'
    literal = repr(text)
    if literal.startswith("'") and '"' not in text:
        literal = '"' + literal[1:-1].replace("\\'", "'") + '"'
    return literal


def _dict_literal(pairs: dict[str, str], indent: int, start: int) -> str:
    """A dict display of already-written keys and values, on one line when it fits in
    LINE_LENGTH after `start` columns, else one item per line as a formatter would put it;
    the key "**" unpacks its value."""
    items = [f"**{value}" if key == "**" else f"{key}: {value}" for key, value in pairs.items()]
    one_line = "{" + ", ".join(items) + "}"
    if start + len(one_line) + 1 <= LINE_LENGTH:
        return one_line
    inner = " " * (indent + 4)
    return "{\n" + "".join(f"{inner}{item},\n" for item in items) + " " * indent + "}"


def _list_literal(items: Iterable[str]) -> str:
    return "[" + ", ".join(_literal(item) for item in items) + "]"


def _in_largest_unit(duration: timedelta) -> tuple[float, str]:
    """(count, unit) in the largest of days, hours, minutes, seconds that divides exactly."""
    seconds = duration.total_seconds()
    for unit, size in (("days", 86400), ("hours", 3600), ("minutes", 60)):
        if seconds >= size and seconds % size == 0:
            return seconds // size, unit
    return seconds, "seconds"


def _timedelta_literal(duration: timedelta) -> str:
    count, unit = _in_largest_unit(duration)
    return f"timedelta({unit}={count:g})"


def _duration_words(duration: timedelta) -> str:
    count, unit = _in_largest_unit(duration)
    return f"{count:g} {unit.removesuffix('s') if count == 1 else unit}"


def write_dag_files(files: list[DagFile], out: Path, source: Path) -> tuple[list[Path], list[Path]]:
    """Write each file into `out` (created if needed), each atomically; an unchanged file is
    left untouched. Returns the paths written and the files an earlier export of `source`
    left in `out` that no flow produces any more (for the caller to mention, not delete)."""
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for dag_file in files:
        path = out / dag_file.filename
        if not path.exists() or path.read_text(encoding="utf-8") != dag_file.text:
            replace_whole(path, dag_file.text.encode(), mode=0o644)
        written.append(path)
    origin = _origin_line(source)
    stale = [
        path
        for path in sorted(out.glob("*.py"))
        if path not in written
        and origin in path.read_text(encoding="utf-8", errors="replace").split("\n")[:3]
    ]
    return written, stale


def _origin_line(source: Path) -> str:
    return f"# from {source.absolute()}. Edit the jobs file and export again rather than this file."
