"""The commands that set cronflow up or move it: validate, init, systemd install,
import-crontab, alerts test, monitors sync."""

from __future__ import annotations

import errno
import sys
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from cronflow.cli.options import (
    JobsOption,
    Text,
    complete_job,
    load_jobs,
    own_command,
)
from cronflow.errors import ConfigError, Problem, UsageError, printable

# Some ten thousand lines: far more than any crontab holds, and translated in seconds.
MAX_CRONTAB_BYTES = 1024 * 1024


def validate(jobs: JobsOption = None) -> None:
    """Check a jobs file and list its jobs; exit 2 listing every problem if it is not valid.

    Example:  cronflow validate --jobs /etc/cronflow/jobs.toml
    """
    jobfile = load_jobs(jobs)
    if jobfile.alerts.has_targets:
        from cronflow.tell.apprise_sender import check_targets

        problems = check_targets(jobfile.alerts)
        if problems:
            raise ConfigError(
                jobfile.path,
                [
                    Problem(
                        problem=problem,
                        key="alerts",
                        fix="Fix it as the apprise wiki says for that "
                        "service: https://github.com/caronc/apprise/wiki",
                    )
                    for problem in problems
                ],
            )
    print(f"{jobfile.path}: {len(jobfile.jobs)} jobs, no problems.")
    for job in jobfile.jobs.values():
        when = (
            "@reboot (once per boot)"
            if job.at_boot
            else f"{job.schedule} ({job.timezone.key})"
            if job.schedule
            else f"after {', '.join(job.depends_on)}"
            if job.depends_on
            else "manual only"
        )
        days = f", {job.cadence.days.describe()}" if job.schedule and job.cadence.days else ""
        print(f"  {job.name}: {when}{days}")
    for window in jobfile.blackouts:
        print(f"  {window.describe()}: nothing starts inside it")
    for pool in jobfile.pools.values():
        users = [
            job.name for job in jobfile.jobs.values() if job.pool and job.pool.pool == pool.name
        ]
        print(f"  pool {pool.name}: {pool.slots} slot(s), for {', '.join(users) or 'no job'}")
    from cronflow.clock import SystemClock
    from cronflow.tell.overview import calendar_warnings

    for warning in calendar_warnings(jobfile, SystemClock().now()):
        print(f"cronflow: warning: {warning}", file=sys.stderr)


class Mode(StrEnum):
    daemon = "daemon"
    timer = "timer"


def systemd_install(
    jobs: JobsOption = None,
    user: Annotated[
        bool,
        typer.Option("--user", help="Units for `systemctl --user` (in ~/.config/systemd/user)."),
    ] = False,
    mode: Annotated[
        Mode,
        typer.Option(
            "--mode",
            help="daemon: `cronflow daemon` as a service; timer: `cronflow run` every "
            "minute from a timer.",
        ),
    ] = Mode.daemon,
    name: Annotated[
        str,
        typer.Option(
            "--name",
            metavar="NAME",
            help="Tell several jobs files on one host apart: units cronflow-NAME.*, "
            "state in cronflow-NAME.",
        ),
    ] = "",
    dry_run: Annotated[
        bool,
        typer.Option("--dry-run", help="Print the units and where they would go; write nothing."),
    ] = False,
    serve: Annotated[
        bool,
        typer.Option(
            "--serve", help="Also `cronflow serve` (read-only, 127.0.0.1:8080) as a service."
        ),
    ] = False,
) -> None:
    """Write systemd units that run this cronflow on this jobs file, and say how to enable them.

    Example:  sudo cronflow systemd install --jobs /etc/cronflow/jobs.toml
    """
    from cronflow.interop import systemd
    from cronflow.load import service_units

    if name and not systemd.NAME.fullmatch(name):
        raise UsageError(
            f'--name "{name}" cannot name a unit. Use up to 64 letters, digits, "_", "-" '
            'and ".", starting with a letter or digit.'
        )
    jobfile = load_jobs(jobs)  # never install a service for a jobs file that does not load
    settings = jobfile.settings
    files = systemd.units(
        mode=mode.value,
        user=user,
        command=own_command(),
        jobs=jobfile.path.absolute(),
        shutdown_grace=settings.shutdown_grace,
        name=name,
        state_dir=settings.state_dir if settings.state_dir_from == "state_dir" else None,
        serve=serve,
    )
    directory = service_units.unit_directory(user)
    if dry_run:
        for file_name, text in files.items():
            print(f"# {directory / file_name}\n{text}")
    else:
        try:
            for path in systemd.install(files, directory):
                print(f"wrote {path}")
        except OSError as error:
            raise UsageError(
                f"cannot write to {directory}: {error.strerror}. Run as root "
                "(sudo), or install for your user with --user."
            ) from None
    print("then enable it with:")
    for command in systemd.enable_commands(mode.value, user, name, serve):
        print(f"  {'sudo ' if not user else ''}{command}")
    if settings.state_dir_from != "state_dir":
        state = service_units.state_root(user) / systemd.unit_base(name)
        print(
            f"its state goes to {state}; commands run from a shell find it there "
            f"(cronflow status --jobs {jobfile.path.absolute()})"
        )


def doctor(jobs: JobsOption = None) -> None:
    """Check that the state directory's file system does what exactly-once needs: flock
    between processes and kept by a job, appends that land whole, rename at once, fsync,
    room. Exit 1, saying what to do, if it does not.

    Example:  cronflow doctor --jobs /etc/cronflow/jobs.toml
    """
    from cronflow.act.doctor import examine

    jobfile = load_jobs(jobs, cached=False)  # doctor leaves nothing behind
    state_dir = jobfile.settings.state_dir
    print(f"state directory: {state_dir}")
    checks = examine(state_dir)
    for check in checks:
        word = "FAIL" if not check.ok else "warning" if check.warning else "ok"
        print(f"  {word:<7} {check.name}: {check.detail}")
    if any(not check.ok for check in checks):
        print(
            "cronflow cannot promise here that no run runs twice and none is lost. Put the "
            "state directory on a local disk (state_dir in [cronflow], or CRONFLOW_STATE_DIR)."
        )
        raise typer.Exit(1)
    print("cronflow can keep its promises here.")


def import_crontab(
    source: Annotated[
        str,
        typer.Argument(
            metavar="[FILE|-]",
            click_type=Text(),
            help="A crontab file, or - for standard input (crontab -l |).",
        ),
    ] = "-",
    system: Annotated[
        bool | None,
        typer.Option(
            "--system/--user-format",
            help="Lines name a user before the command (/etc/crontab, "
            "/etc/cron.d/*), or not (crontab -e). Default: told from the content.",
        ),
    ] = None,
    output: Annotated[
        Path | None,
        typer.Option(
            "--output",
            "-o",
            metavar="PATH",
            dir_okay=False,
            help="Write the jobs file here (it must not exist) instead of to standard output.",
        ),
    ] = None,
) -> None:
    """Translate a crontab into a jobs.toml; list on stderr what could not be translated.

    Example:  crontab -l | cronflow import-crontab -o jobs.toml && cronflow validate
    """
    from cronflow.interop import crontab
    from cronflow.load.bounded import read_regular

    name = "standard input" if source == "-" else source
    try:
        if source == "-":
            data = sys.stdin.buffer.read(MAX_CRONTAB_BYTES + 1)
            if len(data) > MAX_CRONTAB_BYTES:
                raise OSError(errno.EFBIG, f"larger than {MAX_CRONTAB_BYTES // 1024} KiB")
        else:
            data = read_regular(Path(source), MAX_CRONTAB_BYTES)
        text = data.decode("utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise UsageError(
            f"cannot read {name}: {getattr(error, 'strerror', None) or 'not UTF-8 text'}. "
            f"Give a crontab file (at most {MAX_CRONTAB_BYTES // 1024} KiB), or - to read "
            "standard input."
        ) from None
    host = crontab.this_machine()
    if system is None:
        try:
            system = crontab.detect_format(text, host)
        except crontab.FormatUnknown as unknown:
            raise UsageError(
                f"cannot tell what kind of crontab {name} is: {unknown}. Give "
                "--system if each line names a user before the command "
                "(/etc/crontab, /etc/cron.d/*), else --user-format (crontab -e)."
            ) from None
    format_used = (
        "a system crontab: a user name before each command"
        if system
        else "a user crontab: no user name before the commands"
    )
    translation = crontab.translate(text, system=system, host=host)
    if not translation.document["jobs"]:
        raise UsageError(
            f"{name} holds no job cronflow can run. Not translated: "
            + "; ".join(translation.untranslated or ["(nothing)"])
        )
    rendered = crontab.render(translation, name, format_used)
    if output is None:
        sys.stdout.write(rendered)
    else:
        _write_new(output, rendered)
        print(f"wrote {output} ({len(translation.document['jobs'])} jobs)", file=sys.stderr)
    print(f"read {name} as {format_used}", file=sys.stderr)
    for line in translation.untranslated:
        print(f"not translated: {printable(line)}", file=sys.stderr)
    for line in translation.notes:
        print(f"check: {printable(line)}", file=sys.stderr)


def init(
    path: Annotated[
        str, typer.Argument(metavar="[PATH]", click_type=Text(), help="Where to write it.")
    ] = "jobs.toml",
) -> None:
    """Write a commented starter jobs.toml (it must not exist yet).

    Example:  cronflow init && cronflow validate && cronflow run --date today
    """
    from cronflow.interop.init_template import STARTER

    _write_new(Path(path), STARTER)
    print(f"wrote {path}; edit it, then run: cronflow validate --jobs {path}")


def _write_new(path: Path, text: str) -> None:
    """Create `path` with `text`; never overwrite a file the user already has."""
    try:
        with open(path, "x") as new_file:
            new_file.write(text)
    except FileExistsError:
        raise UsageError(
            f"{path} already exists; cronflow does not overwrite it. Choose "
            "another path or move it away."
        ) from None
    except OSError as error:
        raise UsageError(f"cannot write {path}: {error.strerror}.") from None


def alerts_test(
    jobs: JobsOption = None,
    job: Annotated[
        str | None,
        typer.Option(
            "--job",
            metavar="NAME",
            help="Send to the targets this job's alerts go to (its alert_tags).",
            autocompletion=complete_job,
        ),
    ] = None,
) -> None:
    """Send a test alert and say, per target, whether it arrived; exit 1 if one did not.

    Example:  cronflow alerts test --job backup
    """
    from cronflow.tell.alerts import probe_message
    from cronflow.tell.apprise_sender import AppriseNotifier
    from cronflow.tell.deliveries import DeliveryStatus

    jobfile = load_jobs(jobs)
    if job is not None and job not in jobfile.jobs:
        from cronflow.decide import selection

        selection.select_jobs(jobfile, [job], downstream=False)  # raises, naming the close match
    if not jobfile.alerts.has_targets:
        raise UsageError(
            f"{jobfile.path}: [alerts] has no urls and no config, so there is "
            'nowhere to send. Add urls = ["..."] to [alerts].'
        )
    chosen = jobfile.jobs[job] if job else None
    deliveries = AppriseNotifier(jobfile.alerts).send(
        probe_message(chosen), chosen.alert_tags if chosen else ()
    )
    if not deliveries:
        tags = ", ".join(chosen.alert_tags if chosen else ())
        raise UsageError(
            f"no alert target matches the tags of job {job}: {tags}. Tag a target in "
            f"{jobfile.alerts.config} with one of them."
        )
    for delivery in deliveries:
        print(f"{delivery.target}: {delivery}")
    if any(delivery.status is not DeliveryStatus.SENT for delivery in deliveries):
        raise typer.Exit(1)


API_KEY_VARIABLES = {"healthchecks": "HEALTHCHECKS_API_KEY", "cronitor": "CRONITOR_API_KEY"}


def monitors_sync(
    jobs: JobsOption = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Say what would change, and change nothing.")
    ] = False,
    healthchecks_api: Annotated[
        str | None,
        typer.Option(
            "--healthchecks-api",
            metavar="URL",
            help="The Healthchecks Management API (default: told from each ping URL).",
        ),
    ] = None,
    cronitor_api: Annotated[
        str | None,
        typer.Option(
            "--cronitor-api",
            metavar="URL",
            help="Cronitor's API (default: https://cronitor.io/api).",
        ),
    ] = None,
) -> None:
    """Create or update each job's monitor check from its schedule, zone and timeout.

    The API keys come from HEALTHCHECKS_API_KEY and CRONITOR_API_KEY. Exit 1 if a check
    could not be set up.

    Example:  HEALTHCHECKS_API_KEY=... cronflow monitors sync --dry-run
    """
    import os

    from cronflow.interop.monitor_api import sync
    from cronflow.interop.monitor_checks import plan_checks

    jobfile = load_jobs(jobs)
    overrides = {
        protocol: url
        for protocol, url in (("healthchecks", healthchecks_api), ("cronitor", cronitor_api))
        if url
    }
    plans = plan_checks(jobfile, overrides)
    if not plans:
        raise UsageError(f"{jobfile.path}: no job has a ping_url: there is no check to set up.")
    keys = {}
    for protocol in sorted({plan.protocol for plan in plans if not plan.skipped}):
        keys[protocol] = os.environ.get(API_KEY_VARIABLES[protocol], "").strip()
        if not keys[protocol]:
            raise UsageError(
                f"{API_KEY_VARIABLES[protocol]} is not set: put the {protocol} project's "
                "read-write API key there (it is never printed)."
            )
    results = [sync(plan, keys.get(plan.protocol, ""), dry_run) for plan in plans]
    for result in results:
        print(printable(str(result)))
    if any(result.action == "failed" for result in results):
        raise typer.Exit(1)
