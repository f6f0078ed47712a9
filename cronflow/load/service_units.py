"""Where the systemd service of a jobs file keeps its state, read from the unit files that
`cronflow systemd install` wrote, so that a command run from a shell uses the same state
directory as the service: one jobs file, one state directory, whoever runs it.

A unit names its jobs file (`--jobs PATH` on its ExecStart line) and its state directory
(`Environment=CRONFLOW_STATE_DIR=%S/NAME`, where systemd's %S is /var/lib, or the user's
state directory). Only a unit file that nobody but root and this user can change counts:
it steers where cronflow writes.
"""

from __future__ import annotations

import os
import shlex
from pathlib import Path

from cronflow.load import trust
from cronflow.load.host_facts import host_question

STATE_LINE = "Environment=CRONFLOW_STATE_DIR=%S/"


def state_root(user: bool) -> Path:
    """What systemd's %S stands for: /var/lib, or the user's $XDG_STATE_HOME."""
    if not user:
        return Path("/var/lib")
    return Path(os.environ.get("XDG_STATE_HOME") or Path.home() / ".local" / "state")


def unit_directory(user: bool) -> Path:
    """Where systemd looks for units the administrator (or, with --user, the user) adds."""
    if not user:
        return Path("/etc/systemd/system")
    config_home = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(config_home) / "systemd" / "user"


def units_of(jobs: Path, user: bool) -> list[tuple[Path, Path]]:
    """(unit file, state directory) of each installed cronflow service of `jobs` (an
    absolute path) that keeps its state where systemd puts services' state."""
    found = []
    for unit in sorted(unit_directory(user).glob("cronflow*.service")):
        try:
            text = unit.read_text()
        except OSError:
            continue
        if f"--jobs {shlex.quote(str(jobs))}\n" not in text:
            continue
        for line in text.splitlines():
            if line.startswith(STATE_LINE):
                found.append((unit, state_root(user) / line.removeprefix(STATE_LINE)))
    return found


@host_question
def service_state_dir(jobs: Path, euid: int) -> tuple[Path, Path] | None:
    """(state directory, unit file) of this user's service of `jobs`: root's system units
    (then root's user units), anyone else's user units; None if there is none, or if its
    unit file could be changed by someone else (then the default stands)."""
    for user in (False, True) if euid == 0 else (True,):
        for unit, state_dir in units_of(jobs, user):
            if not trust.untrusted(unit, euid):
                return state_dir, unit
    return None
