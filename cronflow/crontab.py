"""Turning a crontab into a jobs.toml, so cron users switch in one step. Pure, but for tomli-w.

Handles user crontabs (5 fields, command) and system ones (5 fields, user, command), `NAME=value`
lines (they apply to the lines below them, as in cron), `MAILTO`, `CRON_TZ`, `SHELL`, the
`@daily` family, `\\%` escapes, and comments just above a job (kept as its description). What
has no faithful translation is listed, never silently dropped.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass, field

from cronflow import schedule

_ENV_LINE = re.compile(r"""\s*([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(.*)$""")
_UNSUPPORTED_MACROS = ("@reboot",)
_CRON_SHELL = "/bin/sh"


@dataclass
class Translation:
    """The jobs.toml document and the lines that could not be carried over."""

    document: dict = field(default_factory=dict)
    untranslated: list[str] = field(default_factory=list)  # "line N: text (why)"
    notes: list[str] = field(default_factory=list)  # translated, but worth a look


@dataclass
class _Job:
    name: str
    schedule: str
    command: str
    env: dict[str, str]
    timezone: str | None
    description: str
    user: str | None = None  # the system crontab's user field, when not root


def translate(text: str, system: bool) -> Translation:
    """Translate crontab text; `system` means each line names a user before the command."""
    result = Translation()
    env: dict[str, str] = {}
    comments: list[str] = []
    jobs: list[_Job] = []
    mailto: str | None = None
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line:
            comments = []
            continue
        if line.startswith("#"):
            comments.append(line.lstrip("#").strip())
            continue
        variable = _ENV_LINE.match(line)
        if variable and not line.startswith("@") and not line.split()[0][:1].isdigit() \
                and "*" not in line.split("=")[0]:
            name, value = variable.group(1), _unquote(variable.group(2))
            if name == "MAILTO":
                mailto = value
            else:
                env[name] = value
            comments = []
            continue
        job = _job_line(line, number, system, env, comments, result, taken={j.name for j in jobs})
        if job:
            jobs.append(job)
        comments = []
    result.document = _document(jobs, mailto, result)
    return result


def _job_line(line: str, number: int, system: bool, env: dict[str, str], comments: list[str],
              result: Translation, taken: set[str]) -> _Job | None:
    def skip(why: str) -> None:
        result.untranslated.append(f"line {number}: {line} ({why})")

    if line.split()[0] in _UNSUPPORTED_MACROS:
        skip("@reboot has no equivalent: run it from a systemd unit or your init system")
        return None
    fields_count = 1 if line.startswith("@") else 5
    parts = line.split(None, fields_count + (1 if system else 0))
    if len(parts) < fields_count + (2 if system else 1):
        skip("not a crontab line")
        return None
    expression = " ".join(parts[:fields_count])
    user = parts[fields_count] if system else None
    command = parts[-1]
    try:
        schedule.check(expression)
    except schedule.ScheduleError as error:
        skip(str(error))
        return None
    if re.search(r"(?<!\\)%", command):
        skip("an unescaped % sends the rest of the line to the command's stdin; cronflow gives "
             "jobs an empty stdin: use a here-document or a script")
        return None
    command = command.replace("\\%", "%")
    name = _job_name(command, taken)
    shell = env.get("SHELL", _CRON_SHELL)
    if shell != _CRON_SHELL:
        command = f"{shell} -c {shlex.quote(command)}"
    if user == "root":
        user = None
    if user is not None:
        result.notes.append(f'line {number}: runs as user {user} (user = "{user}"), which '
                            "needs cronflow to run as root, as cron did")
    job_env = {name: value for name, value in env.items() if name not in ("SHELL", "CRON_TZ")}
    return _Job(name=name, schedule=expression, command=command, env=job_env,
                timezone=env.get("CRON_TZ"), description=" ".join(comments), user=user)


def _document(jobs: list[_Job], mailto: str | None, result: Translation) -> dict:
    document: dict = {}
    zones = {job.timezone for job in jobs}
    if len(zones) == 1 and None not in zones:
        document["cronflow"] = {"timezone": zones.pop()}
    elif zones - {None}:
        result.notes.append("CRON_TZ differs between lines: each job names its own timezone")
    if mailto:
        document["alerts"] = {"urls": [f"mailto://localhost?to={address.strip()}"
                                       for address in mailto.split(",")],
                              "on": ["failure"]}
        result.notes.append(f"MAILTO={mailto}: cron mailed any output through the local mail "
                            "system; cronflow alerts on failures, through an SMTP server on "
                            "localhost (edit [alerts] urls, see the apprise wiki for mailto://)")
    envs = [job.env for job in jobs]
    shared = {name: value for name, value in (envs[0] if envs else {}).items()
              if all(env.get(name) == value for env in envs)}
    if shared:
        document["defaults"] = {"env": shared}
    document["jobs"] = {job.name: _job_table(job, shared, document) for job in jobs}
    return document


def _job_table(job: _Job, shared_env: dict[str, str], document: dict) -> dict:
    table: dict = {"command": job.command, "schedule": job.schedule}
    if job.description:
        table["description"] = job.description
    if job.timezone and "cronflow" not in document:
        table["timezone"] = job.timezone
    if job.user:
        table["user"] = job.user
    own_env = {name: value for name, value in job.env.items() if shared_env.get(name) != value}
    if own_env:
        table["env"] = own_env
    # cron never retried and never stopped a job; keep that until you choose otherwise.
    return table


def _job_name(command: str, taken: set[str]) -> str:
    words = [word for word in re.split(r"[\s;&|<>()]+", command) if word and "=" not in word]
    program = words[0].rsplit("/", 1)[-1] if words else "job"
    base = re.sub(r"[^a-z0-9]+", "_", program.lower()).strip("_") or "job"
    if not base[0].isalnum():
        base = f"job_{base}"
    name, counter = base, 2
    while name in taken:
        name, counter = f"{base}_{counter}", counter + 1
    return name


def _unquote(value: str) -> str:
    value = value.strip()
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
        return value[1:-1]
    return value


def render(translation: Translation, source: str) -> str:
    """The jobs.toml text: a comment header listing what needs a look, then the tables."""
    import tomli_w  # only this command writes TOML

    header = [f"# jobs.toml translated from {source} by `cronflow import-crontab`.",
              "# cron never retried a job and had no timeout; add retries and timeout as you "
              "see fit."]
    for title, lines in (("Not translated", translation.untranslated),
                         ("Check", translation.notes)):
        if lines:
            header.append(f"# {title}:")
            header += [f"#   {line}" for line in lines]
    return "\n".join(header) + "\n\n" + tomli_w.dumps(translation.document)
