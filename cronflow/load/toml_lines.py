"""The jobs file as TOML text: where each table and key is written (so a problem names its
line), what a syntax error means in a jobs file's words, and what tomllib's result must not
hold before it is validated (a nesting too deep, a NUL character)."""

from __future__ import annotations

import re
import tomllib
from typing import Any

from cronflow.errors import Problem


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


def nesting(value: Any) -> int:
    """How deeply tables and arrays nest in `value` (without recursing: any depth is fine)."""
    deepest, stack = 0, [(value, 0)]
    while stack:
        item, depth = stack.pop()
        deepest = max(deepest, depth)
        if isinstance(item, dict):
            stack += [(child, depth + 1) for child in item.values()]
        elif isinstance(item, list):
            stack += [(child, depth + 1) for child in item]
    return deepest


def holding_nul(value: Any, at: tuple[str, ...]) -> tuple[str, ...] | None:
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
        found = (at + (str(key),)) if "\0" in str(key) else holding_nul(item, at + (str(key),))
        if found:
            return found
    return None


_UNQUOTED = re.compile(
    r"\s*([A-Za-z0-9_.-]+)\s*=\s*([0-9][0-9.]*\s*[A-Za-z][^#]*?|[A-Za-z@*][^#]*?)\s*(#.*)?"
)


def syntax_problem(error: tomllib.TOMLDecodeError, text: str) -> Problem:
    # On Python 3.11 the position is only in the message: "... (at line 3, column 10)".
    match = re.search(r"\(at line (\d+), column (\d+)\)", str(error))
    message = re.sub(r"\s*\(at line \d+, column \d+\)", "", str(error))
    line = int(match.group(1)) if match else None
    fix = "Fix the syntax at that position (see https://toml.io)"
    lines = text.split("\n")
    if line is not None and 0 < line <= len(lines):
        unquoted = _UNQUOTED.fullmatch(lines[line - 1])
        if unquoted and unquoted.group(2) not in ("true", "false"):
            key, value = unquoted.group(1), unquoted.group(2)
            message = f"{key} = {value}: a text value must be quoted"
            quoted = f"'{value}'" if '"' in value and "'" not in value else f'"{value}"'
            fix = f"Quote it: {key} = {quoted}"
    return Problem(
        problem=f"TOML syntax error: {message}",
        fix=fix,
        line=line,
        column=int(match.group(2)) if match else None,
    )
