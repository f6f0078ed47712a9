"""The export's plan: how a jobs file's jobs group into Airflow DAGs (one per cadence, run
together; other-cadence upstreams waited for by sensors), and everything that does not carry
over exactly, said in the generated file and by `export airflow`."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from cronflow.decide import dag, day_forms
from cronflow.decide.schedule import (
    SEPARATOR,
    compile_schedule,
    days_or,
    schedule_of,
)
from cronflow.decide.wall_times import offset_change
from cronflow.interop.calendar_exclusions import RefusedDays
from cronflow.interop.python_source import duration_words, list_literal, literal
from cronflow.model import AlertEvent, AlertSettings, Cadence, CatchUp, Job, JobFile, Overlap, RunIf
from cronflow.tell.alerts import alerted_events

# Callbacks Airflow offers for cronflow's alert events; the others have no equivalent.
CALLBACKS = {
    AlertEvent.FAILURE: "on_failure_callback",
    AlertEvent.RETRY: "on_retry_callback",
    AlertEvent.SUCCESS: "on_success_callback",
}


@dataclass(frozen=True, slots=True)
class Flow:
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


def start_of_flow(flow: Flow, now: datetime, decided: dict[str, datetime]) -> datetime | None:
    """Where a catching-up DAG starts (Airflow requires a start_date for catchup=True)."""
    root = flow.jobs[0]
    if flow.cadence.expression is None or root.catchup is not CatchUp.ALL:
        return None
    if root.name in decided:
        schedule = schedule_of(flow.cadence)
        return schedule.next_after(decided[root.name]) or decided[root.name]
    return now.astimezone(UTC).replace(second=0, microsecond=0)


def flows(jobfile: JobFile, prefix: str) -> list[Flow]:
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
            Flow(
                dag_id=prefix + ordered[0].name,
                jobs=ordered,
                external={name: ups for name, ups in external.items() if ups},
            )
        )
    return flows


# What Airflow does differently for a job, by the jobs it applies to ({jobs} lists them).
JOB_DIFFERENCES: tuple[tuple[Callable[[Job], bool], str], ...] = (
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
    (
        lambda job: job.alert_after_failures > 1,
        "alert_after_failures ({jobs}): Airflow's on_failure_callback is told of every "
        "failed run; count the failures in a row in the callback to alert as cronflow does.",
    ),
    (
        lambda job: job.pause_after_failures is not None,
        "pause_after_failures ({jobs}): Airflow does not pause a DAG after failures by itself "
        "(max_consecutive_failed_dag_runs pauses a whole DAG, on Airflow 2.9 and later).",
    ),
    (
        lambda job: job.max_runtime is not None or job.max_runtime_auto,
        "max_runtime ({jobs}): Airflow 3 has no warning for a task that runs long (SLAs "
        "went in 3.0); execution_timeout, from timeout, only kills. Nothing learns a usual "
        "duration there.",
    ),
    (
        lambda job: job.finish_by is not None,
        "finish_by ({jobs}): not exported. Airflow 3.1's Deadline Alerts (experimental) say "
        "when a whole DAG run is late: a DeadlineAlert on the DAG, reference "
        "DAGRUN_LOGICAL_DATE, with the interval and a notifier.",
    ),
)


def differences(jobfile: JobFile, flow: Flow, refused: RefusedDays | None = None) -> list[str]:
    """One sentence per thing Airflow will do differently from cronflow for this flow
    (`refused`: the days its calendars refuse, when the DAG skips them)."""
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
        if dst_differs(flow.cadence.expression, flow.cadence.timezone):
            notes.append(
                f'DST: "{flow.cadence.expression}" in {flow.cadence.timezone.key} has '
                "ticks in a skipped or repeated hour. cronflow runs them as cronie does "
                "(`cronflow next` shows each); Airflow runs a skipped time after the "
                "jump by the gap's length and a repeated time once, on its second pass."
            )
        _, spelled = airflow_cron(flow.cadence.expression)
        if spelled:
            notes.append(spelled)
        if flow.cadence.day_and and any(
            days_or(part) for part in flow.cadence.expression.split(SEPARATOR)
        ):
            notes.append(
                f'day_rule = "and": "{flow.cadence.expression}" needs both day fields to match; '
                "Airflow (croniter) runs when either does, on more days."
            )
        elif days_differ(flow.cadence.expression):
            notes.append(
                f'day fields: "{flow.cadence.expression}" combines day-of-month and '
                "day-of-week with AND, as cron does when one of them starts with `*`; "
                "Airflow (croniter) combines them with OR and runs on more days."
            )
        if flow.cadence.days is not None and refused is not None:
            notes.append(refused.note(flow.cadence.days.describe()))
        elif flow.cadence.days is not None:
            notes.append(
                f"calendars ({flow.cadence.days.describe()}): not exported (a shift moves "
                "ticks to other days); Airflow's cron timetable runs on every day the "
                "expression names, holidays included. Move them in a custom Timetable."
            )
    about(
        [job for job in flow.jobs if job.pool is not None],
        "pools ({jobs}): an Airflow pool queues its tasks by priority_weight first, then "
        "by logical date; cronflow's line goes by logical time first, then pool_priority. "
        "pool_timeout has no equivalent.",
    )
    if jobfile.blackouts:
        windows = ", ".join(window.describe() for window in jobfile.blackouts)
        notes.append(f"{windows}: not exported; Airflow starts tasks at any time.")
    for applies, text in JOB_DIFFERENCES:
        about([job for job in flow.jobs if applies(job)], text)
    about(
        [j for j in flow.jobs if j.run_if is not RunIf.ALL_SUCCESS and flow.external.get(j.name)],
        "run_if ({jobs}): an upstream on another schedule is waited for by an "
        "ExternalTaskSensor, which lets the task start only after that upstream succeeded.",
    )
    deadlines = [
        name
        for name, asset in jobfile.assets.items()
        if asset.deadline is not None and asset.producer in {job.name for job in flow.jobs}
    ]
    if deadlines:
        notes.append(
            f"deadline ({', '.join(deadlines)}): not exported; Airflow predicts no lateness "
            "from the graph. A Deadline Alert on the DAG (Airflow 3.1, experimental) says it "
            "once the time has passed."
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
    notes.extend(alert_differences(jobfile, flow, AIRFLOW_ALERTS))
    return notes


# The generated files' way to the alert targets of a job (both exports send alerts with it).
APPRISE_TARGETS = '''
def apprise_targets(apprise, tags: list[str]):
    """The apprise targets of an alert about a job with `tags`: every ALERT_URLS one, and
    those of ALERT_CONFIG that carry one of its tags (all of them for a job without)."""
    targets = apprise.Apprise()
    for url in ALERT_URLS:
        targets.add(url)
    if ALERT_CONFIG:
        from_file = apprise.Apprise()
        config = apprise.AppriseConfig()
        config.add(ALERT_CONFIG)
        from_file.add(config)
        for service in from_file.find(tag=tags or "all"):
            targets.add(service)
    return targets
'''.strip("\n")


def alert_constants(settings: AlertSettings) -> list[str]:
    """The lines of a generated file that tell its apprise sender where alerts go (both
    exports send them as cronflow does; see CALLBACKS)."""
    return [
        f"ALERT_URLS = {list_literal(settings.urls)}",
        f"ALERT_CONFIG = {literal(str(settings.config)) if settings.config else None}",
        f"ALERT_TIMEOUT = {settings.timeout.total_seconds():g}  # seconds per delivery",
    ]


@dataclass(frozen=True, slots=True)
class AlertWords:
    """What an export says of the alerts it sends differently from cronflow."""

    unsent: str  # of the events it cannot send
    every_failure: str  # who alerts on every failed run (cronflow: once per failing streak)
    urls: str  # where the alert URLs written into the file can be read


AIRFLOW_ALERTS = AlertWords(
    unsent="Airflow has no callback for these; they are not sent.",
    every_failure="Airflow calls on_failure_callback for every failed run",
    urls="Airflow shows DAG source in its UI; prefer [alerts] config = an apprise config "
    "file kept on the workers.",
)


def alert_differences(jobfile: JobFile, flow: Flow, words: AlertWords) -> list[str]:
    settings = jobfile.alerts
    alerted = [job for job in flow.jobs if alerted_events(jobfile, job)]
    if not alerted:
        return []
    notes = []
    untranslated = sorted(
        {on.value for job in alerted for on in alerted_events(jobfile, job) if on not in CALLBACKS}
    )
    if untranslated:
        notes.append(f"alerts on {', '.join(untranslated)}: {words.unsent}")
    if any(AlertEvent.FAILURE in alerted_events(jobfile, job) for job in alerted):
        streak = (
            "once per failing streak"
            if settings.repeat is None
            else (f"once per failing streak and every {duration_words(settings.repeat)}")
        )
        notes.append(f"failure alerts: {words.every_failure}; cronflow alerts {streak}.")
    if settings.urls:
        notes.append(f"alert URLs are written into this file with their secrets, and {words.urls}")
    return notes


def airflow_cron(expression: str) -> tuple[str | None, str]:
    """The expression as Airflow's cron (croniter) reads it as cronflow does, or None when it
    cannot; and what the export must say about it ("" when nothing). `5L` becomes croniter's
    `L5`; `LW` and `L-n` have no croniter spelling; croniter moves `29W`-`31W` to the month's
    last weekday in a month without that day, where cronflow (Quartz) skips the month."""
    if SEPARATOR in expression:  # several schedules: each spelled, said once
        spelled = [airflow_cron(part) for part in expression.split(SEPARATOR)]
        if any(cron is None for cron, _ in spelled):
            return None, next(said for cron, said in spelled if cron is None)
        said = " ".join(said for _, said in spelled if said)
        return SEPARATOR.join(str(cron) for cron, _ in spelled), said
    if not day_forms.has_forms(expression):
        return expression, ""
    minute, hour, dom, month, dow = expression.split(" ")
    cannot = [item for item in dom.split(",") if item.upper() == "LW" or item.upper()[:2] == "L-"]
    if cannot:
        return None, (
            f'schedule "{expression}": Airflow\'s cron (croniter) has no {", ".join(cannot)}; '
            "the DAG is exported with no schedule: trigger it, or give it a timetable of "
            "your own."
        )
    dow = ",".join(
        f"L{item[:-1]}" if re.fullmatch(r"[0-7a-z]+l", item.lower()) else item
        for item in dow.split(",")
    )
    late = [
        item for item in dom.split(",") if re.fullmatch(r"\d+[wW]", item) and int(item[:-1]) > 28
    ]
    said = (
        f'schedule "{expression}": in a month without day {", ".join(late)[:-1]}, croniter '
        "runs on its last weekday, where cronflow skips the month."
        if late
        else ""
    )
    return " ".join((minute, hour, dom, month, dow)), said


def days_differ(expression: str) -> bool:
    return any(_days_differ(part) for part in expression.split(SEPARATOR))


def _days_differ(expression: str) -> bool:
    """True when cron ANDs two restricted day fields (one starts with `*`) and croniter,
    which Airflow uses, ORs them."""
    _, _, day, _, weekday = expression.split(" ")
    return "*" not in (day, weekday) and not days_or(expression)


def dst_differs(expression: str, zone: ZoneInfo) -> bool:
    """True when some tick of this schedule lands in a DST change of its zone.

    cronflow and Airflow agree when the hour field is `*` (both keep the real cadence); for
    any other schedule, a tick inside a skipped or repeated hour is placed differently.
    """
    if all(part.split(" ")[1] == "*" for part in expression.split(SEPARATOR)):
        return False
    schedule = compile_schedule(expression, zone)
    start = datetime(2026, 1, 1, tzinfo=UTC)  # any two years show a zone's yearly rules
    for change in offset_changes(zone, start, start + timedelta(days=731)):
        window = schedule.ticks(change - timedelta(hours=26), change + timedelta(hours=26))
        if any(schedule.dst_note(tick) for tick in window):
            return True
    return False


def offset_changes(zone: ZoneInfo, start: datetime, end: datetime) -> list[datetime]:
    """The instants in [start, end) where the zone's UTC offset changes, to the second."""
    changes = []
    day = start
    while day < end:
        following = day + timedelta(days=1)
        if day.astimezone(zone).utcoffset() != following.astimezone(zone).utcoffset():
            changes.append(offset_change(zone, day, following))
        day = following
    return changes
