"""Benchmark: `cronflow daemon` idle for 60 s with 100 jobs (none due).

Measures, from /proc, the CPU seconds it used, how often it woke (its loop iterations, from
its --verbose log, and its voluntary context switches), and its resident memory, beside a
bare `python -c "import time; time.sleep(...)"` measured in the same run.

    make bench        # or: .venv/bin/python bench/bench_daemon.py [--seconds 60]
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from bench_startup import jobs_file

TICKS_PER_SECOND = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS_PER_SECOND  # utime + stime


def status_field(pid: int, name: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(name + ":"):
            return int(line.split()[1])
    raise KeyError(name)


def measure(process: subprocess.Popen, seconds: float) -> dict[str, float]:
    cpu, switches = cpu_seconds(process.pid), status_field(process.pid, "voluntary_ctxt_switches")
    time.sleep(seconds)  # the benchmark's own measuring window, not a test waiting on a clock
    return {
        "cpu": cpu_seconds(process.pid) - cpu,
        "switches": status_field(process.pid, "voluntary_ctxt_switches") - switches,
        "rss_mb": status_field(process.pid, "VmRSS") / 1024,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--jobs", type=int, default=100)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as name:
        folder = Path(name)
        jobs_file(folder, args.jobs)
        address = str(folder / "notify.sock")
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as ready:
            ready.bind(address)
            daemon = subprocess.Popen(
                [sys.executable, "-m", "cronflow", "daemon", "--verbose"],
                cwd=folder,
                env={**os.environ, "NOTIFY_SOCKET": address},
                stderr=subprocess.PIPE,
                text=True,
            )
            ready.settimeout(60)
            assert ready.recv(64) == b"READY=1"
        wakes: list[str] = []
        reader = threading.Thread(
            target=lambda: wakes.extend(line for line in daemon.stderr if "sleeping until" in line),
            daemon=True,
        )
        reader.start()
        idle = subprocess.Popen(
            [sys.executable, "-c", f"import time; time.sleep({args.seconds + 30})"]
        )
        time.sleep(1)  # let the baseline process finish starting
        woke_before = len(wakes)
        results: dict[str, dict[str, float]] = {}

        def measure_into(name: str, process: subprocess.Popen) -> None:
            results[name] = measure(process, args.seconds)

        threads = [
            threading.Thread(target=measure_into, args=item)
            for item in (("daemon", daemon), ("idle", idle))
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        loops = len(wakes) - woke_before
        daemon.send_signal(signal.SIGTERM)
        daemon.wait(timeout=60)
        idle.kill()
    minutes = args.seconds / 60
    print(
        f"daemon idle for {args.seconds:g} s with {args.jobs} jobs, none due "
        f"(Python {sys.version.split()[0]})"
    )
    for name, label in (("idle", "python sleeping (baseline)"), ("daemon", "cronflow daemon")):
        row = results[name]
        print(
            f"  {label:28} cpu {row['cpu']:6.3f} s  {row['switches'] / minutes:6.1f} "
            f"wake-ups/min  rss {row['rss_mb']:6.1f} MiB"
        )
    print(
        f"  daemon loop iterations: {loops / minutes:.1f} per minute; "
        f"rss x{results['daemon']['rss_mb'] / results['idle']['rss_mb']:.1f} the baseline"
    )


if __name__ == "__main__":
    main()
