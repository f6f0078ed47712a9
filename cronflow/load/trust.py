"""What cronflow trusts, as cron does: files only root (or the running user) can change. A
pure check; the callers decide whether a finding is an error (as root) or a warning."""

from __future__ import annotations

import pwd
import stat
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True, slots=True)
class Untrusted:
    """A file, or a directory above it, that someone else could change."""

    path: Path
    problem: str  # e.g. "is writable by group (mode 0664)"
    fix: str  # the command that mends it


def untrusted(path: Path, euid: int, *, group_may_write: bool = False) -> list[Untrusted]:
    """What lets anyone but `euid` and root change what `path` says: the file or a directory
    on the way to it owned by another user, or writable by group or others. A directory with
    the sticky bit (like /tmp) is fine: others cannot replace the entries they do not own.
    `group_may_write`: `path` itself may be writable by its group (a directory given to a
    web server's group). A path that does not exist has nothing to report (its absence is
    reported elsewhere)."""
    try:
        real = path.resolve(strict=True)
    except OSError:
        return []
    owner = "root" if euid == 0 else user_name(euid)
    findings = []
    for each in (real, *real.parents):
        status = each.stat()
        allowed = stat.S_IWGRP if group_may_write and each == real else 0
        if status.st_uid not in (0, euid):
            findings.append(
                Untrusted(each, f"is owned by {user_name(status.st_uid)}", f"chown {owner} {each}")
            )
        writers = [
            who
            for who, bit in (("group", stat.S_IWGRP), ("others", stat.S_IWOTH))
            if status.st_mode & bit & ~allowed
        ]
        sticky = stat.S_ISDIR(status.st_mode) and status.st_mode & stat.S_ISVTX
        if writers and not sticky:
            findings.append(
                Untrusted(
                    each,
                    f"is writable by {' and '.join(writers)} "
                    f"(mode {stat.S_IMODE(status.st_mode):04o})",
                    f"chmod {'o' if allowed else 'go'}-w {each}",
                )
            )
    return findings


def user_name(uid: int) -> str:
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return f"uid {uid}"
