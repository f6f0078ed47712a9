"""Benchmark: a one-shot `cronflow run` with 100 scheduled jobs and nothing due.

Against `python -c pass` and against a bare typer app with one command, all measured in this
run as medians of repeated process starts. This is what cron pays every minute: the idle tick
(answered from the stamp the last full tick left) and, for comparison, a full decision that
finds nothing due (`--verbose` always decides in full). Then the idle tick that also pings a
heartbeat (to an HTTP server of this benchmark on 127.0.0.1) and renews a metrics file,
against a bare Python process sending that one request. cronflow's modules are compiled
first, as pip does when it installs the wheel.

    make bench        # or: .venv/bin/python bench/bench_startup.py [--repeat 30]
"""

from __future__ import annotations

import argparse
import compileall
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

BARE_TYPER = """
import typer
app = typer.Typer()
@app.command()
def run(jobs: str = "jobs.toml") -> None:
    pass
app()
"""


def jobs_file(folder: Path, count: int) -> Path:
    """100 jobs scheduled for 03:00 on 29 February, so none is due."""
    path = folder / "jobs.toml"
    path.write_text(
        "\n".join(
            f'[jobs.job_{i}]\ncommand = "true"\nschedule = "{i % 60} 3 29 2 *"\n'
            f'timezone = "Europe/Berlin"\n'
            for i in range(count)
        )
    )
    return path


class _Ok(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self.do_GET()

    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"OK")

    def log_message(self, *args: object) -> None:
        pass


def signalling_jobs_file(folder: Path, count: int, url: str) -> Path:
    """The same jobs, with a heartbeat URL and a metrics file."""
    folder.mkdir()
    plain = jobs_file(folder, count).read_text()
    settings = f'[cronflow]\nheartbeat_url = "{url}"\nmetrics_file = "cronflow.prom"\n\n'
    (folder / "jobs.toml").write_text(settings + plain)
    return folder / "jobs.toml"


def calendared_jobs_file(folder: Path, count: int) -> Path:
    """The same jobs skipping Bavaria's holidays and weekends, in a pool, with a blackout
    window (issue 34: an idle tick must cost no more for them)."""
    folder.mkdir()
    settings = (
        '[calendars.holidays]\nholidays = "DE-BY"\n[calendars.weekend]\nweekdays = "sat,sun"\n'
        '[blackout]\nbackups = "Sat 22:00..Sun 06:00"\n[pools.db]\nslots = 2\n'
        '[defaults]\nskip_on = ["holidays", "weekend"]\npool = "db"\n\n'
    )
    (folder / "jobs.toml").write_text(settings + jobs_file(folder, count).read_text())
    return folder / "jobs.toml"


def median_seconds(commands: dict[str, list[str]], repeat: int, cwd: Path) -> dict[str, float]:
    """Median wall time of each command; the commands take turns, so drift hits all alike."""
    times: dict[str, list[float]] = {name: [] for name in commands}
    for _ in range(repeat):
        for name, command in commands.items():
            started = time.perf_counter()
            subprocess.run(command, cwd=cwd, check=True, stdout=subprocess.DEVNULL)
            times[name].append(time.perf_counter() - started)
    return {name: statistics.median(values) for name, values in times.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=100)
    parser.add_argument("--repeat", type=int, default=30)
    args = parser.parse_args()
    import cronflow

    compileall.compile_dir(Path(cronflow.__file__).parent, quiet=1)
    with tempfile.TemporaryDirectory() as name:
        folder = Path(name)
        jobs = jobs_file(folder, args.jobs)
        (folder / "bare_typer.py").write_text(BARE_TYPER)
        cronflow = [sys.executable, "-m", "cronflow", "run", "--jobs", str(jobs)]
        server = ThreadingHTTPServer(("127.0.0.1", 0), _Ok)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        url = f"http://127.0.0.1:{server.server_address[1]}/ping/heartbeat"
        signalling = [
            *cronflow[:-1],
            str(signalling_jobs_file(folder / "signalling", args.jobs, url)),
        ]
        calendared = [*cronflow[:-1], str(calendared_jobs_file(folder / "calendars", args.jobs))]
        for first_sight in (cronflow, signalling, calendared):  # writes the watermarks once
            subprocess.run(first_sight, check=True)
        one_request = f"import urllib.request; urllib.request.urlopen({url!r}, b'').read()"
        results = median_seconds(
            {
                "python -c pass": [sys.executable, "-c", "pass"],
                "bare typer app, one command": [sys.executable, "bare_typer.py"],
                f"cronflow run, {args.jobs} jobs, none due": cronflow,
                "  the same, decided in full (-v)": [*cronflow, "--verbose"],
                "  idle, with calendars, blackout, pool": calendared,
                "  with calendars, decided in full": [*calendared, "--verbose"],
                "python sending one HTTP request": [sys.executable, "-c", one_request],
                "  idle run + heartbeat + metrics": signalling,
            },
            args.repeat,
            folder,
        )
        server.shutdown()
    python, typer_app = results["python -c pass"], results["bare typer app, one command"]
    print(f"start-up, median of {args.repeat} runs (Python {sys.version.split()[0]})")
    for name, seconds in results.items():
        print(
            f"  {name:34} {seconds * 1000:7.1f} ms  x{seconds / python:5.2f} python"
            f"  x{seconds / typer_app:5.2f} typer"
        )
    print("  targets for the idle run: at most x6 python and x1.15 typer")
    plain, calendars = (
        idle_of(results, args.jobs),
        results["  idle, with calendars, blackout, pool"],
    )
    print(
        f"  calendars, a blackout and a pool on an idle run: x{calendars / plain:.2f} the idle run"
    )
    idle = idle_of(results, args.jobs)
    signalled = results["  idle run + heartbeat + metrics"]
    request = results["python sending one HTTP request"]
    print(
        f"  heartbeat and metrics on an idle run: x{signalled / idle:.2f} the idle run, "
        f"x{signalled / request:.2f} a bare Python request"
    )


def idle_of(results: dict[str, float], jobs: int) -> float:
    return results[f"cronflow run, {jobs} jobs, none due"]


if __name__ == "__main__":
    main()
