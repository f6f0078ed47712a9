"""`cronflow why`: the story of cronflow's decision about one job at one time (decide/why.py),
read from the state directory as it is, changing nothing."""

from __future__ import annotations

import json
from datetime import date, datetime, time, timedelta
from typing import Annotated

import typer

from cronflow.cli.options import JobsOption, Text, complete_job, load_jobs, parse_dates
from cronflow.errors import UsageError
from cronflow.model import Job
from cronflow.state.pool_slots import PoolSlots


def why(
    job: Annotated[
        str,
        typer.Argument(
            metavar="JOB",
            autocompletion=complete_job,
            click_type=Text(),
            help="The job to explain.",
            show_default=False,
        ),
    ],
    at: Annotated[
        str | None,
        typer.Option(
            "--at",
            metavar="TIME",
            click_type=Text(),
            help="A date and time (2026-01-14T06:00, in the job's zone unless it has an "
            "offset): its tick, or the tick before it. Default: now.",
        ),
    ] = None,
    day: Annotated[
        str | None,
        typer.Option(
            "--date",
            metavar="DAY",
            click_type=Text(),
            help="A day (2026-01-14, today, -1d): its last tick, with how that day's runs ended.",
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="The story as JSON.")] = False,
    jobs: JobsOption = None,
) -> None:
    """Why a job ran, did not run, or will run: the schedule's fields, its zone and DST,
    jitter, a pause, its upstreams and run_if, overlap, catch-up, retries owed, the run
    that did it, the clock going back, slow and late, and what the next decision does.

    Examples:

      cronflow why load

      cronflow why load --date 2026-01-14

      cronflow why load --at 2026-01-14T06:00 --json
    """
    from cronflow.act.assemble import assemble
    from cronflow.clock import SystemClock
    from cronflow.decide import overdue
    from cronflow.decide import why as explaining
    from cronflow.decide.selection import select_jobs

    jobfile = load_jobs(jobs)
    select_jobs(jobfile, [job], downstream=False)  # an unknown name is a clear error
    chosen = jobfile.jobs[job]
    if at is not None and day is not None:
        raise UsageError("Give --at TIME or --date DAY, not both.")
    now = SystemClock().now()
    asked = _asked(chosen, at, day, now)
    engine = assemble(jobfile)
    store = engine.store
    index = store.index()
    known = explaining.Known(
        history=index,
        watermark=store.read_watermarks().get(job),
        pause=store.read_pauses().get(job),
        clock_event=index.clock_set_back(),
        verdicts=[verdict for verdict in engine.preview().verdicts if verdict.job == job],
        episodes=overdue.still_holding(store.overdue(), index),
        pool=PoolSlots(store.lock_dir).state(
            chosen.pool.pool, jobfile.pools[chosen.pool.pool].slots
        )
        if chosen.pool
        else None,
    )
    told = explaining.story(jobfile, chosen, asked, now, known, exact=at is not None)
    if day is not None:
        told.facts.insert(
            0, explaining.day_fact(chosen, asked.astimezone(chosen.timezone).date(), index)
        )
    if as_json:
        print(json.dumps(told.as_json(chosen), indent=2, ensure_ascii=False))
        return
    when = told.logical_time.astimezone(chosen.timezone).isoformat() if told.logical_time else "-"
    print(f"{job} @ {when}")
    width = max((len(fact.topic) for fact in told.facts), default=0)
    for fact in told.facts:
        print(f"  {fact.topic.ljust(width)}  {fact.text}")


def _asked(job: Job, at: str | None, day: str | None, now: datetime) -> datetime:
    """The instant asked about: --at, the end of --date's day (not after now), or now."""
    zone = job.timezone
    if at is not None:
        try:
            asked = datetime.fromisoformat(at.strip())
        except ValueError:
            raise UsageError(
                f'--at "{at}" is not a date and time: write it as 2026-01-14T06:00 (in the '
                "job's zone) or with an offset (2026-01-14T06:00+01:00)."
            ) from None
        return asked if asked.tzinfo else asked.replace(tzinfo=zone)
    if day is not None:
        days = parse_dates(day, now.astimezone(zone).date())
        if len(days) != 1:
            raise UsageError(f'--date "{day}" names {len(days)} days: why tells of one.')
        return min(now, _end_of(days[0], job))
    return now


def _end_of(day: date, job: Job) -> datetime:
    following = datetime.combine(day + timedelta(days=1), time(), tzinfo=job.timezone)
    return following - timedelta(microseconds=1)
