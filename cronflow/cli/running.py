"""The commands that run jobs: `cronflow run` (what is due, a job now, a backfill) and
`cronflow daemon`. They parse, call the engine (act/), and print what it reports."""

from __future__ import annotations

import os
import shlex
import sys
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from cronflow.cli.options import (
    JobsOption,
    Text,
    complete_job,
    job_option,
    load_jobs,
    own_command,
    parse_dates,
    today_in,
)
from cronflow.cli.steering import left_out_paused
from cronflow.errors import UsageError, printable
from cronflow.load import jobs_toml
from cronflow.model import JobFile, Rerun, RunEvent, RunStatus, describe_key
from cronflow.tell.overview import event_line

if TYPE_CHECKING:  # for annotations only: the commands import what they use when run
    from cronflow.act.engine import Engine
    from cronflow.act.executor import Outcome


def run(
    jobs: JobsOption = None,
    dates: Annotated[
        str | None,
        typer.Option(
            "--date",
            metavar="DAY[..DAY]",
            help="Backfill: run every tick of this day or inclusive range of days, oldest "
            "first. A DAY is YYYY-MM-DD, today, yesterday or -Nd (N days ago).",
        ),
    ] = None,
    job: Annotated[
        list[str] | None,
        job_option("Only this job (repeatable). Without --date: run it now, once."),
    ] = None,
    asset: Annotated[
        list[str] | None,
        typer.Option(
            "--asset",
            metavar="NAME",
            click_type=Text(),
            help="Only the job that produces this asset (repeatable); as --job names it.",
        ),
    ] = None,
    downstream: Annotated[
        bool,
        typer.Option(
            "--downstream",
            help="With --job or --asset: also run every job that depends on them.",
        ),
    ] = False,
    exclude: Annotated[
        list[str] | None,
        typer.Option(
            "--exclude",
            metavar="NAME",
            autocompletion=complete_job,
            help="With --date or --job: leave this job out (repeatable).",
        ),
    ] = None,
    rerun: Annotated[
        Rerun,
        typer.Option(
            "--rerun",
            metavar="failed|all|none",
            help="With --date: which recorded runs run again: failed (those that did "
            "not succeed, interrupted ones included), all, or none.",
        ),
    ] = Rerun.FAILED,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Print what would run and why; run nothing.")
    ] = False,
    verbose: Annotated[
        bool,
        typer.Option(
            "--verbose",
            "-v",
            help="Print every event, not only failures; with --date --dry-run, every run.",
        ),
    ] = False,
    include_paused: Annotated[
        bool,
        typer.Option(
            "--include-paused",
            help="With --date or --job: also run paused jobs (`cronflow pause`).",
        ),
    ] = False,
) -> None:
    """Run what is due now (cron calls this each minute), a job now (--job), or backfill
    (--date); exit 1 if a run failed.

    Examples:

      cronflow run --job health

      cronflow run --date -7d..today --exclude health

      cronflow run --date 2026-01-01..2026-01-31 --job load --downstream

      cronflow run --date -7d..today --asset warehouse.sales --downstream
    """
    jobfile = load_jobs(jobs, consequence="nothing was run")
    if asset:
        from cronflow.decide.freshness import producers_of

        job = [*(job or []), *producers_of(jobfile, asset)]
    if dates is None and not job and (downstream or exclude):
        raise UsageError(
            "--downstream and --exclude choose among the runs of a --date or a --job. "
            "Without them, cronflow runs whatever is due now."
        )
    if dates is not None:
        days = parse_dates(dates, today_in(jobfile))
        succeeded = _run_dates(
            jobfile,
            days,
            Choice(job or [], downstream, exclude or [], include_paused),
            rerun,
            dry_run,
            verbose,
        )
    elif job:
        succeeded = _run_now(
            jobfile, Choice(job, downstream, exclude or [], include_paused), dry_run
        )
    else:
        succeeded = _run_due(jobfile, dry_run, verbose)
    if not succeeded:
        raise typer.Exit(1)


@dataclass(frozen=True, slots=True)
class Choice:
    """The jobs a person named for `run --job` or `run --date`, as the options said."""

    names: list[str]
    downstream: bool
    exclude: list[str]
    include_paused: bool

    def options(self) -> list[str]:
        """The options that choose the same again (in the command that resumes a stop)."""
        return ["--include-paused"] if self.include_paused else []


def _run_now(jobfile: JobFile, choice: Choice, dry_run: bool) -> bool:
    """`cronflow run --job NAME`: those jobs now, kind manual, with the locks, retries,
    alerts and record of any run."""
    from cronflow.clock import SystemClock
    from cronflow.decide import explain, selection

    names, downstream, exclude = choice.names, choice.downstream, choice.exclude
    selected = selection.select_jobs(jobfile, names, downstream, exclude)
    now = SystemClock().now()
    runs = selection.manual_runs(jobfile, selected, now)
    if not choice.include_paused:
        runs = left_out_paused(jobfile, runs, now)
    if dry_run:
        from cronflow.tell import terminal

        terminal.verdict_table(jobfile, [explain.manual_verdict(run) for run in runs])
        return True
    reporter = RunPrinter(jobfile, quiet=False)
    engine = _engine(jobfile, reporter)
    with _stopping_on_signals(engine, jobfile) as stopped:
        outcomes = engine.run_now(runs, choice.include_paused)
    if stopped:
        reporter.resume = _run_command(jobfile, choice.options(), names, downstream, exclude)
    return _all_succeeded(reporter, outcomes, stopped)


def _run_due(jobfile: JobFile, dry_run: bool, verbose: bool) -> bool:
    """One clock-driven invocation: quiet unless something fails, as cron users expect."""
    reporter = RunPrinter(jobfile, quiet=not verbose)
    engine = _engine(jobfile, reporter)
    if dry_run:
        from cronflow.tell import terminal

        terminal.verdict_table(jobfile, engine.preview().verdicts)
        return True
    with _stopping_on_signals(engine, jobfile) as stopped:
        outcomes = engine.tick()
    return _all_succeeded(reporter, outcomes, stopped)


def _run_dates(
    jobfile: JobFile, days: list[date], choice: Choice, rerun: Rerun, dry_run: bool, verbose: bool
) -> bool:
    from cronflow.clock import SystemClock
    from cronflow.decide import explain, selection

    names, downstream, exclude = choice.names, choice.downstream, choice.exclude
    # Decide first: a bad name or a range still to come writes nothing to the state directory.
    selected = selection.select_jobs(jobfile, names, downstream, exclude)
    now = SystemClock().now()
    chosen = selection.backfill(jobfile, selected, days, now)
    if not choice.include_paused:
        kept = {run.key for run in left_out_paused(jobfile, chosen.all_runs(), now)}
        chosen = replace(
            chosen, by_date=[[run for run in day if run.key in kept] for day in chosen.by_date]
        )
    reporter = RunPrinter(jobfile, quiet=False)
    engine = _engine(jobfile, reporter)
    if dry_run:
        from cronflow.tell import terminal

        verdicts = engine.backfill_preview(chosen, rerun)
        if verbose:
            terminal.verdict_table(jobfile, verdicts)
        else:
            terminal.plan_summary(jobfile, explain.summarise_verdicts(verdicts))
        return True
    with _stopping_on_signals(engine, jobfile) as stopped:
        outcomes = engine.backfill(chosen, rerun, reporter.progress, choice.include_paused)
    reporter.not_yet_due = len(chosen.not_yet_due)
    reporter.skipped_by_calendar = len(chosen.skipped)
    if stopped:
        reporter.not_begun = sum(map(len, chosen.by_date)) - len(outcomes)
        ended = {outcome.key: outcome.status for outcome in outcomes}
        first = selection.first_day_unfinished(chosen, ended, days)
        dates = f"{first}..{days[-1]}" if first != days[-1] else str(first)
        rerun_option = [] if rerun is Rerun.FAILED else ["--rerun", rerun.value]
        reporter.resume = _run_command(
            jobfile, ["--date", dates, *rerun_option, *choice.options()], names, downstream, exclude
        )
    return _all_succeeded(reporter, outcomes, stopped)


def _run_command(
    jobfile: JobFile, options: list[str], names: list[str], downstream: bool, exclude: list[str]
) -> str:
    """The `cronflow run` command line, absolute, that takes a stopped run up again."""
    return shlex.join(
        [*own_command(), "run", "--jobs", str(jobfile.path.absolute()), *options]
        + [argument for name in names for argument in ("--job", name)]
        + (["--downstream"] if downstream else [])
        + [argument for name in exclude for argument in ("--exclude", name)]
    )


@contextmanager
def _stopping_on_signals(engine: Engine, jobfile: JobFile) -> Iterator[list[int]]:
    """Ctrl-C (or SIGTERM) stops as the daemon does (act/stopping.py). Yields the signals
    that came."""
    import signal
    import threading

    from cronflow.act.stopping import GracefulStop

    def say(words: str) -> None:  # not from the signal handler itself: print takes a lock
        threading.Thread(
            target=print, args=(f"\ncronflow: {words}",), kwargs={"file": sys.stderr}
        ).start()

    executor = engine.executor
    grace = jobfile.settings.shutdown_grace.total_seconds()
    stopping = GracefulStop(
        executor.runner, grace, say, requested=executor.stop, again="Ctrl-C again"
    )
    came: list[int] = []

    def stop(signum: int, frame: object) -> None:
        came.append(signum)
        stopping.request()

    previous = {number: signal.signal(number, stop) for number in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield came
    finally:
        stopping.cancel()
        for number, handler in previous.items():
            signal.signal(number, handler)


def _engine(jobfile: JobFile, reporter: RunPrinter) -> Engine:
    from cronflow.act.assemble import assemble

    engine = assemble(jobfile, on_event=reporter.event, on_outcome=reporter.outcome)
    exposure = engine.store.exposure_warning()
    if exposure:
        print(f"cronflow: warning: {printable(exposure)}", file=sys.stderr)
    return engine


def _all_succeeded(reporter: RunPrinter, outcomes: list[Outcome], stopped: list[int]) -> bool:
    """Print the summary; True unless a run failed, timed out or was held back by a failure.
    Stopped by a signal, exit as the shells expect of it (130 for Ctrl-C, 143 for SIGTERM)."""
    reporter.summary(outcomes, stopped=bool(stopped))
    if stopped:
        raise typer.Exit(128 + stopped[0])
    return not any(outcome.status.is_failure for outcome in outcomes)


def _runs(count: int) -> str:
    return "1 run" if count == 1 else f"{count} runs"


def _summary_word(outcome: Outcome) -> str:
    if outcome.already_done:
        return "not run"
    if outcome.status is RunStatus.INTERRUPTED and outcome.attempts == 0:
        return "not started"  # recorded interrupted, so that --rerun failed takes it up
    return outcome.status.value


class RunPrinter:
    """Prints what the executor reports: every event, or (quiet) only failures, to stderr."""

    def __init__(self, jobfile: JobFile, quiet: bool) -> None:
        self.jobfile = jobfile
        self.quiet = quiet
        self.not_yet_due = 0  # ticks a backfill left to the scheduler
        self.skipped_by_calendar = 0  # ticks of a backfill's days its jobs' calendars skip
        self.not_begun = 0  # runs of dates a stopped backfill did not begin
        self.resume = ""  # the command that takes a stopped run up again
        self._bar: Any = None  # a rich Progress while a backfill shows one

    def event(self, event: RunEvent) -> None:
        failure = event.status.is_failure
        if self.quiet and not failure:
            return
        self._print(f"  {event_line(self.jobfile, event)}", to_stderr=self.quiet)
        if failure and event.attempt >= event.max_attempts and self.jobfile.settings.show_stderr:
            for line in self._stderr_tail(event):
                self._print(f"    | {line}", to_stderr=self.quiet)

    def _stderr_tail(self, event: RunEvent) -> list[str]:
        """A failed run's last lines of stderr (as the log keeps them, masked again with the
        job's secrets), so that the mail cron sends of this output says what went wrong,
        as plain cron's would."""
        job = self.jobfile.jobs.get(event.job)
        if not event.stderr_tail or job is None:
            return []
        from cronflow.load.env_files import secrets_of_job
        from cronflow.masking import mask_text

        tail = mask_text(event.stderr_tail, secrets_of_job(job))
        return [printable(line) for line in tail.split("\n")]

    def outcome(self, outcome: Outcome) -> None:
        if self._bar is not None:
            self._bar.advance(self._task)
        if outcome.already_done and not self.quiet:
            self._print(f"  {describe_key(self.jobfile, outcome.key)}: not run, {outcome.reason}")

    def summary(self, outcomes: list[Outcome], stopped: bool = False) -> None:
        said = outcomes or self.not_yet_due or self.skipped_by_calendar or stopped
        if (self.quiet and not stopped) or not said:
            return
        counts = Counter(_summary_word(outcome) for outcome in outcomes)
        counts["not started"] += self.not_begun
        if any(counts.values()):
            self._print(
                f"{_runs(len(outcomes) + self.not_begun)}: "
                + ", ".join(f"{count} {word}" for word, count in sorted(counts.items()) if count)
            )
        if self.not_yet_due:
            self._print(f"{self.not_yet_due} tick(s) not yet due: left to the scheduler")
        if self.skipped_by_calendar:
            self._print(
                f"{self.skipped_by_calendar} tick(s) skipped by calendar (`--dry-run -v` lists them)"
            )
        if stopped:
            self._print(
                "stopped: "
                + (f"resume with: {self.resume}" if self.resume else "the next run takes it up")
            )

    @contextmanager
    def progress(self, total: int) -> Iterator[None]:
        """A progress bar over `total` runs, only in a terminal."""
        if total < 2 or not sys.stdout.isatty():
            yield
            return
        from cronflow.tell import terminal

        with terminal.progress_bar() as bar:
            self._bar, self._task = bar, bar.add_task("backfill", total=total)
            try:
                yield
            finally:
                self._bar = None

    def _print(self, line: str, to_stderr: bool = False) -> None:
        stream = sys.stderr if to_stderr else sys.stdout
        try:
            if self._bar is not None:
                self._bar.console.print(line, markup=False, highlight=False)
            else:
                print(line, file=stream, flush=True)
        except BrokenPipeError:  # the reader went away (`| head`): the runs go on, unprinted
            os.dup2(os.open(os.devnull, os.O_WRONLY), stream.fileno())


def daemon(
    jobs: JobsOption = None,
    verbose: Annotated[
        bool, typer.Option("--verbose", "-v", help="Also log every decision and sleep.")
    ] = False,
) -> None:
    """Run jobs as they come due, until SIGTERM or SIGINT; reload jobs.toml on SIGHUP or edit.

    Example:  cronflow daemon --jobs /etc/cronflow/jobs.toml   (or: cronflow systemd install)
    """
    from cronflow.act.daemon import serve

    serve(jobs_toml.find_jobs_file(jobs, os.environ, Path.cwd()), verbose)
