"""The values of a jobs file: each key's converter (raw TOML value -> typed value, or
Invalid with the problem and its fix), and which keys each table takes."""

from __future__ import annotations

import json
import math
import re
import unicodedata
from collections.abc import Callable
from datetime import time, timedelta
from enum import StrEnum
from typing import Any
from urllib.parse import SplitResult, urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from cronflow.calendars import Shift
from cronflow.decide import schedule
from cronflow.model import AlertEvent, CatchUp, DayRule, Deadline, Overlap, PingProtocol, RunIf

MAX_ARGUMENT_BYTES = 128 * 1024 - 1
MAX_DURATION = timedelta(days=365)


class Invalid(Exception):
    """A value that cannot be used; carries the problem and its fix."""

    def __init__(self, problem: str, fix: str, usable: Any = None) -> None:
        super().__init__(problem)
        self.problem, self.fix = problem, fix
        self.usable = usable  # what of the value can still be used (None: nothing), so that
        # one bad entry of a list does not make the good ones look missing elsewhere


# ---- value converters: raw TOML value -> typed value, or Invalid ------------------------------


def _string(value: Any) -> str:
    if not isinstance(value, str):
        raise Invalid(f"must be a string, not {type_name(value)}", 'Quote the value: key = "..."')
    return value


def _instance(value: Any) -> str:
    text = _non_empty_string(value)
    if len(text) > 128 or not text.isprintable():
        raise Invalid(
            "must be at most 128 printable characters",
            'Name this cronflow shortly, such as "etl" or "backups"',
        )
    return text


def _non_empty_string(value: Any) -> str:
    text = _string(value)
    if not text.strip():
        raise Invalid("is empty", "Give it a value")
    return text


def _path(value: Any) -> str:
    """A path the system can use: each name at most 255 bytes, the whole at most 4,095."""
    path = _non_empty_string(value)
    longest = max(len(part.encode()) for part in path.split("/"))
    if longest > 255 or len(path.encode()) > 4095:
        raise Invalid(
            "is too long for a path (a name in it may have 255 bytes, the whole path 4,095)",
            "Use a shorter path",
        )
    return path


def _command(value: Any) -> str:
    command = _non_empty_string(value)
    if len(command.encode()) > MAX_ARGUMENT_BYTES:
        raise Invalid(
            f"is {len(command.encode()):,} bytes long; a command can be at most "
            f"{MAX_ARGUMENT_BYTES:,} (Linux's limit for one argument)",
            "Put the script in a file and run that file",
        )
    return command


def _integer(minimum: int, maximum: int) -> Callable[[Any], int]:
    def convert(value: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise Invalid(
                f"must be a whole number, not {type_name(value)}",
                f"Write a number such as {max(minimum, 3)}",
            )
        if not minimum <= value <= maximum:
            raise Invalid(
                f"must be from {minimum} to {maximum:,}, not {value:,}",
                f"Use a number from {minimum} to {maximum:,}",
            )
        return value

    return convert


def _backoff(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise Invalid(f"must be a number, not {type_name(value)}", "Write a number such as 2.0")
    if not 1 <= value <= 100:  # also false for nan
        raise Invalid(
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
        raise Invalid(f"must be a duration, not {type_name(value)}", fix)
    if isinstance(value, str):
        text = value.strip().lower()
        if re.fullmatch(r"\d+(\.\d+)?", text):
            seconds = float(text)
        elif text and re.fullmatch(f"(?:{_DURATION_PART.pattern})+", text):
            seconds = sum(float(n) * _DURATION_UNITS[u] for n, u in _DURATION_PART.findall(text))
        else:
            raise Invalid(f'"{value}" is not a duration', fix)
    else:
        seconds = float(value)
    if seconds < 0:
        raise Invalid(f"must not be negative ({value})", fix)
    if not seconds <= MAX_DURATION.total_seconds():  # also true for nan
        raise Invalid(
            f"is longer than {MAX_DURATION.days} days ({value})",
            f'Use at most {MAX_DURATION.days} days ("{MAX_DURATION.days}d")',
        )
    return timedelta(seconds=seconds)


def _timezone(value: Any) -> ZoneInfo:
    name = _string(value)
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):  # OSError: a name too long for a path
        raise Invalid(
            f'"{name[:60]}" is not a known time zone',
            'Use an IANA name such as "UTC", "Europe/Berlin" or "America/New_York"',
        ) from None


AT_BOOT = "@reboot"


def _schedule(value: Any) -> str:
    """A cron expression or macro, `@reboot`, or a list of expressions (one logical time per
    tick of any of them, each once: joined by schedule.SEPARATOR)."""
    if isinstance(value, str) and value.strip().lower() == AT_BOOT:
        return AT_BOOT  # not a cron schedule: once per boot (Job.at_boot)
    if isinstance(value, list):
        texts = _strings(value)
        if not texts or any(text.strip().lower() == AT_BOOT for text in texts):
            raise Invalid(
                "must list one cron expression at least, and no @reboot",
                'Write schedule = ["0 6 * * 1-5", "0 9 * * 6,7"], or @reboot on its own',
            )
        value = "|".join(texts)
    try:
        return schedule.check(_string(value))
    except schedule.ScheduleError as error:
        raise Invalid(
            str(error),
            'Write 5 fields, e.g. "0 6 * * *" for 06:00 daily, '
            'or a macro such as "@hourly"; see crontab(5)',
        ) from None


def _env(value: Any) -> dict[str, str]:
    if not isinstance(value, dict):
        raise Invalid(f"must be a table, not {type_name(value)}", 'Write env = { NAME = "value" }')
    env = {}
    for name, item in value.items():
        if isinstance(item, bool) or not isinstance(item, str | int | float):
            raise Invalid(
                f'variable "{name}" must be a string or number, not {type_name(item)}',
                f'Write {name} = "value"',
            )
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
            raise Invalid(
                f'"{name}" is not a valid environment variable name',
                "Use letters, digits and _, not starting with a digit",
            )
        if isinstance(item, float) and not math.isfinite(item):
            raise Invalid(f'variable "{name}" is {item}', f'Write {name} = "value" as text')
        env[name] = str(item)
        if len(f"{name}={env[name]}".encode()) > MAX_ARGUMENT_BYTES:
            raise Invalid(
                f'variable "{name}" is longer than {MAX_ARGUMENT_BYTES:,} bytes '
                "(Linux's limit for one environment entry)",
                "Put the value in a file and read it from the job",
            )
    return env


def _paths(value: Any) -> tuple[str, ...]:
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list) or not all(isinstance(item, str) and item for item in items):
        raise Invalid(
            f"must be a path or a list of paths, not {type_name(value)}",
            'Write env_file = "secrets.env" (relative to the jobs file)',
        )
    return tuple(_path(item) for item in items)


def _names(value: Any) -> tuple[str, ...]:
    if isinstance(value, str) and len(value.replace(",", " ").split()) > 1:
        raise Invalid(  # no job name holds a comma or a blank: a list written as one string
            f'is one string, "{value}", where a list of job names belongs',
            f"Write depends_on = {_as_list(value)}",
        )
    return _name_list(value, "a job name or a list of job names", 'depends_on = ["extract"]')


def _calendar_names(value: Any) -> tuple[str, ...]:
    example = 'skip_on = ["holidays"] (each a [calendars.NAME] table)'
    return _name_list(value, "a list of calendar names", example)


def _name_list(value: Any, what: str, example: str) -> tuple[str, ...]:
    """One name or a list of names, each once, in order."""
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list) or not all(isinstance(item, str) for item in items):
        raise Invalid(f"must be {what}, not {type_name(value)}", f"Write {example}")
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
            raise Invalid(f'"{value}" is not allowed', f"Use one of {valid}") from None

    return convert


def _choices(
    enum: type[StrEnum], allowed: tuple[StrEnum, ...] | None = None
) -> Callable[[Any], tuple[Any, ...]]:
    one = _choice(enum, allowed)

    def convert(value: Any) -> tuple[Any, ...]:
        if not isinstance(value, list):
            raise Invalid(
                f"must be a list, not {type_name(value)}",
                f'Write a list such as ["{next(iter(enum)).value}"]',
            )
        return tuple(one(item) for item in value)

    return convert


def _boolean(value: Any) -> bool:
    if not isinstance(value, bool):
        raise Invalid(f"must be true or false, not {type_name(value)}", "Write true or false")
    return value


def _repeat(value: Any) -> timedelta | None:
    if value == "never":
        return None
    repeat = parse_duration(value)
    if not repeat:
        raise Invalid("must be longer than 0", 'Write "never", or a duration such as "4h"')
    return repeat


def _positive_duration(value: Any) -> timedelta:
    duration = parse_duration(value)
    if not duration:
        raise Invalid("must be longer than 0", 'Write a duration such as "10s"')
    return duration


def _max_runtime(value: Any) -> timedelta | str:
    """max_runtime: a duration, or "auto" (learnt from the job's own successful runs)."""
    if value == "auto":
        return "auto"
    try:
        return _positive_duration(value)
    except Invalid as invalid:
        raise Invalid(invalid.problem, invalid.fix.replace("Write", 'Write "auto", or')) from None


def _deadline(value: Any) -> Deadline:
    """finish_by / deadline: "07:00" (the first 07:00 after the logical time, in the job's
    zone) or "+2h" (that long after the logical time)."""
    fix = 'Write a time of day such as "07:00", or a delay after the logical time such as "+2h"'
    if not isinstance(value, str):
        raise Invalid(f"must be a string, not {type_name(value)}", fix)
    text = value.strip()
    if text.startswith("+"):
        after = parse_duration(text[1:])
        if not after:
            raise Invalid("must be longer than 0", fix)
        return Deadline(after=after)
    matched = re.fullmatch(r"(\d{1,2}):(\d{2})", text)
    if matched is None or int(matched[1]) > 23 or int(matched[2]) > 59:
        raise Invalid(f'"{value}" is neither a time of day nor a delay', fix)
    return Deadline(at=time(int(matched[1]), int(matched[2])))


def _well_formed(url: str) -> SplitResult | None:
    """The parts of a URL, or None where it cannot be one: a space or control character in
    it, a bracket left open (`http://[::1`), a port that is no number or out of range."""
    if any(char.isspace() or not char.isprintable() for char in url):
        return None
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 (reading it checks it)
    except ValueError:
        return None
    return parts


def _alert_urls(value: Any) -> tuple[str, ...]:
    urls = _strings(value)
    for url in urls:
        if not re.match(r"[A-Za-z][A-Za-z0-9+.-]*://", url) or _well_formed(url) is None:
            # Never echo the value: alert URLs hold tokens and passwords.
            raise Invalid(
                f"entry {urls.index(url) + 1} is not a URL",
                'Write an apprise URL such as "json://host/path" or "mailto://..."; '
                "see https://github.com/caronc/apprise/wiki",
            )
    return urls


def _ping_url(value: Any) -> str:
    url = _string(value)
    parts = _well_formed(url)
    if parts is None or parts.scheme not in ("http", "https") or not parts.hostname:
        # Never echo the value: the check's UUID or ping key is its secret.
        raise Invalid(
            "is not a well-formed http(s) URL (a bracket left open, a bad port, a space?)",
            'Write the check\'s ping URL, such as "https://hc-ping.com/<uuid>" or '
            '"https://cronitor.link/p/<key>/<monitor>"',
        )
    return url


def _metrics_file(value: Any) -> str:
    path = _string(value)
    if not path.endswith(".prom"):
        raise Invalid(
            f'"{path}" does not end in .prom',
            "node_exporter's textfile collector reads only *.prom files: name it so, such as "
            '"/var/lib/node_exporter/textfile_collector/cronflow.prom"',
        )
    return path


def _success_exit_codes(value: Any) -> frozenset[int]:
    """As _exit_codes, with 0 allowed (a user reasonably lists it: [0, 3]); 0 is always a
    success, so it is left out."""
    codes = [value] if isinstance(value, int) and not isinstance(value, bool) else value
    if isinstance(codes, list):
        codes = [code for code in codes if code != 0 or isinstance(code, bool)]
    return _exit_codes(codes)


def _exit_codes(value: Any) -> frozenset[int]:
    if isinstance(value, int) and not isinstance(value, bool):
        value = [value]
    if not isinstance(value, list) or not all(
        isinstance(code, int) and not isinstance(code, bool) for code in value
    ):
        raise Invalid(
            f"must be a list of exit statuses, not {type_name(value)}",
            "Write a list of numbers from 1 to 255, such as [2, 3]",
        )
    for code in value:
        if not 1 <= code <= 255:
            raise Invalid(
                f"holds {code}, which no process exits with",
                "Use exit statuses from 1 to 255 (0 is always a success)",
            )
    return frozenset(value)


def asset_names(value: Any) -> tuple[str, ...]:
    """Asset names: free-form (warehouse.sales, /srv/data/sales.csv), one or a list; never
    blank at either end, never holding a control character or a line or paragraph
    separator (the metrics file is lines: such a name would break it)."""
    names = tuple(dict.fromkeys((value,) if isinstance(value, str) else _strings(value)))
    bad = [name for name in names if not _is_asset_name(name)]
    if bad:
        shown = bad[0].encode("unicode_escape").decode("ascii")
        raise Invalid(
            f'"{shown}" is not an asset name',
            "Name it without leading or trailing blanks or control characters, such as "
            '"warehouse.sales"',
            usable=tuple(name for name in names if name not in bad),
        )
    return names


def _is_asset_name(name: str) -> bool:
    return (
        bool(name.strip())
        and name == name.strip()
        and all(unicodedata.category(char) not in _NOT_IN_NAMES for char in name)
    )


# Control, format, and line and paragraph separators (\r, \x85, U+2028, U+2029, ...).
_NOT_IN_NAMES = frozenset({"Cc", "Cf", "Zl", "Zp"})


def _strings(value: Any) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise Invalid(
            f"must be a list of strings, not {type_name(value)}",
            f"Write it as a list: {_as_list(value)}"
            if isinstance(value, str)
            else 'Write a list such as ["ops", "db"]',
        )
    return tuple(value)


def _as_list(text: str) -> str:
    """`"a, b"` as the TOML list it meant: `["a", "b"]`."""
    parts = [part for part in text.replace(",", " ").split() if part] or [text]
    return "[" + ", ".join(json.dumps(part) for part in parts) + "]"


def type_name(value: Any) -> str:
    names = {
        str: "a string",
        bool: "true/false",
        int: "a number",
        float: "a number",
        list: "a list",
        dict: "a table",
    }
    return names.get(type(value), type(value).__name__)


def close_matches(word: str, known: list[str], cutoff: float = 0.6) -> list[str]:
    """The known word a typo most likely meant (difflib: imported only for a mistake)."""
    import difflib

    return difflib.get_close_matches(word, known, n=1, cutoff=cutoff)


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
    "produces": asset_names,
    "uses": asset_names,
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
    "alert_after_failures": _integer(1, 10_000),
    "pause_after_failures": _integer(1, 10_000),
    "ping_url": _ping_url,
    "ping_protocol": _choice(PingProtocol),
    "max_runtime": _max_runtime,
    "day_rule": _choice(DayRule),
    "skip_on": _calendar_names,
    "run_on": _calendar_names,
    "shift": _choice(Shift),
    "pool": _non_empty_string,
    "pool_slots": _integer(1, 10_000),
    "pool_priority": _integer(-1_000_000, 1_000_000),
    "pool_timeout": _positive_duration,
    "finish_by": _deadline,
    "success_exit_codes": _success_exit_codes,
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
    "instance": _instance,
    "show_stderr": _boolean,
    "html_file": _string,
}
ALERT_KEYS: dict[str, Callable[[Any], Any]] = {
    "urls": _alert_urls,
    "config": _path,
    "on": _choices(AlertEvent),
    "repeat": _repeat,
    "timeout": _positive_duration,
}
TABLES = ("cronflow", "defaults", "alerts", "jobs", "assets", "calendars", "blackout", "pools")
POOL_KEYS: dict[str, Callable[[Any], Any]] = {
    "slots": _integer(1, 10_000),
    "description": _string,
}
ASSET_KEYS: dict[str, Callable[[Any], Any]] = {
    "external": _boolean,
    "fresh_within": _positive_duration,
    "deadline": _deadline,
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
        "alert_after_failures",
        "pause_after_failures",
        "ping_url",
        "ping_protocol",
        "finish_by",
        "success_exit_codes",
        "no_retry_exit_codes",
        "user",
        "group",
        "shell",
    )
}
ALERT_FIELDS = {key: key for key in ("urls", "on", "repeat", "timeout")}
