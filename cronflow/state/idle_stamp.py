"""The idle stamp: lets a one-shot tick that finds nothing due answer in a few milliseconds.

cron starts `cronflow run` every minute, and nearly every minute nothing is due. A full
tick loads the jobs file, opens the index and asks every schedule; this one reads two small
files. After each full tick, `remember` writes `state_dir/idle-until`: until when nothing can
be due (the next tick of every job, the next retry, the next prune), the identity of the run
log then, and the SHA-256 of the jobs file that was decided from (a digest, not a copy: the
file may hold secrets). The idle tick (act/idle_tick.py) then finds nothing due, and only
writes the heartbeat, when `trusted` finds that all of this still holds:

- the jobs file holds exactly the same bytes, mode and owners, and the same user asks;
- the run log is the same file of the same size (nothing ran, started or settled since);
- the state directory has the same mode (a full tick warns about a new open mode);
- the clock is before `until` and not set back behind the decision;
- the stamp was written by this version of cronflow, as this user, and nobody else can
  change it.

Otherwise the full tick runs, as it always did. A stamp that is missing, damaged or old costs
one full tick, never a decision: the stamp is a cache, never a record, and is not fsynced.
Written only while no run is running or waiting, so settling an orphan is never put off.

This module imports nothing heavy (it runs before the command line framework loads).
"""

from __future__ import annotations

import contextlib
import os
from datetime import datetime

from cronflow import DEFAULT_STATE_DIR, STATE_DIR_ENV_VAR, __version__
from cronflow.state.files import no_links, replace_whole
from cronflow.state.layout import IDLE_STAMP_NAME, LOG_NAME

_FORMAT = "cronflow idle stamp 1"
# Allowance for a clock set back a little (an NTP step): beyond it, the full tick notices
# and records the clock going back. clock.CLOCK_TOLERANCE, which this module cannot import
# without loading typing (tests/test_idle.py checks they agree).
CLOCK_TOLERANCE_SECONDS = 60.0


class Trusted:
    """A stamp that holds: where the state is, its fields and the warnings every tick prints.
    (A plain class: typing and dataclasses cost the idle tick an import each.)"""

    __slots__ = ("state_dir", "fields", "warnings")

    def __init__(self, state_dir: str, fields: dict[str, str], warnings: tuple[str, ...]) -> None:
        self.state_dir, self.fields, self.warnings = state_dir, fields, warnings


def log_identity(state_dir: str) -> str:
    """The run log's file and size: changes whenever anything is recorded."""
    try:
        stat = os.stat(os.path.join(state_dir, LOG_NAME))
    except FileNotFoundError:
        return "none"
    return f"{stat.st_dev}:{stat.st_ino}:{stat.st_size}:{stat.st_mtime_ns}"


def light_state_dir(jobs_path: str, text: str) -> str | None:
    """Where the jobs file puts its state directory, told without a TOML parser: the default
    when `state_dir` appears nowhere, else the one plain `state_dir = "..."` line; None when
    it cannot be told this way. `remember` writes a stamp only where this finds it.
    CRONFLOW_STATE_DIR, when set, wins over both, as in config."""
    if os.environ.get(STATE_DIR_ENV_VAR):
        return os.path.abspath(os.path.expanduser(os.environ[STATE_DIR_ENV_VAR]))
    if "state_dir" not in text:
        return _resolve(jobs_path, DEFAULT_STATE_DIR)
    values = []
    for line in text.splitlines():
        key, equals, value = line.strip().partition("=")
        if key.strip() != "state_dir" or not equals:
            continue
        value = value.strip()
        quote = value[:1]
        end = value.find(quote, 1) if quote in ('"', "'") else -1
        if end < 0 or (quote == '"' and "\\" in value[:end]):
            return None
        values.append(value[1:end])
    return _resolve(jobs_path, values[0]) if len(values) == 1 else None


def _resolve(jobs_path: str, text: str) -> str:
    """As config resolves paths: from the jobs file's folder, ~ expanded, made absolute."""
    return os.path.abspath(os.path.join(os.path.dirname(jobs_path), os.path.expanduser(text)))


def remember(
    *,
    jobs_path: str,
    jobs_text: str,
    state_dir: str,
    log: str,
    decided_at: datetime,
    until: datetime,
    warnings: tuple[str, ...],
    heartbeat: tuple[str, str, float] | None = None,
    metrics_file: str | None = None,
    page_file: str | None = None,
    boot_id: str | None = None,
) -> None:
    """Write the stamp after a full tick: the digest, mode and owners of the jobs file decided
    from, the run log's identity taken before the index was read (`log_identity`), when the
    decision was made, until when nothing can be due, and the warnings every tick prints.
    The stamp is removed instead when idle ticks could not find it where it belongs."""
    jobs_path, state_dir = os.path.abspath(jobs_path), os.path.abspath(state_dir)
    if light_state_dir(jobs_path, jobs_text) != state_dir or until <= decided_at:
        forget(state_dir)
        return
    try:
        owner = _owner_of(jobs_path)
    except OSError:
        forget(state_dir)
        return
    header = [
        _FORMAT,
        f"version {__version__}",
        f"euid {os.geteuid()}",
        f"jobs {jobs_path}",
        f"owner {owner}",
        f"log {log}",
        f"state {_mode_of(state_dir)}",
        f"decided {decided_at.timestamp()!r}",
        f"until {until.timestamp()!r}",
        f"sha256 {_digest(jobs_text.encode())}",
        *(f"warning {' '.join(warning.split())}" for warning in warnings),
    ]
    if heartbeat is not None:
        url, protocol, timeout = heartbeat
        header.append(f"heartbeat {protocol} {timeout!r} {url}")
    if metrics_file is not None:
        header.append(f"metrics {metrics_file}")
    if page_file is not None:
        header.append(f"page {page_file}")
    if boot_id is not None:  # @reboot jobs: a new boot means a full tick
        header.append(f"boot {boot_id}")
    body = ("\n".join(header) + "\n").encode()
    try:
        replace_whole(os.path.join(state_dir, IDLE_STAMP_NAME), body)
    except OSError:
        forget(state_dir)


def trusted(jobs_path: str, now: datetime) -> Trusted | None:
    """What the stamp says, when it shows that nothing can be due at `now` for this jobs file;
    None when a full tick must decide (no stamp, another file, user or version, something
    recorded since, a new boot, the clock outside the stamp's window)."""
    jobs_path = os.path.abspath(jobs_path)
    try:
        content = _read(jobs_path)
        state_dir = light_state_dir(jobs_path, content.decode("utf-8"))
        if state_dir is None:
            return None
        stamp = _read_own(os.path.join(state_dir, IDLE_STAMP_NAME))
        owner = _owner_of(jobs_path)
    except (OSError, UnicodeDecodeError):
        return None
    if stamp is None:
        return None
    fields: dict[str, str] = {}
    warnings = []
    lines = stamp.decode("utf-8", "replace").splitlines()
    for line in lines[1:]:
        name, _, value = line.partition(" ")
        if name == "warning":
            warnings.append(value)
        else:
            fields[name] = value
    try:
        decided, until = float(fields["decided"]), float(fields["until"])
    except (KeyError, ValueError):
        return None
    expected = {
        "version": __version__,
        "euid": str(os.geteuid()),
        "jobs": jobs_path,
        "owner": owner,
        "log": log_identity(state_dir),
        "state": _mode_of(state_dir),
    }
    if lines[:1] != [_FORMAT] or any(fields.get(name) != value for name, value in expected.items()):
        return None
    if "boot" in fields and fields["boot"] != _boot_id():
        return None  # the machine restarted since: its @reboot jobs are due
    instant = now.timestamp()
    if not decided - CLOCK_TOLERANCE_SECONDS <= instant < until:
        return None
    if fields.get("sha256") != _digest(content):  # last: the one check that costs an import
        return None
    return Trusted(state_dir, fields, tuple(warnings))


def forget(state_dir: str) -> None:
    """Remove the stamp: the next tick is a full one."""
    with contextlib.suppress(OSError):
        os.unlink(os.path.join(state_dir, IDLE_STAMP_NAME))


def _boot_id() -> str:
    try:
        with open("/proc/sys/kernel/random/boot_id") as file:
            return file.read().strip()
    except OSError:
        return ""


def _digest(content: bytes) -> str:
    import hashlib

    return hashlib.sha256(content).hexdigest()


def _read(path: str) -> bytes:
    with open(path, "rb", opener=no_links) as file:
        return file.read()


def _read_own(path: str) -> bytes | None:
    """The stamp, if this user wrote it and nobody else can change it (else None): a stamp
    planted by another user could make cronflow skip ticks, as root above all."""
    with open(path, "rb", opener=no_links) as file:
        stat = os.fstat(file.fileno())
        if stat.st_uid != os.geteuid() or stat.st_mode & 0o022:
            return None
        return file.read()


def _mode_of(path: str) -> str:
    try:
        return f"{os.stat(path).st_mode:o}"
    except OSError:
        return "none"


def _owner_of(path: str) -> str:
    stat = os.stat(path)
    return f"{stat.st_mode:o}:{stat.st_uid}:{stat.st_gid}"
