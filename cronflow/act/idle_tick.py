"""The idle tick: a one-shot `cronflow run` that finds nothing due, answered from the idle
stamp (state/idle_stamp.py says when it may be trusted) before the command line framework
loads. It does what a full tick that finds nothing due does, and nothing else: it writes the
heartbeat stamp, prints the warnings every tick prints, renews the tick marks of the derived
files and pings heartbeat_url."""

from __future__ import annotations

import contextlib
import os
import sys
from datetime import UTC, datetime

from cronflow.state import idle_stamp
from cronflow.state.files import write_private
from cronflow.state.layout import LAST_TICK
from cronflow.tell import tick_marks


def answer(jobs_path: str, now: datetime | None = None) -> bool:
    """True when the stamp shows nothing can be due now: the heartbeat is written and the
    warnings printed, as a full tick would. False (nothing done): run the full tick."""
    now = now or datetime.now(UTC)
    stamp = idle_stamp.trusted(os.path.abspath(jobs_path), now)
    if stamp is None:
        return False
    state_dir, fields = stamp.state_dir, stamp.fields
    # As in a full tick, a heartbeat that cannot be written only steers status's warning.
    with contextlib.suppress(OSError):
        write_private(os.path.join(state_dir, LAST_TICK), (now.isoformat() + "\n").encode())
    for warning in stamp.warnings:
        print(f"cronflow: warning: {warning}", file=sys.stderr)
    if "metrics" in fields:
        tick_marks.renew_tick_metric(fields["metrics"], now.timestamp(), state_dir)
    if "page" in fields:
        tick_marks.renew_page_tick(fields["page"], now, state_dir)
    if "heartbeat" in fields:
        _ping_heartbeat(fields["heartbeat"], state_dir)
    return True


def _ping_heartbeat(field: str, state_dir: str) -> None:
    protocol, timeout, url = (field.split(" ", 2) + ["", ""])[:3]
    with contextlib.suppress(ValueError):
        from cronflow.tell import ping_requests

        ping_requests.heartbeat(url, protocol, state_dir, timeout=float(timeout))
