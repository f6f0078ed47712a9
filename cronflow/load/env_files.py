"""Reading dotenv-style files (`env_file`), where secrets live outside jobs.toml.

The syntax is the common subset of docker compose, python-dotenv and systemd: `NAME=value`
lines, an optional `export ` in front, `#` comments, blank lines, 'single-quoted' literal
values and "double-quoted" values with backslash escapes (both may span lines). Nothing is
expanded: `$OTHER` stays as written. Errors name the line, never the value.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from cronflow.load import trust
from cronflow.load.bounded import MIB, read_regular
from cronflow.model import Job

MAX_ENV_FILE_BYTES = MIB  # read at every run; a secret or a hundred need a few KB
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", '"': '"', "\\": "\\", "$": "$"}


class EnvFileError(ValueError):
    """A line that is not `NAME=value`; the message names the line, not its text."""


class Unusable(Exception):
    """A job's env_file cannot be used right now; the message says which and why."""


def read_job_env_files(job: Job) -> dict[str, str]:
    """The variables of the job's env_files, read now; refused as root when others could
    change one (it was trusted when the jobs file loaded, but files change)."""
    values: dict[str, str] = {}
    for path in job.env_files:
        if os.geteuid() == 0:
            for finding in trust.untrusted(path, 0):
                raise Unusable(
                    f"env_file {path}: {finding.path} {finding.problem}; refused "
                    f"as root. Run: {finding.fix}"
                )
        try:
            values |= read_env_file(path)
        except OSError as error:
            raise Unusable(f"env_file {path} cannot be read ({error.strerror})") from None
        except UnicodeDecodeError:
            raise Unusable(f"env_file {path}: not UTF-8 text") from None
        except EnvFileError as error:
            raise Unusable(f"env_file {path}: {error}") from None
    return values


def secrets_of_job(job: Job) -> tuple[str, ...]:
    """What to mask in a job's output, as its env_files and env say now (an env_file that
    cannot be read now masks nothing of its own)."""
    from cronflow.masking import secrets_of

    try:
        return secrets_of(job.env, read_job_env_files(job).values())
    except Unusable:
        return secrets_of(job.env)


def read_env_file(path: Path) -> dict[str, str]:
    """The variables of an env file; OSError if it cannot be read, EnvFileError if malformed."""
    return parse_env(read_regular(path, MAX_ENV_FILE_BYTES).decode("utf-8", errors="strict"))


def parse_env(text: str) -> dict[str, str]:
    values: dict[str, str] = {}
    position, line = 0, 1
    while position < len(text):
        end = text.find("\n", position)
        end = len(text) if end == -1 else end
        stripped = text[position:end].strip()
        if not stripped or stripped.startswith("#"):
            position, line = end + 1, line + 1
            continue
        name, value, position, used = _assignment(text, position, line)
        values[name] = value
        line += used
    return values


def _assignment(text: str, position: int, line: int) -> tuple[str, str, int, int]:
    """Parse `NAME=value` at `position`: (name, value, next position, lines used)."""
    start = position + len(text[position:]) - len(text[position:].lstrip(" \t"))
    if text.startswith("export ", start):
        start += len("export ")
    match = _NAME.match(text, start)
    equals = match.end() if match else start
    while equals < len(text) and text[equals] in " \t":
        equals += 1
    if not match or equals >= len(text) or text[equals] != "=":
        raise EnvFileError(f"line {line} is not NAME=value")
    value_start = equals + 1
    while value_start < len(text) and text[value_start] in " \t":
        value_start += 1
    quote = text[value_start : value_start + 1]
    if quote in ("'", '"'):
        value, after = _quoted(text, value_start, quote, line)
    else:
        after = text.find("\n", value_start)
        after = len(text) if after == -1 else after
        value = re.split(r"\s#", text[value_start:after], maxsplit=1)[0].strip()
    rest_end = text.find("\n", after)
    rest_end = len(text) if rest_end == -1 else rest_end
    rest = text[after:rest_end].strip()
    if rest and not rest.startswith("#"):
        raise EnvFileError(f"line {line} has text after its closing quote")
    return match.group(), value, rest_end + 1, text.count("\n", position, rest_end) + 1


def _quoted(text: str, start: int, quote: str, line: int) -> tuple[str, int]:
    """A quoted value starting at the quote at `start`: (value, position after the quote)."""
    characters: list[str] = []
    index = start + 1
    while index < len(text):
        character = text[index]
        if character == quote:
            return "".join(characters), index + 1
        if quote == '"' and character == "\\" and index + 1 < len(text):
            following = text[index + 1]
            characters.append(_ESCAPES.get(following, "\\" + following))
            index += 2
            continue
        characters.append(character)
        index += 1
    raise EnvFileError(f"line {line} opens a {quote}-quoted value that never closes")
