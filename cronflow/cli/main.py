"""The `cronflow` command: its commands, grouped by audience in the modules beside this one
(running, looking, setting_up; shared options in options). Parse, call the core, print: the
decisions live in decide/, the acts in act/. `cronflow --help` lists them; docs/commands.md
is their reference."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from cronflow import __version__
from cronflow.cli import (
    explaining,
    exporting,
    looking,
    running,
    setting_up,
    steering,
    viewing,
)

DOCS = "https://github.com/cronflow/cronflow/blob/main/docs"
# Each command's help ends with where its reference is (the page's address on its own line,
# so that it wraps nowhere at 80 columns).
REFERENCE = f"Reference, with every option and output:\n\n{DOCS}/commands.md"

app = typer.Typer(
    help=f"cron for jobs that depend on each other. The jobs file's reference: {DOCS}/jobs-toml.md",
    epilog=REFERENCE,
    pretty_exceptions_show_locals=False,  # locals may hold secrets (env values, alert URLs)
    no_args_is_help=True,
)


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


systemd_app = typer.Typer(help="Run cronflow as a systemd service or timer.", no_args_is_help=True)
export_app = typer.Typer(help="Move the jobs to another scheduler.", no_args_is_help=True)
alerts_app = typer.Typer(help="Alert delivery through apprise.", no_args_is_help=True)
monitors_app = typer.Typer(
    help="The checks of each job's monitor (Healthchecks, Cronitor).", no_args_is_help=True
)


def main() -> None:
    """Run the app (also as python -m cronflow or cronflow.pyz), errors as messages."""
    from cronflow.errors import reporting_errors

    try:
        reporting_errors(lambda: app(prog_name="cronflow"))
    except SystemExit as ended:
        if ended.code in (None, 0, 1):  # a usage error (2) writes nothing
            _keep_validations()
        raise
    _keep_validations()


def _keep_validations() -> None:
    """Cache the jobs file's validation, if this command made one (act/configuration.py)."""
    configuration = sys.modules.get("cronflow.act.configuration")
    if configuration is not None:
        configuration.keep_deferred()


# The commands, in the order --help lists them.
app.command(epilog=REFERENCE)(setting_up.validate)
app.command(epilog=REFERENCE)(setting_up.doctor)
app.command(epilog=REFERENCE)(running.run)
app.command(epilog=REFERENCE)(steering.pause)
app.command(epilog=REFERENCE)(steering.resume)
app.command(epilog=REFERENCE)(explaining.why)
app.command(epilog=REFERENCE)(running.daemon)
app.add_typer(systemd_app, name="systemd")
systemd_app.command("install", epilog=REFERENCE)(setting_up.systemd_install)
app.command("next", epilog=REFERENCE)(looking.next_ticks)
app.command(epilog=REFERENCE)(looking.status)
app.command(epilog=REFERENCE)(looking.history)
app.command(epilog=REFERENCE)(looking.reindex)
app.command(epilog=REFERENCE)(looking.assets)
app.command(epilog=REFERENCE)(looking.metrics)
app.command(epilog=REFERENCE)(looking.logs)
app.command(epilog=REFERENCE)(looking.graph)
app.command(epilog=REFERENCE)(viewing.top)
app.command(epilog=REFERENCE)(viewing.serve)
app.command("import-crontab", epilog=REFERENCE)(setting_up.import_crontab)
app.command(epilog=REFERENCE)(setting_up.init)
app.add_typer(export_app, name="export")
export_app.command("airflow", epilog=REFERENCE)(exporting.export_airflow)
export_app.command("dagster", epilog=REFERENCE)(exporting.export_dagster)
app.add_typer(alerts_app, name="alerts")
alerts_app.command("test", epilog=REFERENCE)(setting_up.alerts_test)
app.add_typer(monitors_app, name="monitors")
monitors_app.command("sync", epilog=REFERENCE)(setting_up.monitors_sync)
