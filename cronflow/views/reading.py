"""What `cronflow top` shows, read through the very queries `status`, `history`, `logs`,
`assets` and `graph` use (tell/): the views share one query layer, never a copy of it.

Reading is cheap enough to repeat: the index takes in only what was appended to the log
since it last looked. `Reader.signature` (a few stat() calls) tells whether anything was
recorded at all, so an idle dashboard reads nothing but file sizes and times. Each watcher
(a `top` screen, a `serve` event stream) keeps the signature it last saw: one shared "last
seen" would let one watcher take a change from another.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from cronflow.act import processes
from cronflow.decide import freshness
from cronflow.decide.freshness import AssetState
from cronflow.load.env_files import secrets_of_job
from cronflow.masking import mask_bytes
from cronflow.model import JobFile, RunEvent, RunStatus
from cronflow.state.files import NO_LINKS
from cronflow.state.layout import OVERDUE_NAME, PAUSED_NAME, WATERMARKS_NAME
from cronflow.state.store import Store
from cronflow.tell import graphs, overview, status_page

MOST_RUNS = 200  # a job's runs listed
MOST_LOG_BYTES = 1024 * 1024  # of a run's output shown (the end of it)
MOST_TIMELINE_RUNS = 5000  # runs of a day drawn on the timeline


Signature = str  # "SIZE.MTIME_NS" of each file, joined by "_" (the live page's event id)


@dataclass(frozen=True, slots=True)
class Snapshot:
    rows: list[overview.JobStatus]
    summary: overview.Overview
    taken_at: datetime


class Reader:
    """The state directory of one jobs file, as the dashboard reads it."""

    def __init__(self, jobfile: JobFile, store: Store, now: Callable[[], datetime]) -> None:
        self.jobfile, self.store, self.now = jobfile, store, now

    def signature(self) -> Signature:
        """Sizes and times of what is recorded (the log, pauses, watermarks, slow and late
        episodes): a watcher whose last signature differs has something new to read."""
        paths = [self.store.log_path] + [
            self.store.state_dir / name for name in (PAUSED_NAME, WATERMARKS_NAME, OVERDUE_NAME)
        ]
        return "_".join(_size_and_time(path) for path in paths)

    def snapshot(self) -> Snapshot:
        now = self.now()
        data = status_page.gather(
            self.jobfile, self.store, now, who_runs=processes.describe_running
        )
        return Snapshot(rows=data.rows, summary=data.summary, taken_at=now)

    def runs(self, job: str) -> list[overview.RunSummary]:
        return overview.run_history(self.jobfile, self.store.index(), jobs=[job], limit=MOST_RUNS)

    def recent_runs(self, hours: int) -> list[overview.RunSummary]:
        """The runs that started or ended in the last `hours` hours (for the timeline)."""
        start = self.now() - timedelta(hours=hours)
        # The most recently active first (whatever their logical times: a backfill of last
        # year ran today), so the window's runs come before any older.
        runs = overview.run_history(self.jobfile, self.store.index(), limit=MOST_TIMELINE_RUNS)
        return [
            run
            for run in runs
            if any(
                at and datetime.fromisoformat(at) >= start for at in (run.started_at, run.ended_at)
            )
            or (run.status == "running")
        ]

    def assets(self) -> list[AssetState]:
        return freshness.states(self.jobfile, self.store.index(), self.now())

    def graph(self, rows: list[overview.JobStatus]) -> str:
        """The dependency graph as `cronflow graph` draws it, each job with its state."""
        states = {row.job: _state_word(row) for row in rows}
        lines = []
        for line in graphs.as_text(self.jobfile).splitlines():
            name = line.lstrip("│├└─ ").split("  [")[0].removesuffix(" (see above)")
            lines.append(f"{line}  {states[name]}" if name in states and "[" in line else line)
        return "\n".join(lines)

    def started(self, job: str, run_id: str) -> RunEvent:
        """The `started` event of the run's last attempt (it holds the output paths)."""
        return overview.attempt_output(
            self.jobfile,
            self.store.index(),
            self.store.attempt_files,
            job,
            None,
            None,
            run_id,
            whole_log=lambda: self.store.read().events,
        )

    def output(
        self, started: RunEvent, stream: str, offset: int, lines_only: bool = False
    ) -> tuple[str, int]:
        """The run's output from `offset` on (its end, at most MOST_LOG_BYTES, the first
        time), secrets masked, and the offset to read from next; `lines_only`: up to the last
        whole line (the run is still writing: a secret may be cut in two)."""
        try:
            descriptor = os.open(started.output.get(stream, ""), os.O_RDONLY | NO_LINKS)
        except OSError:
            return "", offset
        with os.fdopen(descriptor, "rb") as file:
            size = os.fstat(descriptor).st_size
            offset = max(offset, size - MOST_LOG_BYTES) if offset == 0 else offset
            file.seek(offset)
            data = file.read(max(0, size - offset))
        if lines_only:
            data = data[: data.rfind(b"\n") + 1]
        secrets = secrets_of_job(self.jobfile.jobs[started.job])
        return mask_bytes(data, secrets).decode(errors="replace"), offset + len(data)

    def is_running(self, started: RunEvent) -> bool:
        latest = self.store.index().latest(started.key)
        return latest is not None and latest.status is RunStatus.RUNNING


def _state_word(row: overview.JobStatus) -> str:
    for word, holds in (
        ("paused", row.paused is not None),
        ("late", bool(row.late)),
        ("slow", bool(row.slow)),
        ("waiting for its pool", bool(row.pool_wait)),
    ):
        if holds:
            return f"({row.status or 'never run'}, {word})"
    return f"({row.status or 'never run'})"


def _size_and_time(path: Path) -> str:
    try:
        status = os.stat(path)
    except OSError:
        return "-"
    return f"{status.st_size}.{status.st_mtime_ns}"
