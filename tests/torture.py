"""Every kind of cronflow invocation at once on one state directory, optionally killed at random.

    python -m tests.torture --minutes 10 --kill      (what `make torture` runs)

A daemon, cron's one-shot `cronflow run`s and overlapping `run --date` backfills run side by
side in a loop, while a reader polls the index's run count and `cronflow pause` and `resume`
toggle the jobs at random (a paused job's ticks are skipped, its backfills left out). With `--kill`, every so often one
of them, of any kind, is killed with SIGKILL (its jobs run on, orphaned). At the end the
invocations stop, a last backfill settles what is left, a quiet window watches for a late
duplicate, and the effects are counted: each job appends one line per execution to
effects.txt, so exactly-once is judged by what the jobs did, not by what cronflow recorded.
`tests/test_stress.py` runs the same without kills, briefly.

With `--faults` (also in `make torture`), the faults that remain are added: some one-shot
ticks run with the clock stepped ahead by days or back by an hour (libfaketime; installed
with apt-get when missing), every ping and alert goes to a receiver that answers a byte at a
time, and (as root) the state directory is a small tmpfs that a filler fills up for a moment
every few seconds.
"""

from __future__ import annotations

import argparse
import os
import random
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from cronflow.model import EventType, RunKey, RunStatus
from cronflow.state.store import Store

JOBS = """
[cronflow]
state_dir = "state"
max_parallel = 4
metrics_file = "metrics.prom"
ping_timeout = 0.5
{alerts}

[defaults]
retries = 2
retry_delay = "0s"

[pools.shared]
slots = 2

[jobs.extract]
command = '{in_pool} echo "$CRONFLOW_JOB $CRONFLOW_LOGICAL_TIME" >> effects.txt; sleep 0.2 {out_of_pool}'
schedule = "*/20 * * * *"
pool = "shared"

[jobs.load]
command = 'echo "$CRONFLOW_JOB $CRONFLOW_LOGICAL_TIME" >> effects.txt'
depends_on = ["extract"]
produces = ["table"]
max_runtime = "auto"
finish_by = "+1m"

[assets.table]
deadline = "+2m"

[jobs.report]
command = 'echo "$CRONFLOW_JOB $CRONFLOW_LOGICAL_TIME" >> effects.txt; sleep 0.02'
depends_on = ["load"]

[jobs.every_minute]
command = '{in_pool} echo "$CRONFLOW_JOB $CRONFLOW_LOGICAL_TIME" >> effects.txt; sleep 0.2 {out_of_pool}'
schedule = "* * * * *"
max_runtime = "5s"
pool = "shared"

[jobs.two_schedules]
command = '{in_pool} echo "$CRONFLOW_JOB $CRONFLOW_LOGICAL_TIME" >> effects.txt {out_of_pool}'
schedule = ["* * * * *", "*/2 * * * *"]  # every even minute is a tick of both: run once
pool = "shared"
{ping}
"""
# A pooled job marks itself present in live/ while it runs and notes how many are: the most
# ever noted is the pool's use, counted by the jobs themselves (its slots: 2).
IN_POOL = "mkdir -p live; touch live/$$; ls live | wc -l >> pool.txt;"
OUT_OF_POOL = "; rm -f live/$$"
POOL_SLOTS = 2
# The clock of some one-shot ticks with --faults: ahead by days, back by an hour.
CLOCK_STEPS = ("+2d", "-1h")
QUIET_SECONDS = 15  # after the end: a late duplicate would show up here
DISK_MIB = 64  # the state directory's tmpfs with --faults; filled now and then
BACKFILLED = ("extract", "load", "report")
TICKS_PER_DAY = 72  # extract's */20, and the jobs after it
FIRST_DAY = date(2026, 1, 1)


@dataclass
class Figures:
    invocations: Counter = field(default_factory=Counter)  # kind -> started
    killed: Counter = field(default_factory=Counter)  # kind -> killed with SIGKILL
    index_polls: int = 0
    index_shrank: int = 0  # polls that saw fewer indexed runs than an earlier poll
    index_most: int = 0
    metrics_polls: int = 0
    metrics_torn: int = 0  # reads of metrics.prom that were not one whole file
    counters_fell: int = 0  # reads where a runs_total counter was below an earlier read's
    runs: int = 0  # distinct (job, logical time) executed
    effects: int = 0
    duplicates: int = 0  # executions beyond the first of a run
    lost: int = 0  # backfilled runs never executed, or not recorded as succeeded
    unbacked: int = 0  # runs recorded as succeeded whose job left no effect
    orphans: int = 0  # attempts finished (recorded) by another invocation than started them
    abandoned: int = 0
    pool_most: int = 0  # the most pooled jobs that ever ran at once, as they counted
    pool_over: int = 0  # starts that found more than POOL_SLOTS pooled jobs running

    @property
    def clean(self) -> bool:
        return not (
            self.duplicates
            or self.lost
            or self.unbacked
            or self.index_shrank
            or self.metrics_torn
            or self.counters_fell
            or self.pool_over
        )

    def report(self, seconds: float, kill: bool, faults: str = "") -> str:
        kinds = ", ".join(f"{kind} {count}" for kind, count in sorted(self.invocations.items()))
        killed = ", ".join(f"{kind} {count}" for kind, count in sorted(self.killed.items()))
        per = 10_000 * self.duplicates / self.runs if self.runs else 0.0
        return "\n".join(
            [
                f"torture: {seconds / 60:.1f} min, kill -9 {'on' if kill else 'off'}"
                + (f", faults: {faults}" if faults else ""),
                f"  duplicates per 10,000 runs: {per:g}",
                f"  invocations: {kinds}",
                f"  killed with SIGKILL: {killed or 'none'}",
                f"  runs {self.runs} (effects {self.effects}), duplicates {self.duplicates}, "
                f"lost {self.lost}, recorded success without effect {self.unbacked}",
                f"  orphans seen {self.orphans} (finished by another invocation), abandoned "
                f"{self.abandoned}",
                f"  index: {self.index_polls} polls, most runs {self.index_most}, shrank "
                f"{self.index_shrank} times",
                f"  metrics: {self.metrics_polls} reads, torn {self.metrics_torn}, a counter "
                f"went down {self.counters_fell} times",
                f"  pool: at most {self.pool_most} of {POOL_SLOTS} slots in use at once, "
                f"exceeded {self.pool_over} times",
                "  verdict: " + ("exactly once" if self.clean else "BROKEN"),
            ]
        )


class Torture:
    def __init__(
        self,
        folder: Path,
        days: int,
        kill: bool,
        seed: int | None = None,
        faults: bool = False,
    ) -> None:
        self.folder = folder
        self.days = [FIRST_DAY + timedelta(days=offset) for offset in range(days)]
        self.kill = kill
        self.random = random.Random(seed)
        self.figures = Figures()
        self.stop = threading.Event()
        self._live: dict[int, tuple[str, subprocess.Popen]] = {}
        self._guard = threading.Lock()
        self.faketime = _faketime() if faults else None
        self.trickle = _trickling_receiver() if faults else None
        self.small_disk = _small_disk(folder / "state") if faults else False
        self.fills = 0
        self.faults = ", ".join(
            what
            for what, on in (
                ("clock steps " + "/".join(CLOCK_STEPS), self.faketime),
                ("a trickling receiver for pings and alerts", self.trickle),
                (f"a {DISK_MIB} MiB state disk filled now and then", self.small_disk),
            )
            if on
        )
        ping, alerts = "", ""
        if self.trickle is not None:
            url = f"http://127.0.0.1:{self.trickle.port}/ping/5f0e4c1b"
            ping = f'ping_url = "{url}"'
            alerts = (
                f'[alerts]\nurls = ["json://127.0.0.1:{self.trickle.port}/hook"]\ntimeout = "1s"'
            )
        (folder / "jobs.toml").write_text(
            JOBS.format(ping=ping, alerts=alerts, in_pool=IN_POOL, out_of_pool=OUT_OF_POOL)
        )

    # ---- the invocations ----------------------------------------------------------------------

    def run(self, seconds: float, backfillers: int = 3, quiet: float = QUIET_SECONDS) -> Figures:
        workers = [
            threading.Thread(target=self._keep_daemon),
            threading.Thread(target=self._repeat, args=("one-shot", self._one_shot)),
            threading.Thread(target=self._read_index),
            threading.Thread(target=self._read_metrics),
            threading.Thread(target=self._toggle_pauses),
        ]
        workers += [
            threading.Thread(target=self._repeat, args=("backfill", self._backfill))
            for _ in range(backfillers)
        ]
        if self.kill:
            workers.append(threading.Thread(target=self._kill_at_random))
        if self.small_disk:
            workers.append(threading.Thread(target=self._fill_now_and_then))
        for worker in workers:
            worker.start()
        self.stop.wait(seconds)
        self.stop.set()
        self._terminate_daemon()
        for worker in workers:
            worker.join()
        self._settle(deadline=time.monotonic() + 180)
        time.sleep(quiet)  # nothing runs now: a late duplicate would still show
        self._count()
        if self.trickle is not None:
            self.trickle.release.set()
        return self.figures

    def _fill_now_and_then(self) -> None:
        """Fill the state directory's disk to the last block for a moment, every few seconds."""
        filler = self.folder / "state" / "filler"
        while not self.stop.wait(self.random.uniform(3, 8)):
            try:
                with open(filler, "wb", buffering=0) as filling:
                    while True:
                        filling.write(b"\0" * 65536)
            except OSError:
                pass  # full
            self.fills += 1
            self.stop.wait(self.random.uniform(0.3, 1.5))
            filler.unlink(missing_ok=True)
        filler.unlink(missing_ok=True)

    def _one_shot(self) -> list[str]:
        """`cronflow run`; with --faults, after the first minute, one in ten with the clock
        stepped (the jobs were first decided by the real clock)."""
        started = self.figures.invocations["one-shot"]
        if self.faketime and started > 60 and self.random.random() < 0.1:
            step = self.random.choice(CLOCK_STEPS)
            return [f"@faketime:{step}", "run"]
        return ["run"]

    def _start(self, kind: str, args: list[str]) -> subprocess.Popen:
        prefix: list[str] = []
        if args and args[0].startswith("@faketime:"):
            assert self.faketime is not None
            prefix, args = [self.faketime, "-f", args[0].split(":", 1)[1]], args[1:]
            kind = "stepped clock"
        process = subprocess.Popen(
            [*prefix, sys.executable, "-m", "cronflow", *args],
            cwd=self.folder,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env={**os.environ, "CI": "true", "NO_COLOR": "1"},
        )
        with self._guard:
            self._live[process.pid] = (kind, process)
            self.figures.invocations[kind] += 1
        return process

    def _wait(self, process: subprocess.Popen) -> int:
        code = process.wait()
        with self._guard:
            self._live.pop(process.pid, None)
        return code

    def _repeat(self, kind: str, arguments) -> None:
        while not self.stop.is_set():
            self._wait(self._start(kind, arguments()))

    def _keep_daemon(self) -> None:
        while not self.stop.is_set():
            daemon = self._start("daemon", ["daemon"])
            self._wait(daemon)  # ends when killed, or stopped at the end
            self.stop.wait(0.1)  # a daemon still shutting down holds the state directory

    def _terminate_daemon(self) -> None:
        with self._guard:
            daemons = [process for kind, process in self._live.values() if kind == "daemon"]
        for daemon in daemons:
            daemon.send_signal(signal.SIGTERM)

    def _backfill(self) -> list[str]:
        first = self.random.randrange(len(self.days))
        last = min(len(self.days) - 1, first + self.random.randrange(3))
        span = f"{self.days[first]}..{self.days[last]}" if last > first else str(self.days[first])
        return ["run", "--date", span, "--job", "extract", "--downstream"]

    def _toggle_pauses(self) -> None:
        """Pause or resume a job at random, every second or so."""
        jobs = [*BACKFILLED, "every_minute"]
        while not self.stop.wait(self.random.uniform(0.3, 2.0)):
            job = self.random.choice(jobs)
            if self.random.random() < 0.5:
                arguments = ["pause", job, "--reason", "torture"]
            else:
                arguments = ["resume", job]
            self._wait(self._start("pause", arguments))

    def _kill_at_random(self) -> None:
        while not self.stop.wait(self.random.uniform(0.2, 1.5)):
            with self._guard:
                if not self._live:
                    continue
                kind, victim = self._live[self.random.choice(list(self._live))]
            try:
                victim.send_signal(signal.SIGKILL)
                self.figures.killed[kind] += 1
            except ProcessLookupError:
                pass

    def _read_index(self) -> None:
        """Poll the index's run count as another reader would; it must never go down."""
        index = self.folder / "state" / "index.sqlite3"
        while not self.stop.wait(0.05):
            try:
                reader = sqlite3.connect(f"file:{index}?mode=ro", uri=True, timeout=5)
                try:
                    [count] = reader.execute("SELECT count(*) FROM runs").fetchone()
                finally:
                    reader.close()
            except sqlite3.Error:
                continue  # not made yet, or busy: no answer is not a wrong answer
            self.figures.index_polls += 1
            if count < self.figures.index_most:
                self.figures.index_shrank += 1
            self.figures.index_most = max(self.figures.index_most, count)

    def _read_metrics(self) -> None:
        """Read metrics.prom as node_exporter would: always one whole file, and no counter
        ever lower than a read before (Prometheus would take it for a restart)."""
        from prometheus_client.parser import text_string_to_metric_families

        from cronflow.tell.metrics import FAMILIES

        path = self.folder / "metrics.prom"
        highest: dict[tuple, float] = {}
        while not self.stop.wait(0.05):
            try:
                text = path.read_text()
            except FileNotFoundError:
                continue  # not written yet
            self.figures.metrics_polls += 1
            try:
                families = list(text_string_to_metric_families(text))
            except ValueError:
                families = []
            if len(families) != len(FAMILIES) or not text.endswith("\n"):
                self.figures.metrics_torn += 1
                continue
            fell = False
            for family in families:
                if family.type != "counter":
                    continue
                for sample in family.samples:
                    key = (sample.name, tuple(sorted(sample.labels.items())))
                    fell |= sample.value < highest.get(key, 0)
                    highest[key] = max(highest.get(key, 0), sample.value)
            self.figures.counters_fell += fell

    # ---- settling and counting ----------------------------------------------------------------

    def _settle(self, deadline: float) -> None:
        """Backfill every day once more, unkilled, until it all succeeded: orphans are waited
        for and recorded, runs abandoned with no tries left are run (they never executed)."""
        span = f"{self.days[0]}..{self.days[-1]}"
        subprocess.run(
            [sys.executable, "-m", "cronflow", "resume", "--all"],
            cwd=self.folder,
            capture_output=True,
            env={**os.environ, "CI": "true"},
            check=True,
        )
        while True:
            backfill = subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "cronflow",
                    "run",
                    "--date",
                    span,
                    "--job",
                    "extract",
                    "--downstream",
                ],
                cwd=self.folder,
                capture_output=True,
                text=True,
                env={**os.environ, "CI": "true"},
            )
            if backfill.returncode == 0:
                break
            if time.monotonic() > deadline:
                raise RuntimeError(f"the last backfill still fails:\n{backfill.stderr}")
            time.sleep(0.5)  # an orphan still runs: give it time to end
        subprocess.run(
            [sys.executable, "-m", "cronflow", "run"],
            cwd=self.folder,
            capture_output=True,
            env={**os.environ, "CI": "true"},
        )

    def _count(self) -> None:
        effects_file = self.folder / "effects.txt"
        lines = effects_file.read_text().splitlines() if effects_file.exists() else []
        effects = Counter(
            (job, datetime.fromisoformat(at)) for job, at in (line.split() for line in lines)
        )
        figures = self.figures
        figures.effects = len(lines)
        figures.runs = len(effects)
        figures.duplicates = sum(count - 1 for count in effects.values())
        store = Store(self.folder / "state")
        history = store.index()
        events = store.read().events
        starters = {(e.run_id, e.attempt): e.pid for e in events if e.event is EventType.STARTED}
        figures.orphans = sum(
            1
            for e in events
            if e.event is EventType.FINISHED and starters.get((e.run_id, e.attempt), e.pid) != e.pid
        )
        figures.abandoned = sum(e.event is EventType.ABANDONED for e in events)
        pool_file = self.folder / "pool.txt"
        seen = [int(n) for n in pool_file.read_text().split()] if pool_file.exists() else []
        figures.pool_most = max(seen, default=0)
        figures.pool_over = sum(n > POOL_SLOTS for n in seen)
        for day in self.days:
            midnight = datetime(day.year, day.month, day.day, tzinfo=UTC)
            for tick in range(TICKS_PER_DAY):
                at = midnight + timedelta(minutes=20 * tick)
                figures.lost += sum(
                    effects[(job, at)] == 0
                    or history.status(RunKey(job, at)) is not RunStatus.SUCCESS
                    for job in BACKFILLED
                )
        succeeded = {
            (e.job, e.logical_time)
            for e in events
            if e.event is EventType.FINISHED and e.status is RunStatus.SUCCESS
        }
        figures.unbacked = sum(1 for key in succeeded if effects[key] == 0)


def _faketime() -> str | None:
    """libfaketime's command, installed with apt-get when missing (None if it cannot be)."""
    import shutil

    if shutil.which("faketime") is None:
        subprocess.run(
            ["apt-get", "install", "-y", "-q", "faketime"],
            capture_output=True,
            env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"},
        )
    return shutil.which("faketime")


def _small_disk(state: Path) -> bool:
    """A tmpfs of DISK_MIB as the state directory (root only; False if it cannot be)."""
    state.mkdir(parents=True, exist_ok=True)
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={DISK_MIB}m,mode=700", "tmpfs", str(state)],
        capture_output=True,
    )
    return mounted.returncode == 0


def _trickling_receiver():
    from tests.receivers import start_monitor

    monitor = start_monitor()
    monitor.mode = "trickle"
    return monitor


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=10)
    parser.add_argument(
        "--days", type=int, default=None, help="days of history to backfill (default: 3 per minute)"
    )
    parser.add_argument("--kill", action="store_true", help="SIGKILL invocations at random")
    parser.add_argument(
        "--folder", type=Path, default=None, help="where to run (default: a new temporary folder)"
    )
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument(
        "--faults", action="store_true", help="clock steps and a trickling receiver too"
    )
    options = parser.parse_args()
    folder = options.folder or Path(tempfile.mkdtemp(prefix="cronflow-torture-"))
    folder.mkdir(parents=True, exist_ok=True)
    days = options.days or max(2, round(3 * options.minutes))
    torture = Torture(
        folder, days=days, kill=options.kill, seed=options.seed, faults=options.faults
    )
    began = time.monotonic()
    figures = torture.run(options.minutes * 60)
    print(figures.report(time.monotonic() - began, options.kill, torture.faults))
    state = folder / "state"
    if torture.small_disk:
        print(f"  the state disk was filled {torture.fills} times")
        import shutil

        shutil.copytree(state, folder / "state-kept", symlinks=True)  # the tmpfs goes
        subprocess.run(["umount", "-l", str(state)], check=False)
        state = folder / "state-kept"
    print(f"  state directory: {state}")
    sys.exit(0 if figures.clean else 1)


if __name__ == "__main__":
    main()
