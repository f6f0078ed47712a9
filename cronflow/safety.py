"""What cronflow trusts, as cron does: files only root (or the running user) can change, job
accounts from the user database, and secrets kept out of captured output. Pure checks; the
callers decide whether a finding is an error (as root) or a warning."""

from __future__ import annotations

import grp
import os
import pwd
import re
import stat
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

MASK = "***"
MIN_SECRET_LENGTH = 5  # shorter values are not masked (Airflow's rule): "1" or "yes" would be
# Parts of a variable name that mark its value as a secret (Airflow masks the same kinds).
_SECRET_WORDS = re.compile(r"PASSWORD|PASSWD|PASSPHRASE|SECRET|TOKEN|CREDENTIAL|PRIVATE")
_SECRET_PARTS = {"KEY", "APIKEY", "AUTH", "AUTHORIZATION", "DSN", "PASS", "PAT"}


@dataclass(frozen=True, slots=True)
class Untrusted:
    """A file, or a directory above it, that someone else could change."""

    path: Path
    problem: str  # e.g. "is writable by group (mode 0664)"
    fix: str  # the command that mends it


def untrusted(path: Path, euid: int) -> list[Untrusted]:
    """What lets anyone but `euid` and root change what `path` says: the file or a directory
    on the way to it owned by another user, or writable by group or others. A directory with
    the sticky bit (like /tmp) is fine: others cannot replace the entries they do not own.
    A path that does not exist has nothing to report (its absence is reported elsewhere)."""
    try:
        real = path.resolve(strict=True)
    except OSError:
        return []
    owner = "root" if euid == 0 else user_name(euid)
    findings = []
    for each in (real, *real.parents):
        status = each.stat()
        if status.st_uid not in (0, euid):
            findings.append(Untrusted(each, f"is owned by {user_name(status.st_uid)}",
                                      f"chown {owner} {each}"))
        writers = [who for who, bit in (("group", stat.S_IWGRP), ("others", stat.S_IWOTH))
                   if status.st_mode & bit]
        sticky = stat.S_ISDIR(status.st_mode) and status.st_mode & stat.S_ISVTX
        if writers and not sticky:
            findings.append(Untrusted(
                each, f"is writable by {' and '.join(writers)} "
                      f"(mode {stat.S_IMODE(status.st_mode):04o})", f"chmod go-w {each}"))
    return findings


def user_name(uid: int) -> str:
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return f"uid {uid}"


@dataclass(frozen=True, slots=True)
class Account:
    """Who a job runs as when it names `user` (and maybe `group`)."""

    name: str
    uid: int
    gid: int
    groups: tuple[int, ...]  # supplementary groups, as login would give them
    home: str


class UnknownAccount(LookupError):
    """A `user` or `group` the user database does not have."""

    def __init__(self, key: str, name: str) -> None:
        super().__init__(f'{key} "{name}" does not exist')
        self.key = key


def account(user: str, group: str | None = None) -> Account:
    """The account from the user database (UnknownAccount if the user or group is not there)."""
    try:
        entry = pwd.getpwnam(user)
    except KeyError:
        raise UnknownAccount("user", user) from None
    gid = entry.pw_gid
    if group is not None:
        try:
            gid = grp.getgrnam(group).gr_gid
        except KeyError:
            raise UnknownAccount("group", group) from None
    groups = tuple(sorted(set(os.getgrouplist(user, entry.pw_gid)) | {gid}))
    return Account(name=user, uid=entry.pw_uid, gid=gid, groups=groups, home=entry.pw_dir)


def looks_secret(name: str) -> bool:
    """True for variable names such as API_TOKEN, DB_PASSWORD or AWS_SECRET_ACCESS_KEY."""
    upper = name.upper()
    return bool(_SECRET_WORDS.search(upper)) or bool(_SECRET_PARTS & set(upper.split("_")))


def secrets_of(env: Mapping[str, str], env_file_values: Iterable[str] = ()) -> tuple[str, ...]:
    """The values to mask in captured output: every value read from an env_file, and the
    `env` values whose names look secret; longest first, so no part of one is left over."""
    values = {*env_file_values, *(value for name, value in env.items() if looks_secret(name))}
    return tuple(sorted((v for v in values if len(v) >= MIN_SECRET_LENGTH), key=len, reverse=True))


def mask_bytes(data: bytes, secrets: Iterable[str]) -> bytes:
    for secret in secrets:
        data = data.replace(secret.encode(), MASK.encode())
    return data


def mask_file(path: Path, secrets: tuple[str, ...]) -> None:
    """Replace every secret in an output file (already capped in size) by ***, in place."""
    if not secrets:
        return
    try:
        with open(path, "r+b") as file:
            data = file.read()
            masked = mask_bytes(data, secrets)
            if masked != data:
                file.seek(0)
                file.write(masked)
                file.truncate()
    except OSError:
        pass  # as for capping: never fail a run over its captured output
