"""The commands that hand the jobs to another orchestrator: export airflow, export dagster.
Each writes generated code (the core in interop/ makes it) and says on stderr what does not
carry over exactly."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from cronflow.cli.options import JobsOption, load_jobs, store_of
from cronflow.errors import UsageError, printable


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

    jobfile = load_jobs(jobs)
    watermarks = store_of(jobfile).read_watermarks()
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
    for dag_file, (path, changed) in zip(files, written, strict=False):
        count = len(dag_file.tasks)
        done = "wrote" if changed else "unchanged:"
        print(f"{done} {path} (DAG {dag_file.dag_id}: {count} task{'s' if count != 1 else ''})")
        for warning in dag_file.warnings:
            print(f"warning: {path.name}: {printable(warning)}", file=sys.stderr)
    for path in stale:
        print(
            f"warning: {path} was exported from {jobfile.path} earlier but holds no flow of "
            "it now; delete it if that flow is gone.",
            file=sys.stderr,
        )


def export_dagster(
    jobs: JobsOption = None,
    out: Annotated[
        Path,
        typer.Option(
            "--out",
            metavar="DIR",
            file_okay=False,
            help="Directory to write definitions.py (and history.json) into.",
        ),
    ] = Path("dagster"),
    history: Annotated[
        bool,
        typer.Option(
            "--history",
            help="Also write history.json: the partitions cronflow already produced, for "
            "`python definitions.py report-history` to mark materialised in Dagster.",
        ),
    ] = False,
    prefix: Annotated[
        str,
        typer.Option(
            "--prefix",
            metavar="PREFIX",
            help='Put this in front of every flow\'s Dagster job name, e.g. "sales_".',
        ),
    ] = "",
) -> None:
    """Write a Dagster code location (definitions.py): an asset per asset, a job and
    schedule per flow, partitions per logical date; warn about what does not translate.

    Example:  cronflow export dagster --jobs jobs.toml --out ~/dagster/sales --history
    """
    from cronflow.clock import SystemClock
    from cronflow.interop import dagster
    from cronflow.interop.python_source import write_generated

    jobfile = load_jobs(jobs)
    index = store_of(jobfile).index()
    exported = dagster.export_dagster(
        jobfile, now=SystemClock().now(), oldest_run=index.oldest_run, prefix=prefix
    )
    files = {dagster.DEFINITIONS_FILE: exported.text}
    made = dagster.history(jobfile, prefix, index.success_times) if history else {}
    if history:
        files[dagster.HISTORY_FILE] = dagster.history_text(jobfile, made)
    try:
        written = write_generated(files, out)
    except OSError as error:
        raise UsageError(
            f"cannot write to {out}: {error.strerror}. Choose another --out."
        ) from None
    for path, changed in written:
        print(f"{'wrote' if changed else 'unchanged:'} {path}")
    for flow in exported.flows:
        print(f"  flow {flow.name}: {', '.join(flow.jobs)} (partitions: {flow.partitions.lower()})")
    for name, asset in sorted(made.items()):
        count = len(asset["partitions"])
        print(f"  history: {name}: newest success {asset['last']}, {count} partition(s)")
    for warning in exported.warnings:
        print(f"warning: {printable(warning)}", file=sys.stderr)
