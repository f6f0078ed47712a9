"""Drawing reports in the terminal with rich. Only the CLI imports this module."""

from __future__ import annotations

from datetime import datetime, timedelta

from rich import box
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

from cronflow import __version__
from cronflow.model import JobFile, RunStatus
from cronflow.plan import Verdict
from cronflow.report import JobStatus, Overview, RunSummary


def make_console() -> Console:
    """A console for stdout; when not a terminal, wide enough that no cell is cut."""
    console = Console()
    if not console.is_terminal:
        console = Console(width=max(console.width, 160))
    return console


def status_table(
    rows: list[JobStatus], summary: Overview, now: datetime, console: Console | None = None
) -> None:
    """The header line, then one row per job grouped by flow, with a strip of recent runs."""
    console = console or make_console()
    plain = console.no_color or not console.is_terminal
    console.print(_header(summary, now), highlight=False)
    table = Table(box=box.SIMPLE_HEAD, pad_edge=False)
    for column in (
        "job",
        "schedule",
        "zone",
        "last logical time",
        "status",
        "try",
        "took",
        "next due",
        "streak",
        "recent",
        "why",
    ):
        table.add_column(column, no_wrap=column != "why")
    flow = None
    for row in rows:
        if flow is not None and row.flow != flow:
            table.add_section()
        flow = row.flow
        status = row.status or "never run"
        table.add_row(
            row.job + ("" if row.enabled else " (disabled)"),
            row.schedule_words or row.schedule,
            row.timezone,
            _short_time(row.last_logical_time),
            Text(status, style=_colour(row.status, "dim")),
            f"{row.attempt}/{row.max_attempts}" if row.attempt else "-",
            f"{row.duration_s:.1f}s" if row.duration_s is not None else "-",
            _short_time(row.next_due),
            str(row.failing_streak) if row.failing_streak else "-",
            _strip(row, plain),
            row.reason,
        )
    console.print(table)
    if plain:
        console.print(
            "recent: "
            + "  ".join(
                f"{status.letter} {status.value.replace('_', ' ')}" for status in RunStatus
            ),
            highlight=False,
        )


def _header(summary: Overview, now: datetime) -> Text:
    text = Text(
        f"cronflow {__version__}: {summary.failing} failing, {summary.running} "
        f"running, {summary.healthy} healthy. "
    )
    if summary.last_ran_at is None:
        text.append(
            "cronflow has not run by the clock here yet (put `* * * * * cronflow run` "
            "in a crontab, or run `cronflow daemon`)"
        )
    elif summary.last_ran_at > now:
        text.append(
            f"cronflow last ran at {summary.last_ran_at:%Y-%m-%d %H:%M:%S}Z, later than "
            "now by this machine's clock"
        )
    else:
        text.append(
            f"cronflow last ran {_ago(now - summary.last_ran_at)} ago "
            f"({summary.last_ran_at:%Y-%m-%d %H:%M:%S}Z)"
        )
    if summary.stale:
        text.append(
            ".\nwarning: no tick for a while: is the cron line or the daemon still "
            "running? (cronflow run / cronflow daemon)",
            style="bold yellow",
        )
    if summary.clock_warning:
        text.append(f".\nwarning: {summary.clock_warning}", style="bold yellow")
    return text


def _ago(delta: timedelta) -> str:
    seconds = int(delta.total_seconds())
    if seconds < 120:
        return f"{seconds}s"
    if seconds < 7200:
        return f"{seconds // 60}m"
    if seconds < 172800:
        return f"{seconds // 3600}h {seconds % 3600 // 60}m"
    return f"{seconds // 86400}d"


def _strip(row: JobStatus, plain: bool) -> Text:
    strip = Text()
    for cell in row.recent:
        status = RunStatus(cell.status)
        strip.append(status.letter if plain else "■", style=None if plain else status.colour)
    return strip


def _colour(status: str | None, otherwise: str) -> str:
    return RunStatus(status).colour if status else otherwise


def _short_time(iso: str | None) -> str:
    """`2026-01-14T06:00:00+01:00` -> `2026-01-14 06:00:00` (the zone has its own column)."""
    return "-" if iso is None else iso[:19].replace("T", " ")


def history_table(runs: list[RunSummary], console: Console | None = None) -> None:
    """One row per run execution, newest first."""
    console = console or make_console()
    table = Table(box=box.SIMPLE_HEAD, pad_edge=False)
    for column in (
        "job",
        "logical time",
        "status",
        "tries",
        "took",
        "exit",
        "kind",
        "ended",
        "run id",
        "why",
    ):
        table.add_column(column, no_wrap=column != "why")
    for run in runs:
        table.add_row(
            run.job,
            _short_time(run.logical_time),
            Text(run.status, style=_colour(run.status, "")),
            f"{run.attempts}/{run.max_attempts}" if run.attempts else "-",
            f"{run.duration_s:.1f}s" if run.duration_s is not None else "-",
            "-" if run.exit_code is None else str(run.exit_code),
            run.kind,
            _short_time(run.ended_at),
            run.run_id,
            run.reason,
        )
    console.print(table)


def verdict_table(
    jobfile: JobFile, verdicts: list[Verdict], console: Console | None = None
) -> None:
    """Print what a run would do: one row per job or run, with the reason."""
    console = console or make_console()
    table = Table(box=box.SIMPLE_HEAD, pad_edge=False)
    for column in ("job", "logical time", "zone", "action", "why"):
        table.add_column(column, no_wrap=column != "why")
    for verdict in verdicts:
        zone = jobfile.jobs[verdict.job].timezone
        when = verdict.logical_time.astimezone(zone).isoformat() if verdict.logical_time else "-"
        table.add_row(
            verdict.job,
            _short_time(when),
            zone.key,
            Text(verdict.action, style=verdict.action.colour),
            verdict.detail,
        )
    console.print(table)


def progress_bar() -> Progress:
    """A progress bar for long backfills (only shown in a terminal)."""
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        transient=False,
    )
