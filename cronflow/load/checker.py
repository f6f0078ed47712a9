"""What of the jobs file's validator (load/jobs_toml.py) the table checkers use."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Protocol


class Checker(Protocol):
    """What of the jobs file's validator these checks use (load/jobs_toml.py)."""

    raw: dict[str, Any]

    def _table(
        self, at: tuple[str, ...], converters: Mapping[str, Callable[[Any], Any]]
    ) -> dict[str, Any]: ...

    def _report(
        self, at: tuple[str, ...], problem: str, fix: str, job: str | None = None
    ) -> None: ...
