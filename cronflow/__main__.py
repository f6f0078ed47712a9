"""The `cronflow` program. A one-shot `cronflow run` that finds nothing due (what cron starts
every minute, nearly always) is answered from the idle stamp before the command line
framework loads; everything else goes to the CLI."""

import os
import sys

from cronflow import DEFAULT_JOBS_FILE, JOBS_ENV_VAR


def main() -> None:
    jobs = _idle_tick_jobs_file(sys.argv[1:])
    if jobs is not None:
        from cronflow.state import idle

        if idle.answer(jobs):
            return
    from cronflow.cli import main as cli_main

    cli_main()


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


if __name__ == "__main__":
    main()
