"""Turn a jobs file into a Dagster code location: one `definitions.py` that `dagster dev -f`
and `dagster definitions validate -f` load. Each job is a multi-asset (its `produces`, or
`jobs/NAME` when it produces nothing; see interop/dagster_plan.py) whose command runs
through Dagster's subprocess client; each flow (jobs joined by dependencies on one
cadence, grouped as the Airflow export groups DAGs) is an asset job with a schedule in the
jobs' zone and, for a plain cron, time-window partitions whose start is the tick, so a
partition key is what CRONFLOW_DATE is. Whatever Dagster does differently is written per
flow at the top of the file and returned as warnings. Pure text: no Dagster import.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from cronflow import __version__
from cronflow.decide.freshness import fresh_within
from cronflow.decide.schedule import SEPARATOR
from cronflow.interop.airflow_flows import (
    APPRISE_TARGETS,
    CALLBACKS,
    Flow,
    airflow_cron,
    alert_constants,
    flows,
)
from cronflow.interop.calendar_exclusions import Exclusions, exclusions
from cronflow.interop.dagster_plan import (
    JOB_KEY_PREFIX,
    Partitioning,
    dagster_name,
    differences,
    first_partition,
    overlap_skipped,
    partitioning,
)
from cronflow.interop.dagster_runtime import MAIN, RUNTIME
from cronflow.interop.python_source import (
    LINE_LENGTH,
    argument_lines,
    comment,
    dict_literal,
    formatted_call,
    list_literal,
    literal,
    origin_line,
    sequence_literal,
    timedelta_literal,
)
from cronflow.model import Asset, Job, JobFile
from cronflow.tell.alerts import alerted_events

DEFINITIONS_FILE = "definitions.py"
HISTORY_FILE = "history.json"
# Names the generated module defines itself, which no generated variable may take.
_RESERVED = {
    "ALERT_CONFIG",
    "ALERT_TIMEOUT",
    "ALERT_URLS",
    "apprise_notify",
    "apprise_targets",
    "cronflow_env",
    "datetime",
    "defs",
    "dg",
    "dotenv_values",
    "EXITED",
    "flow_schedule",
    "HERE",
    "job_assets",
    "JobFailed",
    "JOBS",
    "json",
    "logical_time",
    "LOGICAL_TIME_TAG",
    "made_for",
    "Path",
    "re",
    "report_history",
    "retry_delay",
    "run_and_alert",
    "run_job",
    "send_alert",
    "socket",
    "still_going",
    "sys",
    "time",
    "TIMED_OUT",
    "timedelta",
    "UPSTREAM_POLL",
    "UNFINISHED",
    "UPSTREAM_WAIT",
    "wait_for_upstreams",
    "WAITS_FOR",
    "ZoneInfo",
}


@dataclass(frozen=True, slots=True)
class ExportedFlow:
    name: str  # the Dagster job's name
    jobs: tuple[str, ...]
    partitions: str  # "Daily", ..., or "none"
    when: str  # '"15 6 * * *" in UTC', or that it runs only when launched
    warnings: tuple[str, ...]
    variables: tuple[str, str | None]  # the job's and its schedule's (None: no schedule)


@dataclass(frozen=True, slots=True)
class DagsterExport:
    text: str  # definitions.py
    flows: tuple[ExportedFlow, ...]

    @property
    def warnings(self) -> list[str]:
        return [f"{flow.name}: {note}" for flow in self.flows for note in flow.warnings]


def export_dagster(
    jobfile: JobFile,
    *,
    now: datetime,
    oldest_run: Callable[[str], datetime | None],
    prefix: str = "",
) -> DagsterExport:
    """The code location for `jobfile`. `oldest_run(job)` is the oldest logical time
    cronflow recorded for the job: partitions start there (or at `now`), so every run
    cronflow made has its partition for `--history` to mark."""
    planned = flows(jobfile, prefix)
    taken = set(_RESERVED)  # Python variables (a job's is also its op's name)
    variables = {job.name: dagster_name(job.name, taken) for job in jobfile.jobs.values()}
    dagster_names = set(variables.values())  # op and job names share one namespace
    parts, exported = [], []
    partitions_of: dict[str, str] = {}  # job -> its flow's partitions variable ("None")
    policies = {name: _freshness(jobfile, asset, now) for name, asset in jobfile.assets.items()}
    for flow in planned:
        partitions, note = partitioning(flow)
        oldest = [at for at in map(oldest_run, (job.name for job in flow.jobs)) if at]
        start = first_partition(flow, min(oldest, default=None), now) if partitions else None
        excluded = None
        if partitions is not None and start is not None:
            excluded = exclusions(flow.cadence, partitions.cron, start, now)
        flow_name = dagster_name(f"{flow.dag_id}_flow", dagster_names)
        warnings = differences(jobfile, flow, note, excluded)
        block, names = _flow_block(
            jobfile, flow, flow_name, variables, (partitions, start, excluded), policies, taken
        )
        parts.append(block)
        partitions_of.update({job.name: names[2] for job in flow.jobs})
        exported.append(
            ExportedFlow(
                name=flow_name,
                jobs=tuple(job.name for job in flow.jobs),
                partitions=partitions.kind if partitions else "none",
                when=_when(flow),
                warnings=tuple(warnings),
                variables=names[:2],
            )
        )
    text = "\n\n\n".join(
        [
            _header(jobfile, exported) + "\n\n" + _IMPORTS + "\n\n" + _jobs_table(jobfile),
            RUNTIME,
            APPRISE_TARGETS,
            *parts,
            _waits_for(jobfile, planned, partitions_of),
            _definitions(jobfile, variables, exported, policies),
            MAIN,
        ]
    )
    return DagsterExport(text=text + "\n", flows=tuple(exported))


def history(
    jobfile: JobFile, prefix: str, successes: Callable[[str], list[datetime]]
) -> dict[str, dict[str, Any]]:
    """Per asset: its key, its producer, the partitions cronflow produced (for a
    partitioned flow) and the logical time of its newest success; for `report_history`."""
    assets: dict[str, dict[str, Any]] = {}
    for flow in flows(jobfile, prefix):
        partitions, _ = partitioning(flow)
        for job in flow.jobs:
            made = successes(job.name)
            if not made:
                continue
            keys = sorted({partitions.key_of(at) for at in made}) if partitions else []
            for name, key in _products(job):
                last = max(made).astimezone(job.timezone).isoformat()
                assets[name] = {"key": key, "producer": job.name, "partitions": keys, "last": last}
    return assets


def history_text(jobfile: JobFile, assets: dict[str, dict[str, Any]]) -> str:
    """history.json, as `report_history` in the generated file reads it."""
    data = {"v": 1, "jobs_file": str(jobfile.path.absolute()), "assets": assets}
    return json.dumps(data, indent=2, ensure_ascii=False) + "\n"


# ---- the file's parts ------------------------------------------------------------------------

_IMPORTS = """\
import json
import re
import socket
import sys
import time
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import dagster as dg
from dotenv import dotenv_values"""


def _header(jobfile: JobFile, exported: list[ExportedFlow]) -> str:
    lines = [
        f"# Dagster code location generated by `cronflow export dagster` (cronflow {__version__})",
        origin_line(jobfile.path),
        "#",
        "# Load it: dagster dev -f definitions.py  (check it: dagster definitions validate -f ...)",
        "# Mark what cronflow already made (after --history): python definitions.py report-history",
    ]
    if any(alerted_events(jobfile, job) for job in jobfile.jobs.values()):
        lines.append(
            "# Its steps send alerts through apprise: pip install 'apprise>=2.3' there too."
        )
    pools = sorted({job.pool.pool for job in jobfile.jobs.values() if job.pool is not None})
    if pools:
        lines += ["#", "# Create its pools first (cronflow's [pools] tables):"]
        for name in pools:
            lines.append(f"#   dagster instance concurrency set {name} {jobfile.pools[name].slots}")
    for flow in exported:
        partitions = (
            f"{flow.partitions} partitions" if flow.partitions != "none" else "no partitions"
        )
        said = f"Flow {flow.name}: {' -> '.join(flow.jobs)}; runs {flow.when}, {partitions}."
        lines += ["#", *comment(said)]
        if flow.warnings:
            lines.append("# Not translated exactly (the export printed these as warnings too):")
            for warning in flow.warnings:
                lines += comment(warning, bullet=True)
    return "\n".join(lines)


def _when(flow: Flow) -> str:
    cadence = flow.cadence
    if cadence.expression is None or airflow_cron(cadence.expression)[0] is None:
        return "only when launched (no schedule Dagster can run)"
    return f'"{cadence.expression}" in {cadence.timezone.key}'


def _jobs_table(jobfile: JobFile) -> str:
    """JOBS: what each job runs, as cronflow would run it (env_file paths, not values), and
    where its alerts go."""
    entries = {literal(job.name): _job_entry(jobfile, job) for job in jobfile.jobs.values()}
    body = "".join(f"    {name}: {entry},\n" for name, entry in entries.items())
    return (
        "# What each cronflow job runs and how: its command under its shell in its cwd, its\n"
        "# env on top of its env_files (read at each run, never copied here), its timeout and\n"
        "# kill_grace, the exit statuses that count as success or fail at once, its retries,\n"
        "# the outcomes it alerts on (through apprise, to the targets below) and its tags.\n"
        "JOBS = {\n" + body + "}\n" + "\n".join(alert_constants(jobfile.alerts))
    )


def _job_entry(jobfile: JobFile, job: Job) -> str:
    retry = job.retry
    alerted = [on.value for on in alerted_events(jobfile, job) if on in CALLBACKS]
    values = {
        '"command"': literal(job.command),
        '"shell"': literal(job.shell),
        '"cwd"': literal(str(job.cwd)),
        '"env"': dict_literal(
            {literal(key): literal(value) for key, value in job.env.items()},
            indent=8,
            start=8 + len('"env": '),
        ),
        '"env_files"': sequence_literal(
            [literal(str(path)) for path in job.env_files],
            indent=8,
            start=8 + len('"env_files": '),
        ),
        '"zone"': literal(job.timezone.key),
        '"timeout"': f"{job.timeout.total_seconds():g}" if job.timeout else "None",
        '"kill_grace"': f"{job.kill_grace.total_seconds():g}",
        '"success_exit_codes"': str(sorted(job.success_exit_codes)),
        '"no_retry_exit_codes"': str(sorted(job.no_retry_exit_codes)),
        '"retry"': dict_literal(
            {
                '"attempts"': str(retry.attempts),
                '"delay"': f"{retry.delay.total_seconds():g}",
                '"backoff"': f"{retry.backoff:g}",
                '"max_delay"': f"{retry.max_delay.total_seconds():g}",
            },
            indent=8,
            start=8 + len('"retry": '),
        ),
        '"alert_on"': list_literal(alerted),
        '"alert_tags"': list_literal(job.alert_tags),
    }
    return dict_literal(values, indent=4, start=LINE_LENGTH)  # one item a line


def _flow_block(
    jobfile: JobFile,
    flow: Flow,
    name: str,
    variables: dict[str, str],
    partitioned: tuple[Partitioning | None, datetime | None, Exclusions | None],
    policies: dict[str, str | None],
    taken: set[str],
) -> tuple[str, tuple[str, str | None, str]]:
    """The flow's partitions, assets, asset job and schedule; and the variables of the job,
    the schedule (None: none) and the partitions ("None": none)."""
    blocks = [f"# ---- flow {name}: {' -> '.join(job.name for job in flow.jobs)}"]
    partitions, start, excluded = partitioned
    partitions_var = "None"
    if partitions is not None and start is not None:
        partitions_var = dagster_name(f"{name}_partitions", taken)
        blocks.append(f"{partitions_var} = {_partitions(partitions, start, excluded)}")
    for job in flow.jobs:
        specs = [_spec(jobfile, job, key, name, policies) for _, key in _products(job)]
        blocks.append(_job_assets(job, specs, variables[job.name], partitions_var))
    job_var = dagster_name(name, taken)
    members = [variables[job.name] for job in flow.jobs]
    arguments = [
        ("name", literal(name)),
        ("selection", sequence_literal(members, indent=4, start=4 + len("selection="))),
        ("partitions_def", partitions_var),
        ("tags", dict_literal({'"cronflow/flow"': literal(name)}, 4, 4 + len("tags="))),
    ]
    blocks.append(_call(job_var, "dg.define_asset_job", arguments))
    schedule = _schedule(flow, job_var, partitions_var, taken)
    if schedule:
        blocks.append(schedule[0])
    return "\n\n".join(blocks), (job_var, schedule[1] if schedule else None, partitions_var)


def _partitions(partitions: Partitioning, start: datetime, excluded: Exclusions | None) -> str:
    named = partitions.kind != "TimeWindow"  # Daily, Hourly...: start_date, in their format
    arguments = [("start_date" if named else "start", literal(partitions.key_of(start)))]
    if not named:
        arguments += [("fmt", literal(partitions.fmt)), ("cron_schedule", literal(partitions.cron))]
    arguments += [(name, str(value)) for name, value in partitions.offsets]
    arguments += [
        ("timezone", literal(partitions.zone)),
        ("end_offset", "1"),  # the partition whose window starts at the newest tick
    ]
    if excluded is not None:  # the ticks the calendars refuse
        zone = ZoneInfo(partitions.zone)
        items = [literal(excluded.cron)] if excluded.cron else []
        items += [
            f"datetime.fromisoformat({literal(tick.astimezone(zone).isoformat())})"
            for tick in excluded.ticks
        ]
        arguments.append(("exclusions", sequence_literal(items, 4, 4 + len("exclusions="))))
    return f"dg.{partitions.kind}PartitionsDefinition(\n" + _arguments(arguments, 4) + ")"


def _job_assets(job: Job, specs: list[str], variable: str, partitions_var: str) -> str:
    arguments = [
        ("name", literal(variable)),
        ("specs", "[\n" + "".join(f"        {spec},\n" for spec in specs) + "    ]"),
    ]
    if partitions_var != "None":
        arguments.append(("partitions_def", partitions_var))
    if job.retry.attempts > 1:
        arguments.append(("retry_policy", _retry_policy(job, indent=4)))
    if job.pool is not None:
        arguments.append(("pool", literal(job.pool.pool)))
    if job.description:
        arguments.append(("description", literal(job.description)))
    call = f"job_assets(\n    {literal(job.name)},\n" + _arguments(arguments, 4) + ")"
    return f"{variable} = {call}"


def _spec(
    jobfile: JobFile, job: Job, key: list[str], group: str, policies: dict[str, str | None]
) -> str:
    arguments = [("key", list_literal(key))]
    deps = [list_literal(dep) for dep in _deps(jobfile, job)]
    if deps:
        arguments.append(("deps", sequence_literal(deps, indent=12, start=12 + len("deps="))))
    asset = jobfile.assets.get(key[0]) if key[0] != JOB_KEY_PREFIX or len(key) == 1 else None
    if asset is not None and asset.description:
        arguments.append(("description", literal(asset.description)))
    arguments.append(("group_name", literal(group)))
    if asset is not None:
        policy = policies.get(asset.name)
        if policy:
            arguments.append(("freshness_policy", policy))
    metadata = {'"cronflow job"': literal(job.name)}
    arguments.append(("metadata", dict_literal(metadata, 12, 12 + len("metadata="))))
    return _asset_spec(arguments)


def _asset_spec(arguments: list[tuple[str, str]]) -> str:
    """An AssetSpec as an item of a list at indent 8 (its arguments at 12)."""
    inner = "".join(f"            {name}={value},\n" for name, value in arguments)
    return "dg.AssetSpec(\n" + inner + "        )"


def _deps(jobfile: JobFile, job: Job) -> list[list[str]]:
    """The keys a job's assets depend on: what it uses of each upstream's products (all of
    them when it names none), and the external assets it uses."""
    found: list[list[str]] = []
    for upstream_name in job.depends_on:
        upstream = jobfile.jobs[upstream_name]
        products = [key for name, key in _products(upstream) if name in job.uses]
        found += products or [key for _, key in _products(upstream)]
    for name in job.uses:
        asset = jobfile.assets.get(name)
        if asset is not None and asset.producer is None:
            found.append([name])
    unique: list[list[str]] = []
    for key in found:
        if key not in unique:
            unique.append(key)
    return unique


def _products(job: Job) -> list[tuple[str, list[str]]]:
    """(name, asset key path) of what a run of the job materialises."""
    if job.produces:
        return [(name, [name]) for name in job.produces]
    return [(f"{JOB_KEY_PREFIX}/{job.name}", [JOB_KEY_PREFIX, job.name])]


def _freshness(jobfile: JobFile, asset: Asset, now: datetime) -> str | None:
    """fresh_within (given, or cronflow's default of two producer intervals after `now`) as
    Dagster's time-window freshness policy, written as an AssetSpec argument."""
    allowed = fresh_within(jobfile, asset, now)
    if allowed is None or allowed.total_seconds() < 60:  # Dagster's least fail_window
        return None
    window = f"fail_window={timedelta_literal(allowed)}"
    return formatted_call("dg.FreshnessPolicy.time_window", [window], "freshness_policy=", 12)


def _retry_policy(job: Job, indent: int) -> str:
    """Declared for Dagster's UI and for errors before the command runs; a failed command
    asks for its retry itself, after cronflow's own delay (see run_job)."""
    retry = job.retry
    arguments = [
        f"max_retries={retry.attempts - 1}",
        f"delay={retry.delay.total_seconds():g}",
    ]
    if retry.backoff != 1:
        arguments.append("backoff=dg.Backoff.EXPONENTIAL")
    return formatted_call("dg.RetryPolicy", arguments, "retry_policy=", indent)


def _schedule(
    flow: Flow, job_var: str, partitions_var: str, taken: set[str]
) -> tuple[str, str] | None:
    """The flow's schedule and its variable (None: the flow has no cron to run by)."""
    expression = flow.cadence.expression
    if expression is None:
        return None
    spelled, _ = airflow_cron(expression)
    if spelled is None:
        return None
    crons = spelled.split(SEPARATOR)
    cron = literal(crons[0]) if len(crons) == 1 else list_literal(crons)
    running = any(job.enabled for job in flow.jobs)
    variable = dagster_name(f"{job_var}_schedule", taken)
    arguments = [
        job_var,
        cron,
        literal(flow.cadence.timezone.key),
        partitions_var,
        f"running={running}",
        f"skip_while_running={overlap_skipped(flow)}",
    ]
    text = f"{variable} = flow_schedule(\n" + "".join(f"    {a},\n" for a in arguments) + ")"
    return text, variable


def _waits_for(jobfile: JobFile, planned: list[Flow], partitions_of: dict[str, str]) -> str:
    """WAITS_FOR: per job, its upstreams on other schedules (an asset each of them makes,
    and their partitions), which its step waits for (see wait_for_upstreams)."""
    entries = []
    for flow in planned:
        for name, upstreams in flow.external.items():
            pairs = [
                f"({list_literal(_products(upstream)[0][1])}, {partitions_of[upstream.name]})"
                for upstream in upstreams
            ]
            items = sequence_literal(pairs, indent=4, start=4 + len(literal(name)) + 2)
            entries.append(f"    {literal(name)}: {items},\n")
    body = "{\n" + "".join(entries) + "}" if entries else "{}"
    return (
        "# cronflow runs a job only after its upstreams on other schedules succeeded for\n"
        "# their newest tick at or before its logical time; Dagster's schedules do not wait,\n"
        "# so the step does (wait_for_upstreams).\n"
        f"WAITS_FOR = {body}"
    )


def _definitions(
    jobfile: JobFile,
    variables: dict[str, str],
    exported: list[ExportedFlow],
    policies: dict[str, str | None],
) -> str:
    external = [asset for asset in jobfile.assets.values() if asset.producer is None]
    assets = [variables[name] for name in jobfile.jobs]
    specs = []
    for asset in external:
        arguments = [("key", list_literal([asset.name]))]
        if asset.description:
            arguments.append(("description", literal(asset.description)))
        policy = policies.get(asset.name)
        if policy:
            arguments.append(("freshness_policy", policy))
        specs.append(_asset_spec(arguments))
    jobs = sequence_literal([flow.variables[0] for flow in exported], 4, 4 + len("jobs="))
    schedules = sequence_literal(
        [str(flow.variables[1]) for flow in exported if flow.variables[1]],
        indent=4,
        start=4 + len("schedules="),
    )
    lines = [
        "# External assets (made outside cronflow) and everything above, in one location.",
        "defs = dg.Definitions(",
        "    assets=[",
        *[f"        {name}," for name in assets + specs],
        "    ],",
        f"    jobs={jobs},",
        f"    schedules={schedules},",
        "    executor=dg.multiprocess_executor.configured("
        + f'{{"max_concurrent": {jobfile.settings.max_parallel}}}),',
        ")",
    ]
    return "\n".join(lines)


def _arguments(arguments: list[tuple[str, str]], indent: int) -> str:
    return "".join(line + "\n" for line in argument_lines(arguments, indent))


def _call(variable: str, function: str, arguments: list[tuple[str, str]]) -> str:
    return f"{variable} = {function}(\n" + _arguments(arguments, 4) + ")"
