"""Files written safely: the one way cronflow replaces a file whole, and small private
files. Imports nothing heavy (the idle tick uses it)."""

from __future__ import annotations

import _thread  # not threading: the idle tick would pay for its import
import contextlib
import os


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


def write_private(path: str, content: bytes) -> None:
    """Overwrite a small state file in place, readable by its owner only, whatever the
    umask (a stamp: a torn one is read as missing)."""
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
    with open(descriptor, "wb") as file:
        file.write(content)
