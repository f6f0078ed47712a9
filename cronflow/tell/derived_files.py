"""Files kept current for readers outside cronflow: the Prometheus metrics file and the HTML
status page. Each is rendered from the run index and replaced whole (a temporary file
beside it, then a rename), so a reader never sees half of one.

`Refresher.changed()` after a decision or a run's end asks for a rewrite, done by one
background thread (changes that come while it writes are taken in by the next write, which
waits as long as the last one took: a large page then costs at most half of a core, and
the runs in this process keep the rest); `flush()` waits for it, without that pause. Writers of one file, in any process, take turns under a lock from
rendering to renaming, so a later write never holds older data than an earlier one (a
Prometheus counter must never go down). Nothing here ever raises into a run.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from pathlib import Path

from cronflow.state.files import replace_whole
from cronflow.state.locks import Locks


def write_atomically(path: Path, text: str, mode: int = 0o644) -> None:
    """Replace `path` whole: readers see the old file or the new one, never a mix. A file
    not readable by all is given its directory's group (as a setgid directory would), so
    that a directory given to a web server's group is all it takes to serve it."""
    group = None if mode & 0o004 else os.stat(path.parent).st_gid
    replace_whole(path, text.encode(), mode=mode, group=group)


class Refresher:
    """Keeps one file current with what `render()` returns."""

    def __init__(
        self,
        path: Path,
        render: Callable[[], str],
        *,
        locks: Locks,
        lock_name: str,
        mode: int = 0o644,
    ) -> None:
        self.path = path
        self.render = render
        self.locks = locks
        self.lock_name = lock_name
        self.mode = mode
        self._guard = threading.Lock()
        self._dirty = False
        self._writer: threading.Thread | None = None
        self._hurry = threading.Event()  # set by flush: no pause before the last write

    def changed(self) -> None:
        with self._guard:
            self._dirty = True
            if self._writer is None or not self._writer.is_alive():
                self._writer = threading.Thread(
                    target=self._write_while_dirty, name=f"cronflow-{self.path.name}", daemon=True
                )
                self._writer.start()

    def flush(self) -> None:
        """Wait until every change asked for is written."""
        with self._guard:
            writer = self._writer
        self._hurry.set()
        if writer is not None:
            writer.join()
        if self._dirty:
            self._write_while_dirty()
        self._hurry.clear()

    def write_now(self) -> None:
        self.changed()
        self.flush()

    def _write_while_dirty(self) -> None:
        while True:
            with self._guard:
                if not self._dirty:
                    return
                self._dirty = False
            began = time.monotonic()
            try:
                with self.locks.hold(self.lock_name, wait=True):
                    write_atomically(self.path, self.render(), self.mode)
            except Exception:  # noqa: BLE001, S112 (a full disk, a removed directory)
                continue  # the file grows old, and its tick time says so
            self._hurry.wait(time.monotonic() - began)
