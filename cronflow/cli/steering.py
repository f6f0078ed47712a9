"""Commands that steer jobs on a bad day: `pause` and `resume` (act/pausing.py)."""

from __future__ import annotations

import re
import sys
from datetime import datetime, timedelta
from typing import Annotated
from zoneinfo import ZoneInfo

import typer

from cronflow.cli.options import JobsOption, Text, complete_job, load_jobs
from cronflow.errors import UsageError
from cronflow.model import JobFile, PlannedRun

JobsArgument = Annotated[
    list[str] | None,
    typer.Argument(
        metavar="JOB...",
        autocompletion=complete_job,
        click_type=Text(),
        help="The jobs (or --all).",
        show_default=False,
    ),
]
AllOption = Annotated[bool, typer.Option("--all", help="Every job of the jobs file.")]


def pause(
    names: JobsArgument = None,
    every: AllOption = False,
    until: Annotated[
        str | None,
        typer.Option(
            "--until",
            metavar="TIME|DURATION",
            click_type=Text(),
            help="Resume by itself then: a duration (2h, 30m, 1d), a time today or tomorrow "
            "(18:00), or a date and time (2026-12-24T08:00), in the file's time zone.",
        ),
    ] = None,
    reason: Annotated[
        str,
        typer.Option(
            "--reason",
            metavar="TEXT",
            click_type=Text(),
            help="Why: shown by status, kept in the log.",
        ),
    ] = "",
    jobs: JobsOption = None,
) -> None:
    """Pause jobs: their scheduled ticks are recorded skipped (with who paused them, why and
    until when) until `cronflow resume`, or until --until; the jobs after them follow their
    run_if. A backfill or `run --job` of a paused job needs --include-paused.

    Examples:

      cronflow pause load --reason "warehouse migration" --until 6h

      cronflow pause --all --until 2026-12-27T08:00
    """
    from cronflow.act import pausing
    from cronflow.act.assemble import open_store
    from cronflow.clock import SystemClock
    from cronflow.state.locks import Locks

    jobfile = load_jobs(jobs, consequence="nothing was paused")
    chosen = _chosen(jobfile, names, every, "pause")
    now = SystemClock().now()
    ends = None if until is None else parse_until(until, now, jobfile)
    store = open_store(jobfile)
    store.prepare()
    made = pausing.pause(
        store, Locks(store.lock_dir), chosen, by=pausing.who(), now=now, until=ends, reason=reason
    )
    for held in made:
        print(f"{held.job}: {held.describe()}")


def resume(names: JobsArgument = None, every: AllOption = False, jobs: JobsOption = None) -> None:
    """Resume paused jobs: their next ticks run again (the skipped ones stay skipped; `run
    --date DAY` runs them).

    Example:  cronflow resume load
    """
    from cronflow.act import pausing
    from cronflow.act.assemble import open_store
    from cronflow.clock import SystemClock
    from cronflow.state.locks import Locks

    jobfile = load_jobs(jobs, consequence="nothing was resumed")
    chosen = _chosen(jobfile, names, every, "resume")
    store = open_store(jobfile)
    if not store.state_dir.exists():
        resumed: list[str] = []
    else:
        resumed = pausing.resume(
            store, Locks(store.lock_dir), chosen, by=pausing.who(), now=SystemClock().now()
        )
    for name in chosen:
        print(f"{name}: {'resumed' if name in resumed else 'was not paused'}")


def _chosen(jobfile: JobFile, names: list[str] | None, every: bool, verb: str) -> list[str]:
    if every == bool(names):
        raise UsageError(
            f"Name the jobs to {verb} (cronflow {verb} JOB...) or give --all, not both "
            "and not neither."
        )
    if every:
        return list(jobfile.jobs)
    from cronflow.decide.selection import select_jobs

    select_jobs(jobfile, names or [], False)  # unknown names: a usage error with suggestions
    return list(dict.fromkeys(names or []))


def parse_until(text: str, now: datetime, jobfile: JobFile) -> datetime:
    """--until: a duration from now, a wall time (today, or tomorrow if it has passed), or
    a date and time, in the jobs file's zone."""
    from cronflow.load.values import Invalid, parse_duration

    zone = jobfile.settings.timezone
    text = text.strip()
    try:
        if re.fullmatch(r"\d{1,2}:\d{2}", text):
            return _next_wall_time(text, now, zone)
        if "-" in text:
            at = datetime.fromisoformat(text)
            at = at if at.tzinfo else at.replace(tzinfo=zone)
        else:
            at = now + parse_duration(text)
    except (Invalid, ValueError):
        raise UsageError(
            f'--until "{text}" is neither a duration (2h, 30m, 1d), a time (18:00) nor a date '
            "and time (2026-12-24T08:00)."
        ) from None
    if at <= now:
        raise UsageError(f'--until "{text}" has passed already: give a time to come.')
    return at


def _next_wall_time(text: str, now: datetime, zone: ZoneInfo) -> datetime:
    """The next HH:MM on the wall clock of `zone` after `now`: today's, else tomorrow's."""
    hour, minute = map(int, text.split(":"))
    today = now.astimezone(zone).date()
    for day in (today, today + timedelta(days=1)):
        at = datetime(day.year, day.month, day.day, hour, minute, tzinfo=zone)
        if at > now:
            return at
    raise ValueError(text)  # not reached: tomorrow's is always to come


def left_out_paused(jobfile: JobFile, runs: list[PlannedRun], now: datetime) -> list[PlannedRun]:
    """`runs` without those of paused jobs and those after them (a backfill or `run --job`
    runs them only with --include-paused), each paused job said once on stderr."""
    from cronflow.cli.options import store_of

    store = store_of(jobfile)
    pauses = store.read_pauses() if store.state_dir.exists() else {}
    held = {job for job, pause in pauses.items() if pause.holds_at(now)}
    left = {run.key for run in runs if run.job in held}
    if not left:
        return runs
    grew = True
    while grew:  # and every run waiting for one left out
        more = {run.key for run in runs if run.key not in left and left & set(run.upstreams)}
        left |= more
        grew = bool(more)
    for job in sorted(held & {run.job for run in runs}):
        count = sum(run.job == job for run in runs)
        print(
            f"cronflow: {job} is {pauses[job].describe()}: its {count} run(s) and those after "
            "them are left out; --include-paused runs them",
            file=sys.stderr,
        )
    return [run for run in runs if run.key not in left]
