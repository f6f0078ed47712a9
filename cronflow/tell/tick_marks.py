"""When cronflow last ticked, as the derived files show it: the tick line of metrics_file and
the tick paragraph of html_file. A full tick writes them with the rest of each file; an idle
tick renews only these (nothing else can have changed: the run log has not). Imports nothing
heavy (the idle tick uses it)."""

from __future__ import annotations

import os
from collections.abc import Callable
from datetime import UTC, datetime

from cronflow.state.files import NO_LINKS, no_links, replace_whole
from cronflow.state.layout import METRICS_LOCK, PAGE_LOCK, lock_file

TICK_METRIC = "cronflow_tick_last_timestamp_seconds"  # the line of metrics_file a tick renews
TICK_START, TICK_END = "<!--tick-->", "<!--/tick-->"  # where html_file says when cronflow ticked


def renew_tick_metric(path: str, at: float, state_dir: str) -> None:
    """Set the tick line of a metrics file to `at`, the rest as it was (nothing else can
    have changed: the run log has not)."""

    def renewed(text: str) -> str:  # lines end at \n only, as Prometheus reads them
        return "\n".join(
            line.rpartition(" ")[0] + " " + repr(round(at, 6))
            if line.startswith((TICK_METRIC + "{", TICK_METRIC + " "))
            else line
            for line in text.split("\n")
        )

    _renew(path, renewed, state_dir, METRICS_LOCK)


def renew_page_tick(path: str, at: datetime, state_dir: str) -> None:
    """Set when cronflow last ticked on the status page (html_file), the rest as it was."""

    def renewed(text: str) -> str:
        before, start, rest = text.partition(TICK_START)
        _, end, after = rest.partition(TICK_END)
        if not (start and end):
            return text
        return before + start + tick_html(at, stale=False) + end + after

    _renew(path, renewed, state_dir, PAGE_LOCK)


def tick_html(last: datetime | None, stale: bool) -> str:
    """The page's words on when cronflow last decided what was due (status_page and the
    idle tick write them); the page's script shows the warning again once the time is old."""
    if last is None:
        said = "cronflow has not decided anything by the clock here yet."
    else:
        moment = last.astimezone(UTC)
        said = (
            f'cronflow last decided what was due <time datetime="{moment.isoformat()}">'
            f"{moment:%Y-%m-%d %H:%M:%S}Z</time>."
        )
    hidden = "" if stale else " hidden"
    return (
        f'<p class="tick">{said}</p><p class="warn" id="stale-warning"{hidden}>warning: no '
        "tick for a while: is the cron line or the daemon still running?</p>"
    )


def _renew(path: str, renewed: Callable[[str], str], state_dir: str, lock: str) -> None:
    """Replace a file with `renewed(its text)`, whole (a temporary file, then a rename, with
    the file's own mode and group), under its writers' lock, so that it never puts back what
    is older than another writer's."""
    lock_path = os.path.join(state_dir, lock_file(lock))
    try:
        descriptor = os.open(lock_path, os.O_RDONLY | os.O_CREAT | NO_LINKS, 0o600)
    except OSError:
        return  # written again by the next full tick
    try:
        import fcntl

        fcntl.flock(descriptor, fcntl.LOCK_EX)
        with open(path, encoding="utf-8", newline="", opener=no_links) as file:
            text = file.read()
            was = os.fstat(file.fileno())
        new = renewed(text)
        if new != text:
            replace_whole(path, new.encode(), mode=was.st_mode & 0o777, group=was.st_gid)
    except OSError:
        pass  # written again by the next full tick
    finally:
        os.close(descriptor)
