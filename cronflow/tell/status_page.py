"""The HTML status page: `cronflow status --html FILE` and `[cronflow] html_file`.

One self-contained file: its style and script are inline, it loads nothing (its Content
Security Policy forbids it) and it reads well with scripts off: the grid of jobs by runs,
each run a cell coloured *and* lettered as in the terminal, with its details in its title;
the dependency graph drawn as inline SVG. With scripts on: details on hover or focus,
filters by job and state, times relative to now that keep themselves current.

Everything that comes from jobs.toml or a run is escaped where it is written (text and
attribute values); the script holds no data at all, it only reads the page it is in.
The time of the last decision sits between `<!--tick-->` markers, so that an idle tick can
renew it without rendering the page (see state/idle.py).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from html import escape
from zoneinfo import ZoneInfo

from cronflow import __version__
from cronflow.decide import freshness, overdue
from cronflow.decide.dag import dependency_graph
from cronflow.load.env_files import secrets_of_job
from cronflow.model import Job, JobFile, RunEvent, RunIf
from cronflow.state.index import RunIndex
from cronflow.state.layout import LAST_TICK, PAGE_LOCK
from cronflow.state.locks import Locks
from cronflow.state.outputs import tail_of
from cronflow.state.pool_slots import PoolSlots
from cronflow.state.store import Store
from cronflow.tell import overview, ping_requests
from cronflow.tell.derived_files import Refresher
from cronflow.tell.page_assets import POLICY, SCRIPT, STYLE
from cronflow.tell.tick_marks import tick_html

PAGE_RUNS = 30  # runs of each job in the grid
PAGE_MODE = 0o640  # its owner, and its directory's group (a web server's): never everyone


@dataclass(frozen=True, slots=True)
class StatusData:
    """What `status` shows, in every form (terminal, JSON, this page)."""

    rows: list[overview.JobStatus]
    summary: overview.Overview
    index: RunIndex


def gather(
    jobfile: JobFile,
    store: Store,
    now: datetime,
    *,
    who_runs: Callable[[RunEvent], str],
    include_disabled: bool = False,
    jobs: Sequence[str] = (),
) -> StatusData:
    """The rows and the header of `status`, read from the state directory."""
    index = store.index()
    episodes = overdue.still_holding(store.overdue(), index)
    rows = overview.summarise(
        jobfile,
        index,
        store.read_watermarks(),
        now,
        who_runs=who_runs,
        include_disabled=include_disabled,
        jobs=jobs,
        pauses=store.read_pauses(),
        episodes=episodes,
        pool_states={
            name: PoolSlots(store.lock_dir).state(name, pool.slots)
            for name, pool in jobfile.pools.items()
        },
    )
    summary = overview.overview(
        jobfile,
        rows,
        store.read_stamp(LAST_TICK),
        now,
        index.clock_set_back(),
        overview.ping_notes(
            index.last_pings(),
            ping_requests.read_heartbeat(str(store.state_dir)),
            set(jobfile.jobs),
        ),
        episodes,
    )
    return StatusData(rows, summary, index)


def page_of(
    jobfile: JobFile, store: Store, now: datetime, who_runs: Callable[[RunEvent], str]
) -> str:
    """The page for the state directory as it is now."""
    return page_from(jobfile, store, gather(jobfile, store, now, who_runs=who_runs), now)


def page_from(jobfile: JobFile, store: Store, data: StatusData, now: datetime) -> str:
    """The page for what `gather` read; each job's newest PAGE_RUNS runs are read too, and
    for a failing job, the last lines of its newest failed try's stderr."""
    runs = {row.job: data.index.recent_runs(row.job, PAGE_RUNS) for row in data.rows}
    stderr = {}
    for row in data.rows:
        failed = [run for run in runs[row.job] if run.status.is_failure and run.attempt > 0]
        if row.failing_streak and failed:
            newest = failed[-1]
            files = store.attempt_files(newest.job, newest.run_id, newest.attempt)
            job = jobfile.jobs.get(row.job)
            secrets = secrets_of_job(job) if job else ()  # masked again, as `logs` does
            stderr[row.job] = tail_of(files["stderr"], secrets=secrets)
    found = freshness.states(jobfile, data.index, now) if jobfile.assets else []
    return render(jobfile, data.rows, data.summary, runs, now, stderr, found)


def page_refresher(
    jobfile: JobFile, store: Store, now: Callable[[], datetime], who_runs: Callable[[RunEvent], str]
) -> Refresher:
    """Keeps [cronflow] html_file current. Readable by its owner and its directory's group
    only (0640): stderr tails can hold what a job printed."""
    assert jobfile.settings.html_file is not None
    return Refresher(
        jobfile.settings.html_file,
        lambda: page_of(jobfile, store, now(), who_runs),
        locks=Locks(store.lock_dir),
        lock_name=PAGE_LOCK,
        mode=PAGE_MODE,
    )


# ---- the page ---------------------------------------------------------------------------------


def render(
    jobfile: JobFile,
    rows: Sequence[overview.JobStatus],
    summary: overview.Overview,
    runs: Mapping[str, Sequence[RunEvent]],
    now: datetime,
    stderr: Mapping[str, str] | None = None,
    asset_states: Sequence[freshness.AssetState] = (),
) -> str:
    """The whole page, as text. `stderr`: the last lines of a failing job's stderr;
    `asset_states`: the assets' freshness (a section of its own when there are any)."""
    title = f"cronflow: {jobfile.path.name}"
    ordered = sorted(rows, key=_failing_first)
    return "\n".join(
        [
            "<!doctype html>",
            '<html lang="en">',
            "<head>",
            '<meta charset="utf-8">',
            '<meta name="viewport" content="width=device-width, initial-scale=1">',
            f'<meta http-equiv="Content-Security-Policy" content="{POLICY}">',
            f"<title>{escape(title)}</title>",
            f"<style>{STYLE}</style>",
            "</head>",
            "<body>",
            _header(jobfile, summary),
            _controls(),
            _grid(jobfile, ordered, runs, stderr or {}),
            _assets(asset_states),
            _graph(jobfile, rows),
            f'<footer>Written by cronflow {escape(__version__)} at <time datetime="'
            f'{now.astimezone(UTC).isoformat()}">{now.astimezone(UTC):%Y-%m-%d %H:%M:%S}Z'
            "</time>. This page loads nothing: everything on it is in this one file.</footer>",
            '<div id="detail" role="status" hidden></div>',
            f"<script>{SCRIPT}</script>",
            "</body>",
            "</html>",
            "",
        ]
    )


def _failing_first(row: overview.JobStatus) -> int:
    """Failing jobs first, then running ones, then the rest (each in flow order: sorted
    keeps it)."""
    return 0 if row.failing_streak > 0 else 1 if row.status == "running" else 2


def _state_of(row: overview.JobStatus) -> str:
    if row.failing_streak > 0:
        return "failing"
    if row.late:
        return "late"
    if row.slow:
        return "slow"
    if row.status == "running":
        return "running"
    if row.paused is not None:
        return "paused"
    return "healthy" if row.status else "never-run"


def _header(jobfile: JobFile, summary: overview.Overview) -> str:
    counts = [
        ("failing", summary.failing),
        ("running", summary.running),
        ("healthy", summary.healthy),
        ("never-run", summary.never_run),
    ]
    badges = " ".join(
        f'<span class="badge {name}"><b>{count}</b> {name}</span>' for name, count in counts
    )
    warnings = [summary.clock_warning, *summary.ping_warnings, *summary.calendar_warnings]
    warnings += [f"{name} is late: {why}" for name, why in summary.late_assets]
    warnings += [f"held: {summary.blackout}"] if summary.blackout else []
    return "\n".join(
        [
            "<header>",
            f"<h1>cronflow <small>{escape(str(jobfile.path))}</small></h1>",
            f'<p class="summary">{badges}</p>',
            "<!--tick-->" + tick_html(summary.last_ran_at, stale=summary.stale) + "<!--/tick-->",
            *(f'<p class="warn">warning: {escape(text)}</p>' for text in warnings if text),
            '<p class="hint">Commands on this page are for this jobs file: add '
            f"<code>--jobs {escape(str(jobfile.path))}</code> where it is not found by "
            "itself.</p>",
            "</header>",
        ]
    )


def _controls() -> str:
    """Filters, shown by the script (they need it)."""
    states = "".join(
        f'<option value="{state}">{state.replace("-", " ")}</option>'
        for state in ("all", "failing", "late", "slow", "running", "paused", "healthy", "never-run")
    )
    return (
        '<form id="filters" hidden><label>Job <input id="filter-job" type="search" '
        'placeholder="name contains…" autocomplete="off"></label> '
        f'<label>State <select id="filter-state">{states}</select></label> '
        '<span id="shown"></span></form>'
    )


def _grid(
    jobfile: JobFile,
    rows: Sequence[overview.JobStatus],
    runs: Mapping[str, Sequence[RunEvent]],
    stderr: Mapping[str, str],
) -> str:
    head = (
        "<thead><tr><th>Job</th><th>Status</th><th>Failing</th><th>Last run</th>"
        f"<th>Next due</th><th>Runs, oldest first (at most {PAGE_RUNS})</th></tr></thead>"
    )
    body = "\n".join(
        _grid_row(jobfile, row, runs.get(row.job, ()), stderr.get(row.job, "")) for row in rows
    )
    return (
        '<main><h2>Jobs</h2><div class="scroll"><table class="grid">'
        f"{head}<tbody>\n{body}\n</tbody></table></div></main>"
    )


def _grid_row(
    jobfile: JobFile, row: overview.JobStatus, runs: Sequence[RunEvent], stderr: str
) -> str:
    job = jobfile.jobs.get(row.job)
    description = job.description if job else ""
    status = row.status or "never run"
    cells = "".join(_run_cell(row, run) for run in runs) or '<span class="none">no runs yet</span>'
    reason = f'<div class="reason">{escape(row.reason)}</div>' if row.reason else ""
    if stderr:
        reason += (
            f"<details><summary>last lines of stderr</summary><pre>{escape(stderr)}</pre></details>"
        )
    about = f'<div class="about">{escape(description)}</div>' if description else ""
    if row.paused is not None:
        about += f'<div class="paused">{escape(row.paused.words)}</div>'
    for word, detail in (("late", row.late), ("slow", row.slow)):
        if detail:
            about += f'<div class="overdue">{word}: {escape(detail)}</div>'
    if row.pool_wait:
        about += f'<div class="paused">{escape(row.pool_wait)}</div>'
    next_due = "paused" if row.paused is not None else _time(row.next_due)
    schedule = escape(row.schedule + (f" ({row.schedule_words})" if row.schedule_words else ""))
    return (
        f'<tr data-job="{escape(row.job)}" data-state="{_state_of(row)}">'
        f'<td data-label="Job"><b class="name">{escape(row.job)}</b>{about}'
        f'<div class="schedule">{schedule}, {escape(row.timezone)}</div></td>'
        f'<td data-label="Status"><span class="word s-{escape(row.status or "none")}">'
        f"{escape(status)}</span>{reason}</td>"
        f'<td data-label="Failing" class="streak">{row.failing_streak or ""}</td>'
        f'<td data-label="Last run">{_time(row.ended_at or row.last_logical_time)}</td>'
        f'<td data-label="Next due">{next_due}</td>'
        f'<td data-label="Runs" class="runs">{cells}</td></tr>'
    )


def _run_cell(row: overview.JobStatus, run: RunEvent) -> str:
    """One run: its letter on its status's colour, and in its title when it was for, how it
    ended, which try, how long, the exit status and the command that prints its output."""
    local = run.logical_time.astimezone(_zone(row))
    facts = [f"{local:%Y-%m-%d %H:%M}{local:%z}", str(run.status)]
    if run.attempt:
        facts.append(f"try {run.attempt}/{run.max_attempts}")
    if run.duration_s is not None:
        facts.append(f"{run.duration_s:.1f}s")
    if run.exit_code is not None:
        facts.append(f"exit {run.exit_code}")
    lines = [" · ".join(facts)]
    if run.reason and run.exit_code is None:
        lines.append(run.reason)
    if run.attempt > 0 and run.run_id:
        lines.append(f"cronflow logs {row.job} --run {run.run_id}")
    return (
        f'<span class="cell s-{run.status}" title="{escape(chr(10).join(lines))}">'
        f"{escape(run.status.letter)}</span>"
    )


def _zone(row: overview.JobStatus) -> ZoneInfo:
    return ZoneInfo(row.timezone)


def _time(iso: str | None) -> str:
    if iso is None:
        return '<span class="none">—</span>'
    moment = datetime.fromisoformat(iso)
    return (
        f'<time datetime="{escape(moment.astimezone(UTC).isoformat())}" title="{escape(iso)}">'
        f"{moment:%Y-%m-%d %H:%M} {escape(moment.strftime('%z'))}</time>"
    )


def _assets(states: Sequence[freshness.AssetState]) -> str:
    """What jobs produce, and how fresh it is (see `cronflow assets`)."""
    if not states:
        return ""
    rows = []
    for state in states:
        fresh = (
            _time(state.fresh_as_of.isoformat())
            if state.fresh_as_of
            else '<span class="none">—</span>'
        )
        rows.append(
            f'<tr data-asset="{escape(state.name)}"><td><b>{escape(state.name)}</b></td>'
            f"<td>{escape(state.producer or '(external)')}</td><td>{fresh}</td>"
            f'<td><span class="word a-{escape(state.state)}">{escape(state.state)}</span></td>'
            f'<td class="reason">{escape(state.why)}</td>'
            f"<td>{escape(', '.join(state.consumers) or '—')}</td></tr>"
        )
    return (
        '<section><h2>Assets</h2><div class="scroll"><table class="grid assets"><thead><tr>'
        "<th>Asset</th><th>Producer</th><th>Fresh as of</th><th>State</th><th>Why</th>"
        f"<th>Used by</th></tr></thead><tbody>{''.join(rows)}</tbody></table></div></section>"
    )


# ---- the dependency graph, by levels ------------------------------------------------------------

_NODE_W, _NODE_H, _GAP_X, _GAP_Y, _MARGIN = 180, 30, 56, 14, 12


def _graph(jobfile: JobFile, rows: Sequence[overview.JobStatus]) -> str:
    """Each flow in a band of its own; in it, each job in the column of its level (one more
    than its deepest upstream), ordered to follow its upstreams; arrows point downstream.
    An arrow that skips levels arches over the band, clear of the jobs it passes."""
    status = {row.job: row.status or "none" for row in rows}
    graph = dependency_graph(jobfile)
    positions: dict[str, tuple[float, float]] = {}
    level_of: dict[str, int] = {}
    top, widest = float(_MARGIN), 0
    for flow in overview.dependency_groups(jobfile):
        columns = _levels(flow, graph)
        level_of.update({name: level for level, names in enumerate(columns) for name in names})
        span = max(
            (level_of[name] - level_of[up] for name in flow for up in graph[name]), default=1
        )
        top += _arch(span) if span > 1 else 0  # headroom for the arches
        for level, names in enumerate(columns):
            for index, name in enumerate(names):
                left = float(_MARGIN + level * (_NODE_W + _GAP_X))
                positions[name] = (left, top + index * (_NODE_H + _GAP_Y))
        widest = max(widest, len(columns))
        top += max(map(len, columns)) * (_NODE_H + _GAP_Y) + _GAP_Y
    width = _MARGIN * 2 + widest * (_NODE_W + _GAP_X) - _GAP_X
    edges = []
    for name, upstreams in graph.items():
        for upstream in upstreams:
            span = level_of[name] - level_of[upstream]
            edges.append(_edge(positions[upstream], positions[name], span, jobfile.jobs[name]))
    nodes = []
    for name, (x, y) in positions.items():
        label = name if len(name) <= 22 else name[:21] + "…"
        nodes.append(
            f'<g class="node s-{escape(status.get(name, "none"))}" data-job="{escape(name)}">'
            f"<title>{escape(name)}: {escape(status.get(name, 'none'))}</title>"
            f'<rect x="{x:g}" y="{y:g}" width="{_NODE_W}" height="{_NODE_H}" rx="5"/>'
            f'<text x="{x + 10:g}" y="{y + 20:g}">{escape(label)}</text></g>'
        )
    return (
        '<section><h2>Dependencies</h2><div class="scroll">'
        f'<svg class="graph" width="{width:g}" height="{top:g}" viewBox="0 0 {width:g} {top:g}" '
        'role="img" aria-label="dependency graph">'
        '<defs><marker id="arrow" viewBox="0 0 8 8" refX="7" refY="4" markerWidth="7" '
        'markerHeight="7" orient="auto"><path d="M0,0 L8,4 L0,8 z"/></marker></defs>'
        f'<g class="edges">{"".join(edges)}</g>{"".join(nodes)}</svg></div></section>'
    )


def _arch(span: int) -> float:
    """How high an arrow skipping `span - 1` levels rises above the band's first row."""
    return 12.0 + 6.0 * (span - 1)


def _edge(
    upstream: tuple[float, float], downstream: tuple[float, float], span: int, job: Job
) -> str:
    """An arrow into `job`: an S-curve to the next level, an arch over the band further on;
    dashed and saying the rule when the job's run_if is not all_success."""
    (x1, y1), (x2, y2) = upstream, downstream
    if span <= 1:
        start, end = (x1 + _NODE_W, y1 + _NODE_H / 2), (x2 - 4, y2 + _NODE_H / 2)
        bend = (end[0] - start[0]) / 2
        first, second = (start[0] + bend, start[1]), (end[0] - bend, end[1])
        classes = []
    else:  # from the top of the upstream job over the band to the top of the downstream one
        start, end = (x1 + _NODE_W * 0.75, y1), (x2 + _NODE_W * 0.25, y2 - 3)
        crest = min(y1, y2) - _arch(span)
        first, second = (start[0], crest), (end[0], crest)
        classes = ["long"]
    rule = ""
    if job.run_if is not RunIf.ALL_SUCCESS:
        classes.append("rule")
        rule = f"<title>{escape(job.name)}: run_if {job.run_if}</title>"
    shape = (
        f"M{start[0]:g},{start[1]:g} C{first[0]:g},{first[1]:g} "
        f"{second[0]:g},{second[1]:g} {end[0]:g},{end[1]:g}"
    )
    attribute = f' class="{" ".join(classes)}"' if classes else ""
    return f'<path{attribute} d="{shape}">{rule}</path>'


def _levels(flow: list[str], graph: Mapping[str, Sequence[str]]) -> list[list[str]]:
    """The flow's jobs by level (flow is in dependency order), each level ordered by where
    its jobs' upstreams stand in the level before (fewer crossing arrows)."""
    level: dict[str, int] = {}
    for name in flow:
        level[name] = 1 + max((level[up] for up in graph[name] if up in level), default=-1)
    columns: list[list[str]] = [[] for _ in range(max(level.values()) + 1)]
    for name in flow:
        columns[level[name]].append(name)
    place: dict[str, int] = {}
    for column in columns:
        column.sort(
            key=lambda name: sum(place.get(up, 0) for up in graph[name]) / max(1, len(graph[name]))
        )
        place.update({name: index for index, name in enumerate(column)})
    return columns
