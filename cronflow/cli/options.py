"""What every command shares: the --jobs, --job and --wide options, loading the jobs file, and
the words for days and times a person types."""

from __future__ import annotations

import os
import sys
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import click
import typer

from cronflow import JOBS_ENV_VAR
from cronflow.errors import ConfigError, CronflowError, UsageError, printable
from cronflow.load import jobs_toml
from cronflow.model import JobFile

if TYPE_CHECKING:  # for annotations only: the commands import what they use when run
    from cronflow.state.store import Store


def complete_job(ctx: typer.Context, incomplete: str) -> list[str]:
    """Shell completion: the job names of the jobs file this command line points at."""
    named = ctx.params.get("jobs")  # a string while completing: not converted yet
    from cronflow.act import configuration

    try:
        jobfile = configuration.load(
            jobs_toml.find_jobs_file(Path(named) if named else None, os.environ, Path.cwd()),
            deferred=True,
        )
    except CronflowError:
        return []
    return [name for name in jobfile.jobs if name.startswith(incomplete)]


class Text(click.ParamType):  # type: ignore[type-arg]  # generic only since click 8.3
    """An argument's text as given, with no type placeholder (`<str>`) in the help."""

    name = "text"

    def get_metavar(self, param: click.Parameter, ctx: click.Context | None = None) -> str:
        return ""


WideOption = Annotated[
    bool,
    typer.Option(
        "--wide", help="Every column and full times, whatever the width (one line per row)."
    ),
]


def job_option(help: str) -> Any:  # a typer OptionInfo: typer does not export its type
    """--job NAME, repeatable, completed from the jobs file's job names."""
    return typer.Option("--job", metavar="NAME", autocompletion=complete_job, help=help)


JobOption = Annotated[list[str] | None, job_option("Only this job (repeatable).")]
JobsOption = Annotated[
    Path | None,
    typer.Option(
        "--jobs",
        envvar=JOBS_ENV_VAR,
        show_envvar=True,
        dir_okay=False,
        metavar="PATH",
        help="The jobs file (default: $CRONFLOW_JOBS, else ./jobs.toml).",
    ),
]


def store_of(jobfile: JobFile) -> Store:
    """The jobs file's state directory, to read (act/assemble.py opens it)."""
    from cronflow.act.assemble import open_store

    return open_store(jobfile)


def load_jobs(jobs: Path | None, consequence: str = "", cached: bool = True) -> JobFile:
    """The jobs file, its warnings printed; a ConfigError says `consequence` if given. A new
    validation is kept for the next command when the command ends well, if `cached`."""
    try:
        from cronflow.act import configuration

        path = jobs_toml.find_jobs_file(jobs, os.environ, Path.cwd())
        jobfile = configuration.load(path, deferred=True) if cached else jobs_toml.load(path)
    except ConfigError as error:
        raise error.because(consequence) if consequence else error from None
    for warning in jobfile.warnings:
        print(f"cronflow: warning: {printable(warning)}", file=sys.stderr)
    return jobfile


def today_in(jobfile: JobFile) -> date:
    """Today in the file's zone ([cronflow] timezone): what `today` and `-7d` count from."""
    from cronflow.clock import SystemClock

    return SystemClock().now().astimezone(jobfile.settings.timezone).date()


def own_command() -> list[str]:
    """The absolute command that runs this very cronflow: the installed script, the single
    file (cronflow.pyz, run by this same Python), or this Python with -m cronflow."""
    script = Path(sys.argv[0])
    if script.name == "cronflow" and script.is_file():
        return [str(script.absolute())]
    if script.suffix == ".pyz" and script.is_file():
        return [sys.executable, str(script.absolute())]
    return [sys.executable, "-m", "cronflow"]


# Logical dates cronflow takes: wide enough for any history, and far enough from the ends of
# Python's calendar that every zone's midnight of them is an instant.
EARLIEST_DATE, LATEST_DATE = date(1900, 1, 1), date(9998, 12, 31)


def parse_dates(text: str, today: date, option: str = "--date") -> list[date]:
    """A day or an inclusive range of days (`2026-01-01..2026-01-31`, `-7d..today`), as a
    list of dates. A day is YYYY-MM-DD, `today`, `yesterday` or `-Nd` (N days before today)."""
    first, _, last = text.partition("..")
    try:
        start = _day(first, today)
        end = _day(last, today) if last else start
    except (ValueError, OverflowError):
        raise UsageError(
            f'{option} "{text}" is not a day. Write YYYY-MM-DD, today, yesterday or -Nd '
            "(N days ago), or a range of two: 2026-01-01..2026-01-31, -7d..today."
        ) from None
    if end < start:
        raise UsageError(f'{option} "{text}" ends before it starts. Put the earlier date first.')
    if start < EARLIEST_DATE or end > LATEST_DATE:
        raise UsageError(
            f'{option} "{text}" is out of range: cronflow takes dates from '
            f"{EARLIEST_DATE} to {LATEST_DATE}."
        )
    return [start + timedelta(days=offset) for offset in range((end - start).days + 1)]


# The bounds of every count-like option (each says it in its help): enough for any reader,
# and a typo such as 100000 is refused at once instead of running for minutes.
MOST_TICKS = 1000  # next --count
MOST_RUNS = 10_000  # history --limit
MOST_ATTEMPTS = 101  # logs --attempt: retries is at most 100


def in_range(value: int | None, option: str, most: int) -> None:
    if value is not None and not 1 <= value <= most:
        raise UsageError(f"{option} {value}: give a number from 1 to {most:,}.")


def _day(text: str, today: date) -> date:
    word = text.strip().lower()
    if word in ("today", "yesterday"):
        return today - timedelta(days=word == "yesterday")
    if word.startswith("-") and word.endswith("d") and word[1:-1].isdigit():
        return today - timedelta(days=int(word[1:-1]))
    return date.fromisoformat(word)


def parse_time(text: str) -> datetime:
    """An aware instant from ISO-8601 text; no offset means UTC (never the host's zone)."""
    from datetime import datetime

    try:
        parsed = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise UsageError(
            f'--from "{text}" is not a time. Write ISO-8601, such as '
            "2026-03-08T00:00-05:00 or 2026-03-08T05:00Z."
        ) from None
    if not EARLIEST_DATE <= parsed.date() <= LATEST_DATE:
        raise UsageError(
            f'--from "{text}" is out of range: cronflow takes times from '
            f"{EARLIEST_DATE} to {LATEST_DATE}."
        )
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
