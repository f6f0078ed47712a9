"""Reading jobs.toml: the only module that sees raw TOML.

`load()` turns a file into a validated `JobFile` or raises one `ConfigError` that lists every
problem found, each with its line, job, key and a fix, so a user mends them all in one pass.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
import tomllib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import timedelta
from enum import StrEnum
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from cronflow import DEFAULT_JOBS_FILE, JOBS_ENV_VAR, STATE_DIR_ENV_VAR
from cronflow.decide import dag, schedule
from cronflow.errors import ConfigError, Problem
from cronflow.load import accounts, env_files, trust
from cronflow.model import (
    AlertEvent,
    AlertSettings,
    Asset,
    Cadence,
    CatchUp,
    Job,
    JobFile,
    Overlap,
    PingProtocol,
    RetryPolicy,
    RunIf,
    Settings,
)

JOB_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*\Z")
# Limits that keep every value usable where it ends up (file names, argv, timedelta, the
# clock): a job name is part of lock and output file names (255 bytes at most on Linux); a
# command is one argument to /bin/sh and an env entry one string of the environment (Linux's
# MAX_ARG_STRLEN, 128 KiB, each).
MAX_NAME = 100
MAX_ARGUMENT_BYTES = 128 * 1024 - 1
MAX_DURATION = timedelta(days=365)


def find_jobs_file(explicit: Path | None, environ: Mapping[str, str], cwd: Path) -> Path:
    """The jobs file to use: --jobs, else $CRONFLOW_JOBS, else ./jobs.toml."""
    if explicit is not None:
        return explicit
    if environ.get(JOBS_ENV_VAR):
        return Path(environ[JOBS_ENV_VAR])
    return cwd / DEFAULT_JOBS_FILE


def load(path: Path, euid: int | None = None) -> JobFile:
    """Read and validate a jobs file; raise ConfigError listing every problem found.

    `euid` is who cronflow runs as (default: this process): as root, files that others could
    change are refused and jobs may name a `user`; otherwise such files only warn.
    """
    try:
        text = path.read_bytes().decode("utf-8")
    except FileNotFoundError:
        raise _single(
            path,
            "the file does not exist",
            f"Write one with `cronflow init {path}` (a commented example), or point to "
            f"yours with --jobs PATH or ${JOBS_ENV_VAR}",
        ) from None
    except UnicodeDecodeError as error:
        raise _single(
            path, f"the file is not UTF-8 text (byte {error.start})", "Save it as UTF-8"
        ) from None
    except OSError as error:
        raise _single(
            path,
            f"the file cannot be read ({error.strerror})",
            "Check its permissions, or point to another file with --jobs PATH",
        ) from None
    return parse(text, path, euid)


def parse(text: str, path: Path, euid: int | None = None) -> JobFile:
    """Validate the text of a jobs file; `path` locates it (relative paths start from its folder)."""
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(path, [_syntax_problem(error)]) from None
    except RecursionError:
        raise _single(
            path,
            "arrays or tables are nested too deeply to read",
            "No jobs.toml key takes more than a list of strings or a table of "
            "values: remove the nesting",
        ) from None
    if nul := _holding_nul(raw, ()):
        where = ".".join(nul).replace("\0", "\\0")
        raise _single(
            path,
            f"{where} holds a NUL character (\\0), which no command, path or variable can carry",
            "Remove it",
        )
    return _Validator(path, raw, text, os.geteuid() if euid is None else euid).job_file()


def _holding_nul(value: Any, at: tuple[str, ...]) -> tuple[str, ...] | None:
    """Where the first NUL character is, in a key or a text value, else None."""
    if isinstance(value, str):
        return at if "\0" in value else None
    items = (
        value.items()
        if isinstance(value, dict)
        else enumerate(value)
        if isinstance(value, list)
        else ()
    )
    for key, item in items:
        found = (at + (str(key),)) if "\0" in str(key) else _holding_nul(item, at + (str(key),))
        if found:
            return found
    return None


def _single(path: Path, problem: str, fix: str) -> ConfigError:
    return ConfigError(path, [Problem(problem=problem, fix=fix)])


def _syntax_problem(error: tomllib.TOMLDecodeError) -> Problem:
    # On Python 3.11 the position is only in the message: "... (at line 3, column 10)".
    match = re.search(r"\(at line (\d+), column (\d+)\)", str(error))
    message = re.sub(r"\s*\(at line \d+, column \d+\)", "", str(error))
    return Problem(
        problem=f"TOML syntax error: {message}",
        fix="Fix the syntax at that position (see https://toml.io)",
        line=int(match.group(1)) if match else None,
        column=int(match.group(2)) if match else None,
    )


class _Invalid(Exception):
    """A value that cannot be used; carries the problem and its fix."""

    def __init__(self, problem: str, fix: str) -> None:
        super().__init__(problem)
        self.problem, self.fix = problem, fix


# ---- value converters: raw TOML value -> typed value, or _Invalid ------------------------------


def _string(value: Any) -> str:
    if not isinstance(value, str):
        raise _Invalid(f"must be a string, not {_type_name(value)}", 'Quote the value: key = "..."')
    return value


def _non_empty_string(value: Any) -> str:
    text = _string(value)
    if not text.strip():
        raise _Invalid("is empty", "Give it a value")
    return text


def _path(value: Any) -> str:
    """A path the system can use: each name at most 255 bytes, the whole at most 4,095."""
    path = _non_empty_string(value)
    longest = max(len(part.encode()) for part in path.split("/"))
    if longest > 255 or len(path.encode()) > 4095:
        raise _Invalid(
            "is too long for a path (a name in it may have 255 bytes, the whole path 4,095)",
            "Use a shorter path",
        )
    return path


def _command(value: Any) -> str:
    command = _non_empty_string(value)
    if len(command.encode()) > MAX_ARGUMENT_BYTES:
        raise _Invalid(
            f"is {len(command.encode()):,} bytes long; a command can be at most "
            f"{MAX_ARGUMENT_BYTES:,} (Linux's limit for one argument)",
            "Put the script in a file and run that file",
        )
    return command


def _integer(minimum: int, maximum: int) -> Callable[[Any], int]:
    def convert(value: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise _Invalid(
                f"must be a whole number, not {_type_name(value)}",
                f"Write a number such as {max(minimum, 3)}",
            )
        if not minimum <= value <= maximum:
            raise _Invalid(
                f"must be from {minimum} to {maximum:,}, not {value:,}",
                f"Use a number from {minimum} to {maximum:,}",
            )
        return value

    return convert


def _backoff(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _Invalid(f"must be a number, not {_type_name(value)}", "Write a number such as 2.0")
    if not 1 <= value <= 100:  # also false for nan
        raise _Invalid(
            f"must be from 1 to 100, not {value}",
            "Use 1 for equal delays, 2 to double the delay on each retry",
        )
    return float(value)


_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|d|h|m|s)")
_DURATION_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_duration(value: Any) -> timedelta:
    """A duration from seconds (int or float) or text such as "45s", "10m", "1h30m", "2d"."""
    fix = 'Write seconds (30) or text such as "45s", "10m", "1h30m", "2d"'
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise _Invalid(f"must be a duration, not {_type_name(value)}", fix)
    if isinstance(value, str):
        text = value.strip().lower()
        if re.fullmatch(r"\d+(\.\d+)?", text):
            seconds = float(text)
        elif text and re.fullmatch(f"(?:{_DURATION_PART.pattern})+", text):
            seconds = sum(float(n) * _DURATION_UNITS[u] for n, u in _DURATION_PART.findall(text))
        else:
            raise _Invalid(f'"{value}" is not a duration', fix)
    else:
        seconds = float(value)
    if seconds < 0:
        raise _Invalid(f"must not be negative ({value})", fix)
    if not seconds <= MAX_DURATION.total_seconds():  # also true for nan
        raise _Invalid(
            f"is longer than {MAX_DURATION.days} days ({value})",
            f'Use at most {MAX_DURATION.days} days ("{MAX_DURATION.days}d")',
        )
    return timedelta(seconds=seconds)


def _timezone(value: Any) -> ZoneInfo:
    name = _string(value)
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):  # OSError: a name too long for a path
        raise _Invalid(
            f'"{name[:60]}" is not a known time zone',
            'Use an IANA name such as "UTC", "Europe/Berlin" or "America/New_York"',
        ) from None


AT_BOOT = "@reboot"


def _schedule(value: Any) -> str:
    if isinstance(value, str) and value.strip().lower() == AT_BOOT:
        return AT_BOOT  # not a cron schedule: once per boot (Job.at_boot)
    try:
        return schedule.check(_string(value))
    except schedule.ScheduleError as error:
        raise _Invalid(
            str(error),
            'Write 5 fields, e.g. "0 6 * * *" for 06:00 daily, '
            'or a macro such as "@hourly"; see crontab(5)',
        ) from None


def _env(value: Any) -> dict[str, str]:
    if not isinstance(value, dict):
        raise _Invalid(
            f"must be a table, not {_type_name(value)}", 'Write env = { NAME = "value" }'
        )
    env = {}
    for name, item in value.items():
        if isinstance(item, bool) or not isinstance(item, str | int | float):
            raise _Invalid(
                f'variable "{name}" must be a string or number, not {_type_name(item)}',
                f'Write {name} = "value"',
            )
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
            raise _Invalid(
                f'"{name}" is not a valid environment variable name',
                "Use letters, digits and _, not starting with a digit",
            )
        if isinstance(item, float) and not math.isfinite(item):
            raise _Invalid(f'variable "{name}" is {item}', f'Write {name} = "value" as text')
        env[name] = str(item)
        if len(f"{name}={env[name]}".encode()) > MAX_ARGUMENT_BYTES:
            raise _Invalid(
                f'variable "{name}" is longer than {MAX_ARGUMENT_BYTES:,} bytes '
                "(Linux's limit for one environment entry)",
                "Put the value in a file and read it from the job",
            )
    return env


def _paths(value: Any) -> tuple[str, ...]:
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list) or not all(isinstance(item, str) and item for item in items):
        raise _Invalid(
            f"must be a path or a list of paths, not {_type_name(value)}",
            'Write env_file = "secrets.env" (relative to the jobs file)',
        )
    return tuple(_path(item) for item in items)


def _names(value: Any) -> tuple[str, ...]:
    if isinstance(value, str) and len(value.replace(",", " ").split()) > 1:
        raise _Invalid(  # no job name holds a comma or a blank: a list written as one string
            f'is one string, "{value}", where a list of job names belongs',
            f"Write depends_on = {_as_list(value)}",
        )
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list) or not all(isinstance(item, str) for item in items):
        raise _Invalid(
            f"must be a job name or a list of job names, not {_type_name(value)}",
            'Write depends_on = ["extract"]',
        )
    return tuple(dict.fromkeys(items))


def _choice(
    enum: type[StrEnum], allowed: tuple[StrEnum, ...] | None = None
) -> Callable[[Any], Any]:
    """A member of `enum` (of `allowed` only, when given) named by its value."""
    allowed = tuple(enum) if allowed is None else allowed

    def convert(value: Any) -> Any:
        try:
            member = enum(_string(value))
            if member not in allowed:
                raise ValueError(member)
            return member
        except ValueError:
            valid = ", ".join(f'"{member.value}"' for member in allowed)
            raise _Invalid(f'"{value}" is not allowed', f"Use one of {valid}") from None

    return convert


def _choices(
    enum: type[StrEnum], allowed: tuple[StrEnum, ...] | None = None
) -> Callable[[Any], tuple[Any, ...]]:
    one = _choice(enum, allowed)

    def convert(value: Any) -> tuple[Any, ...]:
        if not isinstance(value, list):
            raise _Invalid(
                f"must be a list, not {_type_name(value)}",
                f'Write a list such as ["{next(iter(enum)).value}"]',
            )
        return tuple(one(item) for item in value)

    return convert


def _boolean(value: Any) -> bool:
    if not isinstance(value, bool):
        raise _Invalid(f"must be true or false, not {_type_name(value)}", "Write true or false")
    return value


def _repeat(value: Any) -> timedelta | None:
    if value == "never":
        return None
    repeat = parse_duration(value)
    if not repeat:
        raise _Invalid("must be longer than 0", 'Write "never", or a duration such as "4h"')
    return repeat


def _positive_duration(value: Any) -> timedelta:
    duration = parse_duration(value)
    if not duration:
        raise _Invalid("must be longer than 0", 'Write a duration such as "10s"')
    return duration


def _alert_urls(value: Any) -> tuple[str, ...]:
    urls = _strings(value)
    for url in urls:
        if not re.match(r"[A-Za-z][A-Za-z0-9+.-]*://", url):
            # Never echo the value: alert URLs hold tokens and passwords.
            raise _Invalid(
                f"entry {urls.index(url) + 1} is not a URL",
                'Write an apprise URL such as "json://host/path" or "mailto://..."; '
                "see https://github.com/caronc/apprise/wiki",
            )
    return urls


def _ping_url(value: Any) -> str:
    url = _string(value)
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        # Never echo the value: the check's UUID or ping key is its secret.
        raise _Invalid(
            "is not an http(s) URL",
            'Write the check\'s ping URL, such as "https://hc-ping.com/<uuid>" or '
            '"https://cronitor.link/p/<key>/<monitor>"',
        )
    return url


def _metrics_file(value: Any) -> str:
    path = _string(value)
    if not path.endswith(".prom"):
        raise _Invalid(
            f'"{path}" does not end in .prom',
            "node_exporter's textfile collector reads only *.prom files: name it so, such as "
            '"/var/lib/node_exporter/textfile_collector/cronflow.prom"',
        )
    return path


def _exit_codes(value: Any) -> frozenset[int]:
    if isinstance(value, int) and not isinstance(value, bool):
        value = [value]
    if not isinstance(value, list) or not all(
        isinstance(code, int) and not isinstance(code, bool) for code in value
    ):
        raise _Invalid(
            f"must be a list of exit statuses, not {_type_name(value)}",
            "Write a list of numbers from 1 to 255, such as [2, 3]",
        )
    for code in value:
        if not 1 <= code <= 255:
            raise _Invalid(
                f"holds {code}, which no process exits with",
                "Use exit statuses from 1 to 255 (0 is always a success)",
            )
    return frozenset(value)


def _host_identity() -> str:
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


def _asset_names(value: Any) -> tuple[str, ...]:
    """Asset names: free-form (warehouse.sales, /srv/data/sales.csv), one or a list."""
    names = (value,) if isinstance(value, str) else _strings(value)
    for name in names:
        if not name.strip() or name != name.strip():
            raise _Invalid(
                f'"{name}" is not an asset name',
                'Name it without leading or trailing blanks, such as "warehouse.sales"',
            )
    return tuple(dict.fromkeys(names))


def _strings(value: Any) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise _Invalid(
            f"must be a list of strings, not {_type_name(value)}",
            f"Write it as a list: {_as_list(value)}"
            if isinstance(value, str)
            else 'Write a list such as ["ops", "db"]',
        )
    return tuple(value)


def _as_list(text: str) -> str:
    """`"a, b"` as the TOML list it meant: `["a", "b"]`."""
    parts = [part for part in text.replace(",", " ").split() if part] or [text]
    return "[" + ", ".join(json.dumps(part) for part in parts) + "]"


def _type_name(value: Any) -> str:
    names = {
        str: "a string",
        bool: "true/false",
        int: "a number",
        float: "a number",
        list: "a list",
        dict: "a table",
    }
    return names.get(type(value), type(value).__name__)


JOB_KEYS: dict[str, Callable[[Any], Any]] = {
    "command": _command,
    "description": _string,
    "schedule": _schedule,
    "timezone": _timezone,
    "cwd": _path,
    "shell": _path,
    "env": _env,
    "env_file": _paths,
    "user": _non_empty_string,
    "group": _non_empty_string,
    "depends_on": _names,
    "produces": _asset_names,
    "uses": _asset_names,
    "run_if": _choice(RunIf),
    "retries": _integer(0, 100),
    "retry_delay": parse_duration,
    "retry_backoff": _backoff,
    "retry_max_delay": parse_duration,
    "timeout": parse_duration,
    "kill_grace": parse_duration,
    "random_delay": parse_duration,
    "random_offset": parse_duration,
    "catchup": _choice(CatchUp),
    "max_catchup": _integer(1, 100_000),
    "overlap": _choice(Overlap),
    "enabled": _boolean,
    "alerts": _boolean,
    # `clock` is about cronflow, not a job: only [alerts] `on` can name it
    # `clock` and `stale` are about cronflow and assets, not a job: only [alerts] `on` names them
    "alert_on": _choices(
        AlertEvent, tuple(on for on in AlertEvent if on not in (AlertEvent.CLOCK, AlertEvent.STALE))
    ),
    "alert_tags": _strings,
    "ping_url": _ping_url,
    "ping_protocol": _choice(PingProtocol),
    "success_exit_codes": _exit_codes,
    "no_retry_exit_codes": _exit_codes,
}
NOT_IN_DEFAULTS = {"command", "depends_on", "description", "produces", "uses"}
SETTINGS_KEYS: dict[str, Callable[[Any], Any]] = {
    "timezone": _timezone,
    "state_dir": _path,
    "max_parallel": _integer(1, 1000),
    "shutdown_grace": parse_duration,
    "keep_days": _integer(0, 36_500),
    "keep_runs": _integer(1, 1_000_000),
    "keep_history_days": _integer(0, 36_500),
    "heartbeat_url": _ping_url,
    "heartbeat_protocol": _choice(PingProtocol),
    "ping_timeout": _positive_duration,
    "metrics_file": _metrics_file,
    "html_file": _string,
}
ALERT_KEYS: dict[str, Callable[[Any], Any]] = {
    "urls": _alert_urls,
    "config": _path,
    "on": _choices(AlertEvent),
    "repeat": _repeat,
    "timeout": _positive_duration,
}
TABLES = ("cronflow", "defaults", "alerts", "jobs", "assets")
ASSET_KEYS: dict[str, Callable[[Any], Any]] = {
    "external": _boolean,
    "fresh_within": _positive_duration,
    "description": _string,
}
# jobs.toml key -> model field, for keys that are copied as they are when present
RETRY_FIELDS = {"retry_delay": "delay", "retry_backoff": "backoff", "retry_max_delay": "max_delay"}
JOB_FIELDS = {
    key: key
    for key in (
        "description",
        "env",
        "depends_on",
        "produces",
        "uses",
        "run_if",
        "kill_grace",
        "random_delay",
        "random_offset",
        "catchup",
        "max_catchup",
        "overlap",
        "enabled",
        "alerts",
        "alert_on",
        "alert_tags",
        "ping_url",
        "ping_protocol",
        "success_exit_codes",
        "no_retry_exit_codes",
        "user",
        "group",
        "shell",
    )
}
ALERT_FIELDS = {key: key for key in ("urls", "on", "repeat", "timeout")}


def _close_matches(word: str, known: list[str], cutoff: float = 0.6) -> list[str]:
    """The known word a typo most likely meant (difflib: imported only for a mistake)."""
    import difflib

    return difflib.get_close_matches(word, known, n=1, cutoff=cutoff)


def _present(values: dict[str, Any], fields: dict[str, str]) -> dict[str, Any]:
    return {field: values[key] for key, field in fields.items() if key in values}


@dataclass
class _Validator:
    """Collects every problem in a parsed jobs file while building its model."""

    path: Path
    raw: dict[str, Any]
    text: str
    euid: int  # who cronflow runs as: root may run jobs as other users, and trusts less

    def __post_init__(self) -> None:
        self._lines: dict[tuple[str, ...], int] | None = None  # mapped only if a problem needs it
        self.problems: list[Problem] = []
        self.folder = self.path.parent
        self.zone_set: set[str] = set()  # jobs that set `timezone` (or get it from [defaults])
        self._resolved: dict[str, Path] = {}

    def job_file(self) -> JobFile:
        self._check_keys(self.raw, TABLES, ())
        settings = self._settings()
        alerts = self._alerts()
        defaults = self._table(
            ("defaults",), {k: v for k, v in JOB_KEYS.items() if k not in NOT_IN_DEFAULTS}
        )
        jobs = self._jobs(defaults, settings)
        assets = self._assets(jobs)
        warnings = self._check_trust(alerts, jobs)
        if self.problems:
            raise ConfigError(self.path, self.problems)
        return JobFile(
            path=self.path,
            settings=settings,
            alerts=alerts,
            jobs=jobs,
            assets=assets,
            warnings=tuple(warnings),
            text=self.text,
        )

    # ---- tables ------------------------------------------------------------------------------

    def _table(
        self, at: tuple[str, ...], converters: Mapping[str, Callable[[Any], Any]]
    ) -> dict[str, Any]:
        """The converted values of the table at `at`, reporting bad or unknown keys."""
        table = self.raw
        for part in at:
            table = table.get(part, {})
        if not isinstance(table, dict):
            self._report(
                at,
                f"must be a table, not {_type_name(table)}",
                f"Write it as a [{'.'.join(at)}] table",
            )
            return {}
        self._check_keys(table, converters, at)
        values = {}
        for key, value in table.items():
            if key in converters:
                try:
                    values[key] = converters[key](value)
                except _Invalid as invalid:
                    self._report(at + (key,), invalid.problem, invalid.fix)
        return values

    def _check_keys(self, table: dict[str, Any], known: Iterable[str], at: tuple[str, ...]) -> None:
        for key in table:
            if key not in known:
                close = _close_matches(key, list(known), cutoff=0.6)
                fix = (
                    f'Did you mean "{close[0]}"?'
                    if close
                    else f"Known keys: {', '.join(sorted(known))}"
                )
                where = f"[{'.'.join(at)}]" if at else "the top level"
                self._report(at + (key,), f"unknown key in {where}", fix)

    def _settings(self) -> Settings:
        values = self._table(("cronflow",), SETTINGS_KEYS)
        state_dir, state_dir_from = self._resolve(values.get("state_dir", ".cronflow")), "default"
        if "state_dir" in values:
            state_dir_from = "state_dir"
        if os.environ.get(STATE_DIR_ENV_VAR):  # a systemd unit's StateDirectory=, say
            state_dir = Path(os.path.expanduser(os.environ[STATE_DIR_ENV_VAR])).absolute()
            state_dir_from = STATE_DIR_ENV_VAR
        if state_dir.exists() and not state_dir.is_dir():
            self._report(
                ("cronflow", "state_dir"),
                f'"{state_dir}" is a file, not a directory',
                "Name a directory (cronflow creates it), or move that file away",
            )
        return Settings(
            timezone=values.get("timezone", ZoneInfo("UTC")),
            state_dir=state_dir,
            state_dir_from=state_dir_from,
            host_seed=_host_identity(),
            metrics_file=self._output_path("metrics_file", values.get("metrics_file")),
            html_file=self._output_path("html_file", values.get("html_file")),
            **_present(
                values,
                {
                    key: key
                    for key in (
                        "max_parallel",
                        "shutdown_grace",
                        "keep_days",
                        "keep_runs",
                        "keep_history_days",
                        "heartbeat_url",
                        "heartbeat_protocol",
                        "ping_timeout",
                    )
                },
            ),
        )

    def _output_path(self, key: str, text: str | None) -> Path | None:
        """Where a file cronflow keeps current goes (metrics_file, html_file): resolved like
        every path, in a directory that exists and this user can write to (the file is
        replaced whole; cronflow does not create the directory)."""
        if text is None:
            return None
        path = self._resolve(text)
        if not path.parent.is_dir():
            self._report(
                ("cronflow", key),
                f'the directory "{path.parent}" does not exist',
                "Create it (for metrics_file: node_exporter's --collector.textfile.directory), "
                "or fix the path",
            )
        elif not os.access(path.parent, os.W_OK):
            self._report(
                ("cronflow", key),
                f'the directory "{path.parent}" is not writable by {trust.user_name(self.euid)}',
                "Let this user write there (the file is replaced, so the directory must be), "
                "or name another",
            )
        return path

    def _alerts(self) -> AlertSettings:
        values = self._table(("alerts",), ALERT_KEYS)
        config = self._resolve(values["config"]) if "config" in values else None
        if config is not None:
            try:
                config.read_bytes()
            except OSError as error:
                self._report(
                    ("alerts", "config"),
                    f'"{config}" cannot be read ({error.strerror})',
                    "Fix the path (relative paths start at the jobs file) or its permissions",
                )
        return AlertSettings(config=config, **_present(values, ALERT_FIELDS))

    def _jobs(self, defaults: dict[str, Any], settings: Settings) -> dict[str, Job]:
        tables = self.raw.get("jobs", {})
        if not isinstance(tables, dict) or not tables:
            self._report(
                ("jobs",),
                "no jobs are declared",
                'Add a job: [jobs.hello] with command = "echo hello"',
            )
            return {}
        jobs = {}
        for name, table in tables.items():
            if not JOB_NAME.match(name):
                self._report(
                    ("jobs", name),
                    f'job name "{name}" is not allowed',
                    "Use letters, digits, '_', '-' and '.', starting with a letter or digit",
                    job=name,
                )
                continue
            if len(name) > MAX_NAME:
                self._report(
                    ("jobs", name),
                    f"job name is {len(name)} characters long",
                    f"Use at most {MAX_NAME} (it names lock and output files)",
                    job=name[:MAX_NAME] + "…",
                )
                continue
            if not isinstance(table, dict):
                self._report(
                    ("jobs", name),
                    f"must be a table, not {_type_name(table)}",
                    f'Write [jobs.{name}] followed by command = "..."',
                    job=name,
                )
                continue
            values = {**defaults, **self._table(("jobs", name), JOB_KEYS)}
            if "timezone" in values:
                self.zone_set.add(name)
            if "env" in defaults and "env" in values:
                values["env"] = {**defaults["env"], **values["env"]}
            if "command" not in values:
                if "command" not in table:
                    self._report(
                        ("jobs", name),
                        "has no command",
                        'Add command = "..." (run by /bin/sh -c)',
                        job=name,
                    )
                continue
            jobs[name] = self._job(name, values, settings)
        jobs = self._with_asset_upstreams(jobs)
        self._check_dependencies(jobs)
        return jobs

    def _job(self, name: str, values: dict[str, Any], settings: Settings) -> Job:
        cwd = self._resolve(values.get("cwd", "."))
        if "cwd" in values and not cwd.is_dir():
            self._report(
                ("jobs", name, "cwd"),
                f'"{cwd}" is not a directory',
                "Create it, or fix the path (relative paths start at the jobs file)",
            )
        if "shell" in values:
            self._check_shell(name, values["shell"])
        env_files = tuple(self._resolve(text) for text in values.get("env_file", ()))
        for env_file in env_files:
            self._check_env_file(name, env_file)
        if "user" in values or "group" in values:
            self._check_account(name, values)
        timezone = values.get("timezone", settings.timezone)
        at_boot = values.get("schedule") == AT_BOOT
        if at_boot and values.get("depends_on"):
            self._report(
                ("jobs", name, "schedule"),
                "@reboot runs once per boot, before anything else: it cannot have depends_on",
                "Remove depends_on, or give the job the schedule of its upstreams "
                "(jobs after a @reboot job are fine)",
                job=name,
            )
        own = self.raw["jobs"][name]  # a [defaults] run_if is for the jobs with upstreams
        rule = values.get("run_if", RunIf.ALL_SUCCESS)
        if "run_if" in own and rule is not RunIf.ALL_SUCCESS and not own.get("depends_on"):
            self._report(
                ("jobs", name, "run_if"),
                f'run_if = "{rule}" but the job has no depends_on',
                "A trigger rule is about upstreams: add depends_on, or remove run_if",
                job=name,
            )
        both = values.get("success_exit_codes", set()) & values.get("no_retry_exit_codes", set())
        if both:
            self._report(
                ("jobs", name, "no_retry_exit_codes"),
                f"exit status {min(both)} is also in success_exit_codes",
                "Keep each exit status in one list: a success is never retried anyway",
                job=name,
            )
        if "ping_url" in values:  # one check per job from a [defaults] slug URL
            values["ping_url"] = values["ping_url"].replace("{job}", name)
        retry = RetryPolicy(**_present(values, RETRY_FIELDS))
        if "retries" in values:
            retry = replace(retry, attempts=values["retries"] + 1)
        definition: dict[str, Any] = dict(
            name=name,
            command=values["command"],
            schedule=None if at_boot else values.get("schedule"),
            at_boot=at_boot,
            timezone=timezone,
            cadence=Cadence(None if at_boot else values.get("schedule"), timezone),
            cwd=cwd,
            env_files=env_files,
            retry=retry,
            timeout=values.get("timeout") or None,  # 0 means no timeout
            **_present(values, JOB_FIELDS),
        )
        digest = hashlib.sha256(repr(definition).encode()).hexdigest()[:12]
        return Job(**definition, config_hash=digest)

    def _check_shell(self, name: str, shell: str) -> None:
        """The shell must be an absolute path to an executable file, as cron's SHELL= is."""
        if not shell.startswith("/"):
            self._report(
                ("jobs", name, "shell"),
                f'"{shell}" is not an absolute path',
                'Write the full path, such as "/bin/bash" (see `command -v bash`)',
                job=name,
            )
        elif not (os.path.isfile(shell) and os.access(shell, os.X_OK)):
            self._report(
                ("jobs", name, "shell"),
                f'"{shell}" is not an executable file here',
                "Install that shell, or name another one",
                job=name,
            )

    def _check_env_file(self, name: str, path: Path) -> None:
        """The file must be readable and well-formed now (it is read again at each run)."""
        at = ("jobs", name, "env_file")
        try:
            env_files.read_env_file(path)
        except OSError as error:
            self._report(
                at,
                f'"{path}" cannot be read ({error.strerror})',
                "Create it with chmod 600, or fix the path (relative paths start at the jobs file)",
            )
        except UnicodeDecodeError:
            self._report(at, f'"{path}" is not UTF-8 text', "Save it as UTF-8")
        except env_files.EnvFileError as error:
            self._report(
                at, f'"{path}": {error}', "Write one NAME=value per line; quote values with spaces"
            )

    def _check_account(self, name: str, values: dict[str, Any]) -> None:
        at = ("jobs", name, "user")
        if "user" not in values:
            self._report(
                ("jobs", name, "group"),
                "group is set without user",
                'Add user = "name" too; the job then runs as that user and group',
            )
        elif self.euid != 0:
            self._report(
                at,
                f'user = "{values["user"]}" needs cronflow to run as root, and '
                f"it runs as {trust.user_name(self.euid)}",
                "Run cronflow as root (e.g. the system service), or remove user",
            )
        else:
            try:
                accounts.account(values["user"], values.get("group"))
            except accounts.UnknownAccount as error:
                self._report(
                    ("jobs", name, error.key),
                    str(error),
                    f"Create it ({error.key}add), or fix the name",
                )

    def _check_trust(self, alerts: AlertSettings, jobs: dict[str, Job]) -> list[str]:
        """As cron does with a crontab: as root, refuse files that others could change
        (reported as problems); as anyone else, warn about them."""
        files: list[tuple[str, Path, tuple[str, ...]]] = [("the jobs file", self.path, ())]
        if alerts.config is not None:
            files.append(
                (f"the apprise config {alerts.config}", alerts.config, ("alerts", "config"))
            )
        for job in jobs.values():
            files += [
                (f'the env_file {path} of job "{job.name}"', path, ("jobs", job.name, "env_file"))
                for path in job.env_files
            ]
        warnings, seen = [], set()
        for what, path, at in files:
            for finding in trust.untrusted(path, self.euid):
                if (finding.path, finding.problem) in seen:
                    continue  # a directory above several files: say it once
                seen.add((finding.path, finding.problem))
                subject = (
                    what
                    if finding.path == path.resolve()
                    else f"{finding.path}, a directory above {what},"
                )
                if self.euid != 0:
                    warnings.append(
                        f"{subject} {finding.problem}; as root cronflow would "
                        f"refuse it. Fix: {finding.fix}"
                    )
                elif at:
                    self._report(
                        at,
                        f"cronflow runs as root and {subject} {finding.problem}",
                        f"Run: {finding.fix} (another user could change what root runs)",
                    )
                else:
                    self.problems.append(
                        Problem(
                            problem=f"cronflow runs as root and {subject} {finding.problem}",
                            fix=f"Run: {finding.fix} (another user could change what root runs)",
                        )
                    )
        return warnings

    # ---- assets ------------------------------------------------------------------------------

    def _producers(self, jobs: dict[str, Job]) -> dict[str, str]:
        """Asset -> the job that produces it; an asset two jobs produce is reported."""
        producers: dict[str, str] = {}
        for job in jobs.values():
            for asset in job.produces:
                if asset in producers:
                    self._report(
                        ("jobs", job.name, "produces"),
                        f'"{asset}" is produced by {producers[asset]} too',
                        "Let one job produce it (others can `use` it), or name the two apart",
                        job=job.name,
                    )
                else:
                    producers[asset] = job.name
        return producers

    def _with_asset_upstreams(self, jobs: dict[str, Job]) -> dict[str, Job]:
        """Each job's upstreams with the producers of what it uses (a dependency given both
        ways is one dependency; its own assets are not)."""
        producers = {asset: job.name for job in jobs.values() for asset in job.produces}
        linked = {}
        for name, job in jobs.items():
            derived = [producers[a] for a in job.uses if a in producers and producers[a] != name]
            depends_on = tuple(dict.fromkeys([*job.depends_on, *derived]))
            linked[name] = replace(job, depends_on=depends_on) if derived else job
        return linked

    def _assets(self, jobs: dict[str, Job]) -> dict[str, Asset]:
        """Every asset named by a job or an [assets.NAME] table, checked: what is used is
        produced by a job or declared external, and what is declared is one or the other."""
        producers = self._producers(jobs)
        tables = self.raw.get("assets", {})
        if not isinstance(tables, dict):
            self._report(
                ("assets",),
                f"must be a table, not {_type_name(tables)}",
                "Write [assets.NAME] tables",
            )
            tables = {}
        declared = {name: self._table(("assets", name), ASSET_KEYS) for name in tables}
        consumers: dict[str, list[str]] = {}
        for job in jobs.values():
            for asset in job.uses:
                consumers.setdefault(asset, []).append(job.name)
                if asset not in producers and not declared.get(asset, {}).get("external"):
                    known = sorted({*producers, *declared})
                    close = _close_matches(asset, known)
                    hint = f'Did you mean "{close[0]}"? ' if close else ""
                    self._report(
                        ("jobs", job.name, "uses"),
                        f'uses "{asset}", which no job produces',
                        f"{hint}Add it to the producing job's produces, or declare it made "
                        f'outside cronflow: [assets."{asset}"] external = true',
                        job=job.name,
                    )
        for name, values in declared.items():
            if values.get("external") and name in producers:
                self._report(
                    ("assets", name, "external"),
                    f'"{name}" is declared external but job {producers[name]} produces it',
                    "Remove external = true, or remove it from that job's produces",
                )
            elif not values.get("external") and name not in producers:
                self._report(
                    ("assets", name),
                    f'no job produces "{name}"',
                    "Add it to a job's produces, or declare external = true",
                )
        names = [*producers, *(n for n in declared if n not in producers)]
        names += [n for n in consumers if n not in names]
        return {
            name: Asset(
                name=name,
                producer=producers.get(name),
                consumers=tuple(consumers.get(name, ())),
                fresh_within=declared.get(name, {}).get("fresh_within"),
                description=declared.get(name, {}).get("description", ""),
            )
            for name in names
        }

    # ---- the graph ---------------------------------------------------------------------------

    def _check_dependencies(self, jobs: dict[str, Job]) -> None:
        declared = set(self.raw.get("jobs", {}))
        for job in jobs.values():
            for upstream in job.depends_on:
                if upstream not in declared:
                    close = _close_matches(upstream, sorted(declared))
                    hint = f'Did you mean "{close[0]}"? ' if close else ""
                    self._report(
                        ("jobs", job.name, "depends_on"),
                        f'depends on "{upstream}", which is not a job',
                        f"{hint}Fix the name or add [jobs.{upstream}]",
                    )
        graph = {job.name: [u for u in job.depends_on if u in jobs] for job in jobs.values()}
        cycle = dag.find_cycle(graph)
        if cycle:
            self._report(
                ("jobs", cycle[0], "depends_on"),
                f"dependency cycle: {' -> '.join(cycle)}",
                "Remove one of these dependencies; a job cannot wait for itself",
            )
        else:
            jobs.update(self._with_cadences(jobs, graph))

    def _with_cadences(self, jobs: dict[str, Job], graph: dag.Graph[str]) -> dict[str, Job]:
        """Give every unscheduled job the cadence its upstreams share, or report the clash."""
        jobs = dict(jobs)
        for name in dag.topological_order(graph):
            job = jobs[name]
            upstreams = graph[name]
            if job.schedule is not None or not upstreams:
                continue
            cadences = {jobs[upstream].cadence for upstream in upstreams}
            if len(cadences) > 1:
                listed = ", ".join(f"{u} runs {jobs[u].cadence.describe()}" for u in upstreams)
                self._report(
                    ("jobs", name, "depends_on"),
                    f"has no schedule and its upstreams run on different schedules ({listed})",
                    "Give this job its own schedule; it then runs after the latest "
                    "run of each upstream at or before its own time",
                )
                continue
            cadence = cadences.pop()
            zone = job.timezone if name in self.zone_set else cadence.timezone
            jobs[name] = replace(job, cadence=cadence, timezone=zone)
        return jobs

    # ---- helpers -----------------------------------------------------------------------------

    def _resolve(self, text: str) -> Path:
        """A path of the file: from its folder, ~ expanded (each text resolved once)."""
        if text not in self._resolved:
            self._resolved[text] = (self.folder / os.path.expanduser(text)).absolute()
        return self._resolved[text]

    def _report(self, at: tuple[str, ...], problem: str, fix: str, job: str | None = None) -> None:
        if job is None and len(at) >= 2 and at[0] == "jobs":
            job = at[1]
        # A job's key by its name (`retries`), any other by its path (`defaults.retries`).
        key = (at[2] if len(at) >= 3 else None) if at[:1] == ("jobs",) else ".".join(at)
        self.problems.append(
            Problem(problem=problem, fix=fix, line=self._line_of(at), job=job, key=key)
        )

    def _line_of(self, at: tuple[str, ...]) -> int | None:
        if self._lines is None:
            self._lines = _key_lines(self.text)
        for length in range(len(at), 0, -1):
            if at[:length] in self._lines:
                return self._lines[at[:length]]
        return None


def _key_lines(text: str) -> dict[tuple[str, ...], int]:
    """Where each table and key is first written: dotted path -> 1-based line number.

    tomllib does not report positions, so this scans the text line by line, letting tomllib
    parse each header and key on its own to get exactly the path TOML gives it.
    """
    lines: dict[tuple[str, ...], int] = {}
    table: tuple[str, ...] = ()
    open_string: str | None = None
    for number, line in enumerate(text.splitlines(), start=1):
        if open_string:
            if line.count(open_string) % 2 == 1:
                open_string = None
            continue
        stripped = line.strip()
        if stripped.startswith("["):
            table = _path_of(stripped) or table
            _record(lines, table, number)
            continue
        match = re.match(r"\s*([^=#\s][^=]*?)\s*=(.*)", line)
        if not match:
            continue
        key = _path_of(match.group(1) + " = 0")
        if key:
            _record(lines, table + key, number)
        for quotes in ('"""', "'''"):
            if match.group(2).count(quotes) % 2 == 1:
                open_string = quotes
    return lines


def _path_of(fragment: str) -> tuple[str, ...] | None:
    """The key path a lone header (`[jobs."a b"]`) or key (`env.A = 0`) stands for."""
    try:
        node: Any = tomllib.loads(fragment)
    except tomllib.TOMLDecodeError:
        return None
    path = []
    while isinstance(node, dict) and len(node) == 1:
        key, node = next(iter(node.items()))
        path.append(key)
    return tuple(path) or None


def _record(lines: dict[tuple[str, ...], int], path: tuple[str, ...], number: int) -> None:
    for length in range(1, len(path) + 1):
        lines.setdefault(path[:length], number)
