"""`cronflow daemon`: run jobs as they come due, sleeping until the next tick.

Each wake-up takes the decision a one-shot `cronflow run` takes (`Engine.tick_with`), then
hands the runs to a thread of their own, so runs of different ticks go on side by side
while the loop sleeps again: until the next tick, and never longer than a minute, to notice
clock jumps and edits of jobs.toml. The same locks and log as one-shot runs and backfills
keep them from ever running a run twice.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import sys
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path

from cronflow.act import configuration
from cronflow.act.assemble import assemble, open_store
from cronflow.act.engine import Engine
from cronflow.act.executor import Executor
from cronflow.act.runner import ProcessRunner
from cronflow.act.stopping import GracefulStop
from cronflow.clock import Clock
from cronflow.errors import ConfigError, CronflowError, Problem, printable
from cronflow.model import JobFile, PlannedRun, RunEvent
from cronflow.state.files import NO_LINKS, read_bytes
from cronflow.state.layout import DAEMON_LOCK, DAEMON_PID
from cronflow.state.locks import Locks
from cronflow.state.store import Store

# The longest sleep: the daemon looks at least this often for clock jumps, edits of the jobs
# file and runs of other invocations to settle.
MAX_SLEEP = timedelta(seconds=60)
PR_SET_CHILD_SUBREAPER = 36  # prctl(2): orphaned descendants are re-parented to the caller


class DaemonRunning(CronflowError):
    """Another daemon holds this state directory."""


class Daemon:
    """The loop behind `cronflow daemon`; signals reach it through request_stop/request_reload."""

    def __init__(
        self,
        *,
        jobs_path: Path,
        clock: Clock,
        runner: ProcessRunner,
        log: Callable[[str], None],
        on_event: Callable[[JobFile, RunEvent], None] | None = None,
        verbose: bool = False,
    ) -> None:
        self.jobs_path = jobs_path
        self.clock = clock
        self.runner = runner
        self.log = log
        self.on_event = on_event
        self.verbose = verbose
        self.stopping = GracefulStop(runner, grace=0.0, say=log)
        self.stop = self.stopping.requested  # set: start no more runs, then shut down
        self.wake = threading.Event()  # set: end the current sleep early
        self._reload_requested = False
        self._executions: list[threading.Thread] = []
        self._executors: list[Executor] = []  # of this engine and earlier ones (reloads)
        self._reaping = False  # a child subreaper: orphaned descendants are ours to reap

    def take_over_process(self) -> None:
        """Make this process the daemon (from its main thread; `cronflow daemon` does it):
        stop on SIGTERM/SIGINT, reload on SIGHUP, and reap orphaned descendants on SIGCHLD.
        A job's background process that outlives it is re-parented to the daemon (it is a
        child subreaper, or PID 1 in a container) and reaped when it ends: no zombies pile up.

        The signals are only written to a pipe (Python's wakeup fd, by the C-level handler)
        and acted on by a thread of their own: a Python handler that took a lock (setting an
        Event does) could deadlock when a signal arrives while that lock is held, as a burst
        of SIGCHLD from ending jobs does."""
        few_malloc_arenas()  # before any thread starts
        arrived, self._signals = os.pipe2(os.O_CLOEXEC)
        os.set_blocking(self._signals, False)
        signal.set_wakeup_fd(self._signals, warn_on_full_buffer=False)
        for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGCHLD):
            signal.signal(signum, lambda *_: None)  # the byte in the pipe is what counts
        self._reaping = become_subreaper()
        threading.Thread(
            target=self._act_on_signals, args=(arrived,), daemon=True, name="cronflow-signals"
        ).start()

    def _act_on_signals(self, arrived: int) -> None:
        """Stop, reload or reap as each signal arrives (the bytes are signal numbers)."""
        while True:
            for signum in os.read(arrived, 512):
                if signum in (signal.SIGTERM, signal.SIGINT):
                    self.request_stop()
                elif signum == signal.SIGHUP:
                    self.request_reload()
                elif signum == signal.SIGCHLD and self._reaping:
                    self.runner.reap_orphans()

    def request_stop(self) -> None:
        """First call: stop gracefully. Second call: stop at once (see act/stopping.py)."""
        self.stopping.request()
        self.wake.set()

    def request_reload(self) -> None:
        self._reload_requested = True
        self.wake.set()

    # ---- the service --------------------------------------------------------------------------

    def serve(self) -> None:
        """Run until asked to stop; raises ConfigError or DaemonRunning if it cannot start."""
        try:
            jobfile = self._load()
        except ConfigError as error:
            raise error.because("the daemon did not start") from None
        store = open_store(jobfile)
        store.prepare()
        exposure = store.exposure_warning()
        if exposure:
            self.log(f"warning: {exposure}")
        locks = Locks(store.lock_dir)
        with locks.hold(DAEMON_LOCK, wait=False) as alone:
            if not alone:
                raise DaemonRunning(_already_running_message(store))
            _write_pid(store)
            self.log(
                f"cronflow daemon started (pid {os.getpid()}): {len(jobfile.jobs)} jobs "
                f"from {jobfile.path}, state in {store.state_dir}"
            )
            notify_systemd("READY=1")
            self._loop(jobfile, store)
            notify_systemd("STOPPING=1")
            self._shut_down()

    def _loop(self, jobfile: JobFile, store: Store) -> None:
        seen = _modified(self.jobs_path)
        engine = self._engine(jobfile, store)
        while not self.stop.is_set():
            # Cleared before the reload request is read: a SIGHUP arriving during the
            # decision below then ends the sleep after it (cleared after, it waited a minute).
            self.wake.clear()
            if self._reload_requested or _modified(self.jobs_path) != seen:
                self._reload_requested = False
                seen = _modified(self.jobs_path)
                engine = self._reloaded(engine, store)
            decision = engine.tick_with(partial(self._execute, engine))
            self._executions = [thread for thread in self._executions if thread.is_alive()]
            latest = self.clock.now() + MAX_SLEEP
            wake_at = min(latest, decision.wake.at or latest)
            if self.verbose:
                self.log(f"sleeping until {wake_at.isoformat()}")
            if not self.stop.is_set():
                give_back_freed_memory()
                self.clock.sleep_until(wake_at, self.wake)

    def _engine(self, jobfile: JobFile, store: Store) -> Engine:
        self.stopping.grace = jobfile.settings.shutdown_grace.total_seconds()
        on_event = self.on_event

        def tell(event: RunEvent) -> None:
            if on_event is not None:
                on_event(jobfile, event)

        engine = assemble(
            jobfile,
            store=store,
            clock=self.clock,
            runner=self.runner,
            stop=self.stop,
            on_event=tell if on_event is not None else None,
            warn=lambda text: self.log(f"warning: {text}"),
        )
        # Deliveries outlive a reload: every executor with some in flight is waited for.
        self._executors = [e for e in self._executors if not e.deliveries_idle()]
        self._executors.append(engine.executor)
        return engine

    def _execute(self, engine: Engine, runs: list[PlannedRun]) -> None:
        thread = threading.Thread(
            target=engine.executor.execute,
            args=(runs,),
            name=f"cronflow-tick-{len(self._executions)}",
        )
        thread.start()
        self._executions.append(thread)

    # ---- reloading ------------------------------------------------------------------------

    def _load(self) -> JobFile:
        jobfile = configuration.load(self.jobs_path)
        for warning in jobfile.warnings:
            self.log(f"warning: {warning}")
        return jobfile

    def _reloaded(self, current: Engine, store: Store) -> Engine:
        """The engine for the edited jobs file, or the current one if the edit is broken;
        nothing an edit holds takes the daemon down (an error of cronflow's own reading it
        included: logged and alerted like a broken edit)."""
        try:
            return self._reload(store)
        except Exception as error:  # noqa: BLE001 (the daemon keeps the last good version)
            if isinstance(error, ConfigError):
                why = str(error)
            else:
                why = (  # its words may quote a value (a URL with its token): not shown
                    f"cronflow could not read it ({type(error).__name__}). Run `cronflow "
                    f"validate --jobs {self.jobs_path}` to see where"
                )
            self.log(
                f"error: {self.jobs_path} was edited but cannot be used; still running the "
                f"last good version.\n{why}"
            )
            if current.executor.alerter:  # recorded like every alert
                current.executor.alerter.config_broken(self.jobs_path, why)
            return current

    def _reload(self, store: Store) -> Engine:
        jobfile = self._load()
        if jobfile.settings.state_dir != store.state_dir:
            raise ConfigError(
                self.jobs_path,
                [
                    Problem(
                        problem="state_dir changed",
                        key="cronflow.state_dir",
                        fix="Restart the daemon to move to another state directory",
                    )
                ],
            )
        engine = self._engine(jobfile, store)
        self.log(f"reloaded {jobfile.path}: {len(jobfile.jobs)} jobs")
        return engine

    # ---- stopping -----------------------------------------------------------------------------

    def _shut_down(self) -> None:
        """Wait for the running jobs: `stopping` gives them shutdown_grace, then stops them
        (at once on a second request); every one gets recorded."""
        for thread in self._executions:
            thread.join()
        for executor in self._executors:
            executor.wait_for_deliveries()
        self.stopping.cancel()
        self.log("cronflow daemon stopped")


def serve(jobs_path: Path, verbose: bool) -> None:
    """`cronflow daemon`: take over this process and run jobs until told to stop."""
    from cronflow.act.runner import ShellRunner
    from cronflow.clock import SystemClock
    from cronflow.tell.overview import event_line

    service = Daemon(
        jobs_path=jobs_path.absolute(),
        clock=SystemClock(),
        runner=ShellRunner(),
        log=log_line,
        verbose=verbose,
        on_event=lambda jobfile, event: log_line(event_line(jobfile, event)),
    )
    service.take_over_process()
    service.serve()


_LOG_GUARD = threading.Lock()  # one line at a time, from every thread


def log_line(line: str) -> None:
    """One line on stderr, written whole with one call (runs that end together log from
    several threads: print's separate writes of a line and its newline once merged them);
    journald adds its own time stamp, a terminal gets ours."""
    line = printable(line)
    if not os.environ.get("JOURNAL_STREAM"):
        line = f"{datetime.now(UTC):%Y-%m-%dT%H:%M:%SZ} {line}"
    data = (line + "\n").encode("utf-8", errors="replace")
    with _LOG_GUARD:
        try:
            sys.stderr.flush()  # whatever else went to stderr first
            while data:  # a pipe takes up to PIPE_BUF bytes at once; a long line, in parts
                data = data[os.write(sys.stderr.fileno(), data) :]
        except BrokenPipeError:  # its reader went away (journald restarted, `| head`): run on
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stderr.fileno())


def become_subreaper() -> bool:
    """Have orphaned descendants re-parented to this process, as they are to PID 1."""
    if os.getpid() == 1:
        return True
    import ctypes  # only the daemon needs it

    libc = ctypes.CDLL(None, use_errno=True)
    return bool(libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0)


M_ARENA_MAX = -8  # mallopt(3)
M_MMAP_THRESHOLD = -3
MALLOC_ARENAS = 2
MMAP_THRESHOLD = 128 * 1024  # glibc's own starting value, kept


def few_malloc_arenas() -> None:
    """Let glibc's malloc keep 2 arenas, not 8 per CPU (what MALLOC_ARENA_MAX=2 does). The
    daemon starts a thread for each tick and each ping's deadline; spread over up to 16
    arenas, each holding freed memory of its own, its resident memory grew by 30 MiB a
    simulated day (bench/bench_week.py) with no Python object more.

    And keep blocks of 128 KiB and more in maps of their own, returned when freed: left to
    itself, glibc raises that threshold to the size of the largest block freed (up to 32
    MiB), after which such blocks come from the heaps and leave them fragmented. The first
    retention pass (a snapshot of the index, a day of the log deleted) did that once, and
    the week's resident memory stepped up by 2.5 to 3.7 MiB, for good."""
    import ctypes

    with contextlib.suppress(AttributeError, OSError):  # not glibc (musl): nothing to limit
        libc = ctypes.CDLL(None)
        libc.mallopt(M_ARENA_MAX, MALLOC_ARENAS)
        libc.mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD)


def give_back_freed_memory() -> None:
    """Return the heap a decision freed to the system before sleeping (glibc keeps it
    otherwise): an idle daemon's resident memory stays what it needs (about 0.7 MiB less)."""
    import ctypes

    with contextlib.suppress(AttributeError, OSError):  # not glibc (musl): nothing to give back
        ctypes.CDLL(None).malloc_trim(0)


def notify_systemd(state: str) -> bool:
    """Send `state` (e.g. READY=1) to systemd through $NOTIFY_SOCKET; False if not under it."""
    address = os.environ.get("NOTIFY_SOCKET")
    if not address:
        return False
    if address.startswith("@"):
        address = "\0" + address[1:]  # an abstract socket
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sender:
        sender.connect(address)
        sender.sendall(state.encode())
    return True


def _modified(path: Path) -> float | None:
    try:
        return path.stat().st_mtime
    except OSError:
        return None


def _pid_path(store: Store) -> Path:
    return store.state_dir / DAEMON_PID


def _write_pid(store: Store) -> None:
    descriptor = os.open(_pid_path(store), os.O_WRONLY | os.O_CREAT | os.O_TRUNC | NO_LINKS, 0o600)
    with open(descriptor, "w") as pid_file:
        pid_file.write(f"{os.getpid()}\n")


def _already_running_message(store: Store) -> str:
    try:
        pid = read_bytes(_pid_path(store)).decode().strip()
    except (OSError, ValueError):
        pid = "unknown"
    return (
        f"another cronflow daemon (pid {pid}) already runs with state directory "
        f"{store.state_dir}. Stop it first (systemctl stop cronflow), or give this one "
        "another state_dir."
    )
