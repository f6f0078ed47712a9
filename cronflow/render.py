"""Drawing reports in the terminal with rich. Only the CLI imports this module."""

from __future__ import annotations

from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text

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
}


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
                   "duration", "ended"):
        table.add_column(column, no_wrap=True)
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
        )
    console.print(table)


def _short_time(iso: str | None) -> str:
    """`2026-01-14T06:00:00+01:00` -> `2026-01-14 06:00:00` (the zone has its own column)."""
    return "-" if iso is None else iso[:19].replace("T", " ")
