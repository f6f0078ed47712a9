"""The `cronflow` command: parse options, call the core, print. No decisions live here."""

from __future__ import annotations

import json
import os
import sys
from collections import Counter
from datetime import date, timedelta
from pathlib import Path
from typing import Annotated, Optional

import typer

from cronflow import config
from cronflow.errors import CronflowError, UsageError
from cronflow.model import EventType, JobFile, Rerun, RunEvent, RunKind, RunStatus

app = typer.Typer(
    help="cron for jobs that depend on each other. See README.md for the jobs.toml reference.",
    pretty_exceptions_show_locals=False,  # locals may hold secrets (env values, alert URLs)
    add_completion=False,
    no_args_is_help=True,
)

JobsOption = Annotated[Optional[Path], typer.Option(
    "--jobs", envvar=config.JOBS_ENV_VAR, show_envvar=True, dir_okay=False,
    help="The jobs file [default: $CRONFLOW_JOBS, else ./jobs.toml].")]


def _load(jobs: Path | None) -> JobFile:
    return config.load(config.find_jobs_file(jobs, os.environ, Path.cwd()))


@app.command()
def validate(jobs: JobsOption = None) -> None:
    """Check a jobs file and list its jobs; exit 2 listing every problem if it is not valid.

    Example:  cronflow validate --jobs /etc/cronflow/jobs.toml
    """
    jobfile = _load(jobs)
    print(f"{jobfile.path}: {len(jobfile.jobs)} jobs, no problems.")
    for job in jobfile.jobs.values():
        when = (f"{job.schedule} ({job.timezone.key})" if job.schedule
                else f"after {', '.join(job.depends_on)}" if job.depends_on else "manual only")
        print(f"  {job.name}: {when}")


@app.command()
def run(
    jobs: JobsOption = None,
    dates: Annotated[Optional[str], typer.Option(
        "--date", metavar="YYYY-MM-DD[..YYYY-MM-DD]",
        help="The logical date to run, or an inclusive range of dates, oldest run first.")] = None,
    job: Annotated[Optional[list[str]], typer.Option(
        "--job", help="Run only this job (repeatable).")] = None,
    downstream: Annotated[bool, typer.Option(
        "--downstream", help="Also run every job that depends on the --job ones.")] = False,
    rerun: Annotated[Rerun, typer.Option(
        "--rerun", help="Which recorded runs to run again: none, failed (those that did not "
        "succeed) or all.")] = Rerun.FAILED,
    dry_run: Annotated[bool, typer.Option(
        "--dry-run", help="Print the runs that would start, and run nothing.")] = False,
) -> None:
    """Run jobs for a logical date, in dependency order; exit 1 if any run did not succeed.

    Example:  cronflow run --date 2026-01-14 --job load --downstream
    """
    from cronflow import plan

    if dates is None:
        raise UsageError("cronflow run needs --date YYYY-MM-DD (or a range A..B): running what "
                         "is due by the clock is not available in this version yet.")
    days = parse_dates(dates)
    jobfile = _load(jobs)
    selected = plan.select_jobs(jobfile, job or [], downstream)
    runs_by_date = [(day, plan.runs_for_date(jobfile, selected, day, RunKind.BACKFILL))
                    for day in days]
    if dry_run:
        _print_plan(jobfile, runs_by_date, rerun)
        return
    if not _execute(jobfile, runs_by_date, rerun):
        raise typer.Exit(1)


def _execute(jobfile: JobFile, runs_by_date, rerun: Rerun) -> bool:
    """Run each date's plan in turn; True when every run succeeded."""
    from cronflow.clock import SystemClock
    from cronflow.executor import Executor
    from cronflow.lock import JobLocks
    from cronflow.runner import ShellRunner
    from cronflow.store import Store

    store = Store(jobfile.settings.state_dir)
    store.prepare()
    executor = Executor(jobfile=jobfile, store=store, locks=JobLocks(store.lock_dir),
                        runner=ShellRunner(), clock=SystemClock(),
                        on_event=lambda event: _print_event(jobfile, event))
    outcomes = []
    for _, runs in runs_by_date:
        outcomes += executor.execute(runs, rerun)
    for outcome in outcomes:
        if outcome.already_done:
            print(f"  {_run_label(jobfile, outcome.key.job, outcome.key.logical_time)}: "
                  f"not run, {outcome.reason} (--rerun decides which runs run again)")
    counts = Counter("already done" if o.already_done else o.status.value for o in outcomes)
    print(f"{len(outcomes)} runs: "
          + ", ".join(f"{count} {status}" for status, count in sorted(counts.items())))
    return all(outcome.status is RunStatus.SUCCESS for outcome in outcomes)


def _print_event(jobfile: JobFile, event: RunEvent) -> None:
    label = _run_label(jobfile, event.job, event.logical_time)
    attempt = f"attempt {event.attempt}/{event.max_attempts}"
    if event.event is EventType.STARTED:
        print(f"  {label}: started, {attempt}", flush=True)
    elif event.event is EventType.FINISHED:
        detail = f", {event.reason}" if event.reason else ""
        if event.status is not RunStatus.SUCCESS and event.attempt < event.max_attempts:
            delay = jobfile.jobs[event.job].retry.delay_before(event.attempt + 1)
            detail += f"; retrying in {delay.total_seconds():g}s"
        print(f"  {label}: {event.status}, {attempt}, {event.duration_s:.1f}s{detail}", flush=True)
    else:
        print(f"  {label}: {event.status}, {event.reason}", flush=True)


def _print_plan(jobfile: JobFile, runs_by_date, rerun: Rerun) -> None:
    from cronflow.plan import should_run
    from cronflow.store import Store

    history = Store(jobfile.settings.state_dir).history()
    for day, runs in runs_by_date:
        print(f"{day}:")
        for planned in runs:
            status = history.status(planned.key)
            verdict = "run" if should_run(status, rerun) else f"skip (already {status})"
            print(f"  {_run_label(jobfile, planned.job, planned.logical_time)}: {verdict}")


def _run_label(jobfile: JobFile, job: str, logical_time) -> str:
    local = logical_time.astimezone(jobfile.jobs[job].timezone)
    return f"{job} @ {local.isoformat()}"


@app.command()
def status(
    jobs: JobsOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON (schema in README).")] = False,
) -> None:
    """Show every job's last run: logical time, status, attempts, duration and end.

    Example:  cronflow status --json
    """
    from cronflow import report
    from cronflow.store import History, Store

    jobfile = _load(jobs)
    contents = Store(jobfile.settings.state_dir).read()
    rows = report.summarise(jobfile, History(contents.events))
    if as_json:
        print(json.dumps(report.status_json(jobfile, rows), indent=2))
        return
    from cronflow import render

    render.status_table(rows)
    if contents.skipped:
        print(f"note: {len(contents.skipped)} unreadable line(s) in the run log were skipped "
              f"(first at byte {contents.skipped[0].offset}).", file=sys.stderr)


def parse_dates(text: str) -> list[date]:
    """`2026-01-14` or an inclusive range `2026-01-01..2026-01-31`, as a list of dates."""
    first, _, last = text.partition("..")
    try:
        start = date.fromisoformat(first.strip())
        end = date.fromisoformat(last.strip()) if last else start
    except ValueError:
        raise UsageError(f'--date "{text}" is not a date. Write YYYY-MM-DD, or a range '
                         "YYYY-MM-DD..YYYY-MM-DD.") from None
    if end < start:
        raise UsageError(f'--date "{text}" ends before it starts. Put the earlier date first.')
    return [start + timedelta(days=offset) for offset in range((end - start).days + 1)]


def main() -> None:
    """Entry point: run the app, turning cronflow's errors into a message and an exit status."""
    try:
        app()
    except CronflowError as error:
        print(f"cronflow: {error}", file=sys.stderr)
        sys.exit(error.exit_code)
    except KeyboardInterrupt:
        sys.exit(130)

