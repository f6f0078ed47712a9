"""Trigger rules (run_if) with real processes: backfills, scheduled ticks, --rerun, status,
the dry-run plan and the graph. What each job did is counted by the effects it wrote."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from cronflow.model import EventType
from cronflow.state.store import Store
from cronflow.tell import graphs
from tests.conftest import load, real_engine, refused, run_cli
from tests.fakes import FakeClock

RULES = ("all_done", "one_failed", "all_failed", "none_failed")


def flow(folder: Path, extract: str, load_: str) -> Path:
    """extract and load (each succeeding or failing as told), and one job per rule after
    both, plus `report` (all_success) after `on_none_failed`."""
    lines = [
        f'[jobs.extract]\ncommand = "echo extract >> effects; {extract}"',
        f'[jobs.load]\ncommand = "echo load >> effects; {load_}"',
    ]
    for rule in RULES:
        lines.append(
            f'[jobs.on_{rule}]\ncommand = "echo on_{rule} >> effects"\n'
            f'depends_on = ["extract", "load"]\nrun_if = "{rule}"'
        )
    lines.append(
        '[jobs.report]\ncommand = "echo report >> effects"\ndepends_on = ["on_none_failed"]'
    )
    (folder / "jobs.toml").write_text("\n\n".join(lines) + "\n")
    return folder / "jobs.toml"


def backfill(folder: Path, *extra: str):
    return run_cli("run", "--date", "2026-01-14", *extra, cwd=folder)


def latest(folder: Path) -> dict[str, tuple[str, str]]:
    """Each job's latest (status, reason)."""
    found = {}
    for event in Store(folder / ".cronflow").read().events:
        if event.event not in (EventType.ALERT, EventType.PING):
            found[event.job] = (event.status.value, event.reason)
    return found


def effects(folder: Path) -> list[str]:
    path = folder / "effects"
    return sorted(path.read_text().split()) if path.exists() else []


def test_one_upstream_failed(tmp_path):
    flow(tmp_path, "true", "exit 3")
    assert backfill(tmp_path).returncode == 1
    assert effects(tmp_path) == ["extract", "load", "on_all_done", "on_one_failed"]
    states = latest(tmp_path)
    assert states["on_all_failed"] == ("skipped", "run_if = all_failed: not every upstream failed")
    assert states["on_none_failed"][0] == "skipped"
    assert "run_if = none_failed: upstream load @ 2026-01-14" in states["on_none_failed"][1]
    # after a skipped job, an all_success job is skipped too (not upstream_failed)
    assert states["report"][0] == "skipped"


def test_all_upstreams_succeeded(tmp_path):
    flow(tmp_path, "true", "true")
    assert backfill(tmp_path).returncode == 0
    assert effects(tmp_path) == [
        "extract",
        "load",
        "on_all_done",
        "on_none_failed",
        "report",
    ]
    states = latest(tmp_path)
    assert states["on_one_failed"] == ("skipped", "run_if = one_failed: no upstream failed")
    assert states["on_all_failed"][0] == "skipped"


def test_all_upstreams_failed(tmp_path):
    flow(tmp_path, "exit 1", "exit 2")
    backfill(tmp_path)
    assert effects(tmp_path) == [
        "extract",
        "load",
        "on_all_done",
        "on_all_failed",
        "on_one_failed",
    ]


def test_rerun_failed_decides_the_rules_again_on_the_new_outcomes(tmp_path):
    flow(tmp_path, "true", "test -e fixed || exit 3")
    backfill(tmp_path)
    (tmp_path / "fixed").touch()
    (tmp_path / "effects").unlink()
    assert backfill(tmp_path, "--rerun", "failed").returncode == 0
    # load succeeds now; the skipped rule jobs are decided again, the ones that ran are not
    assert effects(tmp_path) == ["load", "on_none_failed", "report"]
    states = latest(tmp_path)
    assert states["on_one_failed"][0] == "success"  # ran the first time: not rerun
    assert states["on_all_failed"] == ("skipped", "run_if = all_failed: not every upstream failed")


def test_status_shows_a_rule_not_met_as_skipped_with_its_reason(tmp_path):
    flow(tmp_path, "true", "true")
    backfill(tmp_path)
    shown = run_cli("status", "--json", cwd=tmp_path)
    rows = {row["job"]: row for row in json.loads(shown.stdout)["jobs"]}
    assert rows["on_one_failed"]["status"] == "skipped"
    assert rows["on_one_failed"]["reason"] == "run_if = one_failed: no upstream failed"
    assert rows["on_one_failed"]["failing_streak"] == 0


def test_the_dry_run_explains_each_rule(tmp_path):
    flow(tmp_path, "true", "exit 3")
    backfill(tmp_path, "--job", "extract", "--job", "load")  # only the upstreams ran
    planned = run_cli(
        "run", "--date", "2026-01-14", "--dry-run", "--verbose", "--rerun", "none", cwd=tmp_path
    )
    assert planned.returncode == 0, planned.stderr
    said = " ".join(planned.stdout.split())
    assert "on_all_done 2026-01-14 00:00:00 UTC run never run, run_if = all_done is met" in said
    assert "on_all_failed 2026-01-14 00:00:00 UTC skip run_if = all_failed: not every" in said
    together = run_cli("run", "--date", "2026-01-15", "--dry-run", "--verbose", cwd=tmp_path)
    said = " ".join(together.stdout.split())
    assert "never run, if its upstreams meet run_if = one_failed" in said
    assert effects(tmp_path) == ["extract", "load"]  # a dry run runs nothing


def test_the_dry_run_summary_counts_a_rule_not_met_as_skipped_not_done(tmp_path):
    """The upstreams ran (extract succeeded, load failed); of the rule jobs, all_done and
    one_failed would run, all_failed and none_failed are skipped by their rule (and report
    after none_failed waits on it), and nothing is already done but the two upstreams."""
    flow(tmp_path, "true", "exit 3")
    backfill(tmp_path, "--job", "extract", "--job", "load")
    planned = run_cli("run", "--date", "2026-01-14", "--dry-run", "--rerun", "none", cwd=tmp_path)
    assert planned.returncode == 0, planned.stderr
    header, _, *lines = [line.split() for line in planned.stdout.splitlines()[1:9]]
    assert header[-7:] == ["to", "run", "done", "skipped", "not", "yet", "due"]
    rows = {line[0]: line[-4:] for line in lines}  # to run, done, skipped, not yet due
    assert rows["extract"] == ["0", "1", "0", "0"] and rows["load"] == ["0", "1", "0", "0"]
    assert rows["on_all_done"] == ["1", "0", "0", "0"]
    assert rows["on_one_failed"] == ["1", "0", "0", "0"]
    assert rows["on_all_failed"] == ["0", "0", "1", "0"]
    assert rows["on_none_failed"] == ["0", "0", "1", "0"]


def test_a_scheduled_rule_job_waits_for_an_upstream_on_another_schedule_then_runs(tmp_path):
    """cleanup (hourly at :30, all_done) after nightly (daily 06:00, fails): at 05:30 it
    waits (nightly's 06:00 has not run... its latest tick is yesterday's, never run), and
    once nightly failed it runs."""
    (tmp_path / "jobs.toml").write_text(
        '[jobs.nightly]\ncommand = "echo nightly >> effects; exit 4"\nschedule = "0 6 * * *"\n'
        '[jobs.cleanup]\ncommand = "echo cleanup >> effects"\nschedule = "30 * * * *"\n'
        'depends_on = ["nightly"]\nrun_if = "all_done"\n'
    )
    jobfile = load(tmp_path / "jobs.toml")
    clock = FakeClock(datetime(2026, 1, 14, 6, 0, 10, tzinfo=UTC))
    for _ in range(3):  # 06:00 nightly fails; 06:30 cleanup runs after it
        real_engine(jobfile, clock).tick()
        clock.advance(timedelta(minutes=30))
    assert effects(tmp_path) == ["cleanup", "nightly"]


def test_the_graph_draws_rule_edges_dashed_with_the_rule(tmp_path):
    jobfile = load(flow(tmp_path, "true", "true"))
    assert '"extract" -> "on_all_done" [style=dashed, label="all_done"];' in graphs.as_dot(jobfile)
    assert "-.->|one_failed|" in graphs.as_mermaid(jobfile)
    assert "on_all_failed  [after extract, load, run_if all_failed]" in graphs.as_text(jobfile)
    assert '"extract" -> "report"' not in graphs.as_dot(jobfile)


@pytest.mark.parametrize(
    "table, problem",
    [
        ('command = "true"\nrun_if = "always"', '"always" is not allowed'),
        ('command = "true"\nrun_if = "all_done"', "has no depends_on"),
    ],
)
def test_bad_rules_are_clear_errors(tmp_path, table, problem):
    said = refused(tmp_path, f"[jobs.up]\ncommand = 'true'\n[jobs.a]\n{table}\n")
    assert problem in said, said
