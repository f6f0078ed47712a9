"""A crontab line's command as cron runs it: its text (`%` is a newline, the rest stdin), a
job name taken from the program it runs (past wrappers such as nice, flock or sudo), the
habits cron users have that cronflow does itself (redirections to a log, a lock, mail), and
a variable's value unquoted as cron reads it."""

from __future__ import annotations

import re
import shlex

# Programs that run another command: a job is named after what they run.
_WRAPPERS = frozenset(
    {
        "nice",
        "ionice",
        "nohup",
        "timeout",
        "flock",
        "chronic",
        "sudo",
        "su",
        "env",
        "exec",
        "time",
        "setsid",
        "cronic",
        "run-one",
        "sh",
        "bash",
        "dash",
        "zsh",
        "ksh",
        "python",
        "python2",
        "python3",
        "perl",
        "ruby",
        "php",
        "node",
        "java",
    }
)


def command_text(raw: str, rest: str) -> str:
    """The command as cron keeps it: leading blanks dropped, trailing ones too unless the
    last is escaped with a backslash."""
    command = raw[raw.rindex(rest) :] if rest in raw else rest
    trimmed = command.rstrip(" \t")
    if trimmed.endswith("\\") and len(trimmed) < len(command):
        return command[: len(trimmed) + 1]
    return trimmed


def split_percent(command: str) -> tuple[str, str | None]:
    """Cron's % rule (do_command()): an unescaped % ends the command and the rest is its
    stdin; `\\%` is a %. A backslash before anything else stays, and escapes nothing: in
    `\\\\%` the % is unescaped."""
    kept: list[str] = []
    escaped = False
    for index, char in enumerate(command):
        if escaped:
            if char == "%":
                kept[-1] = "%"
            else:
                kept.append(char)
            escaped = False
            continue
        if char == "\\":
            escaped = True
            kept.append(char)
            continue
        if char == "%":
            return "".join(kept), command[index + 1 :]
        kept.append(char)
    return "".join(kept), None


def habits(command: str) -> list[str]:
    """Cron habits that quietly do something else under cronflow, with the cronflow way."""
    found = []
    if re.search(r"\|\|\s*(echo|true|:|exit\s+0)\b", command):
        found.append(
            "`|| ...` swallows the failure cron would have mailed: cronflow sees "
            "success and never alerts or retries. Let the command fail"
        )
    if re.search(r"(>>?|&>)\s*\S+", command):
        found.append(
            "its output is redirected to a file, so `cronflow logs` and alerts never "
            "see it. Drop the redirection: cronflow keeps each run's output"
        )
    if re.search(r"\$\(\s*date\b|`\s*date\b", command):
        found.append(
            "it computes a date with `date`, which is wrong for a backfill or a "
            "catch-up: use $CRONFLOW_DATE (the run's logical date, YYYY-MM-DD)"
        )
    return found


def job_name(command: str, taken: set[str]) -> str:
    """A name from what the command runs: the script or program after `cd ... &&`, `nice`,
    an interpreter and the like, or the last part of a URL."""
    base = "job"
    for part in re.split(r"&&|\|\||;|\|", command):
        words = [word for word in words_of(part) if "=" not in word.split("/")[0]]
        if not words or words[0] in ("cd", "test", "[", "[[", "true", ":", "sleep"):
            continue
        base = program_of(words)
        break
    base = re.sub(r"[^a-z0-9]+", "_", base.lower()).strip("_") or "job"
    if not base[0].isalnum():
        base = f"job_{base}"
    name, counter = base[:60], 2
    while name in taken:
        name, counter = f"{base[:60]}_{counter}", counter + 1
    return name


def words_of(text: str) -> list[str]:
    try:
        return shlex.split(text)
    except ValueError:
        return text.split()


def program_of(words: list[str]) -> str:
    for index, word in enumerate(words):
        program = word.rsplit("/", 1)[-1]
        if word.startswith("-") or program in _WRAPPERS or re.fullmatch(r"[0-9.]+[smhd]?", word):
            continue
        if program in ("curl", "wget"):
            urls = [w for w in words[index + 1 :] if "://" in w]
            if urls:
                path = urls[0].split("://", 1)[1].rstrip("/").split("?")[0]
                return path.rsplit("/", 1)[-1] or path
        if program == "run-parts" and index + 1 < len(words):
            return "run_parts_" + words[-1].rstrip("/").rsplit("/", 1)[-1]
        return re.sub(r"\.(sh|py|pl|php|rb|js|bash)$", "", program)
    return words[0].rsplit("/", 1)[-1]


def unquote(value: str) -> str:
    value = value.strip()
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
        return value[1:-1]
    return value
