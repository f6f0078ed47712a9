"""The live views (views/): `cronflow top` in the terminal, `cronflow serve` in the browser."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from cronflow.cli.options import JobsOption, load_jobs, own_command, store_of
from cronflow.errors import UsageError


def top(
    jobs: JobsOption = None,
    read_only: Annotated[
        bool,
        typer.Option("--read-only", help="Show only: no run now, rerun, pause or resume."),
    ] = False,
) -> None:
    """The terminal dashboard: jobs, a job's runs, a run's output (followed while it runs),
    the dependency graph and the assets, kept current; run now, rerun, pause and resume
    with a confirmation. Works over SSH at 80x24.

    Example:  cronflow top --jobs /etc/cronflow/jobs.toml
    """
    from cronflow.clock import SystemClock
    from cronflow.views.reading import Reader
    from cronflow.views.top_app import TopApp

    jobfile = load_jobs(jobs)
    if not (sys.stdin.isatty() and sys.stdout.isatty()):
        raise UsageError(
            "cronflow top draws in a terminal, and this is none (its input or output is a "
            "pipe or a file). Run it in a terminal (over SSH too); a script reads "
            "`cronflow status --json`."
        )
    reader = Reader(jobfile, store_of(jobfile), SystemClock().now)
    TopApp(reader, own_command(), jobfile.path.absolute(), read_only=read_only).run()


def serve(
    jobs: JobsOption = None,
    listen: Annotated[
        str,
        typer.Option(
            "--listen",
            metavar="HOST:PORT",
            help="Where to listen (port 0: any free one). Beyond loopback, put a reverse proxy "
            "with TLS and authentication in front.",
        ),
    ] = "127.0.0.1:8080",
    allow_actions: Annotated[
        bool,
        typer.Option(
            "--allow-actions", help="Allow run now, rerun, pause and resume, with the token."
        ),
    ] = False,
    show_token: Annotated[
        bool,
        typer.Option("--show-token", help="Print the actions' token (made if missing) and exit."),
    ] = False,
) -> None:
    """The browser dashboard and its JSON API: the status page, live; a page per job (its
    runs, a chart of their durations) and per run (its output, masked); the timeline of the
    last 24 hours; the assets. Read-only unless --allow-actions.

    Example:  cronflow serve --jobs /etc/cronflow/jobs.toml   (then open http://127.0.0.1:8080/)
    """
    from cronflow.clock import SystemClock
    from cronflow.state.files import private_dir
    from cronflow.views import web
    from cronflow.views.reading import Reader

    jobfile = load_jobs(jobs)
    store = store_of(jobfile)
    if show_token or allow_actions:
        private_dir(jobfile.settings.state_dir)
    if show_token:
        print(web.token_of(jobfile.settings.state_dir, create=True))
        return
    host, port = _host_and_port(listen)
    if host not in ("127.0.0.1", "::1", "localhost"):
        print(
            f"cronflow: warning: listening on {host}: whoever reaches it sees every job's runs "
            "and output. Put a reverse proxy with TLS and authentication in front (see "
            "docs/operations.md, Serving the dashboard).",
            file=sys.stderr,
        )
    try:
        sock = web.listening(host, port)
    except OSError as error:
        raise UsageError(
            f"cannot listen on {listen}: {error.strerror}. Choose another --listen."
        ) from None
    token = web.token_of(jobfile.settings.state_dir, create=True) if allow_actions else None
    reader = Reader(jobfile, store, SystemClock().now)
    site = web.Site(reader, own_command(), jobfile.path.absolute(), token)
    bound = sock.getsockname()[1]
    shown = f"[{host}]" if ":" in host else host
    mode = "actions allowed with the token (--show-token)" if token else "read-only"
    print(f"cronflow serve: http://{shown}:{bound}/ ({mode})", flush=True)
    web.serve(site, sock)


def _host_and_port(listen: str) -> tuple[str, int]:
    host, colon, port = listen.rpartition(":")
    host = host.strip("[]")
    if not colon or not host or not port.isdigit() or int(port) > 65535:
        raise UsageError(
            f'--listen "{listen}" is not HOST:PORT. Write 127.0.0.1:8080 or [::1]:8080.'
        )
    return host, int(port)
