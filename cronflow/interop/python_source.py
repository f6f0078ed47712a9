"""Writing Python source: literals that read back as the value they were made from, calls
wrapped at the line length, comments, durations. For the exports that generate code."""

from __future__ import annotations

import textwrap
from collections.abc import Iterable
from datetime import timedelta
from pathlib import Path

from cronflow.state.files import replace_whole

LINE_LENGTH = 88  # the generated files are formatted as ruff and black format them
_JINJA_MARKERS = ("{{", "{%", "{#")


def comment(text: str, bullet: bool = False, width: int = LINE_LENGTH) -> list[str]:
    """`text` as wrapped comment lines, optionally as a "- " bullet."""

    first, rest = ("# - ", "#   ") if bullet else ("# ", "# ")
    return textwrap.wrap(
        text,
        width=width,
        initial_indent=first,
        subsequent_indent=rest,
        break_long_words=False,
        break_on_hyphens=False,
    )


def call(variable: str, function: str, arguments: list[tuple[str, str]]) -> str:
    return "\n".join(
        [f"    {variable} = {function}(", *argument_lines(arguments, indent=8), "    )"]
    )


def argument_lines(arguments: list[tuple[str, str]], indent: int) -> list[str]:
    return [f"{' ' * indent}{name}={value}," for name, value in arguments]


def verbatim(text: str) -> str:
    """`text` as a Jinja template that renders to exactly `text` (BashOperator templates
    its command, env and cwd; shell text like `${#list}` would otherwise be read as Jinja)."""
    if not any(marker in text for marker in _JINJA_MARKERS):
        return text
    if "endraw" not in text:
        return "{% raw %}" + text + "{% endraw %}"
    escaped = text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return '{{ "' + escaped + '" }}'


def literal(text: str) -> str:
    """A Python string literal for `text`: triple-quoted when it spans lines and can be
    written that way plainly, otherwise in double quotes with escapes."""
    lines = text.split("\n")
    if (
        len(lines) > 1
        and '"""' not in text
        and not text.endswith('"')
        and all(line.isprintable() for line in lines)
    ):
        return '"""\\\n' + text.replace("\\", "\\\\") + '"""'
    literal = repr(text)
    if literal.startswith("'") and '"' not in text:
        literal = '"' + literal[1:-1].replace("\\'", "'") + '"'
    return literal


def dict_literal(pairs: dict[str, str], indent: int, start: int) -> str:
    """A dict display of already-written keys and values, on one line when it fits in
    LINE_LENGTH after `start` columns, else one item per line as a formatter would put it;
    the key "**" unpacks its value."""
    items = [f"**{value}" if key == "**" else f"{key}: {value}" for key, value in pairs.items()]
    one_line = "{" + ", ".join(items) + "}"
    if start + len(one_line) + 1 <= LINE_LENGTH:
        return one_line
    inner = " " * (indent + 4)
    return "{\n" + "".join(f"{inner}{item},\n" for item in items) + " " * indent + "}"


def list_literal(items: Iterable[str]) -> str:
    return "[" + ", ".join(literal(item) for item in items) + "]"


def in_largest_unit(duration: timedelta) -> tuple[float, str]:
    """(count, unit) in the largest of days, hours, minutes, seconds that divides exactly."""
    seconds = duration.total_seconds()
    for unit, size in (("days", 86400), ("hours", 3600), ("minutes", 60)):
        if seconds >= size and seconds % size == 0:
            return seconds // size, unit
    return seconds, "seconds"


def timedelta_literal(duration: timedelta) -> str:
    count, unit = in_largest_unit(duration)
    return f"timedelta({unit}={count:g})"


def duration_words(duration: timedelta) -> str:
    count, unit = in_largest_unit(duration)
    return f"{count:g} {unit.removesuffix('s') if count == 1 else unit}"


def formatted_call(function: str, parts: list[str], before: str, indent: int) -> str:
    """`function(parts)` as ruff formats it as an argument at `indent` after `before`: on
    one line, else its arguments on one line of their own, else one a line."""
    one_line = f"{function}({', '.join(parts)})"
    if indent + len(before) + len(one_line) + 1 <= LINE_LENGTH:
        return one_line
    inner = " " * (indent + 4)
    if len(inner) + len(", ".join(parts)) <= LINE_LENGTH:
        return f"{function}(\n{inner}{', '.join(parts)}\n{' ' * indent})"
    lines = "".join(f"{inner}{part},\n" for part in parts)
    return f"{function}(\n{lines}{' ' * indent})"


def sequence_literal(items: list[str], indent: int, start: int) -> str:
    """A list display of already-written items, on one line when it fits in LINE_LENGTH
    after `start` columns (and a comma), else one item per line as a formatter would."""
    one_line = "[" + ", ".join(items) + "]"
    if start + len(one_line) + 1 <= LINE_LENGTH:
        return one_line
    inner = " " * (indent + 4)
    return "[\n" + "".join(f"{inner}{item},\n" for item in items) + " " * indent + "]"


def origin_line(source: Path) -> str:
    """The comment that names the jobs file a generated file came from (and finds the files
    an earlier export of it left)."""
    return f"# from {source.absolute()}. Edit the jobs file and export again rather than this file."


def write_generated(files: dict[str, str], out: Path) -> list[tuple[Path, bool]]:
    """Write each file (name -> text) into `out` (made if needed), each whole or not at all;
    an unchanged file is left untouched. Returns each path and whether it changed."""
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for name, text in files.items():
        path = out / name
        changed = not path.exists() or path.read_text(encoding="utf-8") != text
        if changed:
            replace_whole(path, text.encode(), mode=0o644)
        written.append((path, changed))
    return written
