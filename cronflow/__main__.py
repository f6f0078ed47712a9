"""The `cronflow` program. Two command lines that run all the time skip the command line
framework (typer, about 7 MiB and most of a start-up): a one-shot `cronflow run` that finds
nothing due (what cron starts every minute, nearly always) is answered from the idle stamp,
and `cronflow daemon` starts lean. Everything else, and any other spelling of these two
(--help, a misspelled option), goes to the CLI."""

import os
import sys
from collections.abc import Callable
from pathlib import Path

from cronflow import DEFAULT_JOBS_FILE, JOBS_ENV_VAR


def main() -> None:
    arguments = sys.argv[1:]
    jobs = _idle_tick_jobs_file(arguments)
    if jobs is not None:
        from cronflow.state import idle

        if idle.answer(jobs):
            return
    daemon_options = _daemon_options(arguments)
    if daemon_options is not None:
        from cronflow import config, daemon

        jobs_path, verbose = daemon_options
        explicit = Path(jobs_path) if jobs_path is not None else None
        reporting_errors(
            lambda: daemon.serve(config.find_jobs_file(explicit, os.environ, Path.cwd()), verbose)
        )
        return
    from cronflow.cli import main as cli_main

    cli_main()


def reporting_errors(action: Callable[[], object]) -> None:
    """Run `action`, turning cronflow's errors into a message and an exit status."""
    from cronflow.errors import CronflowError

    try:
        action()
    except CronflowError as error:
        print(f"cronflow: {error}", file=sys.stderr)
        sys.exit(error.exit_code)
    except KeyboardInterrupt:
        sys.exit(130)


def _idle_tick_jobs_file(arguments: list[str]) -> str | None:
    """The jobs file of a plain `cronflow run [--jobs PATH]`, as the CLI finds it; None for
    any other command line (a backfill, --dry-run, --verbose, --help: the CLI handles it)."""
    match arguments:
        case ["run"]:
            return os.environ.get(JOBS_ENV_VAR) or DEFAULT_JOBS_FILE
        case ["run", "--jobs", path] if path and not path.startswith("-"):
            return path
        case ["run", option] if option.startswith("--jobs=") and len(option) > 7:
            return option.removeprefix("--jobs=")
    return None


def _daemon_options(arguments: list[str]) -> tuple[str | None, bool] | None:
    """(--jobs, --verbose) of `cronflow daemon [--jobs PATH] [--verbose|-v]`, in any order;
    None for any other command line."""
    if arguments[:1] != ["daemon"]:
        return None
    jobs, verbose, rest = None, False, arguments[1:]
    while rest:
        match rest:
            case ["--verbose" | "-v", *rest]:
                verbose = True
            case ["--jobs", path, *rest] if jobs is None and path and not path.startswith("-"):
                jobs = path
            case [option, *rest] if jobs is None and option.startswith("--jobs=") and option[7:]:
                jobs = option[7:]
            case _:
                return None
    return jobs, verbose


if __name__ == "__main__":
    main()
