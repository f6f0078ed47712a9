"""Drawing reports in the terminal with rich. Only the CLI imports this module."""

from __future__ import annotations

import textwrap
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
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
    grid: list[list[Cell] | None] = []
    flow = None
    for row in rows:
        if flow is not None and row.flow != flow:
            grid.append(None)  # a blank line between flows
        flow = row.flow
        status = row.status or "never run"
        grid.append(
            [
                row.job + ("" if row.enabled else " (disabled)"),
                row.schedule_words or row.schedule,
                row.timezone,
                _short_time(row.last_logical_time),
                (status, _colour(row.status, "dim")),
                f"{row.attempt}/{row.max_attempts}" if row.attempt else "-",
                f"{row.duration_s:.1f}s" if row.duration_s is not None else "-",
                _short_time(row.next_due),
                str(row.failing_streak) if row.failing_streak else "-",
                _strip(row, plain),
                row.reason,
            ]
        )
    _print_grid(
        console,
        (
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
        ),
        grid,
    )
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


def _strip(row: JobStatus, plain: bool) -> list[str | tuple[str, str]]:
    return [
        RunStatus(cell.status).letter if plain else ("■", RunStatus(cell.status).colour)
        for cell in row.recent
    ]


def _colour(status: str | None, otherwise: str) -> str:
    return RunStatus(status).colour if status else otherwise


def _short_time(iso: str | None) -> str:
    """`2026-01-14T06:00:00+01:00` -> `2026-01-14 06:00:00` (the zone has its own column)."""
    return "-" if iso is None else iso[:19].replace("T", " ")


def history_table(runs: list[RunSummary], console: Console | None = None) -> None:
    """One row per run execution, newest first."""
    _print_grid(
        console or make_console(),
        (
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
        ),
        [
            [
                run.job,
                _short_time(run.logical_time),
                (run.status, _colour(run.status, "")),
                f"{run.attempts}/{run.max_attempts}" if run.attempts else "-",
                f"{run.duration_s:.1f}s" if run.duration_s is not None else "-",
                "-" if run.exit_code is None else str(run.exit_code),
                run.kind,
                _short_time(run.ended_at),
                run.run_id,
                run.reason,
            ]
            for run in runs
        ],
    )


def verdict_table(
    jobfile: JobFile, verdicts: list[Verdict], console: Console | None = None
) -> None:
    """Print what a run would do: one row per job or run, with the reason."""
    rows: list[list[Cell] | None] = []
    for verdict in verdicts:
        zone = jobfile.jobs[verdict.job].timezone
        when = verdict.logical_time.astimezone(zone).isoformat() if verdict.logical_time else "-"
        rows.append(
            [
                verdict.job,
                _short_time(when),
                zone.key,
                (verdict.action.value, verdict.action.colour),
                verdict.detail,
            ]
        )
    _print_grid(console or make_console(), ("job", "logical time", "zone", "action", "why"), rows)


# ---- tables ----------------------------------------------------------------------------------

# A cell: its text, or its text and a rich style name; a list of them reads as one cell.
Cell = str | tuple[str, str] | list[str | tuple[str, str]]
_GAP = "   "  # between columns, as rich's SIMPLE_HEAD box draws them
_NARROWEST_WHY = 16


def _print_grid(
    console: Console, columns: Sequence[str], rows: Sequence[Sequence[Cell] | None]
) -> None:
    """A table the way rich's SIMPLE_HEAD box draws one (blank edges around a header, a rule,
    the rows, a blank line for each None), drawn here because rich's Table costs about a millisecond a row and status
    draws one per job: thousands. The last column wraps to the terminal's width; no line
    ends in blanks."""
    paint = _painter(console)
    texts = [[_text_of(cell) for cell in row] if row is not None else None for row in rows]
    widths = [len(name) for name in columns]
    for row in texts:
        for index, text in enumerate(row or ()):
            widths[index] = max(widths[index], len(text))
    fixed = 1 + sum(widths[:-1]) + len(_GAP) * (len(columns) - 1)
    widths[-1] = min(widths[-1], max(console.width - fixed, _NARROWEST_WHY))
    header = [paint(name.ljust(width), "bold") for name, width in zip(columns, widths, strict=True)]
    lines = ["", " " + _GAP.join(header), " " + "─" * (fixed - 1 + widths[-1])]
    for cells, plain in zip(rows, texts, strict=True):
        if cells is None or plain is None:
            lines.append("")
            continue
        wrapped = textwrap.wrap(plain[-1], widths[-1]) or [""]
        padded = [
            _painted(cell, paint) + " " * (width - len(text))
            for cell, text, width in zip(cells[:-1], plain[:-1], widths, strict=False)
        ]
        lines.append(" " + _GAP.join([*padded, wrapped[0]]))
        lines += [" " * fixed + more for more in wrapped[1:]]
    lines.append("")  # the box's bottom edge
    console.file.write("\n".join(line.rstrip() for line in lines) + "\n")
    console.file.flush()


def _text_of(cell: Cell) -> str:
    if isinstance(cell, str):
        return cell
    if isinstance(cell, tuple):
        return cell[0]
    return "".join(_text_of(part) for part in cell)


def _painted(cell: Cell, paint: Callable[[str, str], str]) -> str:
    if isinstance(cell, str):
        return cell
    if isinstance(cell, tuple):
        return paint(*cell)
    return "".join(_painted(part, paint) for part in cell)


def _painter(console: Console) -> Callable[[str, str], str]:
    """Text in a rich style, as this console writes it (plain when it has no colours)."""
    if console.no_color or not console.is_terminal or console.color_system is None:
        return lambda text, style: text
    codes: dict[str, tuple[str, str]] = {}

    def paint(text: str, style: str) -> str:
        if not style or not text:
            return text
        if style not in codes:
            with console.capture() as captured:
                console.print(Text("\0", style=style), end="")
            codes[style] = tuple(captured.get().split("\0", 1))  # type: ignore[assignment]
        before, after = codes[style]
        return before + text + after

    return paint


def progress_bar() -> Progress:
    """A progress bar for long backfills (only shown in a terminal)."""
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        transient=False,
    )
