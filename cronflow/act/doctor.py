"""`cronflow doctor`: does the state directory's file system do what exactly-once needs?

cronflow's promise rests on four things the file system must do: flock() that another
process sees (and that a child keeps when it inherits the lock), a write() with O_APPEND
that lands whole, rename() that replaces a file at once, and fsync() that works. Local
file systems do; NFS, some FUSE and network file systems may not, and an overlay or a
container volume is worth checking. Each check runs for real, with other processes, in a
folder of its own inside the state directory, removed afterwards.
"""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

# File systems on which flock() is not known to hold between machines, or at all.
UNSURE = {"nfs", "nfs4", "cifs", "smb3", "smbfs", "9p", "fuse", "fuseblk", "glusterfs", "ceph"}
APPENDERS, LINES = 4, 300


@dataclass(frozen=True, slots=True)
class Check:
    name: str
    ok: bool
    detail: str
    warning: bool = False  # fine, but worth knowing


def examine(state_dir: Path) -> list[Check]:
    """Every check, in a scratch folder inside `state_dir` (created if missing)."""
    state_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    checks = [_file_system(state_dir), _room(state_dir)]
    for name, check in (
        ("flock between processes", _flock_between_processes),
        ("run lock kept by a child", _run_lock_kept_by_a_child),
        ("appends land whole", _append_whole),
        ("rename replaces at once", _rename_at_once),
        ("fsync", _fsync),
    ):
        scratch = state_dir / f".doctor-{os.getpid()}-{os.urandom(3).hex()}"
        try:
            scratch.mkdir(mode=0o700)
            checks.append(check(scratch))
        except (OSError, subprocess.SubprocessError) as error:
            why = getattr(error, "strerror", None) or str(error)
            checks.append(Check(name, False, f"could not be checked ({why})"))
        finally:
            shutil.rmtree(scratch, ignore_errors=True)  # before the next: room for it
    return checks


def _file_system(state_dir: Path) -> Check:
    kind, source = mount_of(state_dir)
    detail = f"{kind} ({source})"
    if kind in UNSURE or kind.startswith("fuse."):
        why = f"{detail}: flock() may not hold on it; keep the state directory on a local disk"
        return Check("file system", False, why)
    return Check("file system", True, detail, warning=kind == "overlay")


def mount_of(path: Path) -> tuple[str, str]:
    """(file system type, source) of the mount that holds `path`, from /proc/self/mountinfo."""
    real, best = str(path.resolve()), ("unknown", "unknown", "")
    try:
        lines = Path("/proc/self/mountinfo").read_text().splitlines()
    except OSError:
        return best[:2]
    for line in lines:
        fields = line.split(" - ")
        if len(fields) != 2:
            continue
        point = fields[0].split()[4].replace("\\040", " ")
        kind, source = (fields[1].split() + ["", ""])[:2]
        inside = real == point or real.startswith(point.rstrip("/") + "/")
        if inside and len(point) >= len(best[2]):
            best = (kind, source, point)
    return best[:2]


def _child(code: str, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", code, *args],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )


_HOLD = """
import fcntl, sys
fd = open(sys.argv[1], "a")
fcntl.flock(fd, fcntl.LOCK_EX)
print("held", flush=True)
sys.stdin.readline()
"""


def _flock_between_processes(scratch: Path) -> Check:
    import fcntl

    path = scratch / "between.lock"
    holder = _child(_HOLD, str(path))
    try:
        assert holder.stdout is not None and holder.stdin is not None
        if holder.stdout.readline().strip() != "held":
            return Check("flock between processes", False, "the other process could not lock")
        with open(path, "a") as mine:
            try:
                fcntl.flock(mine, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return Check("flock between processes", False, "two processes held one lock")
            except BlockingIOError:
                pass
            holder.stdin.write("\n")
            holder.stdin.flush()
            holder.wait(timeout=30)
            fcntl.flock(mine, fcntl.LOCK_EX | fcntl.LOCK_NB)  # free once its holder ended
        return Check("flock between processes", True, "a lock held by one is busy for another")
    except OSError as error:
        return Check("flock between processes", False, f"flock() failed: {error.strerror}")
    finally:
        holder.kill()
        holder.wait()


def _run_lock_kept_by_a_child(scratch: Path) -> Check:
    """A run's lock (a byte locked with an open file description lock, see state/locks.py)
    is handed to the job: it must stay held while the job lives, after cronflow's own
    descriptor is closed (as when cronflow is killed), and be free once the job ended."""
    from datetime import UTC, datetime

    from cronflow.model import RunKey
    from cronflow.state.locks import Locks

    name = "run lock kept by a child"
    locks, key = Locks(scratch), RunKey("doctor", datetime.now(UTC).replace(microsecond=0))

    def free() -> bool:
        with locks.hold_run(key) as held:
            return held is not None

    try:
        with locks.hold_run(key) as held:
            if held is None:
                return Check(name, False, "a run lock nobody held could not be taken")
            job = subprocess.Popen(["sleep", "30"], pass_fds=(held,))
        try:
            if free():
                return Check(name, False, "the lock went with our descriptor")
        finally:
            job.kill()
            job.wait()
        if not free():
            return Check(name, False, "still held after the job ended")
        return Check(name, True, "held while the job lives, freed after")
    except OSError as error:
        return Check(name, False, f"open file description locks failed: {error.strerror}")


_APPEND = """
import os, sys
fd = os.open(sys.argv[1], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
who = sys.argv[2]
for n in range(int(sys.argv[3])):
    line = f"{who} {n} " + "x" * (n * 37 % 3000) + "\\n"
    os.write(fd, line.encode())
"""


def _append_whole(scratch: Path) -> Check:
    path = scratch / "log"
    writers = [_child(_APPEND, str(path), str(who), str(LINES)) for who in range(APPENDERS)]
    for writer in writers:
        writer.communicate(timeout=60)
    if any(writer.returncode for writer in writers):
        why = "could not be checked: a writer failed (is the disk full?)"
        return Check("appends land whole", False, why)
    lines = path.read_bytes().split(b"\n")[:-1]
    torn = [
        line
        for line in lines
        if len(parts := line.split(b" ")) != 3 or len(parts[2]) != int(parts[1]) * 37 % 3000
    ]
    if torn or len(lines) != APPENDERS * LINES:
        return Check(
            "appends land whole",
            False,
            f"{len(torn)} torn of {len(lines)} lines ({APPENDERS * LINES} written): two "
            "writers at once would mix their records",
        )
    return Check("appends land whole", True, f"{len(lines)} lines by {APPENDERS} processes")


_READ = """
import sys
seen = set()
for _ in range(int(sys.argv[2])):
    try:
        seen.add(open(sys.argv[1], "rb").read())
    except FileNotFoundError:
        seen.add(b"missing")
print(sorted({len(s) for s in seen}))
"""


def _rename_at_once(scratch: Path) -> Check:
    path = scratch / "page"
    old, new = b"a" * 100_000, b"b" * 100_000
    path.write_bytes(old)
    reader = _child(_READ, str(path), "2000")
    for turn in range(200):
        aside = scratch / f"page.{turn}"
        aside.write_bytes(new if turn % 2 == 0 else old)
        os.replace(aside, path)
    seen, _ = reader.communicate(timeout=60)
    if seen.strip() != "[100000]":
        return Check("rename replaces at once", False, f"a reader saw sizes {seen.strip()}")
    return Check("rename replaces at once", True, "a reader saw the old file or the new one")


def _fsync(scratch: Path) -> Check:
    took = []
    try:
        for turn in range(5):
            descriptor = os.open(scratch / f"sync.{turn}", os.O_WRONLY | os.O_CREAT, 0o600)
            try:
                os.write(descriptor, b"x" * 4096)
                started = time.perf_counter()
                os.fsync(descriptor)
                took.append(time.perf_counter() - started)
            finally:
                os.close(descriptor)
        folder = os.open(scratch, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(folder)
        finally:
            os.close(folder)
    except OSError as error:
        return Check("fsync", False, f"fsync() failed: {error.strerror}")
    median = statistics.median(took) * 1000
    return Check("fsync", True, f"a file and its folder; {median:.1f} ms each", median > 50)


def _room(state_dir: Path) -> Check:
    from cronflow.state.store import RESERVE_BYTES

    disk = os.statvfs(state_dir)
    free = disk.f_bavail * disk.f_frsize
    words = f"{free / 1024 / 1024:,.0f} MiB free"
    if free < 2 * RESERVE_BYTES:
        return Check("room", False, f"{words}: less than twice the 1 MiB reserve")
    return Check("room", True, words, warning=free < 1024 * 1024 * 1024)
