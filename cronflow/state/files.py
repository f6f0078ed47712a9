"""Files opened safely: the one way cronflow replaces a file whole, small private files, and
opening, reading and making directories without following a link at the last step (the
directories above are checked when the jobs file loads: load/host_checks.trust_findings).
Imports nothing heavy (the idle tick uses it)."""

from __future__ import annotations

import _thread  # not threading: the idle tick would pay for its import
import contextlib
import errno
import os
import stat

NO_LINKS = os.O_NOFOLLOW | os.O_CLOEXEC


def no_links(path: str | os.PathLike[str], flags: int) -> int:
    """An opener for open(): never through a link (ELOOP), never inherited by a job."""
    return os.open(path, flags | NO_LINKS, 0o600)


def read_bytes(path: str | os.PathLike[str]) -> bytes:
    """A file's bytes, refusing a link in its place (OSError ELOOP)."""
    with open(path, "rb", opener=no_links) as file:
        return file.read()


def private_dir(path: str | os.PathLike[str]) -> None:
    """Make sure `path` is a real directory of ours: created 0700 if missing; an entry there
    that is a link, not a directory, or (as root) someone else's is refused with OSError."""
    with contextlib.suppress(FileExistsError):
        os.mkdir(path, 0o700)
    status = os.lstat(path)
    if not stat.S_ISDIR(status.st_mode):
        raise OSError(errno.ENOTDIR, "a link or a file, not a directory, is in its place")
    if os.geteuid() == 0 and status.st_uid != 0:
        raise OSError(errno.EPERM, f"it belongs to uid {status.st_uid}, not to root")


def replace_whole(
    path: str | os.PathLike[str],
    content: bytes,
    *,
    mode: int = 0o600,
    group: int | None = None,
    durable: bool = False,
) -> None:
    """Replace `path` whole: a reader sees the old file or the new one, never a mix. The
    new content goes to a temporary file beside it that no other writer names (created
    exclusively, never through a link), gets `mode` whatever
    the umask (and `group`, when given and ours to give), is fsynced with its directory if
    `durable`, and is renamed over `path`. On any failure the OSError is raised and `path`
    is as it was; the temporary file is removed if this call created it (an entry already
    at its name is someone else's, left alone)."""
    path = os.fspath(path)
    _refuse_special(path)
    folder, name = os.path.split(path)
    # This process and thread, and a random part: neither a leftover of a killed writer whose
    # pid came round again nor a name someone planted in advance is ever in the way.
    unique = f"{os.getpid()}.{_thread.get_ident()}.{os.urandom(4).hex()}"
    temporary = os.path.join(folder, f".{name}.{unique}")
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
    descriptor = os.open(temporary, flags, 0o600)  # a name taken (planted?) fails here, as is
    try:
        try:
            if group is not None:
                with contextlib.suppress(OSError):  # not ours to give: it keeps our group
                    os.fchown(descriptor, -1, group)
            os.fchmod(descriptor, mode)
            view = memoryview(content)
            while view:
                view = view[os.write(descriptor, view) :]
            if durable:
                os.fsync(descriptor)
        finally:
            os.close(descriptor)
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)  # ours: created above
        raise
    if durable:
        directory = os.open(folder or ".", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            os.fsync(directory)
        finally:
            os.close(directory)


def sweep_leftovers(folder: str, names: tuple[str, ...] | None, older_than: float) -> int:
    """Remove what replace_whole left beside a file when its writer was killed mid-write:
    `.NAME.PID.THREAD.RANDOM`, a regular file of ours last changed before `older_than` (a
    time stamp), whose process is gone. `names`: only the temporaries of these files (None:
    of any, in a folder that is cronflow's own). Returns how many went."""
    import re

    leftover = re.compile(r"\.(.+)\.(\d+)\.(\d+)\.[0-9a-f]{8}")
    removed = 0
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return 0
    for entry in entries:
        found = leftover.fullmatch(entry.name)
        if found is None or (names is not None and found.group(1) not in names):
            continue
        if os.path.exists(f"/proc/{found.group(2)}"):
            continue  # its writer may live (or its pid came round again): left alone
        with contextlib.suppress(OSError):
            status = entry.stat(follow_symlinks=False)
            if (
                stat.S_ISREG(status.st_mode)
                and status.st_uid == os.geteuid()
                and status.st_mtime < older_than
            ):
                os.unlink(entry.path)
                removed += 1
    return removed


def _refuse_special(path: str) -> None:
    """A device, FIFO or socket at `path` is never replaced (as root, a rename over
    /dev/null would put a file in its place for every program); a link or a file is."""
    try:
        mode = os.lstat(path).st_mode
    except FileNotFoundError:
        return
    if not (stat.S_ISREG(mode) or stat.S_ISLNK(mode)):
        raise OSError(errno.EPERM, "not a regular file (a device, FIFO, socket or directory)")


def write_private(path: str, content: bytes) -> None:
    """Overwrite a small state file in place, readable by its owner only, whatever the
    umask (a stamp: a torn one is read as missing)."""
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | NO_LINKS, 0o600)
    with open(descriptor, "wb") as file:
        file.write(content)
