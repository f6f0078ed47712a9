"""The screens of `cronflow top`: jobs, a job's runs, a run's output, the dependency graph
and the assets. Each reads through the app's Reader and looks again every REFRESH_SECONDS
(a few stat() calls), reading in full only when something was recorded, or every
REDRAW_SECONDS for the times that move on their own ("3m ago", "in 2h")."""

from __future__ import annotations

import time
from datetime import datetime
from typing import Any, Protocol

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Header, Input, RichLog, Static

from cronflow.model import RunEvent, RunStatus
from cronflow.views import actions
from cronflow.views.reading import Reader, Signature, Snapshot


class Dashboard(Protocol):
    """What the screens use of the app (views/top_app.py, which imports this module)."""

    reader: Reader

    def ask(self, action: actions.Action) -> None: ...

    def tell(self, text: str) -> None: ...


REFRESH_SECONDS = 1.0
REDRAW_SECONDS = 15.0
FOLLOW_SECONDS = 0.5  # a running run's output is read this often


class Refreshing(Screen[None]):
    """A screen that reads again when the state directory changes."""

    def on_mount(self) -> None:
        self._drawn_at = 0.0
        self._seen: Signature | None = None
        self.reload()
        self.set_interval(REFRESH_SECONDS, self._look)

    @property
    def top(self) -> Dashboard:
        return self.app  # type: ignore[return-value]

    def _look(self) -> None:
        seen = self.top.reader.signature()
        if seen != self._seen or time.monotonic() - self._drawn_at > REDRAW_SECONDS:
            self.reload()

    def reload(self) -> None:
        self._drawn_at = time.monotonic()
        self._seen = self.top.reader.signature()  # what is read now counts as seen
        self.draw()

    def draw(self) -> None:
        raise NotImplementedError


def _selected(table: DataTable[Any]) -> str | None:
    """The key of the row under the cursor (None: no rows)."""
    if not table.row_count:
        return None
    return str(table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value)


def _fill(table: DataTable[Any], rows: list[tuple[str, list[Any]]]) -> None:
    """Replace the rows, keeping the cursor on the same key when it is still there."""
    keep = _selected(table)
    table.clear()
    for key, cells in rows:
        table.add_row(*cells, key=key)
    keys = [key for key, _ in rows]
    if keep in keys:
        table.move_cursor(row=keys.index(keep))


class JobsScreen(Refreshing):
    BINDINGS = [
        Binding("r", "run_now(False)", "Run now"),
        Binding("d", "run_now(True)", "Run + after"),
        Binding("p", "pause", "Pause/resume"),
        Binding("g", "graph", "Graph"),
        Binding("a", "assets", "Assets"),
        Binding("slash", "filter", "Filter"),
        Binding("escape", "clear_filter", "Clear", show=False),
    ]
    COLUMNS = ("job", "schedule", "last run", "status", "try", "next", "streak", "recent")

    def compose(self) -> ComposeResult:
        yield Header()
        yield Static(id="summary")
        yield Input(placeholder="filter jobs by name", id="filter")
        yield DataTable(id="jobs", cursor_type="row", zebra_stripes=True)
        yield Footer()

    def on_mount(self) -> None:
        self.query_one(DataTable).add_columns(*self.COLUMNS)
        self.query_one(DataTable).focus()  # not the hidden filter
        self.snapshot: Snapshot | None = None
        super().on_mount()

    def draw(self) -> None:
        self.snapshot = self.top.reader.snapshot()
        wanted = self.query_one("#filter", Input).value.strip().lower()
        now = self.snapshot.taken_at
        rows = [
            (row.job, _job_cells(row, now))
            for row in self.snapshot.rows
            if wanted in row.job.lower()
        ]
        _fill(self.query_one(DataTable), rows)
        self.query_one("#summary", Static).update(_summary_text(self.snapshot))

    def _row(self) -> Any:
        job = _selected(self.query_one(DataTable))
        rows = self.snapshot.rows if self.snapshot else []
        return next((row for row in rows if row.job == job), None)

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        self.app.push_screen(RunsScreen(str(event.row_key.value)))

    def action_run_now(self, downstream: bool) -> None:
        row = self._row()
        if row is not None:
            self.top.ask(actions.run_now(row.job, downstream))

    def action_pause(self) -> None:
        row = self._row()
        if row is not None:
            self.top.ask(actions.pause_or_resume(row.job, row.paused is not None))

    def action_graph(self) -> None:
        self.app.push_screen(GraphScreen())

    def action_assets(self) -> None:
        self.app.push_screen(AssetsScreen())

    def action_filter(self) -> None:
        field = self.query_one("#filter", Input)
        field.add_class("shown")
        field.focus()

    def action_clear_filter(self) -> None:
        field = self.query_one("#filter", Input)
        field.value = ""
        field.remove_class("shown")
        self.query_one(DataTable).focus()

    def on_input_changed(self, event: Input.Changed) -> None:
        self.draw()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        self.query_one(DataTable).focus()


def _job_cells(row: Any, now: datetime) -> list[str]:
    marks = [
        word
        for word, holds in (
            ("paused", row.paused is not None),
            ("late", row.late),
            ("slow", row.slow),
            ("pool", row.pool_wait),
        )
        if holds
    ]
    status = row.status or "never run"
    return [
        row.job + (f" ({', '.join(marks)})" if marks else ""),
        row.schedule_words or row.schedule,
        _day_and_time(row.last_logical_time),
        status,
        f"{row.attempt}/{row.max_attempts}" if row.attempt else "-",
        "paused" if row.paused is not None else _day_and_time(row.next_due),
        str(row.failing_streak) if row.failing_streak else "",
        "".join(_letter(cell.status) for cell in row.recent[-12:]),
    ]


def _letter(status: str) -> str:
    return RunStatus(status).letter


def _day_and_time(iso: str | None) -> str:
    """ "12-04 06:15": what fits 80 columns (the runs screen gives the year)."""
    return _short(iso)[5:] if iso else "-"


def _short(iso: str | None) -> str:
    return "-" if not iso else iso[:16].replace("T", " ")


def _summary_text(snapshot: Snapshot) -> str:
    summary = snapshot.summary
    words = (
        f"{summary.failing} failing, {summary.running} running, {summary.healthy} healthy, "
        f"{summary.never_run} never run"
    )
    if summary.last_ran_at is not None:
        ago = int((snapshot.taken_at - summary.last_ran_at).total_seconds())
        words += f" · last decision {max(0, ago) // 60}m{max(0, ago) % 60:02d}s ago"
    notes = [summary.clock_warning, summary.blackout, *summary.ping_warnings]
    notes += [f"{name} is late: {why}" for name, why in summary.late_assets]
    return "\n".join([words, *(note for note in notes if note)])


class RunsScreen(Refreshing):
    """A job's runs, newest first: enter shows one's output, x runs it again."""

    BINDINGS = [
        Binding("escape", "app.pop_screen", "Back"),
        Binding("x", "rerun", "Run again"),
    ]
    COLUMNS = ("logical time", "status", "tries", "took", "exit", "kind", "ended", "why")

    def __init__(self, job: str) -> None:
        super().__init__()
        self.job = job

    def compose(self) -> ComposeResult:
        yield Header()
        yield Static(f"runs of {self.job}, newest first", id="title")
        yield DataTable(id="runs", cursor_type="row", zebra_stripes=True)
        yield Footer()

    def on_mount(self) -> None:
        self.query_one(DataTable).add_columns(*self.COLUMNS)
        self.runs: dict[str, Any] = {}
        super().on_mount()

    def draw(self) -> None:
        found = self.top.reader.runs(self.job)
        self.runs = {run.run_id: run for run in found}
        rows = [
            (
                run.run_id,
                [
                    _short(run.logical_time),
                    run.status,
                    f"{run.attempts}/{run.max_attempts}",
                    f"{run.duration_s:.1f}s" if run.duration_s is not None else "-",
                    "-" if run.exit_code is None else str(run.exit_code),
                    run.kind,
                    _short(run.ended_at),
                    run.reason,
                ],
            )
            for run in found
        ]
        _fill(self.query_one(DataTable), rows)

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        run = self.runs.get(str(event.row_key.value))
        if run is not None and run.attempts:
            self.app.push_screen(OutputScreen(self.job, run.run_id))
        elif run is not None:
            self.top.tell(f"{self.job}'s run {run.run_id} never started: no output")

    def action_rerun(self) -> None:
        run = self.runs.get(_selected(self.query_one(DataTable)) or "")
        if run is not None:
            self.top.ask(actions.rerun(self.job, run.logical_time[:10], run.status))


class OutputScreen(Screen[None]):
    """A run's output (its last try), secrets masked, followed while the run runs."""

    BINDINGS = [
        Binding("escape", "app.pop_screen", "Back"),
        Binding("e", "other_stream", "stdout/stderr"),
    ]

    def __init__(self, job: str, run_id: str) -> None:
        super().__init__()
        self.job, self.run_id = job, run_id
        self.stream, self.read_to, self.ended = "stdout", 0, False

    @property
    def top(self) -> Dashboard:
        return self.app  # type: ignore[return-value]

    def compose(self) -> ComposeResult:
        yield Header()
        yield Static(id="title")
        yield RichLog(id="output", wrap=False, highlight=False, markup=False)
        yield Footer()

    def on_mount(self) -> None:
        self.started: RunEvent = self.top.reader.started(self.job, self.run_id)
        self._show()
        self.set_interval(FOLLOW_SECONDS, self._follow)

    def _show(self) -> None:
        self.read_to, self.ended = 0, False
        self.query_one(RichLog).clear()
        self._follow()

    def _follow(self) -> None:
        """Read what was written since; once the run has ended, a last time."""
        if self.ended:
            return
        running = self.top.reader.is_running(self.started)
        read = self.top.reader.output(self.started, self.stream, self.read_to, running)
        text, self.read_to = read
        log = self.query_one(RichLog)
        for line in text.splitlines():
            log.write(line)
        self.ended = not running
        state = "running: following" if running else "ended"
        self.query_one("#title", Static).update(
            f"{self.stream} of {self.job}, run {self.run_id}, try {self.started.attempt} ({state})"
        )

    def action_other_stream(self) -> None:
        self.stream = "stderr" if self.stream == "stdout" else "stdout"
        self._show()


class GraphScreen(Refreshing):
    BINDINGS = [Binding("escape", "app.pop_screen", "Back")]

    def compose(self) -> ComposeResult:
        yield Header()
        with VerticalScroll():
            yield Static(id="graph")
        yield Footer()

    def draw(self) -> None:
        rows = self.top.reader.snapshot().rows
        self.query_one("#graph", Static).update(self.top.reader.graph(rows))


class AssetsScreen(Refreshing):
    BINDINGS = [Binding("escape", "app.pop_screen", "Back")]
    COLUMNS = ("asset", "producer", "fresh as of", "state", "why")

    def compose(self) -> ComposeResult:
        yield Header()
        yield DataTable(id="assets", cursor_type="row", zebra_stripes=True)
        yield Footer()

    def on_mount(self) -> None:
        self.query_one(DataTable).add_columns(*self.COLUMNS)
        super().on_mount()

    def draw(self) -> None:
        zone = self.top.reader.jobfile.settings.timezone
        rows = [
            (
                state.name,
                [
                    state.name,
                    state.producer or "(external)",
                    f"{state.fresh_as_of.astimezone(zone):%Y-%m-%d %H:%M}"
                    if state.fresh_as_of
                    else "-",
                    str(state.state),
                    state.why,
                ],
            )
            for state in self.top.reader.assets()
        ]
        _fill(self.query_one(DataTable), rows)
