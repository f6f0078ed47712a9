"""The commands that look at what happened and what comes: status, history, next, logs,
assets, metrics, graph, reindex. Read-only but for reindex."""

from __future__ import annotations

import json
import os
import shlex
import sys
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from cronflow.cli.options import (
    MOST_ATTEMPTS,
    MOST_RUNS,
    MOST_TICKS,
    JobOption,
    JobsOption,
    Text,
    WideOption,
    complete_job,
    in_range,
    load_jobs,
    own_command,
    parse_dates,
    parse_time,
    store_of,
    today_in,
)
from cronflow.errors import UsageError
from cronflow.model import JobFile, RunStatus, describe_key

if TYPE_CHECKING:  # for annotations only: the commands import what they use when run
    from cronflow.state.store import Store


def next_ticks(
    jobs: JobsOption = None,
    job: JobOption = None,
    count: Annotated[
        int, typer.Option("--count", "-n", metavar="N", help="Ticks per job (1 to 1,000).")
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

    in_range(count, "--count", MOST_TICKS)
    jobfile = load_jobs(jobs)
    after = parse_time(start) if start else SystemClock().now()
    pauses = store_of(jobfile).read_pauses()
    rows = [
        {
            "job": tick.job,
            "logical_time": tick.local.isoformat(),
            "utc": tick.at.isoformat(),
            "starts": tick.starts.isoformat(),
            "dst": tick.dst_note,
            "paused": tick.job in pauses and pauses[tick.job].holds_at(tick.starts),
            "note": tick.note,
            "skipped_ticks": tick.skipped,
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


def status(
    jobs: JobsOption = None,
    job: JobOption = None,
    show_all: Annotated[bool, typer.Option("--all", help="Include disabled jobs.")] = False,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print JSON (schema in docs/commands.md).")
    ] = False,
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
    from cronflow.decide import freshness, selection
    from cronflow.tell import overview, status_page

    jobfile = load_jobs(jobs)
    if job:
        selection.select_jobs(jobfile, job, downstream=False)  # unknown names are a clear error
    if html is not None and html != "-":
        _check_page_path(html)  # before anything is read or written
    store = store_of(jobfile)
    now = SystemClock().now()
    data = status_page.gather(
        jobfile,
        store,
        now,
        who_runs=processes.describe_running,
        include_disabled=show_all,
        jobs=job or (),
    )
    index, summary = data.index, data.summary
    if html is not None:
        _write_page(html, status_page.page_from(jobfile, store, data, now))
    elif as_json:
        print(json.dumps(overview.status_json(jobfile, data.rows, summary, now), indent=2))
    else:
        from cronflow.tell import terminal

        never_ran = _never_ran_hint(jobfile)
        terminal.status_table(
            data.rows,
            summary,
            now,
            wide=wide,
            never_ran=never_ran,
            state=_state_words(jobfile, store),
        )
    if index.skipped_lines:
        print(
            f"note: {index.skipped_lines} unreadable line(s) in the run log were skipped.",
            file=sys.stderr,
        )
    stale = freshness.stale_names(jobfile, index, now)
    if html is None and not as_json:
        if stale:
            print(f"stale assets: {', '.join(stale)} (cronflow assets says why)")
        for row in data.rows:
            for word, detail in (("late", row.late), ("slow", row.slow)):
                if detail:
                    print(f"{row.job} is {word}: {detail} (cronflow why {row.job})")
            if row.calendar:
                print(f"{row.job}: {row.calendar}")
            if row.pool_wait:
                print(f"{row.job}: {row.pool_wait}")
    late = summary.late_assets or any(row.late for row in data.rows)
    if check and (summary.failing or stale or late):
        raise typer.Exit(1)


def _never_ran_hint(jobfile: JobFile) -> str:
    """What to do when nothing has ticked here yet: start the systemd service whose state
    this is, else a crontab line (or the daemon) to install."""
    service = jobfile.settings.state_dir_from.removeprefix("the systemd service ")
    if service != jobfile.settings.state_dir_from:
        user = "--user " if "/systemd/user/" in service else ""
        return (
            f"its systemd service ({service}) is installed but has not decided anything "
            f"yet: is it started? (systemctl {user}enable --now {Path(service).name})"
        )
    cron_line = shlex.join([*own_command(), "run", "--jobs", str(jobfile.path.absolute())])
    return (
        f"put `* * * * * {cron_line}` in a crontab (crontab -e), or install the daemon "
        "(cronflow systemd install)"
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


def _check_page_path(where: str) -> None:
    path = Path(where).absolute()
    try:
        problem = (
            "it is not a regular file (a directory, device, FIFO or socket)"
            if path.exists() and not path.is_file()
            else f"{path.parent} is not a directory"
            if not path.parent.is_dir()
            else f"{path.parent} is not writable by this user"
            if not os.access(path.parent, os.W_OK)
            else ""
        )
    except OSError as error:  # a name too long, say
        problem = error.strerror or "it cannot be a file's name"
    if problem:
        raise UsageError(
            f"--html {where}: {problem}. Name a file in a directory that exists and that you "
            "can write to, or - for stdout."
        )


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
            f"--html {where}: cannot write the status page there ({error.strerror}). Name a file in a "
            "directory that exists and that you can write to, or - for stdout."
        ) from None


def history(
    jobs: JobsOption = None,
    job: JobOption = None,
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
        int, typer.Option("--limit", metavar="N", help="At most this many runs (1 to 10,000).")
    ] = 50,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    wide: WideOption = False,
) -> None:
    """List runs, the most recently active first: logical time, status, tries, duration, kind.

    Example:  cronflow history --job load --status failed --since 2026-01-01
    """
    from cronflow.decide import selection
    from cronflow.tell import overview

    in_range(limit, "--limit", MOST_RUNS)
    jobfile = load_jobs(jobs)
    if job:
        selection.select_jobs(jobfile, job, downstream=False)
    if run_status is not None and run_status not in {status.value for status in RunStatus}:
        raise UsageError(
            f'--status "{run_status}" is not a status. Use one of: '
            f"{', '.join(status.value for status in RunStatus)}."
        )
    first_day = parse_dates(since, today_in(jobfile), "--since")[0] if since else None
    runs = overview.run_history(
        jobfile,
        store_of(jobfile).index(),
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


def reindex(jobs: JobsOption = None) -> None:
    """Rebuild the run index (state_dir/index.sqlite3) from the whole log.

    cronflow keeps the index up to date and rebuilds it by itself when it is missing or
    damaged; this is for when you want to be sure. Example:  cronflow reindex
    """

    jobfile = load_jobs(jobs)
    store = store_of(jobfile)
    if not store.log_path.exists():
        raise UsageError(f"there is no run log at {store.log_path} yet: nothing to index.")
    index = store.reindex()
    print(
        f"indexed {index.run_count()} run{'' if index.run_count() == 1 else 's'} from {store.log_path}"
        + (f" ({index.skipped_lines} unreadable lines skipped)" if index.skipped_lines else "")
    )


def assets(
    name: Annotated[
        str | None,
        typer.Argument(metavar="NAME", click_type=Text(), help="Only this asset."),
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
    from cronflow.decide import freshness

    jobfile = load_jobs(jobs)
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
        for state in freshness.states(jobfile, store_of(jobfile).index(), now)
        if name is None or state.name == name
    ]
    if as_json:
        print(json.dumps({"v": 1, "assets": [freshness.as_json(s, now) for s in found]}, indent=2))
        return
    from cronflow.tell import terminal

    terminal.assets_table(found, now, jobfile.settings.timezone)


def metrics(
    jobs: JobsOption = None,
    rules: Annotated[
        bool,
        typer.Option(
            "--rules",
            help="Print Prometheus alerting rules for these metrics instead (a rule file).",
        ),
    ] = False,
) -> None:
    """Print every job's Prometheus metrics, as [cronflow] metrics_file holds them.

    Example:  cronflow metrics | grep failing_streak
    Example:  cronflow metrics --rules > /etc/prometheus/cronflow-rules.yml
    """
    from cronflow.tell.metrics import alerting_rules, exposition_of

    if rules:
        sys.stdout.write(alerting_rules())
        return
    jobfile = load_jobs(jobs)
    sys.stdout.write(exposition_of(jobfile, store_of(jobfile)))


def logs(
    job: Annotated[
        str,
        typer.Argument(
            metavar="JOB",
            click_type=Text(),
            help="The job whose output to print.",
            autocompletion=complete_job,
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
        typer.Option(
            "--attempt", metavar="N", help="This try of the run, 1 to 101 (default: the last)."
        ),
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
    from cronflow.load.env_files import secrets_of_job
    from cronflow.masking import mask_bytes
    from cronflow.tell import overview, run_output

    in_range(attempt, "--attempt", MOST_ATTEMPTS)
    jobfile = load_jobs(jobs)
    selection.select_jobs(jobfile, [job], downstream=False)  # an unknown job is a clear error
    store = store_of(jobfile)
    started = overview.attempt_output(
        jobfile,
        store.index(),
        store.attempt_files,
        job,
        parse_dates(day, today_in(jobfile))[0] if day else None,
        attempt,
        run_id,
        whole_log=lambda: store.read().events,
    )
    secrets = secrets_of_job(jobfile.jobs[job])
    if follow:
        run_output.follow(store, started, "stderr" if stderr_only else "stdout", secrets)
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


class GraphFormat(StrEnum):
    text = "text"
    dot = "dot"
    mermaid = "mermaid"


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

    jobfile = load_jobs(jobs)
    if show_assets:
        draw = {
            "text": graphs.assets_text,
            "dot": graphs.assets_dot,
            "mermaid": graphs.assets_mermaid,
        }
    else:
        draw = {"text": graphs.as_text, "dot": graphs.as_dot, "mermaid": graphs.as_mermaid}
    sys.stdout.write(draw[output_format.value](jobfile))
