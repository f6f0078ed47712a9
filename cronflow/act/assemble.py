"""The one place cronflow's parts are built and wired: the state directory's store and
locks, the clock, the process runner, the alerter, the pinger and the derived files (metrics,
status page) around an executor and its engine. The command line, the daemon, the tests and
the benchmarks all get their engine here, so each runs what cronflow runs for real."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import datetime

from cronflow.act import processes
from cronflow.act.engine import Engine
from cronflow.act.executor import Executor, Outcome
from cronflow.act.runner import ProcessRunner
from cronflow.clock import Clock
from cronflow.model import Boot, JobFile, RunEvent
from cronflow.state.locks import Locks
from cronflow.state.store import Store
from cronflow.tell.alerts import Alerter
from cronflow.tell.derived_files import Refresher
from cronflow.tell.metrics import metrics_refresher
from cronflow.tell.ping_reports import Pinger


def open_store(jobfile: JobFile) -> Store:
    """The jobs file's state directory (not created: reading commands never create it)."""
    return Store(jobfile.settings.state_dir)


def assemble(
    jobfile: JobFile,
    *,
    store: Store | None = None,
    clock: Clock | None = None,
    runner: ProcessRunner | None = None,
    on_event: Callable[[RunEvent], None] | None = None,
    on_outcome: Callable[[Outcome], None] | None = None,
    stop: threading.Event | None = None,
    boot: Callable[[datetime], Boot] = processes.this_boot,
    warn: Callable[[str], None] | None = None,
) -> Engine:
    """An engine over the jobs file's state directory (prepared: created, its reserve
    held), wired as cronflow runs for real; tests give their own clock, runner or boot."""
    if store is None:
        store = open_store(jobfile)
        store.prepare()
    if clock is None:
        from cronflow.clock import SystemClock

        clock = SystemClock()
    if runner is None:
        from cronflow.act.runner import ShellRunner

        runner = ShellRunner()
    locks = Locks(store.lock_dir)
    executor = Executor(
        jobfile=jobfile,
        store=store,
        locks=locks,
        runner=runner,
        clock=clock,
        on_event=on_event,
        on_outcome=on_outcome,
        alerter=Alerter(jobfile=jobfile, store=store, clock=clock),
        pinger=Pinger(jobfile=jobfile, store=store, clock=clock),
        refreshers=derived_files(jobfile, store, clock),
        stop=stop,
    )
    return Engine(
        jobfile=jobfile,
        store=store,
        locks=locks,
        executor=executor,
        clock=clock,
        boot=boot,
        warn=warn,
    )


def derived_files(jobfile: JobFile, store: Store, clock: Clock) -> list[Refresher]:
    """The writers of the files derived from the records that the jobs file asks for."""
    refreshers = [metrics_refresher(jobfile, store)] if jobfile.settings.metrics_file else []
    if jobfile.settings.html_file:
        from cronflow.tell.status_page import page_refresher  # its renderer only when wanted

        refreshers.append(page_refresher(jobfile, store, clock.now, processes.describe_running))
    return refreshers
