"""What of the jobs file's validator (load/jobs_toml.py) the table checkers use."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Protocol

from cronflow.load.values import type_name


class Checker(Protocol):
    """What of the jobs file's validator these checks use (load/jobs_toml.py)."""

    raw: dict[str, Any]

    def _table(
        self, at: tuple[str, ...], converters: Mapping[str, Callable[[Any], Any]]
    ) -> dict[str, Any]: ...

    def _report(
        self, at: tuple[str, ...], problem: str, fix: str, job: str | None = None
    ) -> None: ...


def section_of(checker: Checker, section: str, fix: str) -> dict[str, Any]:
    """The top-level table `section` ([calendars], [pools], [assets], [blackout]): empty,
    and reported with `fix`, when the file gives it as something other than a table."""
    found = checker.raw.get(section, {})
    if isinstance(found, dict):
        return found
    checker._report((section,), f"must be a table, not {type_name(found)}", fix)
    return {}
