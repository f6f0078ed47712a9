"""The `cronflow` command: parse options, call the core, print. No decisions live here."""

from __future__ import annotations

import json
import os
import shlex
import sys
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date, datetime, timedelta
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import click
import typer

from cronflow import JOBS_ENV_VAR, __version__
from cronflow.errors import ConfigError, CronflowError, Problem, UsageError
from cronflow.load import jobs_toml
from cronflow.model import Job, JobFile, Rerun, RunEvent, RunStatus, describe_key
from cronflow.tell.overview import event_line

if TYPE_CHECKING:  # for annotations only: the commands import what they use when run
    from cronflow.act.engine import Engine
    from cronflow.act.executor import Outcome
    from cronflow.decide.selection import Backfill
    from cronflow.state.index import RunIndex
    from cronflow.state.store import Store

app = typer.Typer(
    help="cron for jobs that depend on each other. See README.md for the jobs.toml reference.",
    pretty_exceptions_show_locals=False,  # locals may hold secrets (env values, alert URLs)
    no_args_is_help=True,
)


def _complete_job(ctx: typer.Context, incomplete: str) -> list[str]:
    """Shell completion: the job names of the jobs file this command line points at."""
    named = ctx.params.get("jobs")  # a string while completing: not converted yet
    try:
        jobfile = jobs_toml.load(
            jobs_toml.find_jobs_file(Path(named) if named else None, os.environ, Path.cwd())
        )
    except CronflowError:
        return []
    return [name for name in jobfile.jobs if name.startswith(incomplete)]


def _print_version(asked: bool) -> None:
    if asked:
        print(f"cronflow {__version__}")
        raise typer.Exit()


@app.callback()
def _options(
    version: Annotated[
        bool,
        typer.Option(
            "--version",
            is_eager=True,
            callback=_print_version,
            help="Print cronflow's version and exit.",
        ),
    ] = False,
) -> None:
    """Options of cronflow itself, before any command (the app's help text is set above)."""


class _Text(click.ParamType):  # type: ignore[type-arg]  # generic only since click 8.3
    """An argument's text as given, with no type placeholder (`<str>`) in the help."""

    name = "text"

    def get_metavar(self, param: click.Parameter, ctx: click.Context | None = None) -> str:
        return ""


WideOption = Annotated[
    bool,
    typer.Option(
        "--wide", help="Every column and full times, whatever the width (one line per row)."
    ),
]
JobsOption = Annotated[
    Path | None,
    typer.Option(
        "--jobs",
        envvar=JOBS_ENV_VAR,
        show_envvar=True,
        dir_okay=False,
        metavar="PATH",
        help="The jobs file (default: $CRONFLOW_JOBS, else ./jobs.toml).",
    ),
]


def _store(jobfile: JobFile) -> Store:
    """The jobs file's state directory."""
    from cronflow.state.store import Store

    return Store(jobfile.settings.state_dir)


def _load(jobs: Path | None, consequence: str = "") -> JobFile:
    """The jobs file, its warnings printed; a ConfigError says `consequence` if given."""
    try:
        jobfile = jobs_toml.load(jobs_toml.find_jobs_file(jobs, os.environ, Path.cwd()))
    except ConfigError as error:
        raise error.because(consequence) if consequence else error from None
    for warning in jobfile.warnings:
        print(f"cronflow: warning: {warning}", file=sys.stderr)
    return jobfile


@app.command()
def validate(jobs: JobsOption = None) -> None:
    """Check a jobs file and list its jobs; exit 2 listing every problem if it is not valid.

    Example:  cronflow validate --jobs /etc/cronflow/jobs.toml
    """
    jobfile = _load(jobs)
    if jobfile.alerts.has_targets:
        from cronflow.tell.alerts import check_targets

        problems = check_targets(jobfile.alerts)
        if problems:
            raise ConfigError(
                jobfile.path,
                [
                    Problem(
                        problem=problem,
                        key="alerts",
                        fix="Fix it as the apprise wiki says for that "
                        "service: https://github.com/caronc/apprise/wiki",
                    )
                    for problem in problems
                ],
            )
    print(f"{jobfile.path}: {len(jobfile.jobs)} jobs, no problems.")
    for job in jobfile.jobs.values():
        when = (
            f"{job.schedule} ({job.timezone.key})"
            if job.schedule
            else f"after {', '.join(job.depends_on)}"
            if job.depends_on
            else "manual only"
        )
        print(f"  {job.name}: {when}")


@app.command()
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
        typer.Option(
            "--job",
            metavar="NAME",
            autocompletion=_complete_job,
            help="Only this job (repeatable). Without --date: run it now, once.",
        ),
    ] = None,
    asset: Annotated[
        list[str] | None,
        typer.Option(
            "--asset",
            metavar="NAME",
            click_type=_Text(),
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
            autocompletion=_complete_job,
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
) -> None:
    """Run what is due now (cron calls this each minute), a job now (--job), or backfill
    (--date); exit 1 if a run failed.

    Examples:

      cronflow run --job health

      cronflow run --date -7d..today --exclude health

      cronflow run --date 2026-01-01..2026-01-31 --job load --downstream

      cronflow run --date -7d..today --asset warehouse.sales --downstream
    """
    jobfile = _load(jobs, consequence="nothing was run")
    if asset:
        from cronflow.decide.freshness import producers_of

        job = [*(job or []), *producers_of(jobfile, asset)]
    if dates is None and not job and (downstream or exclude):
        raise UsageError(
            "--downstream and --exclude choose among the runs of a --date or a --job. "
            "Without them, cronflow runs whatever is due now."
        )
    if dates is not None:
        days = parse_dates(dates, _today(jobfile))
        succeeded = _run_dates(
            jobfile, days, job or [], downstream, exclude or [], rerun, dry_run, verbose
        )
    elif job:
        succeeded = _run_now(jobfile, job, downstream, exclude or [], dry_run)
    else:
        succeeded = _run_due(jobfile, dry_run, verbose)
    if not succeeded:
        raise typer.Exit(1)


def _today(jobfile: JobFile) -> date:
    """Today in the file's zone ([cronflow] timezone): what `today` and `-7d` count from."""
    from cronflow.clock import SystemClock

    return SystemClock().now().astimezone(jobfile.settings.timezone).date()


def _run_now(
    jobfile: JobFile, names: list[str], downstream: bool, exclude: list[str], dry_run: bool
) -> bool:
    """`cronflow run --job NAME`: those jobs now, kind manual, with the locks, retries,
    alerts and record of any run."""
    from cronflow.clock import SystemClock
    from cronflow.decide import explain, selection

    selected = selection.select_jobs(jobfile, names, downstream, exclude)
    runs = selection.manual_runs(jobfile, selected, SystemClock().now())
    if dry_run:
        from cronflow.tell import terminal

        terminal.verdict_table(jobfile, [explain.manual_verdict(run) for run in runs])
        return True
    reporter = _Reporter(jobfile, quiet=False)
    engine = _engine(jobfile, reporter)
    with _stopping_on_signals(engine, jobfile) as stopped:
        outcomes = engine.run_now(runs)
    if stopped:
        reporter.resume = _run_command(jobfile, [], names, downstream, exclude)
    return _all_succeeded(reporter, outcomes, stopped)


def _run_due(jobfile: JobFile, dry_run: bool, verbose: bool) -> bool:
    """One clock-driven invocation: quiet unless something fails, as cron users expect."""
    reporter = _Reporter(jobfile, quiet=not verbose)
    engine = _engine(jobfile, reporter)
    if dry_run:
        from cronflow.tell import terminal

        terminal.verdict_table(jobfile, engine.preview().verdicts)
        return True
    with _stopping_on_signals(engine, jobfile) as stopped:
        outcomes = engine.tick()
    return _all_succeeded(reporter, outcomes, stopped)


def _run_dates(
    jobfile: JobFile,
    days: list[date],
    names: list[str],
    downstream: bool,
    exclude: list[str],
    rerun: Rerun,
    dry_run: bool,
    verbose: bool,
) -> bool:
    from cronflow.clock import SystemClock
    from cronflow.decide import explain, selection

    # Decide first: a bad name or a range still to come writes nothing to the state directory.
    selected = selection.select_jobs(jobfile, names, downstream, exclude)
    chosen = selection.backfill(jobfile, selected, days, SystemClock().now())
    reporter = _Reporter(jobfile, quiet=False)
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
        outcomes = engine.backfill(chosen, rerun, reporter.progress)
    reporter.not_yet_due = len(chosen.not_yet_due)
    if stopped:
        reporter.not_begun = sum(map(len, chosen.by_date)) - len(outcomes)
        first = _first_day_unfinished(chosen, outcomes, days)
        dates = f"{first}..{days[-1]}" if first != days[-1] else str(first)
        rerun_option = [] if rerun is Rerun.FAILED else ["--rerun", rerun.value]
        reporter.resume = _run_command(
            jobfile, ["--date", dates, *rerun_option], names, downstream, exclude
        )
    return _all_succeeded(reporter, outcomes, stopped)


def _run_command(
    jobfile: JobFile, options: list[str], names: list[str], downstream: bool, exclude: list[str]
) -> str:
    """The `cronflow run` command line, absolute, that takes a stopped run up again."""
    return shlex.join(
        [*_own_command(), "run", "--jobs", str(jobfile.path.absolute()), *options]
        + [argument for name in names for argument in ("--job", name)]
        + (["--downstream"] if downstream else [])
        + [argument for name in exclude for argument in ("--exclude", name)]
    )


def _first_day_unfinished(chosen: Backfill, outcomes: list[Outcome], days: list[date]) -> date:
    """The first of `days` a stopped backfill did not finish: the dates run in order, each
    giving one outcome per run, so the outcomes cover a prefix of them."""
    covered = 0
    for day, runs in zip(days, chosen.by_date, strict=True):
        covered += len(runs)
        if covered > len(outcomes) or any(
            outcome.status is RunStatus.INTERRUPTED
            for outcome in outcomes[covered - len(runs) : covered]
        ):
            return day
    return days[-1]


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


def _engine(jobfile: JobFile, reporter: _Reporter) -> Engine:
    from cronflow.act.assemble import assemble

    engine = assemble(jobfile, on_event=reporter.event, on_outcome=reporter.outcome)
    exposure = engine.store.exposure_warning()
    if exposure:
        print(f"cronflow: warning: {exposure}", file=sys.stderr)
    return engine


def _all_succeeded(reporter: _Reporter, outcomes: list[Outcome], stopped: list[int]) -> bool:
    """Print the summary; True unless a run failed, timed out or was held back by a failure.
    Stopped by a signal, exit as the shells expect of it (130 for Ctrl-C, 143 for SIGTERM)."""
    reporter.summary(outcomes, stopped=bool(stopped))
    if stopped:
        raise typer.Exit(128 + stopped[0])
    return not any(outcome.status.is_failure for outcome in outcomes)


def _summary_word(outcome: Outcome) -> str:
    if outcome.already_done:
        return "not run"
    if outcome.status is RunStatus.INTERRUPTED and outcome.attempts == 0:
        return "not started"  # recorded interrupted, so that --rerun failed takes it up
    return outcome.status.value


class _Reporter:
    """Prints what the executor reports: every event, or (quiet) only failures, to stderr."""

    def __init__(self, jobfile: JobFile, quiet: bool) -> None:
        self.jobfile = jobfile
        self.quiet = quiet
        self.not_yet_due = 0  # ticks a backfill left to the scheduler
        self.not_begun = 0  # runs of dates a stopped backfill did not begin
        self.resume = ""  # the command that takes a stopped run up again
        self._bar: Any = None  # a rich Progress while a backfill shows one

    def event(self, event: RunEvent) -> None:
        failure = event.status.is_failure
        if self.quiet and not failure:
            return
        self._print(f"  {event_line(self.jobfile, event)}", to_stderr=self.quiet)

    def outcome(self, outcome: Outcome) -> None:
        if self._bar is not None:
            self._bar.advance(self._task)
        if outcome.already_done and not self.quiet:
            self._print(f"  {describe_key(self.jobfile, outcome.key)}: not run, {outcome.reason}")

    def summary(self, outcomes: list[Outcome], stopped: bool = False) -> None:
        if (self.quiet and not stopped) or not (outcomes or self.not_yet_due or stopped):
            return
        counts = Counter(_summary_word(outcome) for outcome in outcomes)
        counts["not started"] += self.not_begun
        if counts:
            self._print(
                f"{len(outcomes) + self.not_begun} runs: "
                + ", ".join(f"{count} {word}" for word, count in sorted(counts.items()) if count)
            )
        if self.not_yet_due:
            self._print(f"{self.not_yet_due} tick(s) not yet due: left to the scheduler")
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


@app.command()
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


systemd_app = typer.Typer(help="Run cronflow as a systemd service or timer.", no_args_is_help=True)
app.add_typer(systemd_app, name="systemd")


class Mode(StrEnum):
    daemon = "daemon"
    timer = "timer"


@systemd_app.command("install")
def systemd_install(
    jobs: JobsOption = None,
    user: Annotated[
        bool,
        typer.Option("--user", help="Units for `systemctl --user` (in ~/.config/systemd/user)."),
    ] = False,
    mode: Annotated[
        Mode,
        typer.Option(
            "--mode",
            help="daemon: `cronflow daemon` as a service; timer: `cronflow run` every "
            "minute from a timer.",
        ),
    ] = Mode.daemon,
    name: Annotated[
        str,
        typer.Option(
            "--name",
            metavar="NAME",
            help="Tell several jobs files on one host apart: units cronflow-NAME.*, "
            "state in cronflow-NAME.",
        ),
    ] = "",
    dry_run: Annotated[
        bool,
        typer.Option("--dry-run", help="Print the units and where they would go; write nothing."),
    ] = False,
) -> None:
    """Write systemd units that run this cronflow on this jobs file, and say how to enable them.

    Example:  sudo cronflow systemd install --jobs /etc/cronflow/jobs.toml
    """
    from cronflow.interop import systemd

    if name and not systemd.NAME.fullmatch(name):
        raise UsageError(
            f'--name "{name}" cannot name a unit. Use up to 64 letters, digits, "_", "-" '
            'and ".", starting with a letter or digit.'
        )
    jobfile = _load(jobs)  # never install a service for a jobs file that does not load
    settings = jobfile.settings
    files = systemd.units(
        mode=mode.value,
        user=user,
        command=_own_command(),
        jobs=jobfile.path.absolute(),
        shutdown_grace=settings.shutdown_grace,
        name=name,
        state_dir=settings.state_dir if settings.state_dir_from == "state_dir" else None,
    )
    directory = systemd.unit_directory(user)
    if dry_run:
        for file_name, text in files.items():
            print(f"# {directory / file_name}\n{text}")
    else:
        try:
            for path in systemd.install(files, directory):
                print(f"wrote {path}")
        except OSError as error:
            raise UsageError(
                f"cannot write to {directory}: {error.strerror}. Run as root "
                "(sudo), or install for your user with --user."
            ) from None
    print("then enable it with:")
    for command in systemd.enable_commands(mode.value, user, name):
        print(f"  {'sudo ' if not user else ''}{command}")
    if settings.state_dir_from != "state_dir":
        state = systemd.state_root(user) / systemd.unit_base(name)
        print(
            f"its state goes to {state}; to read it: "
            f"CRONFLOW_STATE_DIR={state} cronflow status --jobs {jobfile.path.absolute()}"
        )


def _state_words(jobfile: JobFile, store: Store) -> str:
    """Which state directory status reads and why; if it was never used and a systemd unit
    keeps this file's state elsewhere, how to read that one."""
    settings = jobfile.settings
    why = {
        "default": "next to the jobs file",
        "state_dir": f"state_dir in {jobfile.path.name}",
    }.get(settings.state_dir_from, settings.state_dir_from)
    words = f"state: {settings.state_dir} ({why})"
    if store.log_path.exists():
        return words
    from cronflow.interop import systemd

    for other in systemd.installed_state_dirs(jobfile.path.absolute()):
        if other != settings.state_dir:
            words += (
                f". The systemd service of this file keeps its state in {other}: "
                f"CRONFLOW_STATE_DIR={other} cronflow status"
            )
    return words


def _own_command() -> list[str]:
    """The absolute command that runs this very cronflow: the installed script, the single
    file (cronflow.pyz, run by this same Python), or this Python with -m cronflow."""
    script = Path(sys.argv[0])
    if script.name == "cronflow" and script.is_file():
        return [str(script.absolute())]
    if script.suffix == ".pyz" and script.is_file():
        return [sys.executable, str(script.absolute())]
    return [sys.executable, "-m", "cronflow"]


@app.command("next")
def next_ticks(
    jobs: JobsOption = None,
    job: Annotated[
        list[str] | None,
        typer.Option(
            "--job",
            metavar="NAME",
            autocompletion=_complete_job,
            help="Only this job (repeatable).",
        ),
    ] = None,
    count: Annotated[
        int, typer.Option("--count", "-n", metavar="N", help="Ticks per job (at least 1).")
    ] = 5,
    start: Annotated[
        str | None,
        typer.Option(
            "--from",
            metavar="TIME",
            help="Start after this ISO-8601 time instead of now "
            "(without an offset it is read as UTC), e.g. 2026-03-08T00:00-05:00.",
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    wide: WideOption = False,
) -> None:
    """Show the upcoming ticks of scheduled jobs, in their zone and in UTC, DST changes marked.

    Example:  cronflow next --job backup --count 3 --from 2026-03-29T00:00+01:00
    """
    from cronflow.clock import SystemClock
    from cronflow.decide import selection, upcoming

    _at_least_one(count, "--count")
    jobfile = _load(jobs)
    after = parse_time(start) if start else SystemClock().now()
    rows = [
        {
            "job": tick.job,
            "logical_time": tick.local.isoformat(),
            "utc": tick.at.isoformat(),
            "starts": tick.starts.isoformat(),
            "dst": tick.dst_note,
        }
        for tick in upcoming.upcoming_ticks(
            jobfile, selection.select_jobs(jobfile, job or [], False), after, count
        )
    ]
    if as_json:
        print(json.dumps({"v": 1, "ticks": rows}, indent=2))
        return
    from cronflow.tell import terminal

    terminal.ticks_table(rows, wide)


@app.command()
def status(
    jobs: JobsOption = None,
    job: Annotated[
        list[str] | None,
        typer.Option(
            "--job",
            metavar="NAME",
            autocompletion=_complete_job,
            help="Only this job (repeatable).",
        ),
    ] = None,
    show_all: Annotated[bool, typer.Option("--all", help="Include disabled jobs.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON (schema in README).")] = False,
    check: Annotated[
        bool,
        typer.Option("--check", help="Exit 1 if any job's latest run failed (for monitoring)."),
    ] = False,
    wide: WideOption = False,
    html: Annotated[
        str | None,
        typer.Option(
            "--html",
            metavar="FILE",
            help="Write the status page (one self-contained HTML file) there; - for stdout.",
        ),
    ] = None,
) -> None:
    """Show every job at a glance: last run, next due, failing streak, a strip of recent runs.

    Example:  cronflow status --check || echo "something failed"
    """
    from cronflow.act import processes
    from cronflow.clock import SystemClock
    from cronflow.decide import selection
    from cronflow.tell import overview, status_page

    jobfile = _load(jobs)
    if job:
        selection.select_jobs(jobfile, job, downstream=False)  # unknown names are a clear error
    store = _store(jobfile)
    now = SystemClock().now()
    data = status_page.gather(
        jobfile,
        store,
        now,
        who_runs=processes.describe_running,
        include_disabled=show_all,
        jobs=job or (),
    )
    history, summary = data.history, data.summary
    if html is not None:
        _write_page(html, status_page.page_from(jobfile, store, data, now))
    elif as_json:
        print(json.dumps(overview.status_json(jobfile, data.rows, summary, now), indent=2))
    else:
        from cronflow.tell import terminal

        cron_line = shlex.join([*_own_command(), "run", "--jobs", str(jobfile.path.absolute())])
        terminal.status_table(
            data.rows,
            summary,
            now,
            wide=wide,
            cron_line=f"* * * * * {cron_line}",
            state=_state_words(jobfile, store),
        )
    if history.skipped_lines:
        print(
            f"note: {history.skipped_lines} unreadable line(s) in the run log were skipped.",
            file=sys.stderr,
        )
    stale = _stale_assets(jobfile, history, now)
    if stale and html is None and not as_json:
        print(f"stale assets: {', '.join(stale)} (cronflow assets says why)")
    if check and (summary.failing or stale):
        raise typer.Exit(1)


def _stale_assets(jobfile: JobFile, history: RunIndex, now: datetime) -> list[str]:
    """The names of the assets older than they may be (`status --check` fails on them)."""
    if not jobfile.assets:
        return []
    from cronflow.decide import freshness

    return [
        s.name
        for s in freshness.states(jobfile, history, now)
        if s.state is freshness.Freshness.STALE
    ]


def _write_page(where: str, page: str) -> None:
    """The status page to a file (replaced whole, as html_file is), or to stdout for `-`."""
    if where == "-":
        sys.stdout.write(page)
        return
    from cronflow.tell.derived_files import write_atomically
    from cronflow.tell.status_page import PAGE_MODE

    try:
        write_atomically(Path(where).absolute(), page, mode=PAGE_MODE)
    except OSError as error:
        raise UsageError(
            f"cannot write the status page to {where}: {error.strerror}. Name a file in a "
            "directory that exists and that you can write to, or - for stdout."
        ) from None


@app.command()
def history(
    jobs: JobsOption = None,
    job: Annotated[
        list[str] | None,
        typer.Option(
            "--job",
            metavar="NAME",
            autocompletion=_complete_job,
            help="Only this job (repeatable).",
        ),
    ] = None,
    since: Annotated[
        str | None,
        typer.Option(
            "--since",
            metavar="DAY",
            help="Only runs whose logical date is this day or later (YYYY-MM-DD, today, "
            "yesterday, -Nd).",
        ),
    ] = None,
    run_status: Annotated[
        str | None,
        typer.Option(
            "--status",
            metavar="STATUS",
            help="Only runs that ended so: success, failed, timed_out, "
            "upstream_failed, skipped, missed, waiting, abandoned, interrupted, running.",
        ),
    ] = None,
    limit: Annotated[
        int, typer.Option("--limit", metavar="N", help="At most this many runs (at least 1).")
    ] = 50,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    wide: WideOption = False,
) -> None:
    """List runs, the most recently active first: logical time, status, tries, duration, kind.

    Example:  cronflow history --job load --status failed --since 2026-01-01
    """
    from cronflow.decide import selection
    from cronflow.tell import overview

    _at_least_one(limit, "--limit")
    jobfile = _load(jobs)
    if job:
        selection.select_jobs(jobfile, job, downstream=False)
    if run_status is not None and run_status not in {status.value for status in RunStatus}:
        raise UsageError(
            f'--status "{run_status}" is not a status. Use one of: '
            f"{', '.join(status.value for status in RunStatus)}."
        )
    first_day = parse_dates(since, _today(jobfile), "--since")[0] if since else None
    runs = overview.run_history(
        jobfile,
        _store(jobfile).index(),
        jobs=job or (),
        since=first_day,
        status=run_status,
        limit=limit,
    )
    if as_json:
        from dataclasses import asdict

        print(json.dumps({"v": 1, "runs": [asdict(run) for run in runs]}, indent=2))
        return
    from cronflow.tell import terminal

    terminal.history_table(runs, wide=wide)


@app.command()
def reindex(jobs: JobsOption = None) -> None:
    """Rebuild the run index (state_dir/index.sqlite3) from the whole log.

    cronflow keeps the index up to date and rebuilds it by itself when it is missing or
    damaged; this is for when you want to be sure. Example:  cronflow reindex
    """

    jobfile = _load(jobs)
    store = _store(jobfile)
    if not store.log_path.exists():
        raise UsageError(f"there is no run log at {store.log_path} yet: nothing to index.")
    history = store.reindex()
    print(
        f"indexed {history.run_count()} runs from {store.log_path}"
        + (f" ({history.skipped_lines} unreadable lines skipped)" if history.skipped_lines else "")
    )


@app.command()
def assets(
    name: Annotated[
        str | None,
        typer.Argument(metavar="NAME", click_type=_Text(), help="Only this asset."),
    ] = None,
    jobs: JobsOption = None,
    lineage: Annotated[
        bool,
        typer.Option("--lineage", help="With NAME: what it is made from and what is made from it."),
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Show each asset: its producer, how fresh it is, fresh or stale and why, its consumers.

    Example:  cronflow assets warehouse.sales --lineage
    """
    from cronflow.clock import SystemClock
    from cronflow.decide import freshness as freshness

    jobfile = _load(jobs)
    if name is not None and name not in jobfile.assets:
        known = ", ".join(sorted(jobfile.assets)) or "none"
        raise UsageError(f'no asset is named "{name}" in {jobfile.path} (assets: {known})')
    if lineage:
        if name is None:
            raise UsageError("--lineage needs an asset NAME: cronflow assets NAME --lineage")
        upstream, downstream = freshness.lineage(jobfile, name)
        if as_json:
            print(json.dumps({"asset": name, "upstream": upstream, "downstream": downstream}))
        else:
            print("made from:\n" + "\n".join("  " + line for line in upstream))
            print("made into:\n" + "\n".join("  " + line for line in downstream))
        return
    now = SystemClock().now()
    found = [
        state
        for state in freshness.states(jobfile, _store(jobfile).index(), now)
        if name is None or state.name == name
    ]
    if as_json:
        print(json.dumps({"v": 1, "assets": [freshness.as_json(s, now) for s in found]}, indent=2))
        return
    from cronflow.tell import terminal

    terminal.assets_table(found, now)


@app.command()
def metrics(jobs: JobsOption = None) -> None:
    """Print every job's Prometheus metrics, as [cronflow] metrics_file holds them.

    Example:  cronflow metrics | grep failing_streak
    """
    from cronflow.state.layout import LAST_TICK
    from cronflow.tell.metrics import exposition

    jobfile = _load(jobs)
    store = _store(jobfile)
    sys.stdout.write(exposition(jobfile, store.index(), store.read_stamp(LAST_TICK)))


@app.command()
def logs(
    job: Annotated[
        str,
        typer.Argument(
            metavar="JOB",
            click_type=_Text(),
            help="The job whose output to print.",
            autocompletion=_complete_job,
        ),
    ],
    jobs: JobsOption = None,
    day: Annotated[
        str | None,
        typer.Option(
            "--date",
            metavar="DAY",
            help="The run on this logical date (default: the job's newest run).",
        ),
    ] = None,
    run_id: Annotated[
        str | None,
        typer.Option(
            "--run", metavar="RUN_ID", help="The run with this id (see cronflow history)."
        ),
    ] = None,
    attempt: Annotated[
        int | None,
        typer.Option("--attempt", metavar="N", help="This try of the run (default: the last one)."),
    ] = None,
    stderr_only: Annotated[bool, typer.Option("--stderr", help="Only stderr.")] = False,
    stdout_only: Annotated[bool, typer.Option("--stdout", help="Only stdout.")] = False,
    follow: Annotated[
        bool,
        typer.Option(
            "--follow",
            "-f",
            help="Keep printing a running attempt's output until it ends "
            "(stdout, or stderr with --stderr).",
        ),
    ] = False,
) -> None:
    """Print the captured stdout and stderr of a run.

    Example:  cronflow logs load --date 2026-01-14 --attempt 1 --stderr
    """
    from cronflow.decide import selection
    from cronflow.masking import mask_bytes
    from cronflow.tell import overview

    _at_least_one(attempt, "--attempt")
    jobfile = _load(jobs)
    selection.select_jobs(jobfile, [job], downstream=False)  # an unknown job is a clear error
    store = _store(jobfile)
    started = overview.attempt_output(
        jobfile,
        store.index(),
        store.attempt_files,
        job,
        parse_dates(day, _today(jobfile))[0] if day else None,
        attempt,
        run_id,
        whole_log=lambda: store.read().events,
    )
    secrets = _secrets_of(jobfile.jobs[job])
    if follow:
        _follow(store, started, "stderr" if stderr_only else "stdout", secrets)
        return
    streams = ["stderr"] if stderr_only else ["stdout"] if stdout_only else ["stdout", "stderr"]
    for stream in streams:
        if len(streams) > 1:
            print(
                f"==> {stream} of {describe_key(jobfile, started.key)}, attempt "
                f"{started.attempt} <==",
                flush=True,
            )
        try:
            sys.stdout.buffer.write(mask_bytes(Path(started.output[stream]).read_bytes(), secrets))
        except (OSError, KeyError):
            print(f"(the {stream} file is gone: {started.output.get(stream)})", flush=True)
        sys.stdout.buffer.flush()


def _secrets_of(job: Job) -> tuple[str, ...]:
    """What to mask in a job's output; an env_file that cannot be read now masks nothing."""
    from cronflow.load.env_files import Unusable, read_job_env_files
    from cronflow.masking import secrets_of

    try:
        return secrets_of(job.env, read_job_env_files(job).values())
    except Unusable:
        return secrets_of(job.env)


def _follow(store: Store, started: RunEvent, stream: str, secrets: tuple[str, ...]) -> None:
    """Print an output file as it grows, until the attempt that writes it has ended. Whole
    lines only while it runs, so a secret is never split across two reads unmasked."""
    import time

    from cronflow.masking import mask_bytes
    from cronflow.tell import overview

    position = 0
    while True:
        still_running = overview.attempt_running(store.index(), started)
        with open(started.output[stream], "rb") as output:
            output.seek(position)
            chunk = output.read()
        if still_running:
            chunk = chunk[: chunk.rfind(b"\n") + 1]
        position += len(chunk)
        sys.stdout.buffer.write(mask_bytes(chunk, secrets))
        sys.stdout.buffer.flush()
        if not still_running:
            return
        time.sleep(0.25)  # following a live file: poll it, as tail -f does


class GraphFormat(StrEnum):
    text = "text"
    dot = "dot"
    mermaid = "mermaid"


@app.command()
def graph(
    jobs: JobsOption = None,
    output_format: Annotated[
        GraphFormat,
        typer.Option(
            "--format",
            metavar="text|dot|mermaid",
            help="text (a tree per flow), dot (Graphviz) or mermaid.",
        ),
    ] = GraphFormat.text,
    show_assets: Annotated[
        bool,
        typer.Option("--assets", help="Draw assets and the jobs that produce and use them."),
    ] = False,
) -> None:
    """Draw the dependency graph with schedules, as a tree, Graphviz DOT or Mermaid.

    Example:  cronflow graph --format dot | dot -Tsvg > jobs.svg
    """
    from cronflow.tell import graphs

    jobfile = _load(jobs)
    if show_assets:
        draw = {
            "text": graphs.assets_text,
            "dot": graphs.assets_dot,
            "mermaid": graphs.assets_mermaid,
        }
    else:
        draw = {"text": graphs.as_text, "dot": graphs.as_dot, "mermaid": graphs.as_mermaid}
    sys.stdout.write(draw[output_format.value](jobfile))


@app.command("import-crontab")
def import_crontab(
    source: Annotated[
        str,
        typer.Argument(
            metavar="[FILE|-]",
            click_type=_Text(),
            help="A crontab file, or - for standard input (crontab -l |).",
        ),
    ] = "-",
    system: Annotated[
        bool | None,
        typer.Option(
            "--system/--user-format",
            help="Lines name a user before the command (/etc/crontab, "
            "/etc/cron.d/*), or not (crontab -e). Default: told from the content.",
        ),
    ] = None,
    output: Annotated[
        Path | None,
        typer.Option(
            "--output",
            "-o",
            metavar="PATH",
            dir_okay=False,
            help="Write the jobs file here (it must not exist) instead of to standard output.",
        ),
    ] = None,
) -> None:
    """Translate a crontab into a jobs.toml; list on stderr what could not be translated.

    Example:  crontab -l | cronflow import-crontab -o jobs.toml && cronflow validate
    """
    from cronflow.interop import crontab

    if source == "-":
        text, name = sys.stdin.read(), "standard input"
    else:
        try:
            text, name = Path(source).read_text(), source
        except (OSError, UnicodeDecodeError) as error:
            raise UsageError(
                f"cannot read {source}: {getattr(error, 'strerror', error)}. "
                "Give a crontab file, or - to read standard input."
            ) from None
    host = crontab.this_machine()
    if system is None:
        try:
            system = crontab.detect_format(text, host)
        except crontab.FormatUnknown as unknown:
            raise UsageError(
                f"cannot tell what kind of crontab {name} is: {unknown}. Give "
                "--system if each line names a user before the command "
                "(/etc/crontab, /etc/cron.d/*), else --user-format (crontab -e)."
            ) from None
    format_used = (
        "a system crontab: a user name before each command"
        if system
        else "a user crontab: no user name before the commands"
    )
    translation = crontab.translate(text, system=system, host=host)
    if not translation.document["jobs"]:
        raise UsageError(
            f"{name} holds no job cronflow can run. Not translated: "
            + "; ".join(translation.untranslated or ["(nothing)"])
        )
    rendered = crontab.render(translation, name, format_used)
    if output is None:
        sys.stdout.write(rendered)
    else:
        _write_new(output, rendered)
        print(f"wrote {output} ({len(translation.document['jobs'])} jobs)", file=sys.stderr)
    print(f"read {name} as {format_used}", file=sys.stderr)
    for line in translation.untranslated:
        print(f"not translated: {line}", file=sys.stderr)
    for line in translation.notes:
        print(f"check: {line}", file=sys.stderr)


@app.command()
def init(
    path: Annotated[
        str, typer.Argument(metavar="[PATH]", click_type=_Text(), help="Where to write it.")
    ] = "jobs.toml",
) -> None:
    """Write a commented starter jobs.toml (it must not exist yet).

    Example:  cronflow init && cronflow validate && cronflow run --date today
    """
    from cronflow.interop.init_template import STARTER

    _write_new(Path(path), STARTER)
    print(f"wrote {path}; edit it, then run: cronflow validate --jobs {path}")


def _write_new(path: Path, text: str) -> None:
    """Create `path` with `text`; never overwrite a file the user already has."""
    try:
        with open(path, "x") as new_file:
            new_file.write(text)
    except FileExistsError:
        raise UsageError(
            f"{path} already exists; cronflow does not overwrite it. Choose "
            "another path or move it away."
        ) from None
    except OSError as error:
        raise UsageError(f"cannot write {path}: {error.strerror}.") from None


export_app = typer.Typer(help="Move the jobs to another engine.", no_args_is_help=True)
app.add_typer(export_app, name="export")


@export_app.command("airflow")
def export_airflow(
    jobs: JobsOption = None,
    out: Annotated[
        Path,
        typer.Option(
            "--out",
            metavar="DIR",
            file_okay=False,
            help="Directory to write the DAG files into (Airflow's "
            "dags folder, or a place to review them first).",
        ),
    ] = Path("dags"),
    dag_id_prefix: Annotated[
        str,
        typer.Option(
            "--dag-id-prefix",
            metavar="PREFIX",
            help="Put this in front of every DAG id (and file name), e.g. "
            '"sales_", to keep several jobs files apart in one Airflow.',
        ),
    ] = "",
) -> None:
    """Write one Apache Airflow 3 DAG file per flow; warn about what does not translate exactly.

    Example:  cronflow export airflow --jobs jobs.toml --out ~/airflow/dags
    """
    from cronflow.clock import SystemClock
    from cronflow.interop.airflow import export_airflow as export
    from cronflow.interop.airflow import write_dag_files

    jobfile = _load(jobs)
    watermarks = _store(jobfile).read_watermarks()
    files = export(
        jobfile,
        now=SystemClock().now(),
        dag_id_prefix=dag_id_prefix,
        decided={job: mark.decided for job, mark in watermarks.items()},
    )
    try:
        written, stale = write_dag_files(files, out, jobfile.path)
    except OSError as error:
        raise UsageError(
            f"cannot write to {out}: {error.strerror}. Choose another --out."
        ) from None
    for dag_file, path in zip(files, written, strict=False):
        count = len(dag_file.tasks)
        print(f"wrote {path} (DAG {dag_file.dag_id}: {count} task{'s' if count != 1 else ''})")
        for warning in dag_file.warnings:
            print(f"warning: {path.name}: {warning}", file=sys.stderr)
    for path in stale:
        print(
            f"warning: {path} was exported from {jobfile.path} earlier but holds no flow of "
            "it now; delete it if that flow is gone.",
            file=sys.stderr,
        )


alerts_app = typer.Typer(help="Alert delivery through apprise.", no_args_is_help=True)
app.add_typer(alerts_app, name="alerts")


@alerts_app.command("test")
def alerts_test(
    jobs: JobsOption = None,
    job: Annotated[
        str | None,
        typer.Option(
            "--job",
            metavar="NAME",
            help="Send to the targets this job's alerts go to (its alert_tags).",
            autocompletion=_complete_job,
        ),
    ] = None,
) -> None:
    """Send a test alert and say, per target, whether it arrived; exit 1 if one did not.

    Example:  cronflow alerts test --job backup
    """
    from cronflow.tell.alerts import AppriseNotifier, DeliveryStatus, probe_message

    jobfile = _load(jobs)
    if job is not None and job not in jobfile.jobs:
        from cronflow.decide import selection

        selection.select_jobs(jobfile, [job], downstream=False)  # raises, naming the close match
    if not jobfile.alerts.has_targets:
        raise UsageError(
            f"{jobfile.path}: [alerts] has no urls and no config, so there is "
            'nowhere to send. Add urls = ["..."] to [alerts].'
        )
    chosen = jobfile.jobs[job] if job else None
    deliveries = AppriseNotifier(jobfile.alerts).send(
        probe_message(chosen), chosen.alert_tags if chosen else ()
    )
    if not deliveries:
        tags = ", ".join(chosen.alert_tags if chosen else ())
        raise UsageError(
            f"no alert target matches the tags of job {job}: {tags}. Tag a target in "
            f"{jobfile.alerts.config} with one of them."
        )
    for delivery in deliveries:
        print(f"{delivery.target}: {delivery}")
    if any(delivery.status is not DeliveryStatus.SENT for delivery in deliveries):
        raise typer.Exit(1)


# Logical dates cronflow takes: wide enough for any history, and far enough from the ends of
# Python's calendar that every zone's midnight of them is an instant.
EARLIEST_DATE, LATEST_DATE = date(1900, 1, 1), date(9998, 12, 31)


def parse_dates(text: str, today: date, option: str = "--date") -> list[date]:
    """A day or an inclusive range of days (`2026-01-01..2026-01-31`, `-7d..today`), as a
    list of dates. A day is YYYY-MM-DD, `today`, `yesterday` or `-Nd` (N days before today)."""
    first, _, last = text.partition("..")
    try:
        start = _day(first, today)
        end = _day(last, today) if last else start
    except (ValueError, OverflowError):
        raise UsageError(
            f'{option} "{text}" is not a day. Write YYYY-MM-DD, today, yesterday or -Nd '
            "(N days ago), or a range of two: 2026-01-01..2026-01-31, -7d..today."
        ) from None
    if end < start:
        raise UsageError(f'{option} "{text}" ends before it starts. Put the earlier date first.')
    if start < EARLIEST_DATE or end > LATEST_DATE:
        raise UsageError(
            f'{option} "{text}" is out of range: cronflow takes dates from '
            f"{EARLIEST_DATE} to {LATEST_DATE}."
        )
    return [start + timedelta(days=offset) for offset in range((end - start).days + 1)]


def _at_least_one(value: int | None, option: str) -> None:
    if value is not None and value < 1:
        raise UsageError(f"{option} {value}: give a number of at least 1.")


def _day(text: str, today: date) -> date:
    word = text.strip().lower()
    if word in ("today", "yesterday"):
        return today - timedelta(days=word == "yesterday")
    if word.startswith("-") and word.endswith("d") and word[1:-1].isdigit():
        return today - timedelta(days=int(word[1:-1]))
    return date.fromisoformat(word)


def parse_time(text: str) -> datetime:
    """An aware instant from ISO-8601 text; no offset means UTC (never the host's zone)."""
    from datetime import UTC, datetime

    try:
        parsed = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise UsageError(
            f'--from "{text}" is not a time. Write ISO-8601, such as '
            "2026-03-08T00:00-05:00 or 2026-03-08T05:00Z."
        ) from None
    if not EARLIEST_DATE <= parsed.date() <= LATEST_DATE:
        raise UsageError(
            f'--from "{text}" is out of range: cronflow takes times from '
            f"{EARLIEST_DATE} to {LATEST_DATE}."
        )
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def main() -> None:
    """Run the app (also as python -m cronflow or cronflow.pyz), errors as messages."""
    from cronflow.errors import reporting_errors

    reporting_errors(lambda: app(prog_name="cronflow"))
