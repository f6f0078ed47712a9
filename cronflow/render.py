"""Drawing reports in the terminal with rich. Only the CLI imports this module."""

from __future__ import annotations

from rich import box
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

from cronflow.model import JobFile
from cronflow.plan import Verdict
from cronflow.report import JobStatus

STATUS_STYLES = {
    "success": "green",
    "running": "cyan",
    "failed": "bold red",
    "timed_out": "bold red",
    "upstream_failed": "yellow",
    "abandoned": "magenta",
    "skipped": "dim",
    "missed": "dim",
    "waiting": "yellow",
}
VERDICT_STYLES = {"run": "green", "retry": "cyan", "waiting": "yellow", "missed": "red",
                  "overlap": "yellow", "skip": "dim", "already done": "dim", "not due": "dim"}


def make_console() -> Console:
    """A console for stdout; when not a terminal, wide enough that no cell is cut."""
    console = Console()
    if not console.is_terminal:
        console = Console(width=max(console.width, 160))
    return console


def status_table(rows: list[JobStatus], console: Console | None = None) -> None:
    """Print one row per job: schedule, last logical time and status, attempts, duration, end."""
    console = console or make_console()
    table = Table(box=box.SIMPLE_HEAD, pad_edge=False)
    for column in ("job", "schedule", "zone", "last logical time", "status", "attempt",
                   "duration", "ended", "why"):
        table.add_column(column, no_wrap=column != "why")
    for row in rows:
        status = row.status or "never run"
        table.add_row(
            row.job,
            row.schedule,
            row.timezone,
            _short_time(row.last_logical_time),
            Text(status, style=STATUS_STYLES.get(status, "dim")),
            f"{row.attempt}/{row.max_attempts}" if row.attempt else "-",
            f"{row.duration_s:.1f}s" if row.duration_s is not None else "-",
            _short_time(row.ended_at),
            row.reason,
        )
    console.print(table)


def _short_time(iso: str | None) -> str:
    """`2026-01-14T06:00:00+01:00` -> `2026-01-14 06:00:00` (the zone has its own column)."""
    return "-" if iso is None else iso[:19].replace("T", " ")


def verdict_table(jobfile: JobFile, verdicts: list[Verdict], console: Console | None = None) -> None:
    """Print what a run would do: one row per job or run, with the reason."""
    console = console or make_console()
    table = Table(box=box.SIMPLE_HEAD, pad_edge=False)
    for column in ("job", "logical time", "zone", "action", "why"):
        table.add_column(column, no_wrap=column != "why")
    for verdict in verdicts:
        zone = jobfile.jobs[verdict.job].timezone
        when = verdict.logical_time.astimezone(zone).isoformat() if verdict.logical_time else "-"
        table.add_row(verdict.job, _short_time(when), zone.key,
                      Text(verdict.action, style=VERDICT_STYLES.get(verdict.action, "")),
                      verdict.detail)
    console.print(table)


def progress_bar() -> Progress:
    """A progress bar for long backfills (only shown in a terminal)."""
    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                    TimeElapsedColumn(), transient=False)
