"""Benchmark: a week without growth. `cronflow daemon` with 100 jobs (ten every minute, the
rest hourly in chains of five, one that always fails), pinging a local receiver, with the
metrics file and the status page on, runs for 7 simulated days on a fast clock (each wake-up
waits for the runs the last one started to end, as a real minute would, and a moment more;
then the clock moves to the next due time). Every simulated
hour the daemon's resident memory, open descriptors, threads and the state directory's size
are sampled. Targets (issue 32): RSS growth ≤ 2 MiB after the first day, descriptors and
threads flat, the disk bounded by retention.

Retention goes by file times (an output file's, a log segment's last write), which the
kernel stamps with the real clock: a week simulated in an hour would never age. So every
simulated hour the benchmark gives the output files and log segments written since the
last one that hour's time, as a real week would have.

    make bench        # or: .venv/bin/python bench/bench_week.py [--days 7] [--wait 0.05]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

DAEMON = """
import ctypes, sys, threading
import _sqlite3
from datetime import UTC, datetime
from pathlib import Path
from cronflow.act.daemon import Daemon
from cronflow.act.runner import ShellRunner

class FastClock:
    def __init__(self, start, wait, until):
        self._now, self.wait, self.until = start, wait, until
    def now(self):
        return self._now
    def sleep_until(self, when, wake):
        if self._now >= self.until:
            wake.wait()
            return
        busy = lambda: any(t.name.startswith("cronflow-tick") for t in threading.enumerate())
        for _ in range(5000):  # a real minute is plenty for a minute's runs: let them end
            if not busy():
                break
            wake.wait(0.002)
        wake.wait(self.wait)
        self._now = max(self._now, when)
        print(
            f"clock {self._now.timestamp()} {sqlite_heap()} {sys.getallocatedblocks()} "
            f"{pymalloc_arenas()}",
            file=sys.stderr,
            flush=True,
        )

def pymalloc_arenas():
    # Python's small-object arenas (1 MiB each) in use: fragmentation pins them
    import os, tempfile
    with tempfile.TemporaryFile() as out:
        saved = os.dup(2)
        os.dup2(out.fileno(), 2)
        try:
            sys._debugmallocstats()
        finally:
            os.dup2(saved, 2)
            os.close(saved)
        out.seek(0)
        for line in out.read().decode(errors="replace").splitlines():
            if line.startswith("# arenas allocated current"):
                return int(line.split("=")[1].replace(",", ""))
    return -1

def sqlite_heap():
    # what SQLite holds in this process (its page caches above all)
    used = ctypes.CDLL(_sqlite3.__file__).sqlite3_memory_used
    used.restype = ctypes.c_int64
    return used()

start = datetime(2026, 1, 12, 0, 0, 30, tzinfo=UTC)
until = datetime.fromtimestamp(start.timestamp() + float(sys.argv[2]) * 86400, UTC)
daemon = Daemon(jobs_path=Path(sys.argv[1]).absolute(),
                clock=FastClock(start, float(sys.argv[3]), until),
                runner=ShellRunner(), log=lambda line: None)
daemon.take_over_process()
daemon.serve()
"""


class _Ok(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"OK")

    do_GET = do_POST

    def log_message(self, *args: object) -> None:
        pass


def jobs_file(folder: Path, port: int) -> Path:
    lines = [
        "[cronflow]\nkeep_days = 2\nkeep_runs = 10\nkeep_history_days = 3\n"
        'metrics_file = "metrics/cronflow.prom"\nhtml_file = "page/status.html"\n'
        f'[defaults]\nping_url = "http://127.0.0.1:{port}/ping/{{job}}"\n'
    ]
    for index in range(10):
        lines.append(f'[jobs.minutely_{index}]\ncommand = "true"\nschedule = "* * * * *"\n')
    for index in range(89):
        head = index - index % 5
        if index == head:
            lines.append(
                f'[jobs.hourly_{index}]\ncommand = "true"\nschedule = "{index % 60} * * * *"\n'
            )
        else:
            lines.append(
                f'[jobs.hourly_{index}]\ncommand = "true"\ndepends_on = ["hourly_{head}"]\n'
            )
    lines.append('[jobs.failing]\ncommand = "exit 1"\nschedule = "30 * * * *"\n')
    (folder / "metrics").mkdir()
    (folder / "page").mkdir()
    path = folder / "jobs.toml"
    path.write_text("".join(lines))
    return path


def age(state: Path, now: float) -> None:
    """Give the output files and log segments written in real time (later than the
    simulated `now`) the simulated time instead (see the docstring)."""
    folders = [state / "output" / name for name in os.listdir(state / "output")]
    for folder, wanted in [(state, "runs-"), *((each, "") for each in folders)]:
        with os.scandir(folder) as entries:
            for entry in entries:
                if not entry.name.startswith(wanted) or not entry.is_file(follow_symlinks=False):
                    continue
                if entry.stat(follow_symlinks=False).st_mtime > now:
                    os.utime(entry.path, (now, now), follow_symlinks=False)


SMAPS: list[dict[str, float]] = []


def anonymous_by_kind(pid: int) -> dict[str, float]:
    """Anonymous resident MiB by the kind of mapping: the brk heap, thread stacks (8 MiB),
    glibc's thread arenas (64 MiB reservations), other anonymous maps."""
    kinds: dict[str, float] = {}
    kind = None
    for line in Path(f"/proc/{pid}/smaps").read_text().splitlines():
        parts = line.split()
        if "-" in parts[0] and len(parts) >= 5 and ":" in parts[3]:
            start, end = (int(x, 16) for x in parts[0].split("-"))
            size = (end - start) / 2**20
            name = parts[5] if len(parts) > 5 else ""
            if name == "[heap]":
                kind = "heap"
            elif name:
                kind = None  # a file or [stack]/[vdso]
            elif 7.9 <= size <= 8.1:
                kind = "stack8M"
            elif 60 <= size <= 64.1:
                kind = "arena64M"
            else:
                kind = f"anon{'>1M' if size > 1 else '<=1M'}"
        elif parts[0] == "Anonymous:" and kind is not None:
            kinds[kind] = kinds.get(kind, 0) + int(parts[1]) / 1024
    return kinds


def sample(pid: int, state: Path) -> tuple[float, int, int, int]:
    """(RSS MiB, open descriptors, threads, state directory bytes); the anonymous and the
    file-backed parts of RSS go to RSS_PARTS."""
    status = Path(f"/proc/{pid}/status").read_text()
    kib = {line.split(":")[0]: int(line.split()[1]) for line in status.splitlines() if "kB" in line}
    rss = kib["VmRSS"]
    RSS_PARTS.append((kib.get("RssAnon", 0) / 1024, kib.get("RssFile", 0) / 1024))
    fds = len(os.listdir(f"/proc/{pid}/fd"))
    threads = len(os.listdir(f"/proc/{pid}/task"))
    size = sum(p.stat().st_size for p in state.rglob("*") if p.is_file())
    return rss / 1024, fds, threads, size


RSS_PARTS: list[tuple[float, float]] = []  # (anonymous MiB, file-backed MiB) at each sample


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--days", type=float, default=7.0)
    parser.add_argument("--wait", type=float, default=0.05, help="real seconds a wake-up waits")
    options = parser.parse_args()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Ok)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    with tempfile.TemporaryDirectory() as name:
        folder = Path(name)
        path = jobs_file(folder, server.server_address[1])
        daemon = subprocess.Popen(
            [sys.executable, "-c", DAEMON, str(path), str(options.days), str(options.wait)],
            cwd=folder,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert daemon.stderr is not None
        samples: list[tuple[float, float, int, int, int]] = []
        heaps: list[float] = []  # SQLite's own heap (MiB) at each sample
        blocks: list[int] = []  # Python's allocated memory blocks (its objects) at each
        next_hour, end = None, None
        began = time.monotonic()
        for line in daemon.stderr:
            if not line.startswith("clock "):
                continue
            now = float(line.split()[1])
            next_hour = next_hour or now
            end = end or now + options.days * 86400 - 60
            if now >= next_hour:
                age(folder / ".cronflow", now)
                samples.append((now, *sample(daemon.pid, folder / ".cronflow")))
                SMAPS.append(anonymous_by_kind(daemon.pid))
                heaps.append(int(line.split()[2]) / 2**20)
                blocks.append(int(line.split()[3]))
                ARENAS.append(int(line.split()[4]))
                next_hour += 3600
            if now >= end:
                break
        daemon.terminate()
        daemon.wait(timeout=120)
    report(samples, heaps, blocks, options.days, time.monotonic() - began)


ARENAS: list[int] = []


def report(
    samples: list[tuple[float, float, int, int, int]],
    heaps: list[float],
    blocks: list[int],
    days: float,
    took: float,
) -> None:
    first = samples[0][0]
    after_day = [s for s in samples if s[0] - first >= 86400] or samples
    rss = [s[1] for s in after_day]
    print(
        f"a week without growth: {days:g} simulated days in {took:.0f} s, {len(samples)} hourly samples"
    )
    print(
        f"  RSS: start {samples[0][1]:.1f} MiB, after day 1 {rss[0]:.1f}, end {rss[-1]:.1f}, "
        f"max {max(s[1] for s in samples):.1f}; growth after day 1 {rss[-1] - rss[0]:+.1f} MiB "
        "(target <= 2 MiB)"
    )
    trend = ", ".join(f"{(s[0] - first) / 3600:.0f}h {s[1]:.0f}" for s in samples[::12])
    print(f"  RSS (MiB) every 12 simulated hours: {trend}")
    day1 = len(samples) - len(after_day)
    for hour in (24, 72, 84, 90, 94, 95, 96, 97, 98, 100, 108, 119):
        if hour < len(SMAPS):
            row = ", ".join(f"{k} {v:.1f}" for k, v in sorted(SMAPS[hour].items()))
            print(f"  anon by mapping at {hour}h: {row}; threads {samples[hour][3]}")
    pairs = list(zip(samples, ARENAS, strict=True))[::12]
    arenas = ", ".join(f"{(s[0] - first) / 3600:.0f}h {a}" for s, a in pairs)
    print(f"  pymalloc arenas (1 MiB each) every 12 simulated hours: {arenas}")
    print(
        f"  SQLite's heap (sqlite3_memory_used): after day 1 {heaps[day1]:.1f} MiB, end "
        f"{heaps[-1]:.1f}, max {max(heaps):.1f}: growth after day 1 {heaps[-1] - heaps[day1]:+.1f}"
    )
    print(
        f"  Python's allocated blocks (its objects): after day 1 {blocks[day1]:,}, end "
        f"{blocks[-1]:,}, max {max(blocks):,}"
    )
    anon, files = RSS_PARTS[day1], RSS_PARTS[-1]
    print(
        f"  RSS parts: anonymous {anon[0]:.1f} -> {files[0]:.1f} MiB, file-backed "
        f"{anon[1]:.1f} -> {files[1]:.1f} MiB (after day 1 -> end)"
    )
    fds, threads = [s[2] for s in after_day], [s[3] for s in after_day]
    print(
        f"  descriptors {min(fds)}..{max(fds)}, threads {min(threads)}..{max(threads)} "
        "after day 1 (target: flat)"
    )
    sizes = [s[4] for s in samples]
    print(
        f"  state directory: max {max(sizes) / 1e6:.1f} MB, end {sizes[-1] / 1e6:.1f} MB "
        "(retention: 3 days of history, output 2 days)"
    )


if __name__ == "__main__":
    main()
