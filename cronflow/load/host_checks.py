"""Checks of a jobs file against this machine rather than its text: the shell exists, the
env_files read, the accounts exist, the directories of derived files are writable, and (as
cron does with a crontab) no file that configures root's jobs can be changed by others.

Each check returns what it found as (where in the file, problem, fix); the loader reports
them with their lines. `at` = () is a finding about the jobs file itself."""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Any

from cronflow.load import accounts, env_files, trust
from cronflow.load.host_facts import host_question
from cronflow.model import METRICS_INSTANCE_HEADER, AlertSettings, Job, Settings

Finding = tuple[tuple[str, ...], str, str]  # (key path in the file, problem, fix)


def shell_findings(name: str, shell: str) -> list[Finding]:
    """The shell must be an absolute path to an executable file, as cron's SHELL= is."""
    at = ("jobs", name, "shell")
    if not shell.startswith("/"):
        return [
            (
                at,
                f'"{shell}" is not an absolute path',
                'Write the full path, such as "/bin/bash" (see `command -v bash`)',
            )
        ]
    if not executable_file(shell):
        return [
            (
                at,
                f'"{shell}" is not an executable file here',
                "Install that shell, or name another one",
            )
        ]
    return []


@host_question
def executable_file(path: str) -> bool:
    return os.path.isfile(path) and os.access(path, os.X_OK)


@host_question
def is_directory(path: Path) -> bool:
    return path.is_dir()


@host_question
def path_problem(path: Path) -> str | None:
    """None if `path` names nothing yet or a directory; "file", or why it cannot be used."""
    try:
        os.stat(path)
    except FileNotFoundError:
        return None
    except OSError as error:  # a name too long, a file where a directory belongs
        return error.strerror or str(error)
    return None if path.is_dir() else "file"


@host_question
def unreadable(path: Path) -> str | None:
    """Why the file cannot be read, or None."""
    try:
        path.read_bytes()
    except OSError as error:
        return error.strerror or str(error)
    return None


def env_file_findings(name: str, path: Path) -> list[Finding]:
    """The file must be readable and well-formed now (it is read again at each run)."""
    problem = _env_file_problem(path)
    return [] if problem is None else [(("jobs", name, "env_file"), *problem)]


@host_question
def _env_file_problem(path: Path) -> tuple[str, str] | None:
    try:
        env_files.read_env_file(path)
    except OSError as error:
        return (
            f'"{path}" cannot be read ({error.strerror})',
            "Create it with chmod 600, or fix the path (relative paths start at the jobs file)",
        )
    except UnicodeDecodeError:
        return (f'"{path}" is not UTF-8 text', "Save it as UTF-8")
    except env_files.EnvFileError as error:
        return (f'"{path}": {error}', "Write one NAME=value per line; quote values with spaces")
    return None


def account_findings(name: str, values: dict[str, Any], euid: int) -> list[Finding]:
    """A job's user (and group) exist, and cronflow runs as root to become them."""
    if "user" not in values:
        return [
            (
                ("jobs", name, "group"),
                "group is set without user",
                'Add user = "name" too; the job then runs as that user and group',
            )
        ]
    if euid != 0:
        return [
            (
                ("jobs", name, "user"),
                f'user = "{values["user"]}" needs cronflow to run as root, and '
                f"it runs as {trust.user_name(euid)}",
                "Run cronflow as root (e.g. the system service), or remove user",
            )
        ]
    unknown = _unknown_account(values["user"], values.get("group"))
    if unknown is None:
        return []
    key, problem = unknown
    return [(("jobs", name, key), problem, f"Create it ({key}add), or fix the name")]


@host_question
def _unknown_account(user: str, group: str | None) -> tuple[str, str] | None:
    """("user" or "group", what is wrong) when the account does not exist, else None."""
    try:
        accounts.account(user, group)
    except accounts.UnknownAccount as error:
        return error.key, str(error)
    return None


@host_question
def output_dir_findings(key: str, path: Path, euid: int) -> list[Finding]:
    """Where a file cronflow keeps current goes (metrics_file, html_file): a directory that
    exists and this user can write to (the file is replaced whole; cronflow does not create
    the directory)."""
    at = ("cronflow", key)
    try:
        found = os.stat(path)
    except FileNotFoundError:
        found = None
    except OSError as error:  # a name too long, a file where a directory belongs
        return [(at, f'"{path}" cannot be used ({error.strerror})', "Fix the path")]
    if found is not None and not stat.S_ISREG(found.st_mode):
        return [
            (
                at,
                f'"{path}" is not a regular file (a directory, device, FIFO or socket)',
                "Name a file of its own: cronflow replaces it whole at every change",
            )
        ]
    if not path.parent.is_dir():
        return [
            (
                at,
                f'the directory "{path.parent}" does not exist',
                "Create it (for metrics_file: node_exporter's --collector.textfile.directory), "
                "or fix the path",
            )
        ]
    if not os.access(path.parent, os.W_OK):
        return [
            (
                at,
                f'the directory "{path.parent}" is not writable by {trust.user_name(euid)}',
                "Let this user write there (the file is replaced, so the directory must be), "
                "or name another",
            )
        ]
    return []


def metrics_owner_findings(settings: Settings) -> list[Finding]:
    """metrics_file names the cronflow that writes it on its first line: another cronflow's
    file is refused, not taken over (two writing one file would each hide the other)."""
    path = settings.metrics_file
    if path is None:
        return []
    try:
        descriptor = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
        with open(descriptor, "rb") as file:
            first = file.read(4096).partition(b"\n")[0].decode("utf-8", "replace")
    except OSError:
        return []  # none yet, or not one to read: output_dir_findings says what is wrong
    header, _, owner = first.partition(METRICS_INSTANCE_HEADER.strip() + " ")
    ours = {settings.identity, str(settings.state_dir)}
    if header or not owner or owner in ours:
        return []
    return [
        (
            ("cronflow", "metrics_file"),
            f'"{path}" is written by another cronflow (instance "{owner}"), and this one '
            f'is "{settings.identity}": node_exporter would show only one of them',
            "Give each cronflow its own file in the textfile directory (such as "
            f'"{path.parent}/cronflow-NAME.prom"). If it was this cronflow\'s own before '
            "its instance or state directory changed, delete the file",
        )
    ]


def trust_findings(
    jobs_path: Path, settings: Settings, alerts: AlertSettings, jobs: dict[str, Job], euid: int
) -> tuple[list[Finding], list[str]]:
    """As cron does with a crontab: as root, a file that others could change is a problem
    (a finding), and so is a directory root writes in that others could change (the state
    directory, and those of metrics_file and html_file, which may be writable by their own
    group); as anyone else, warnings. Returns (findings, warnings)."""
    read = "another user could change what root runs"
    written = "another user could make root write where it must not"
    places: list[tuple[str, Path, tuple[str, ...], str, bool]] = [
        ("the jobs file", jobs_path, (), read, False),
        _state_dir_place(settings, written),
    ]
    if alerts.config is not None:
        places.append(
            (
                f"the apprise config {alerts.config}",
                alerts.config,
                ("alerts", "config"),
                read,
                False,
            )
        )
    for key in ("metrics_file", "html_file"):
        path = getattr(settings, key)
        if path is not None:
            what = f"the directory of {key} {path}"
            places.append((what, path.parent, ("cronflow", key), written, True))
    for job in jobs.values():
        places += [
            (
                f'the env_file {path} of job "{job.name}"',
                path,
                ("jobs", job.name, "env_file"),
                read,
                False,
            )
            for path in job.env_files
        ]
    findings: list[Finding] = []
    warnings: list[str] = []
    seen = set()
    for what, path, at, risk, group_may_write in places:
        for finding in trust.untrusted(path, euid, group_may_write=group_may_write):
            if (finding.path, finding.problem) in seen:
                continue  # a directory above several files: say it once
            seen.add((finding.path, finding.problem))
            subject = (
                what
                if finding.path == path.resolve()
                else f"{finding.path}, a directory above {what},"
            )
            if euid != 0:
                warnings.append(
                    f"{subject} {finding.problem}; as root cronflow would refuse it. "
                    f"Fix: {finding.fix}"
                )
            else:
                findings.append(
                    (
                        at,
                        f"cronflow runs as root and {subject} {finding.problem}",
                        f"Run: {finding.fix} ({risk})",
                    )
                )
    return findings, warnings


def _state_dir_place(settings: Settings, risk: str) -> tuple[str, Path, tuple[str, ...], str, bool]:
    """The state directory as trust_findings checks it: the directory if it exists, else
    the nearest one above it that does (cronflow creates the rest, 0700)."""
    existing = settings.state_dir
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    named_by = {
        "state_dir": "",
        "default": " (the default, beside the jobs file)",
    }.get(settings.state_dir_from, f" (named by {settings.state_dir_from})")
    what = f"the state directory {settings.state_dir}{named_by}"
    if existing != settings.state_dir:
        what = f"{existing}, where cronflow would create the state directory {settings.state_dir}{named_by},"
    return what, existing, ("cronflow", "state_dir"), risk, False


@host_question
def host_identity() -> str:
    """What makes this host's random_offset its own: systemd's machine id (as systemd's
    RandomizedOffsetSec= uses), else the host name."""
    for path in ("/etc/machine-id", "/var/lib/dbus/machine-id"):
        try:
            with open(path) as file:
                identity = file.read().strip()
        except OSError:
            continue
        if identity:
            return identity
    import socket

    return socket.gethostname()
