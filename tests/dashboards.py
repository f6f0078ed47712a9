"""What the dashboards' tests (test_top.py, test_serve.py) look at: a small pipeline whose
second job fails with a secret in its stderr, backfilled for one day by the real command."""

from __future__ import annotations

from pathlib import Path

from tests.conftest import run_cli

PIPELINE = """
[cronflow]
timezone = "UTC"

[jobs.extract]
command = 'echo "extract $CRONFLOW_LOGICAL_TIME" >> effects; echo rows=42'
schedule = "0 6 * * *"
produces = ["raw"]

[jobs.load]
command = 'echo "load $CRONFLOW_LOGICAL_TIME" >> effects; echo "token $API_TOKEN refused" >&2; exit 3'
depends_on = ["extract"]
env = { API_TOKEN = "s3cr3t-value" }
"""


def filled(folder: Path, more_jobs: str) -> Path:
    """`folder` with the pipeline and `more_jobs` in its jobs.toml, 2026-01-14 backfilled."""
    (folder / "jobs.toml").write_text(PIPELINE + more_jobs)
    done = run_cli(
        "run",
        "--date",
        "2026-01-14",
        "--job",
        "extract",
        "--downstream",
        "--jobs",
        "jobs.toml",
        cwd=folder,
    )
    assert "Traceback" not in done.stderr
    return folder
