"""The errors cronflow reports to users; each knows its exit status and prints as one paragraph."""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

EXIT_BAD_INPUT = 2


class CronflowError(Exception):
    """Base of every error meant for the user rather than for a traceback."""

    exit_code = EXIT_BAD_INPUT


@dataclass(frozen=True, slots=True, kw_only=True)
class Problem:
    """One thing wrong with a jobs file, located as precisely as we can."""

    problem: str
    fix: str
    line: int | None = None
    column: int | None = None
    job: str | None = None
    key: str | None = None

    def describe(self, path: Path) -> str:
        """`jobs.toml:14: job "load", key "depends_on": <problem>. <fix>`"""
        where = str(path)
        if self.line is not None:
            where += f":{self.line}"
            if self.column is not None:
                where += f":{self.column}"
        subject = []
        if self.job is not None:
            subject.append(f'job "{self.job}"')
        if self.key is not None:
            subject.append(f'key "{self.key}"')
        prefix = f"{where}: " + (", ".join(subject) + ": " if subject else "")
        return f"{prefix}{self.problem}. {self.fix}"


class ConfigError(CronflowError):
    """A jobs file that cannot be used, with every problem found in it."""

    def __init__(self, path: Path, problems: list[Problem], consequence: str = "") -> None:
        self.path = path
        self.problems = sorted(problems, key=lambda p: (p.line or 0, p.job or "", p.key or ""))
        self.consequence = consequence  # what did not happen because of them, if anything
        super().__init__(self._message())

    def _message(self) -> str:
        count = len(self.problems)
        head = f"{self.path}: {count} problem{'s' if count != 1 else ''} found"
        head += f"; {self.consequence}." if self.consequence else "."
        return "\n".join([head, *(f"  {p.describe(self.path)}" for p in self.problems)])

    def because(self, consequence: str) -> ConfigError:
        """The same problems, saying what they stopped (`nothing was run`)."""
        return ConfigError(self.path, self.problems, consequence)


class UsageError(CronflowError):
    """A command-line argument that names something that does not exist or cannot be parsed."""


class StoreError(CronflowError):
    """The run log or state directory cannot be written; the run is not started."""

    exit_code = 1


def printable(text: str) -> str:
    """`text` safe for a terminal or a log: every control character but the newline
    (escape sequences, \r, \b), and every line or paragraph separator, shown escaped
    (\x1b), so that nothing a jobs file holds can rewrite what a reader sees."""
    return "".join(
        char
        if char == "\n" or (char.isprintable() and char not in "\u2028\u2029")
        else char.encode("unicode_escape").decode("ascii")
        for char in text
    )


def reporting_errors(action: Callable[[], object]) -> None:
    """Run `action`, turning cronflow's errors into a message and an exit status."""
    try:
        action()
    except CronflowError as error:
        print(f"cronflow: {printable(str(error))}", file=sys.stderr)
        sys.exit(error.exit_code)
    except KeyboardInterrupt:
        sys.exit(130)
