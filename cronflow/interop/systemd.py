"""systemd units for cronflow: the daemon as a service, or one-shot runs from a timer."""

from __future__ import annotations

import re
import shlex
from datetime import timedelta
from pathlib import Path

from cronflow.load.service_units import units_of
from cronflow.model import STOP_KILL_GRACE

DAEMON_SERVICE = """\
[Unit]
Description=cronflow{named}: cron for jobs that depend on each other
{after}
[Service]
# The daemon says READY=1 once it has loaded the jobs file.
Type=notify
NotifyAccess=main
ExecStart={command} daemon --jobs {jobs}
{state}ExecReload=/bin/kill -HUP $MAINPID
Restart=on-failure
RestartSec=5s
# SIGTERM to cronflow alone: it stops starting runs, waits shutdown_grace for running jobs,
# then stops their process groups and records them. systemd kills what is left after that.
KillMode=mixed
TimeoutStopSec={stop_timeout}

[Install]
WantedBy={wanted_by}
"""

RUN_SERVICE = """\
[Unit]
Description=cronflow{named}: run the jobs that are due now
{after}
[Service]
Type=oneshot
ExecStart={command} run --jobs {jobs}
{state}"""

RUN_TIMER = """\
[Unit]
Description=cronflow{named}: decide every minute what is due

[Timer]
OnCalendar=*-*-* *:*:00
AccuracySec=1s
# After downtime, run once at boot; cronflow's catch-up policy decides what that runs.
Persistent=true

[Install]
WantedBy=timers.target
"""

SERVE_SERVICE = """\
[Unit]
Description=cronflow{named}: the dashboard in the browser, read-only, on 127.0.0.1:8080
{after}
[Service]
ExecStart={command} serve --listen 127.0.0.1:8080 --jobs {jobs}
{state}Restart=on-failure
RestartSec=5s

[Install]
WantedBy={wanted_by}
"""

NETWORK = "After=network-online.target\nWants=network-online.target\n"
# Where systemd keeps a service's state (%S: /var/lib, or $XDG_STATE_HOME for --user):
# StateDirectory= creates it for the service, CRONFLOW_STATE_DIR points cronflow there.
STATE = """\
# State in %S/{directory} (/var/lib/..., or ~/.local/state/... for --user). To read it:
# CRONFLOW_STATE_DIR=<that directory> cronflow status --jobs <the jobs file>
StateDirectory={directory}
StateDirectoryMode=0700
Environment=CRONFLOW_STATE_DIR=%S/{directory}
"""
STATE_IN_FILE = "# State where the jobs file's state_dir says: {path}\n"
NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")


def units(
    *,
    mode: str,
    user: bool,
    command: list[str],
    jobs: Path,
    shutdown_grace: timedelta,
    name: str = "",
    state_dir: Path | None = None,
    serve: bool = False,
) -> dict[str, str]:
    """File name -> text of the units for `mode` ("daemon" or "timer"). `name` tells several
    jobs files on one host apart (cronflow-NAME.service, state in cronflow-NAME); the state
    goes where systemd keeps services' state, unless the jobs file names its `state_dir`.
    `serve`: also `cronflow serve` as a service of its own (the same state directory)."""
    base = unit_base(name)
    values = {
        "named": f" {name}" if name else "",
        "command": shlex.join(command),
        "jobs": shlex.quote(str(jobs)),
        "after": "" if user else NETWORK,  # user managers cannot order on the network
        "wanted_by": "default.target" if user else "multi-user.target",
        "stop_timeout": f"{int(shutdown_grace.total_seconds() + STOP_KILL_GRACE + 10)}s",
        "state": STATE.format(directory=base)
        if state_dir is None
        else STATE_IN_FILE.format(path=state_dir),
    }
    if mode == "daemon":
        found = {f"{base}.service": DAEMON_SERVICE.format(**values)}
    else:
        found = {
            f"{base}-run.service": RUN_SERVICE.format(**values),
            f"{base}-run.timer": RUN_TIMER.format(**values),
        }
    if serve:
        found[f"{base}-serve.service"] = SERVE_SERVICE.format(**values)
    return found


def unit_base(name: str) -> str:
    """`cronflow`, or `cronflow-NAME`: the units' name and their state directory's."""
    return f"cronflow-{name}" if name else "cronflow"


def enable_commands(mode: str, user: bool, name: str = "", serve: bool = False) -> list[str]:
    systemctl = "systemctl --user" if user else "systemctl"
    unit = f"{unit_base(name)}.service" if mode == "daemon" else f"{unit_base(name)}-run.timer"
    served = f" {unit_base(name)}-serve.service" if serve else ""
    return [f"{systemctl} daemon-reload", f"{systemctl} enable --now {unit}{served}"]


def installed_state_dirs(jobs: Path) -> list[Path]:
    """The state directories that installed cronflow units (system and this user's) give
    the service of this jobs file."""
    return [state for user in (False, True) for _, state in units_of(jobs, user)]


def install(files: dict[str, str], directory: Path) -> list[Path]:
    """Write the unit files (0644, as systemd expects); return their paths."""
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for name, text in files.items():
        path = directory / name
        path.write_text(text)
        path.chmod(0o644)
        written.append(path)
    return written
