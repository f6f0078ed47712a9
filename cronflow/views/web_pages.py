"""The pages of `cronflow serve` beside the live status page: a job (its runs and a chart of
their durations), a run (its whole output, masked), the timeline of the last 24 hours, and
the assets' lineage. Plain HTML and SVG, escaped; each page's style is named by its hash in
its content security policy, and these pages run no script. Pure: data in, text out."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from html import escape
from urllib.parse import quote

from cronflow import __version__
from cronflow.tell.overview import RunSummary
from cronflow.tell.page_assets import digest

STYLE = (
    "body{font:14px/1.45 system-ui,sans-serif;margin:0 auto;max-width:1200px;padding:12px;"
    "color:#222}a{color:#0b57d0}nav a{margin-right:1em}table{border-collapse:collapse;width:100%}"
    "th,td{text-align:left;padding:3px 8px;border-bottom:1px solid #ddd;vertical-align:top}"
    "pre{background:#f6f6f6;padding:8px;overflow:auto;white-space:pre-wrap}"
    ".s-success{color:#2e7d32}.s-failed,.s-timed_out,.s-abandoned{color:#c62828}"
    ".s-running{color:#1565c0}svg text{font:11px system-ui,sans-serif}"
    "form.act{display:inline-block;margin:4px 8px 4px 0}input[type=password]{width:14em}"
)
POLICY = (
    f"default-src 'none'; style-src {digest(STYLE)}; img-src 'self'; base-uri 'none'; "
    "form-action 'self'; frame-ancestors 'none'"
)
TIMELINE_HOURS = 24
_BAR = {"success": "#2e7d32", "running": "#1565c0", "waiting": "#6a1b9a"}
_FAILED = "#c62828"


def page(title: str, body: str) -> str:
    """A whole page around `body` (already escaped HTML)."""
    return "\n".join(
        [
            "<!doctype html>",
            '<html lang="en"><head><meta charset="utf-8">',
            '<meta name="viewport" content="width=device-width, initial-scale=1">',
            f"<title>{escape(title)}</title><style>{STYLE}</style></head><body>",
            '<nav><a href="/">status</a><a href="/timeline">timeline</a>'
            '<a href="/assets">assets</a><a href="/api/v1/openapi.json">API</a></nav>',
            body,
            f"<footer><small>cronflow {escape(__version__)}</small></footer>",
            "</body></html>",
            "",
        ]
    )


def job_link(job: str) -> str:
    return f'<a href="/jobs/{quote(job, safe="")}">{escape(job)}</a>'


def run_link(run: RunSummary) -> str:
    href = f"/jobs/{quote(run.job, safe='')}/runs/{quote(run.run_id, safe='')}"
    return f'<a href="{href}">{escape(run.logical_time[:16].replace("T", " "))}</a>'


def job_page(job: str, description: str, runs: Sequence[RunSummary], actions: str) -> str:
    """A job: its runs, newest first, each a link to its output; a chart of their durations."""
    rows = "".join(
        f'<tr><td>{run_link(run)}</td><td class="s-{escape(run.status)}">{escape(run.status)}'
        f"</td><td>{run.attempts}/{run.max_attempts}</td><td>{_took(run)}</td>"
        f"<td>{'' if run.exit_code is None else run.exit_code}</td><td>{escape(run.kind)}</td>"
        f"<td>{escape(run.reason)}</td></tr>"
        for run in runs
    )
    body = (
        f"<h1>{escape(job)}</h1>"
        + (f"<p>{escape(description)}</p>" if description else "")
        + actions
        + "<h2>Durations</h2>"
        + duration_chart(runs)
        + "<h2>Runs, newest first</h2><table><thead><tr><th>logical time</th><th>status</th>"
        "<th>tries</th><th>took</th><th>exit</th><th>kind</th><th>why</th></tr></thead>"
        f"<tbody>{rows or '<tr><td colspan=7>no runs yet</td></tr>'}</tbody></table>"
    )
    return page(f"cronflow: {job}", body)


def _took(run: RunSummary) -> str:
    return "" if run.duration_s is None else f"{run.duration_s:.1f}s"


def run_page(run: RunSummary, streams: Sequence[tuple[str, str]]) -> str:
    """A run: what it was, how it ended, and its last try's output, whole (masked)."""
    facts = (
        f"<p>{job_link(run.job)} for {escape(run.logical_time)}: "
        f'<b class="s-{escape(run.status)}">{escape(run.status)}</b>, try {run.attempts} of '
        f"{run.max_attempts}, {escape(run.kind)}"
        + (f", exit status {run.exit_code}" if run.exit_code is not None else "")
        + (f". {escape(run.reason)}" if run.reason else "")
        + f"</p><p>run id <code>{escape(run.run_id)}</code></p>"
    )
    outputs = "".join(
        f'<h2 id="{name}">{name}</h2><pre>{escape(text) or "(empty)"}</pre>'
        for name, text in streams
    )
    return page(f"cronflow: {run.job} {run.logical_time}", facts + outputs)


def duration_chart(runs: Sequence[RunSummary], width: int = 720, height: int = 160) -> str:
    """Each run's duration (its last try), oldest on the left, as bars on a shared scale."""
    timed = [run for run in reversed(runs) if run.duration_s is not None][-60:]
    if not timed:
        return "<p>no finished run yet</p>"
    longest = max(run.duration_s or 0 for run in timed) or 1.0
    step = width / max(len(timed), 30)  # a few runs make thin bars, not a wall
    bars = []
    for index, run in enumerate(timed):
        tall = max(1.0, (run.duration_s or 0) / longest * (height - 20))
        colour = _BAR.get(run.status, _FAILED)
        bars.append(
            f'<rect x="{index * step:.1f}" y="{height - tall:.1f}" width="{max(1.0, step - 2):.1f}"'
            f' height="{tall:.1f}" fill="{colour}"><title>{escape(run.logical_time)}: '
            f"{run.duration_s:.1f}s, {escape(run.status)}</title></rect>"
        )
    return (
        f'<svg class="durations" width="{width}" height="{height}" role="img" '
        f'aria-label="durations of the last {len(timed)} runs, longest {longest:.1f}s">'
        f'<text x="2" y="12">longest {longest:.1f}s</text>{"".join(bars)}</svg>'
    )


def timeline_page(runs: Sequence[RunSummary], now: datetime, jobs: Sequence[str]) -> str:
    """A Gantt of the runs of the last TIMELINE_HOURS hours: a lane a job, a bar a run from
    its start to its end (to now while it runs), coloured by how it ended."""
    start = now - timedelta(hours=TIMELINE_HOURS)
    width, lane, left = 960, 22, 160
    scale = (width - left) / (TIMELINE_HOURS * 3600)
    lanes = {job: index for index, job in enumerate(jobs)}
    shown = [run for run in runs if run.job in lanes and run.started_at is not None]
    parts = []
    for hour in range(TIMELINE_HOURS + 1):
        x = left + hour * 3600 * scale
        at = start + timedelta(hours=hour)
        parts.append(
            f'<line x1="{x:.1f}" y1="14" x2="{x:.1f}" y2="{14 + lane * len(lanes)}" '
            'stroke="#ddd"/>'
            + (f'<text x="{x + 2:.1f}" y="11">{at:%H:%M}</text>' if hour % 3 == 0 else "")
        )
    for job, index in lanes.items():
        parts.append(f'<text x="2" y="{30 + index * lane}">{escape(job)}</text>')
    for run in shown:
        begun = max(datetime.fromisoformat(run.started_at or ""), start)
        ended = datetime.fromisoformat(run.ended_at) if run.ended_at else now
        if ended < start or begun > now:
            continue
        wide = max(3.0, (ended - begun).total_seconds() * scale)  # a second's run shows
        x = min(left + (begun - start).total_seconds() * scale, width - wide)
        colour = _BAR.get(run.status, _FAILED)
        href = f"/jobs/{quote(run.job, safe='')}/runs/{quote(run.run_id, safe='')}"
        parts.append(
            f'<a href="{href}"><rect class="run" data-job="{escape(run.job)}" '
            f'data-status="{escape(run.status)}" x="{x:.1f}" y="{18 + lanes[run.job] * lane}" '
            f'width="{wide:.1f}" height="{lane - 6}" fill="{colour}"><title>{escape(run.job)} '
            f"{escape(run.logical_time)}: {escape(run.status)}, {_took(run)}</title></rect></a>"
        )
    svg = (
        f'<svg class="timeline" width="{width}" height="{24 + lane * len(lanes)}" role="img" '
        f'aria-label="runs of the last {TIMELINE_HOURS} hours">{"".join(parts)}</svg>'
    )
    words = (
        f"<h1>The last {TIMELINE_HOURS} hours</h1><p>From {start:%Y-%m-%d %H:%M} to "
        f"{now:%Y-%m-%d %H:%M} ({escape(str(now.tzinfo))}): a bar a run, from its start to "
        "its end; click one for its output.</p>"
    )
    return page("cronflow: timeline", words + svg)


def assets_page(lineage: str, table: str) -> str:
    body = f"<h1>Assets</h1>{table}<h2>Lineage</h2><pre>{escape(lineage)}</pre>"
    return page("cronflow: assets", body)
