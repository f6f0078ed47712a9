"""Drawing reports in the terminal with rich. Only the CLI imports this module."""

from __future__ import annotations

import os
import textwrap
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.text import Text

from cronflow import __version__
from cronflow.decide.explain import Action, JobPlan, Verdict
from cronflow.decide.freshness import AssetState
from cronflow.model import JobFile, RunStatus
from cronflow.tell.overview import JobStatus, Overview, RunSummary


def make_console() -> Console:
    """A console for stdout. Not a terminal: as wide as COLUMNS says, else wide enough that
    no line is cut."""
    console = Console()
    if not console.is_terminal and not _columns_from_environment():
        console = Console(width=max(console.width, 160))
    return console


def table_width(console: Console, wide: bool = False) -> int | None:
    """How wide a table may be: the terminal's width, or COLUMNS when output goes to a pipe
    or file; None (no limit: every column, nothing wrapped) with --wide, or piped without
    COLUMNS, so that grep and awk see one stable line per row."""
    if wide:
        return None
    if console.is_terminal:
        return console.width
    return _columns_from_environment()


def _columns_from_environment() -> int | None:
    columns = os.environ.get("COLUMNS", "")
    return int(columns) if columns.isdigit() and int(columns) >= 20 else None


def status_table(
    rows: list[JobStatus],
    summary: Overview,
    now: datetime,
    console: Console | None = None,
    wide: bool = False,
    never_ran: str = "put `* * * * * cronflow run` in a crontab (crontab -e), or install the "
    "daemon (cronflow systemd install)",
    state: str = "",
) -> None:
    """The header line, then one row per job grouped by flow, with a strip of recent runs.
    `never_ran` is what the header suggests when cronflow never ran here.

    Fitted to the width: times relative to now ("5m ago", "in 3h12m"), one zone named above
    the table when all jobs share it, and tries, duration, schedule and zone dropped in that
    order while the line is too long; the reason wraps, or goes on a line of its own. The
    job's full name, status, last and next run, streak and strip are always there."""
    console = console or make_console()
    width = table_width(console, wide)
    plain = console.no_color or not console.is_terminal
    zones = sorted({row.timezone for row in rows})
    fitted = width is not None
    _print_wrapped(console, _header(summary, now, never_ran), width)
    if state:
        _print_wrapped(console, Text(state, style="dim"), width)
    if fitted and len(zones) == 1:
        console.print(f"(times in {zones[0]})", highlight=False)
    columns = [
        Column("job"),
        Column("schedule", drop=3),
        *([] if fitted and len(zones) == 1 else [Column("zone", drop=2)]),
        Column("last run" if fitted else "last logical time"),
        Column("status"),
        Column("try", drop=5),
        Column("took", drop=4),
        Column("next due"),
        Column("streak"),
        Column("recent", spill=True),
        Column("why"),
    ]
    grid: list[list[Cell] | None] = []
    flow = None
    for row in rows:
        if flow is not None and row.flow != flow:
            grid.append(None)  # a blank line between flows
        flow = row.flow
        status = row.status or "never run"
        when = _relative_to(now) if fitted else _short_time
        grid.append(
            [
                row.job
                + ("" if row.enabled else " (disabled)")
                + (" (paused)" if row.paused else "")
                + (" (late)" if row.late else "")
                + (" (slow)" if row.slow else ""),
                row.schedule_words or row.schedule,
                *([] if fitted and len(zones) == 1 else [row.timezone]),
                _last_run(row, when) if fitted else when(row.last_logical_time),
                (status, _colour(row.status, "dim")),
                f"{row.attempt}/{row.max_attempts}" if row.attempt else "-",
                f"{row.duration_s:.1f}s" if row.duration_s is not None else "-",
                _next_due(row, when, now),
                str(row.failing_streak) if row.failing_streak else "-",
                _strip(row, plain),
                row.reason,
            ]
        )
    _print_grid(console, columns, grid, width)
    if plain:
        legend = "  ".join(
            f"{status.letter} {status.value.replace('_', ' ')}" for status in RunStatus
        )
        _print_wrapped(console, Text("recent: " + legend), width)


def _print_wrapped(console: Console, text: Text, width: int | None) -> None:
    """Text wrapped at word boundaries to `width` (None: not at all), no line ending in blanks."""
    if width is None:
        console.print(text, highlight=False, soft_wrap=True)
        return
    for line in text.wrap(console, width):
        line.rstrip()
        console.print(line, highlight=False, soft_wrap=True)


def _header(summary: Overview, now: datetime, never_ran: str) -> Text:
    text = Text(
        f"cronflow {__version__}: {summary.failing} failing, {summary.running} "
        f"running, {summary.healthy} healthy"
        + (f", {summary.never_run} never run. " if summary.never_run else ". ")
    )
    if summary.last_ran_at is None:
        text.append(f"cronflow has not run by the clock here yet: {never_ran}")
    elif summary.last_ran_at > now:
        text.append(
            f"cronflow last ran at {summary.last_ran_at:%Y-%m-%d %H:%M:%S}Z, later than "
            "now by this machine's clock"
        )
    else:
        text.append(
            f"cronflow last ran {_span(now - summary.last_ran_at)} ago "
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
    for warning in summary.ping_warnings:
        text.append(f".\nwarning: {warning}", style="bold yellow")
    for name, why in summary.late_assets:
        text.append(f".\nlate: {name}: {why}", style="bold red")
    if summary.blackout:
        text.append(f".\nheld: {summary.blackout}", style="bold yellow")
    for warning in summary.calendar_warnings:
        text.append(f".\nwarning: {warning}", style="bold yellow")
    return text


def _span(delta: timedelta) -> str:
    """A length of time in the fewest characters that still say it: 45s, 12m, 3h12m, 2d4h."""
    seconds = abs(int(delta.total_seconds()))
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m"
    if seconds < 86400:
        return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"
    return f"{seconds // 86400}d{seconds % 86400 // 3600}h"


def _last_run(row: JobStatus, when: Callable[[str | None], str]) -> str:
    """When the last run ended (a backfill that ran a minute ago is not "20h ago"), with the
    logical date it was for where that is another day: `1m ago (01-14)`."""
    if row.ended_at is None or row.last_logical_time is None:
        return when(row.last_logical_time)
    ended, logical = (datetime.fromisoformat(t) for t in (row.ended_at, row.last_logical_time))
    if ended.date() == logical.date():
        return when(row.ended_at)
    return f"{when(row.ended_at)} ({logical:%m-%d})"


def _next_due(row: JobStatus, when: Callable[[str | None], str], now: datetime) -> Cell:
    """When the next run starts; one that should have started a minute ago is overdue (is
    the cron line, or the daemon, still running?). A paused job's: when its pause ends."""
    if row.paused is not None:
        ends = f"paused until {when(row.paused.until)}" if row.paused.until else "paused"
        return (ends, "yellow")
    if row.next_due is None or datetime.fromisoformat(row.next_due) > now - OVERDUE_AFTER:
        return when(row.next_due)
    return (f"{when(row.next_due)} overdue", "bold red")


def _relative_to(now: datetime) -> Callable[[str | None], str]:
    """`2026-01-14T06:00:00+01:00` -> `5m ago` or `in 3h12m`, seen from `now`."""

    def relative(iso: str | None) -> str:
        if iso is None:
            return "-"
        delta = datetime.fromisoformat(iso) - now
        return f"in {_span(delta)}" if delta > timedelta(0) else f"{_span(delta)} ago"

    return relative


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


def history_table(
    runs: list[RunSummary], console: Console | None = None, wide: bool = False
) -> None:
    """One row per run execution, newest first. Narrow, the job, logical time, status and
    run id stay (the run id is what `cronflow logs --run` takes)."""
    console = console or make_console()
    _print_grid(
        console,
        [
            Column("job"),
            Column("logical time"),
            Column("status"),
            Column("tries", drop=4),
            Column("took", drop=3),
            Column("exit", drop=5),
            Column("kind", drop=6),
            Column("ended", drop=2),
            Column("run id", spill=True),
            Column("why"),
        ],
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
        table_width(console, wide),
    )


def ticks_table(ticks: list[dict[str, Any]], wide: bool = False) -> None:
    """`cronflow next`: each tick in its job's zone and in UTC, when its run starts (when a
    random delay or offset moves it), and how DST shaped it; a paused job's is marked (it
    will be recorded skipped), and so are the days its calendars skip (dim, one row a day),
    ticks they move and runs a blackout window holds."""
    console = make_console()
    delayed = any(tick["starts"] != tick["logical_time"] for tick in ticks)
    columns = [Column("job"), Column("logical time")]
    columns += [Column("starts")] if delayed else []
    columns += [Column("utc", spill=True), Column("daylight saving time")]
    noted = any(tick["note"] for tick in ticks)
    columns += [Column("calendar and blackout", spill=True)] if noted else []
    _print_grid(
        console,
        columns,
        [
            [
                tick["job"] + (" (paused)" if tick["paused"] else ""),
                (tick["logical_time"], "dim") if tick["skipped_ticks"] else tick["logical_time"],
                *([tick["starts"]] if delayed else []),
                tick["utc"],
                tick["dst"],
                *([tick["note"]] if noted else []),
            ]
            for tick in ticks
        ],
        table_width(console, wide),
    )


def assets_table(
    states: Sequence[AssetState], now: datetime, zone: ZoneInfo, wide: bool = False
) -> None:
    """`cronflow assets`: one line per asset, stale ones coloured, with why; times in the
    jobs file's zone, as `status` shows them."""
    console = make_console()
    console.print(f"(times in {zone.key})", highlight=False)
    colours = {"fresh": "green", "stale": "bold red", "external": "dim", "new": "cyan"}
    rows: list[list[Cell] | None] = [
        [
            state.name,
            state.producer or "(external)",
            f"{state.fresh_as_of.astimezone(zone):%Y-%m-%d %H:%M}" if state.fresh_as_of else "-",
            f"{_span(now - state.fresh_as_of)} old" if state.fresh_as_of else "-",
            (state.state, colours.get(state.state, "")),
            state.why,
            ", ".join(state.consumers) or "-",
        ]
        for state in states
    ]
    _print_grid(
        console,
        [
            Column("asset"),
            Column("producer"),
            Column("fresh as of", drop=2),
            Column("age"),
            Column("state"),
            Column("why", spill=True),
            Column("consumers", drop=1),
        ],
        rows,
        table_width(console, wide),
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
                (verdict.action.value, ACTION_COLOURS.get(verdict.action, "dim")),
                verdict.detail,
            ]
        )
    console = console or make_console()
    _print_grid(
        console,
        [
            Column("job"),
            Column("logical time"),
            Column("zone", drop=1),
            Column("action"),
            Column("why"),
        ],
        rows,
        table_width(console),
    )


def plan_summary(jobfile: JobFile, plans: list[JobPlan], console: Console | None = None) -> None:
    """A backfill plan job by job: how many runs, their span, and what becomes of them."""
    rows: list[list[Cell] | None] = []
    for job_plan in plans:
        zone = jobfile.jobs[job_plan.job].timezone
        first, last = (
            _short_time(moment.astimezone(zone).isoformat())
            for moment in (job_plan.first, job_plan.last)
        )
        rows.append(
            [
                job_plan.job,
                str(job_plan.runs),
                first if job_plan.runs == 1 else f"{first} .. {last}",
                (str(job_plan.to_run), "green" if job_plan.to_run else "dim"),
                str(job_plan.already_done),
                str(job_plan.skipped),
                str(job_plan.not_yet_due),
            ]
        )
    console = console or make_console()
    columns = ("job", "runs", "logical times", "to run", "done", "skipped", "not yet due")
    _print_grid(console, [Column(name) for name in columns], rows, table_width(console))
    total = sum(job_plan.to_run for job_plan in plans)
    console.print(
        f"{total} run(s) to run; add --verbose for every run.", markup=False, highlight=False
    )


# ---- tables ----------------------------------------------------------------------------------

# A cell: its text, or its text and a rich style name; a list of them reads as one cell.
Cell = str | tuple[str, str] | list[str | tuple[str, str]]
_GAP = "  "  # between columns
OVERDUE_AFTER = timedelta(minutes=2)  # a next due this far past is marked overdue
# How the dry run's actions show (rich style names); the others are dim.
ACTION_COLOURS = {
    Action.RUN: "green",
    Action.RETRY: "cyan",
    Action.WAITING: "yellow",
    Action.MISSED: "red",
    Action.OVERLAP: "yellow",
}
_NARROWEST_LAST = 30  # the last column wraps; with less room, it gets a line of its own
_DETAIL_INDENT = "      "


@dataclass(frozen=True, slots=True)
class Column:
    """A table's column. Narrow, a column with `drop` > 0 is left out (the highest first),
    and a `spill` column moves to the row's detail line, under the row."""

    name: str
    drop: int = 0
    spill: bool = False


def _print_grid(
    console: Console,
    columns: Sequence[Column],
    rows: Sequence[Sequence[Cell] | None],
    width: int | None = None,
) -> None:
    """A table: a header, a rule, the rows, a blank line for each None. Drawn here because
    rich's Table costs about a millisecond a row, and status draws one per job: thousands.

    The last column wraps to the room left of `width` (None: no limit). While a line would
    be too long, columns are dropped by their `drop` rank; then, if the last column would
    have less than 30 characters, it goes on a detail line of its own under its row,
    indented, and so do `spill` columns if the row is still too long. No line ends in
    blanks; no cell is ever cut."""
    paint = _painter(console)
    texts = [[_text_of(cell) for cell in row] if row is not None else None for row in rows]
    widths = [len(column.name) for column in columns]
    for row in texts:
        for index, text in enumerate(row or ()):
            widths[index] = max(widths[index], len(text))
    layout = _layout(columns, widths, width)
    shown, spilled, last = layout.shown, layout.spilled, len(columns) - 1
    wrap_at = layout.last_width
    header = [paint(columns[i].name.ljust(widths[i]), "bold") for i in shown]
    if not layout.detail_line:
        header[-1] = paint(columns[last].name, "bold")
    lines = [" " + _GAP.join(header), " " + "─" * layout.rule]
    for cells, plain in zip(rows, texts, strict=True):
        if cells is None or plain is None:
            lines.append("")
            continue
        padded = [_painted(cells[i], paint) + " " * (widths[i] - len(plain[i])) for i in shown]
        if not layout.detail_line:
            wrapped = textwrap.wrap(plain[last], wrap_at) or [""]
            lines.append(" " + _GAP.join([*padded[:-1], wrapped[0]]))
            lines += [" " * layout.last_at + more for more in wrapped[1:]]
            continue
        lines.append(" " + _GAP.join(padded))
        lead = "".join(plain[i] + _GAP for i in spilled if plain[i])  # spilled cells come first
        detail = textwrap.wrap(plain[last], wrap_at, initial_indent=" " * len(lead))
        if lead:
            painted = "".join(_painted(cells[i], paint) + _GAP for i in spilled if plain[i])
            detail = [painted + (detail[0][len(lead) :] if detail else ""), *detail[1:]]
        lines += [_DETAIL_INDENT + part for part in detail]
    console.file.write("\n".join(["", *(line.rstrip() for line in lines), ""]) + "\n")
    console.file.flush()


@dataclass(frozen=True, slots=True)
class _Layout:
    shown: list[int]  # the columns on the row's line (the last one too, unless detail_line)
    spilled: list[int]  # columns moved to the detail line
    detail_line: bool  # the last column goes on a line of its own under the row
    last_width: int  # where the last column wraps
    rule: int  # the length of the rule under the header (the row's line, less the edge)
    last_at: int = 0  # where on the row's line the last column starts


def _layout(columns: Sequence[Column], widths: list[int], width: int | None) -> _Layout:
    last = len(columns) - 1
    shown = list(range(last))

    def line(indexes: list[int]) -> int:  # the row's line without the last column
        return 1 + sum(widths[i] for i in indexes) + len(_GAP) * (len(indexes) - 1)

    last_at = line(shown) + len(_GAP)
    if width is None:
        return _Layout([*shown, last], [], False, widths[last], last_at - 1 + widths[last], last_at)
    droppable = sorted((c.drop, i) for i, c in enumerate(columns[:last]) if c.drop > 0)
    room = min(widths[last], _NARROWEST_LAST)
    while droppable and line(shown) + len(_GAP) + room > width:
        shown.remove(droppable.pop()[1])
    if line(shown) + len(_GAP) + room <= width:
        last_at = line(shown) + len(_GAP)
        last_width = min(widths[last], width - last_at)
        return _Layout([*shown, last], [], False, last_width, last_at - 1 + last_width, last_at)
    spilled = []
    for index in [i for i in shown if columns[i].spill]:
        if line(shown) <= width:
            break
        shown.remove(index)
        spilled.append(index)
    last_width = max(width - len(_DETAIL_INDENT), _NARROWEST_LAST)
    return _Layout(shown, spilled, True, last_width, line(shown) - 1)


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
