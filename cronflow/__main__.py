"""The `cronflow` program. Two command lines that run all the time skip the command line
framework (typer, about 7 MiB and most of a start-up): a one-shot `cronflow run` that finds
nothing due (what cron starts every minute, nearly always) is answered from the idle stamp,
and `cronflow daemon` starts lean. Everything else, and any other spelling of these two
(--help, a misspelled option), goes to the CLI."""

import os
import sys

from cronflow import DEFAULT_JOBS_FILE, JOBS_ENV_VAR


def main() -> None:
    run_options = _plain_options(sys.argv[1:], "run", flags=())
    if run_options is not None:
        from cronflow.act import idle_tick

        jobs, _ = run_options
        if idle_tick.answer(jobs or os.environ.get(JOBS_ENV_VAR) or DEFAULT_JOBS_FILE):
            return
    daemon_options = _plain_options(sys.argv[1:], "daemon", flags=("--verbose", "-v"))
    if daemon_options is not None:
        from pathlib import Path

        from cronflow.act import daemon
        from cronflow.load import jobs_toml

        jobs, flags = daemon_options
        explicit = Path(jobs) if jobs is not None else None
        from cronflow.errors import reporting_errors

        reporting_errors(
            lambda: daemon.serve(
                jobs_toml.find_jobs_file(explicit, os.environ, Path.cwd()), bool(flags)
            )
        )
        return
    from cronflow.cli.main import main as cli_main

    cli_main()


def _plain_options(
    arguments: list[str], command: str, flags: tuple[str, ...]
) -> tuple[str | None, set[str]] | None:
    """(--jobs, the flags given) of `cronflow COMMAND [--jobs PATH] [FLAG ...]`, in any order;
    None for any other command line (--help, a backfill, a misspelled option: the CLI's)."""
    if arguments[:1] != [command]:
        return None
    jobs, given, rest = None, set(), arguments[1:]
    while rest:
        match rest:
            case [flag, *rest] if flag in flags:
                given.add(flag)
            case ["--jobs", path, *rest] if jobs is None and path and not path.startswith("-"):
                jobs = path
            case [option, *rest] if jobs is None and option.startswith("--jobs=") and option[7:]:
                jobs = option[7:]
            case _:
                return None
    return jobs, given


if __name__ == "__main__":
    main()
