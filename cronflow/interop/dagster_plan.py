"""The Dagster export's plan: which asset keys a job's runs materialise, which partitions a
cadence becomes, and everything Dagster does differently, said per job in the generated
file and by `export dagster`. Pure: no Dagster import (the generated code imports Dagster).

Every job becomes a (multi-)asset, also one that produces nothing (its key is
`jobs/NAME`): Dagster orders steps, retries them and backfills partitions only within the
asset graph, so a job outside it would break the chain from its upstreams to its
downstreams. A job's assets are one multi-asset: its command runs once for all of them.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from cronflow.decide import day_forms
from cronflow.decide.schedule import SEPARATOR, schedule_of
from cronflow.interop.airflow_flows import (
    AlertWords,
    Flow,
    airflow_cron,
    alert_differences,
    days_differ,
    dst_differs,
)
from cronflow.interop.calendar_exclusions import Exclusions
from cronflow.masking import looks_secret
from cronflow.model import CatchUp, Job, JobFile, Overlap, RunIf

JOB_KEY_PREFIX = "jobs"  # the asset key of a job that produces nothing: jobs/NAME
DAY_FORMAT = "%Y-%m-%d"  # a partition a day at most: its key is CRONFLOW_DATE
MINUTE_FORMAT = "%Y-%m-%d-%H:%M"  # Dagster's hourly format, for more than one tick a day
_NUMBER = re.compile(r"\d+\Z")
DEFAULT_MAX_CATCHUP = Job.__dataclass_fields__["max_catchup"].default


@dataclass(frozen=True, slots=True)
class Partitioning:
    """A cadence as Dagster time-window partitions: one partition per tick, its window
    starting at the tick, so the partition's start is cronflow's logical time."""

    kind: str  # "Daily", "Hourly", "Weekly", "Monthly" or "TimeWindow" (any other cron)
    cron: str
    zone: str
    fmt: str
    offsets: tuple[tuple[str, int], ...]  # minute_offset, hour_offset, day_offset

    def key_of(self, tick: datetime) -> str:
        """The partition key of a tick, as Dagster formats it in the zone."""
        from zoneinfo import ZoneInfo

        return tick.astimezone(ZoneInfo(self.zone)).strftime(self.fmt)


def partitioning(flow: Flow) -> tuple[Partitioning | None, str]:
    """The flow's partitions, or None and why not ("" when it has no schedule at all)."""
    cadence = flow.cadence
    expression = cadence.expression
    if expression is None:
        return None, ""
    if SEPARATOR in expression or day_forms.has_forms(expression):
        return None, (
            f'schedule "{expression}": not partitioned (Dagster partitions follow one plain '
            "cron expression); runs get CRONFLOW_DATE from their scheduled tick, and a "
            "backfill of a past date is a run launched with the tag cronflow/logical_time."
        )
    if cadence.day_and or days_differ(expression):
        return None, (
            f'schedule "{expression}": not partitioned; both day fields restrict it and '
            "Dagster's cron joins them with OR where cronflow (cron's rule, or day_rule = "
            '"and") needs both.'
        )
    zone = cadence.timezone.key
    minute, hour, day, month, weekday = expression.split(" ")
    fixed_time = bool(_NUMBER.match(minute) and _NUMBER.match(hour))
    offsets: tuple[tuple[str, int], ...] = ()
    if _NUMBER.match(minute):
        offsets = (("minute_offset", int(minute)),)
    if fixed_time:
        offsets += (("hour_offset", int(hour)),)
    shape = (day, month, weekday)
    if fixed_time and shape == ("*", "*", "*"):
        return Partitioning("Daily", expression, zone, DAY_FORMAT, offsets), ""
    if offsets and hour == "*" and shape == ("*", "*", "*"):
        return Partitioning("Hourly", expression, zone, MINUTE_FORMAT, offsets), ""
    if fixed_time and day == month == "*" and re.fullmatch(r"[0-6]", weekday):
        week = offsets + (("day_offset", int(weekday)),)
        return Partitioning("Weekly", expression, zone, DAY_FORMAT, week), ""
    if fixed_time and month == weekday == "*" and _NUMBER.match(day) and int(day) <= 28:
        month_offsets = offsets + (("day_offset", int(day)),)
        return Partitioning("Monthly", expression, zone, DAY_FORMAT, month_offsets), ""
    fmt = DAY_FORMAT if fixed_time else MINUTE_FORMAT
    return Partitioning("TimeWindow", expression, zone, fmt, ()), ""


def first_partition(flow: Flow, history_start: datetime | None, now: datetime) -> datetime:
    """Where the flow's partitions begin: its oldest recorded run, else the export's day, at
    the tick at or before (so every run cronflow recorded has its partition)."""
    start = min(history_start, now) if history_start else now
    tick = schedule_of(flow.cadence).latest_at_or_before(start)
    return tick or start


def asset_keys(job: Job) -> list[str]:
    """The asset keys (as "/"-joined paths) a run of `job` materialises."""
    return list(job.produces) or [f"{JOB_KEY_PREFIX}/{job.name}"]


def dagster_name(name: str, taken: set[str]) -> str:
    """A Dagster op, job or schedule name (letters, digits, '_') for a cronflow name, unique
    among `taken` (which it joins)."""
    base = re.sub(r"\W", "_", name, flags=re.ASCII) or "job"
    found, number = base, 2
    while found in taken:
        found, number = f"{base}_{number}", number + 1
    taken.add(found)
    return found


# ---- what carries over, and what does not exactly --------------------------------------------

# The jobs.toml keys the export carries over as cronflow means them (docs/interop.md says
# how); any other key a file uses is named in a warning.
MAPPED_KEYS = frozenset(
    {
        "command",
        "description",
        "schedule",
        "timezone",
        "cwd",
        "shell",
        "env",
        "env_file",
        "depends_on",
        "produces",
        "uses",
        "retries",
        "retry_delay",
        "retry_backoff",
        "retry_max_delay",
        "timeout",
        "kill_grace",
        "success_exit_codes",
        "no_retry_exit_codes",
        "pool",
        "alerts",
        "alert_on",
        "alert_tags",
        "external",
        "fresh_within",
    }
)


OVERLAP_SKIPPED = (
    'overlap = "skip" ({jobs}): the schedule skips a tick while a run of the flow is queued '
    "or going; cronflow skips a job's run while that job still runs, so a tick that "
    "overlaps only the last jobs of the previous run is skipped whole here."
)


def overlap_skipped(flow: Flow) -> bool:
    """Whether the flow's schedule skips a tick while a run of the flow has not ended: when
    every job of it says overlap = "skip" (cronflow's default)."""
    return all(job.overlap is Overlap.SKIP for job in flow.jobs)


# What Dagster does differently for a job, by the jobs it applies to ({jobs} lists them).
JOB_DIFFERENCES: tuple[tuple[Callable[[Job], bool], str], ...] = (
    (
        lambda job: job.overlap is not Overlap.ALLOW,
        'overlap = "{overlap}" ({jobs}): Dagster starts each scheduled run even while the '
        "last one runs. Limit the job's runs with a run queue tag concurrency limit on "
        '"cronflow/flow" in dagster.yaml.',
    ),
    (
        lambda job: job.run_if is not RunIf.ALL_SUCCESS,
        "run_if ({jobs}): Dagster runs a step only after all its upstream steps succeeded "
        "(all_success); other rules are not exported.",
    ),
    (
        lambda job: any(looks_secret(name) for name in job.env),
        "env ({jobs}): values whose names look secret are written into this file; move them "
        "to an env_file, which the generated code reads at each run instead.",
    ),
    (
        lambda job: job.user is not None or job.group is not None,
        "user, group ({jobs}): Dagster runs every command as the user its code server runs "
        "as; run that code location as the job's user, or give the command sudo -u.",
    ),
    (
        lambda job: bool(job.random_delay or job.random_offset),
        "random_delay, random_offset ({jobs}): Dagster starts a run at its tick.",
    ),
    (
        lambda job: job.at_boot,
        "@reboot ({jobs}): Dagster has no boot trigger; launch the job at boot from the host "
        "(`dagster job launch` in a systemd unit).",
    ),
    (
        lambda job: job.ping_url is not None,
        "ping_url, ping_protocol ({jobs}): Dagster does not ping monitors; these checks go late once "
        "Dagster replaces cronflow. Ping from the command, or alert from Dagster.",
    ),
    (
        lambda job: job.pause_after_failures is not None,
        "pause_after_failures ({jobs}): Dagster does not stop a schedule after failures.",
    ),
    (
        lambda job: job.max_runtime is not None or job.max_runtime_auto,
        "max_runtime ({jobs}): Dagster has no warning for a step that runs long (the run tag "
        "dagster/max_runtime stops a whole run instead); timeout is exported.",
    ),
    (
        lambda job: job.finish_by is not None,
        "finish_by ({jobs}): not exported. Put a deadline on the asset instead: "
        'FreshnessPolicy.cron(deadline_cron="M H * * *", lower_bound_delta=..., timezone=...).',
    ),
    (
        lambda job: job.pool is not None,
        "pool_slots, pool_priority, pool_timeout ({jobs}): a Dagster pool gives each step one slot and "
        "serves them in the order the run queue gives; pool_timeout has no equivalent.",
    ),
    (
        lambda job: not job.enabled,
        "enabled = false ({jobs}): its flow's schedule starts stopped when all its jobs are "
        "disabled; otherwise Dagster runs the asset with the others of its flow.",
    ),
)


def differences(
    jobfile: JobFile, flow: Flow, partition_note: str, excluded: Exclusions | None
) -> list[str]:
    """One sentence per thing Dagster will do differently from cronflow for this flow
    (`excluded`: its calendars as its partitions' exclusions, if they are)."""
    notes: list[str] = [partition_note] if partition_note else []

    def about(jobs: list[Job], text: str) -> None:
        if jobs:
            names = ", ".join(job.name for job in jobs)
            notes.append(text.format(jobs=names, overlap=jobs[0].overlap.value))

    cadence, root = flow.cadence, flow.jobs[0]
    if cadence.expression is not None:
        notes += _schedule_differences(flow, excluded)
        if root.catchup is not CatchUp.LATEST or root.max_catchup != DEFAULT_MAX_CATCHUP:
            notes.append(
                f'catchup = "{root.catchup.value}", max_catchup = {root.max_catchup}: '
                "Dagster's scheduler does not launch the ticks it missed while down; launch "
                'the missing partitions as a backfill ("Materialize missing" in the UI).'
            )
    for applies, text in JOB_DIFFERENCES:
        if "overlap" in text and overlap_skipped(flow):
            if len(flow.jobs) > 1:  # one job: what cronflow does
                about(flow.jobs, OVERLAP_SKIPPED)
        elif "overlap" in text:
            for mode in (Overlap.SKIP, Overlap.QUEUE):
                about([job for job in flow.jobs if job.overlap is mode], text)
        else:
            about([job for job in flow.jobs if applies(job)], text)
    external = sorted({up.name for ups in flow.external.values() for up in ups})
    if external:
        notes.append(
            f"upstreams on other schedules ({', '.join(external)}): a step waits for their "
            "partition of the newest tick at or before its own (as cronflow does) for at "
            "most a day (UPSTREAM_WAIT), holding its executor slot meanwhile."
        )
    notes += _asset_differences(jobfile, flow)
    notes += _alert_differences(jobfile, flow)
    if jobfile.blackouts:
        windows = ", ".join(window.describe() for window in jobfile.blackouts)
        notes.append(f"{windows}: not exported; Dagster starts runs at any time.")
    return notes


def _schedule_differences(flow: Flow, excluded: Exclusions | None) -> list[str]:
    cadence = flow.cadence
    expression = str(cadence.expression)
    notes = []
    spelled, said = airflow_cron(expression)
    if said:
        notes.append(said)
    if spelled is not None and dst_differs(expression, cadence.timezone):
        notes.append(
            f'DST: "{expression}" in {cadence.timezone.key} has ticks in a skipped or '
            "repeated hour; cronflow runs them as cronie does (`cronflow next` shows each), "
            "Dagster as its own cron does (a skipped time after the jump)."
        )
    if cadence.days is not None and excluded is not None:
        notes.append(excluded.note(cadence.days))
    elif cadence.days is not None:
        why = "a shift moves ticks to other days, which partitions cannot say"
        if cadence.days.shift is None:
            why = "the flow has no partitions, or its calendars refuse too many ticks to list"
        notes.append(
            f"skip_on, run_on, shift ({cadence.days.describe()}): not exported ({why}); the "
            "schedule runs on every day the cron expression names, holidays included. Skip "
            "them in the schedule function (the `holidays` package)."
        )
    return notes


def _asset_differences(jobfile: JobFile, flow: Flow) -> list[str]:
    members = {job.name for job in flow.jobs}
    mine = [asset for asset in jobfile.assets.values() if asset.producer in members]
    notes = []
    if mine:
        notes.append(
            "fresh_within: Dagster's freshness policy counts from when the asset was last "
            "materialised; cronflow counts from the logical time of its producer's newest "
            "success, so a backfill of an old date makes it fresh only in Dagster."
        )
    late = [asset.name for asset in mine if asset.deadline is not None]
    if late:
        notes.append(
            f"deadline ({', '.join(late)}): not exported; Dagster predicts no lateness from "
            "the graph. A FreshnessPolicy.cron with the deadline says it once it has passed."
        )
    return notes


DAGSTER_ALERTS = AlertWords(
    unsent="the export sends failure, retry and success alerts only (from the step); "
    "these are not sent.",
    every_failure="the step alerts for every run that fails for good",
    urls="anyone who reads the code location reads them; prefer [alerts] config = an "
    "apprise config file kept where Dagster runs.",
)


def _alert_differences(jobfile: JobFile, flow: Flow) -> list[str]:
    notes = alert_differences(jobfile, flow, DAGSTER_ALERTS)
    streak = [job.name for job in flow.jobs if job.alerts and job.alert_after_failures > 1]
    if notes and streak:
        notes.append(
            f"alert_after_failures ({', '.join(streak)}): not exported; the first failure alerts."
        )
    return notes
