"""systemd units for cronflow: the daemon as a service, or one-shot runs from a timer."""

from __future__ import annotations

import os
import shlex
from datetime import timedelta
from pathlib import Path

from cronflow.executor import STOP_KILL_GRACE

DAEMON_SERVICE = """\
[Unit]
Description=cronflow: cron for jobs that depend on each other
{after}
[Service]
# The daemon says READY=1 once it has loaded the jobs file.
Type=notify
NotifyAccess=main
ExecStart={command} daemon --jobs {jobs}
ExecReload=/bin/kill -HUP $MAINPID
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
Description=cronflow: run the jobs that are due now
{after}
[Service]
Type=oneshot
ExecStart={command} run --jobs {jobs}
"""

RUN_TIMER = """\
[Unit]
Description=cronflow: decide every minute what is due

[Timer]
OnCalendar=*-*-* *:*:00
AccuracySec=1s
# After downtime, run once at boot; cronflow's catch-up policy decides what that runs.
Persistent=true

[Install]
WantedBy=timers.target
"""

NETWORK = "After=network-online.target\nWants=network-online.target\n"


def units(
    *, mode: str, user: bool, command: list[str], jobs: Path, shutdown_grace: timedelta
) -> dict[str, str]:
    """File name -> text of the units for `mode` ("daemon" or "timer")."""
    values = {
        "command": shlex.join(command),
        "jobs": shlex.quote(str(jobs)),
        "after": "" if user else NETWORK,  # user managers cannot order on the network
        "wanted_by": "default.target" if user else "multi-user.target",
        "stop_timeout": f"{int(shutdown_grace.total_seconds() + STOP_KILL_GRACE + 10)}s",
    }
    if mode == "daemon":
        return {"cronflow.service": DAEMON_SERVICE.format(**values)}
    return {"cronflow-run.service": RUN_SERVICE.format(**values), "cronflow-run.timer": RUN_TIMER}


def unit_directory(user: bool) -> Path:
    """Where systemd looks for units the administrator (or, with --user, the user) adds."""
    if not user:
        return Path("/etc/systemd/system")
    config_home = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(config_home) / "systemd" / "user"


def enable_commands(mode: str, user: bool) -> list[str]:
    systemctl = "systemctl --user" if user else "systemctl"
    unit = "cronflow.service" if mode == "daemon" else "cronflow-run.timer"
    return [f"{systemctl} daemon-reload", f"{systemctl} enable --now {unit}"]


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
