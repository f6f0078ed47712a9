"""Turning a crontab into a jobs.toml, so cron users switch in one step. Pure, but for tomli-w
and `this_machine`, which asks the machine what cron would have taken from it.

Reads a crontab as Debian (Vixie) cron does: `NAME=value` lines apply to the lines below them
(`MAILTO`, `SHELL`, `HOME`, `CRON_TZ` included, each job keeps the values of its own line),
the `@daily` family, `%` and `\\%` by cron's own rule, and the host's zone. What cron would
refuse, or runs differently under cronflow, is listed per line: never imported silently,
never dropped silently. The format (user crontab, or system crontab with a user field) is
told from the content; when it cannot be, the caller must choose.
"""

from __future__ import annotations

import os
import pwd
import re
import shutil
from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from cronflow.decide import schedule
from cronflow.interop.crontab_commands import command_text, habits, job_name, split_percent, unquote

CRON_SHELL = "/bin/sh"
# Debian cron's macros (lower case only); @reboot is one too, and jobs.toml's schedule takes it.
_MACROS = ("@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight", "@hourly")
# Cron's variable line: a name without blanks or `=`, then `=` (cron's load_env()).
_VARIABLE = re.compile(r"\s*([^\s=]+)\s*=(.*)$")
_SHELL_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
_USER_NAME = re.compile(r"[a-z_][a-z0-9_.-]*\$?\Z", re.IGNORECASE)
# Accounts found in system crontabs of most distributions, for telling the format apart when
# the file comes from another machine.
COMMON_ACCOUNTS = frozenset(
    {
        "root",
        "nobody",
        "daemon",
        "www-data",
        "postgres",
        "mysql",
        "backup",
        "mail",
        "news",
        "munin",
        "nagios",
        "smmsp",
        "apache",
        "nginx",
        "redis",
        "git",
        "jenkins",
        "zabbix",
        "logcheck",
    }
)
_FIELD = re.compile(r"[*0-9]")  # how a cron field starts


class FormatUnknown(Exception):
    """The content does not tell a user crontab from a system one."""


@dataclass
class Translation:
    """The jobs.toml document and the lines that could not be carried over."""

    document: dict[str, Any] = field(default_factory=dict)
    untranslated: list[str] = field(default_factory=list)  # "line N: text (why)"
    notes: list[str] = field(default_factory=list)  # translated, but worth a look


@dataclass
class Host:
    """What cron would have taken from the machine: its zone and the users' home folders."""

    zone: str | None  # the zone cron read schedules in (TZ, /etc/localtime); None: unknown
    home_of: Callable[[str | None], str | None]  # a user's home; None: the crontab's owner
    is_account: Callable[[str], bool] = lambda name: name in COMMON_ACCOUNTS
    is_command: Callable[[str], bool] = lambda name: False


def this_machine() -> Host:
    """What cron would take from this machine: its zone, home folders, accounts, commands."""

    def home_of(user: str | None) -> str | None:
        try:
            entry = pwd.getpwuid(os.geteuid()) if user is None else pwd.getpwnam(user)
        except KeyError:
            return None
        return entry.pw_dir if os.path.isdir(entry.pw_dir) else None

    def is_account(name: str) -> bool:
        try:
            pwd.getpwnam(name)
            return True
        except KeyError:
            return name in COMMON_ACCOUNTS

    def is_command(name: str) -> bool:
        return name in _SHELL_WORDS or shutil.which(name) is not None

    return Host(
        zone=_zone_of_this_machine(), home_of=home_of, is_account=is_account, is_command=is_command
    )


_SHELL_WORDS = frozenset(
    {
        "cd",
        "test",
        "[",
        "[[",
        "if",
        "for",
        "while",
        "case",
        "export",
        "echo",
        "exec",
        "true",
        "false",
        ":",
        ".",
        "source",
        "eval",
        "set",
        "umask",
        "ulimit",
        "command",
        "time",
        "printf",
        "read",
        "kill",
        "wait",
    }
)


def _zone_of_this_machine() -> str | None:
    """The zone cron reads schedules in: $TZ when it names a zone, else /etc/localtime."""
    candidates = [os.environ.get("TZ", "").lstrip(":")]
    with suppress(OSError, IndexError):
        candidates.append(os.readlink("/etc/localtime").split("zoneinfo/", 1)[1])
    with suppress(OSError):
        candidates.append(Path("/etc/timezone").read_text().strip())
    for candidate in candidates:
        try:
            if candidate and "/" not in candidate[:1]:
                ZoneInfo(candidate)
                return candidate
        except (ValueError, OSError, KeyError):
            continue
    return None


@dataclass
class _Job:
    line: int
    name: str
    schedule: str
    command: str
    env: dict[str, str]
    timezone: str | None
    description: str
    cwd: str | None
    shell: str
    mailto: str | None  # None: MAILTO never set above the line (cron mails the owner)
    user: str | None = None  # the system crontab's user field, when not root


# ---- reading the file as cron does -------------------------------------------------------------


def _lines(text: str) -> list[tuple[int, str, str | None]]:
    """(number, line, why cron skips it or None), split as cron reads a file."""
    lines = text.split("\n")
    last_unterminated = lines[-1] != ""
    result = []
    for number, line in enumerate(lines if last_unterminated else lines[:-1], start=1):
        why = None
        if "\r" in line:
            why = (
                "ends with a carriage return: the file has Windows (CRLF) line ends, which "
                "cron reads as part of the line; convert it with dos2unix"
            )
        elif last_unterminated and number == len(lines) and line.strip():
            why = "the last line has no newline at its end: cron ignores such a line"
        result.append((number, line, why))
    return result


def _is_job_line(line: str, system: bool) -> bool:
    """Whether a (commented-out) line reads as a crontab job line."""
    text = line.strip()
    if text.startswith("@"):
        return text.split()[0] in (*_MACROS, "@reboot") and len(text.split()) > 1
    parts = text.split(None, 5 + system)
    if len(parts) < 6 + system:
        return False
    try:
        schedule.check(" ".join(parts[:5]))
    except schedule.ScheduleError:
        return False
    return True


def detect_format(text: str, host: Host) -> bool:
    """True for a system crontab (a user field before each command), False for a user one.

    A line whose sixth word is an account, with a command after it, speaks for the system
    format; one whose sixth word is a path, a command or cannot be a user name, or that has
    nothing after it, for the user format. FormatUnknown when the lines disagree or say nothing.
    """
    system_lines, user_lines = [], []
    for number, line, why in _lines(text):
        words = line.split()
        if (
            why
            or not words
            or words[0].startswith("#")
            or _VARIABLE.match(line)
            and not _FIELD.match(words[0])
            and not words[0].startswith("@")
        ):
            continue
        fields = 1 if words[0].startswith("@") else 5
        if len(words) <= fields:
            continue
        sixth, more = words[fields], len(words) > fields + 1
        account = more and _USER_NAME.match(sixth) and host.is_account(sixth)
        command = not more or not _USER_NAME.match(sixth) or host.is_command(sixth)
        if account and not command:
            system_lines.append(number)
        elif command and not account:
            user_lines.append(number)
    if system_lines and not user_lines:
        return True
    if user_lines and not system_lines:
        return False
    if system_lines:
        raise FormatUnknown(
            f"line {system_lines[0]} reads as a system crontab (a user name "
            f"before the command) but line {user_lines[0]} as a user crontab"
        )
    raise FormatUnknown("no line tells whether a user name comes before each command")


def translate(text: str, system: bool, host: Host) -> Translation:
    """Translate crontab text; `system` means each line names a user before the command."""
    result = Translation()
    env: dict[str, str] = {}
    comments: list[str] = []
    jobs: list[_Job] = []
    for number, raw, why in _lines(text):
        line = raw.strip()
        if why:
            if line and not line.startswith("#"):
                result.untranslated.append(f"line {number}: {line} ({why})")
            comments = []
            continue
        if not line:
            comments = []
            continue
        if line.startswith("#"):
            comment = line.lstrip("#").strip()
            if not _is_job_line(comment, system):  # a job switched off is not a description
                comments.append(comment)
            continue
        variable = _VARIABLE.match(raw)
        if variable and not _FIELD.match(line) and not line.startswith("@"):
            _set_variable(number, line, variable.group(1), variable.group(2), env, result)
            comments = []
            continue
        job = _job_line(
            number, raw, system, env, comments, result, host, taken={j.name for j in jobs}
        )
        if job:
            jobs.append(job)
        comments = []
    result.document = _document(jobs, host, result)
    return result


def _set_variable(
    number: int, line: str, name: str, value: str, env: dict[str, str], result: Translation
) -> None:
    value = value.strip()
    if not value:
        result.untranslated.append(
            f"line {number}: {line} (cron refuses a variable with no "
            f'value; write {name}="" for an empty one)'
        )
        return
    if not _SHELL_NAME.match(name):
        result.untranslated.append(
            f"line {number}: {line} (cron passes {name} to its jobs, but a variable name "
            "holds only letters, digits and _ in cronflow's env, and no shell can read this "
            "one: rename it)"
        )
        return
    env[name] = unquote(value)


def _job_line(
    number: int,
    raw: str,
    system: bool,
    env: dict[str, str],
    comments: list[str],
    result: Translation,
    host: Host,
    taken: set[str],
) -> _Job | None:
    line = raw.strip()

    def skip(why: str) -> None:
        result.untranslated.append(f"line {number}: {line} ({why})")

    first = line.split()[0]
    if first.startswith("@") and first.lower() in _MACROS and first not in _MACROS:
        skip(f"cron's macros are lower case: {first.lower()}")
        return None
    words = line.split()
    if len(words) > 6 and all(re.fullmatch(r"[*0-9][0-9*/,-]*", word) for word in words[:6]):
        skip(
            "it has six time fields (seconds first?): cron has five, and would run "
            f"`{' '.join(words[5:])}` as the command"
        )
        return None
    fields_count = 1 if first.startswith("@") else 5
    parts = line.split(None, fields_count + (1 if system else 0))
    if len(parts) < fields_count + (2 if system else 1):
        skip("not a crontab line")
        return None
    expression = " ".join(parts[:fields_count])
    user = parts[fields_count] if system else None
    why = _refused_by_cron(expression)
    if why:
        skip(why)
        return None
    command = command_text(raw, parts[-1])
    command, stdin = split_percent(command)
    if stdin is not None:
        skip(
            "an unescaped % sends the rest of the line to the command's stdin; cronflow gives "
            "jobs an empty stdin: use a here-document or a script"
        )
        return None
    name = job_name(command, taken)
    if user == "root":
        user = None
    if user is not None:
        result.notes.append(
            f'line {number}: runs as user {user} (user = "{user}"), which '
            "needs cronflow to run as root, as cron did"
        )
    noted = habits(command)
    result.notes += [f"line {number} ({name}): {habit}" for habit in noted]
    cwd = env.get("HOME") or host.home_of(user if system else None)
    if cwd is None:
        owner = f"user {user}" if user else "the crontab's owner"
        result.notes.append(
            f"line {number} ({name}): cron ran it in the home folder of "
            f"{owner}, which is not found here: it runs in the jobs file's "
            "folder (set cwd)"
        )
    job_env = {
        key: value for key, value in env.items() if key not in ("SHELL", "CRON_TZ", "MAILTO")
    }
    return _Job(
        line=number,
        name=name,
        schedule=expression,
        command=command,
        env=job_env,
        timezone=env.get("CRON_TZ"),
        description=" ".join(comments),
        cwd=cwd,
        shell=env.get("SHELL", CRON_SHELL),
        mailto=env.get("MAILTO"),
        user=user,
    )


def _refused_by_cron(expression: str) -> str | None:
    """Why Debian cron would refuse this schedule, or None. Stricter than jobs.toml, which
    also takes croniter's extensions (L, W, #) and `5/15`."""
    if expression.startswith("@"):
        known = (*_MACROS, "@reboot")
        return None if expression in known else f"{expression} is not one of cron's macros"
    for text, name in zip(
        expression.split(" "),
        ("minute", "hour", "day-of-month", "month", "day-of-week"),
        strict=False,
    ):
        for item in text.split(","):
            span, slash, step = item.partition("/")
            if slash and not (span == "*" or "-" in span):
                return (
                    f'"{item}" in the {name} field: cron takes a step only after * or a '
                    f"range (write {span}-<last>/{step})"
                )
            names = name in ("month", "day-of-week")
            value = r"[0-9]+|[A-Za-z]{3}" if names else r"[0-9]+"
            if not re.fullmatch(rf"\*|({value})(-({value}))?", span) or (
                slash and not step.isdigit()
            ):
                return (
                    f'"{item}" in the {name} field is not cron syntax (Debian cron has no '
                    "L, W, # or ?)"
                )
    try:
        schedule.check(expression)
    except schedule.ScheduleError as error:
        return str(error)
    return None


# ---- the jobs file ------------------------------------------------------------------------------


def _document(jobs: list[_Job], host: Host, result: Translation) -> dict[str, Any]:
    document: dict[str, Any] = {}
    zones = {job.timezone or host.zone for job in jobs}
    if len(zones) == 1 and None not in zones:
        document["cronflow"] = {"timezone": zones.pop()}
    elif len(zones) > 1:
        result.notes.append("the jobs' zones differ (CRON_TZ): each job names its own timezone")
    if host.zone is None and any(job.timezone is None for job in jobs):
        result.notes.append(
            "this machine's zone is unknown: schedules are read in UTC; set "
            "[cronflow] timezone to the zone cron used"
        )
    elif any(job.timezone is None for job in jobs):
        result.notes.append(
            f"schedules are read in {host.zone}, this machine's zone, as cron "
            "read them (set [cronflow] timezone when you move the file)"
        )
    envs = [job.env for job in jobs]
    shared = {
        name: value
        for name, value in (envs[0] if envs else {}).items()
        if all(env.get(name) == value for env in envs)
    }
    if shared:
        document["defaults"] = {"env": shared}
    tables = {job.name: _job_table(job, shared, document, host) for job in jobs}
    for key in ("cwd", "shell"):  # one value for every job: said once, in [defaults]
        values = [table.get(key) for table in tables.values()]
        if values and values[0] is not None and values.count(values[0]) == len(values):
            document.setdefault("defaults", {})[key] = values[0]
            for table in tables.values():
                del table[key]
    _mail(jobs, tables, document, result)
    document["jobs"] = tables
    return document


def _job_table(
    job: _Job, shared_env: dict[str, str], document: dict[str, Any], host: Host
) -> dict[str, Any]:
    table: dict[str, Any] = {"command": job.command, "schedule": job.schedule}
    if job.description:
        table["description"] = job.description
    if "cronflow" not in document and (job.timezone or host.zone):
        table["timezone"] = job.timezone or host.zone
    if job.cwd:
        table["cwd"] = job.cwd
    if job.shell != CRON_SHELL:
        table["shell"] = job.shell
    if job.user:
        table["user"] = job.user
    own_env = {name: value for name, value in job.env.items() if shared_env.get(name) != value}
    if own_env:
        table["env"] = own_env
    # cron never retried and never stopped a job; keep that until you choose otherwise.
    return table


def _mail(
    jobs: list[_Job],
    tables: dict[str, dict[str, Any]],
    document: dict[str, Any],
    result: Translation,
) -> None:
    """Each job's MAILTO, as alerts on failure: one [alerts] target when every mailing job
    had the same address, else a tag per address and the apprise config to route them."""
    addresses = sorted({job.mailto for job in jobs if job.mailto})
    for job in jobs:
        if job.mailto == "":
            tables[job.name]["alerts"] = False
            result.notes.append(
                f'line {job.line} ({job.name}): MAILTO="": cron mailed no one; alerts = false'
            )
        elif addresses and job.mailto is None:
            tables[job.name]["alerts"] = False
            result.notes.append(
                f"line {job.line} ({job.name}): no MAILTO above it: cron mailed "
                "its owner on this machine; alerts = false"
            )
    if not addresses:
        return
    urls = {
        address: [f"mailto://localhost?to={to.strip()}" for to in address.split(",")]
        for address in addresses
    }
    if len(addresses) == 1:
        document["alerts"] = {"urls": urls[addresses[0]], "on": ["failure"]}
        result.notes.append(
            f"MAILTO={addresses[0]}: cron mailed any output through the local "
            "mail system; cronflow alerts on failures, through an SMTP server "
            "on localhost (edit [alerts] urls, see the apprise wiki for mailto://)"
        )
        return
    for index, address in enumerate(addresses, start=1):
        tag = f"mail{index}"
        for job in jobs:
            if job.mailto == address:
                tables[job.name]["alert_tags"] = [tag]
        targets = ", ".join(urls[address])
        result.notes.append(
            f"MAILTO={address} (jobs tagged {tag}): add to an apprise config "
            f'file `urls: [{{"{targets}": {{tag: {tag}}}}}]` and set '
            '[alerts] config to it, on = ["failure"]'
        )


def render(translation: Translation, source: str, format_used: str) -> str:
    """The jobs.toml text: a comment header listing what needs a look, then the tables."""
    import tomli_w  # only this command writes TOML

    header = [
        f"# jobs.toml translated from {source} ({format_used}) by `cronflow import-crontab`.",
        "# cron never retried a job and had no timeout; add retries and timeout as you see fit.",
    ]
    for title, lines in (
        ("Not translated", translation.untranslated),
        ("Check", translation.notes),
    ):
        if lines:
            header.append(f"# {title}:")
            header += [f"#   {line}" for line in lines]
    return "\n".join(header) + "\n\n" + tomli_w.dumps(translation.document)
