"""The part of the generated Dagster code location that is the same for every jobs file:
how a cronflow job's command runs inside a Dagster asset (with the CRONFLOW_* variables, the
env_files read at run time, the timeout, the exit-code rules and cronflow's retry delays),
the alerts through apprise, the factories for the assets and schedules, and the history
reporter. Text only: cronflow never imports Dagster."""

RUNTIME = '''
HERE = Path(__file__).resolve().parent
# A run's logical time when it has no partition: the tick, set by its schedule.
LOGICAL_TIME_TAG = "cronflow/logical_time"
TIMED_OUT = 124  # what coreutils `timeout` exits with when it stopped the command
UPSTREAM_WAIT = 24 * 3600  # seconds a step waits for an upstream on another schedule
UPSTREAM_POLL = 30  # seconds between two looks
# The states of a run that has not ended (overlap = "skip" waits for none of them).
UNFINISHED = [
    dg.DagsterRunStatus.QUEUED,
    dg.DagsterRunStatus.NOT_STARTED,
    dg.DagsterRunStatus.STARTING,
    dg.DagsterRunStatus.STARTED,
    dg.DagsterRunStatus.CANCELING,
]
# How Dagster's subprocess client says a command failed, and with which exit status.
EXITED = re.compile(r"failed with code (-?\\d+)")


def logical_time(context: dg.AssetExecutionContext, zone: str) -> datetime:
    """The run's logical time, in the job's zone: the partition's start (its tick), else
    the tick the schedule tagged the run with, else this minute."""
    tags = context.run.tags
    if context.has_partition_key:
        logical = context.partition_time_window.start
    elif LOGICAL_TIME_TAG in tags:
        logical = datetime.fromisoformat(tags[LOGICAL_TIME_TAG])
    else:
        logical = datetime.now(ZoneInfo(zone)).replace(second=0, microsecond=0)
    return logical.astimezone(ZoneInfo(zone))


def cronflow_env(
    context: dg.AssetExecutionContext, job: str, logical: datetime
) -> dict[str, str]:
    """The CRONFLOW_* variables cronflow gives a run for its logical time."""
    tags = context.run.tags
    if "dagster/schedule_name" in tags:
        kind = "scheduled"
    elif context.has_partition_key or LOGICAL_TIME_TAG in tags:
        kind = "backfill"  # a run for a chosen logical date, as `cronflow run --date`
    else:
        kind = "manual"
    return {
        "CRONFLOW_JOB": job,
        "CRONFLOW_LOGICAL_TIME": logical.isoformat(),
        "CRONFLOW_DATE": logical.date().isoformat(),
        "CRONFLOW_RUN_ID": context.run_id,
        "CRONFLOW_ATTEMPT": str(context.retry_number + 1),
        "CRONFLOW_RUN_KIND": kind,
    }


def wait_for_upstreams(
    context: dg.AssetExecutionContext, name: str, logical: datetime
) -> None:
    """Wait until each upstream on another schedule has made its partition for the newest
    tick at or before `logical` (what cronflow waits for; Dagster's schedules do not), at
    most UPSTREAM_WAIT seconds, then fail without running the command."""
    give_up = time.monotonic() + UPSTREAM_WAIT
    for key, partitions in WAITS_FOR.get(name, []):
        asset = dg.AssetKey(key)
        while not made_for(context.instance, asset, partitions, logical):
            left = give_up - time.monotonic()
            if left <= 0:
                raise dg.Failure(
                    f"{name}: its upstream {asset.to_user_string()} has not been made for "
                    f"{logical.isoformat()} (waited {UPSTREAM_WAIT:g}s)",
                    allow_retries=False,
                )
            context.log.info(f"{name} waits for {asset.to_user_string()}")
            time.sleep(min(UPSTREAM_POLL, left))


def made_for(instance, asset: dg.AssetKey, partitions, logical: datetime) -> bool:
    """Whether `asset` was made for its newest tick at or before `logical` (an asset
    without partitions: whether it was ever made)."""
    if partitions is None:
        return instance.get_latest_materialization_event(asset) is not None
    wanted = partitions.get_partition_key_for_timestamp(logical.timestamp())
    return wanted in instance.get_materialized_partitions(asset)


class JobFailed(Exception):
    """Why a try failed ("load exited 1"), as the cause of the RetryRequested after it."""


def retry_delay(job: dict, attempt: int) -> float:
    """Seconds before try `attempt` (2: the first retry), as cronflow waits: delay x
    backoff^(attempt - 2), at most max_delay."""
    retry = job["retry"]
    return min(retry["delay"] * retry["backoff"] ** (attempt - 2), retry["max_delay"])


def run_job(context: dg.AssetExecutionContext, name: str):
    """Run the job's command as cronflow would: SHELL -c COMMAND in its cwd, with the
    variables of its env_files (read now, never copied into this file), its env and
    CRONFLOW_*; stopped (the whole process group) after its timeout."""
    job = JOBS[name]
    env = {}
    for path in job["env_files"]:
        if not Path(path).is_file():
            raise dg.Failure(f"{name}: env_file {path} cannot be read")
        found = dotenv_values(path, interpolate=False)
        env.update({key: value or "" for key, value in found.items()})
    env.update(job["env"])
    logical = logical_time(context, job["zone"])
    env.update(cronflow_env(context, name, logical))
    wait_for_upstreams(context, name, logical)
    script = job["command"]
    if job["success_exit_codes"]:  # these exit statuses count as success, as 0 does
        codes = "|".join(str(code) for code in job["success_exit_codes"])
        script = f"({script}\\n)\\nstatus=$?\\ncase $status in {codes}) exit 0;; esac\\nexit $status"
    command = [job["shell"], "-c", script]
    if job["timeout"] is not None:
        grace = f"--kill-after={job['kill_grace']:g}s"
        command = ["timeout", grace, f"{job['timeout']:g}s", *command]
    try:
        done = dg.PipesSubprocessClient().run(
            context=context, command=command, cwd=job["cwd"], env=env
        )
    except Exception as error:
        found = EXITED.search(str(error))
        if found is None:
            raise
        code = int(found[1])
        said = f"{name} exited {code}"
        if job["timeout"] is not None and code == TIMED_OUT:
            said = f"{name} timed out after {job['timeout']:g}s"
        attempt, attempts = context.retry_number + 1, job["retry"]["attempts"]
        if code in job["no_retry_exit_codes"] or attempt >= attempts:
            raise dg.Failure(said, allow_retries=False) from None
        raise dg.RetryRequested(
            max_retries=attempts - 1, seconds_to_wait=retry_delay(job, attempt + 1)
        ) from JobFailed(said)
    return done.get_results()


def run_and_alert(context: dg.AssetExecutionContext, name: str):
    """run_job, then the job's alert for how the step ended: succeeded, failed with a try
    to come (retry), or failed for good (failure)."""
    try:
        results = run_job(context, name)
    except dg.RetryRequested as retrying:
        send_alert(context, name, "retry", str(retrying.__cause__ or ""))
        raise
    except Exception as error:
        retried = not isinstance(error, dg.Failure) or error.allow_retries
        tries_left = context.retry_number + 1 < JOBS[name]["retry"]["attempts"]
        on = "retry" if retried and tries_left else "failure"
        send_alert(context, name, on, str(error))
        raise
    send_alert(context, name, "success", "")
    return results


def send_alert(
    context: dg.AssetExecutionContext, name: str, on: str, error: str
) -> None:
    """cronflow's `on` alert about `name`, when its alert_on asks for it. Whatever becomes
    of it is logged; it never changes how the step ended."""
    if on not in JOBS[name]["alert_on"]:
        return
    try:
        sent = apprise_notify(context, name, on, error)
    except ImportError:
        needs = "pip install 'apprise>=2.3'"
        context.log.error(f"{name}: its {on} alert needs apprise ({needs})")
    except Exception as problem:
        context.log.error(f"{name}: its {on} alert could not be sent: {problem}")
    else:
        if not sent:
            context.log.warning(f"{name}: its {on} alert did not reach every target")


def apprise_notify(
    context: dg.AssetExecutionContext, name: str, on: str, error: str
) -> bool:
    """Send the alert through apprise (in Dagster's environment) to the job's targets, in
    cronflow's words; whether every target took it."""
    import apprise

    job = JOBS[name]
    logical = logical_time(context, job["zone"])
    attempt = context.retry_number + 1
    title, severity = {
        "failure": (f"{name} failed", "failure"),
        "retry": (f"{name} try {attempt} failed, retrying", "warning"),
        "success": (f"{name} succeeded", "success"),
    }[on]
    body = [
        f"**Job:** {name} (Dagster run {context.run_id})",
        f"**Logical time:** {logical.isoformat()}",
        f"**Attempt:** {attempt} of {job['retry']['attempts']}",
        f"**Host:** {socket.gethostname()}",
    ]
    if error:
        body.append(f"**Error:** {error}")
    return bool(
        apprise_targets(apprise, job["alert_tags"]).notify(
            title=f"cronflow: {title} ({logical.date()})",
            body="\\n".join(body),
            notify_type=severity,
            body_format=apprise.NotifyFormat.MARKDOWN,
            timeout=ALERT_TIMEOUT,
        )
    )


def job_assets(job: str, **options) -> dg.AssetsDefinition:
    """The multi-asset of one cronflow job: one run of its command materialises them all."""

    @dg.multi_asset(**options)
    def run(context: dg.AssetExecutionContext):
        return run_and_alert(context, job)

    return run


def flow_schedule(
    job,
    cron: str | list[str],
    zone: str,
    partitions: dg.TimeWindowPartitionsDefinition | None,
    running: bool,
    skip_while_running: bool,
) -> dg.ScheduleDefinition:
    """A run at each tick of the flow, for the partition that starts at the tick (cronflow
    runs a tick at the tick, where Dagster's partitioned schedules wait for its end); none
    at a tick the partitions exclude (a day the job's calendars skip), nor, with
    `skip_while_running` (overlap = "skip"), while a run of the flow is queued or going."""
    status = dg.DefaultScheduleStatus.STOPPED
    if running:
        status = dg.DefaultScheduleStatus.RUNNING

    @dg.schedule(
        name=f"{job.name}_schedule",
        cron_schedule=cron,
        execution_timezone=zone,
        job=job,
        default_status=status,
    )
    def at_each_tick(context: dg.ScheduleEvaluationContext):
        tick = context.scheduled_execution_time
        tags = {LOGICAL_TIME_TAG: tick.isoformat()}
        if skip_while_running and still_going(context.instance, job.name):
            return dg.SkipReason(f"{tick.isoformat()}: {job.name} is still going")
        if partitions is None:
            return dg.RunRequest(tags=tags)
        key = partitions.get_partition_key_for_timestamp(tick.timestamp())
        if partitions.time_window_for_partition_key(key).start != tick:
            return dg.SkipReason(f"{tick.isoformat()}: its calendars skip this day")
        return dg.RunRequest(partition_key=key, tags=tags)

    return at_each_tick


def still_going(instance: dg.DagsterInstance, job_name: str) -> bool:
    """Whether a run of the Dagster job is queued, starting, running or being cancelled."""
    going = dg.RunsFilter(job_name=job_name, statuses=UNFINISHED)
    return bool(instance.get_run_records(filters=going, limit=1))


def report_history(
    instance: dg.DagsterInstance, path: Path = HERE / "history.json"
) -> int:
    """Mark in Dagster what cronflow already made (`cronflow export dagster --history`
    wrote `path`): one materialisation per partition it produced, or its newest run's for
    an asset without partitions, so a backfill of the missing ones runs nothing twice.
    Partitions Dagster already has are left alone. Returns how many were reported."""
    reported = 0
    for name, made in json.loads(path.read_text(encoding="utf-8"))["assets"].items():
        key = dg.AssetKey(made["key"])
        wanted = made["partitions"] or [None]
        if made["partitions"]:
            wanted = sorted(set(wanted) - instance.get_materialized_partitions(key))
        elif instance.get_latest_materialization_event(key) is not None:
            wanted = []
        for partition in wanted:
            metadata = {"cronflow asset": name, "cronflow newest success": made["last"]}
            event = dg.AssetMaterialization(key, partition=partition, metadata=metadata)
            instance.report_runless_asset_event(event)
            reported += 1
    return reported
'''.strip("\n")

MAIN = """
if __name__ == "__main__":  # python definitions.py report-history
    if sys.argv[1:] != ["report-history"]:
        sys.exit(f"usage: {sys.argv[0]} report-history (reads history.json)")
    print(f"reported {report_history(dg.DagsterInstance.get())} materialisation(s)")
""".strip("\n")
