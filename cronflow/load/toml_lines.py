"""Where each table and key of a jobs file is written, so a problem names its line."""

from __future__ import annotations

import re
import tomllib
from typing import Any


def key_lines(text: str) -> dict[tuple[str, ...], int]:
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
