"""status, history, logs and graph on real logs written by real runs."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from datetime import UTC, datetime, timedelta

import pytest

from cronflow.load import jobs_toml
from cronflow.model import EventType, RunEvent, RunKind, RunStatus
from cronflow.state.codec import event_to_json
from cronflow.state.index import RunIndex
from cronflow.state.layout import LAST_TICK
from cronflow.state.store import Store
from cronflow.tell import graphs, overview
from tests.conftest import run_cli
from tests.system_tools import installed

SCENARIO = """
[cronflow]
shutdown_grace = "0s"
[jobs.extract]
command = 'echo "out $CRONFLOW_ATTEMPT"; echo "err $CRONFLOW_ATTEMPT" >&2; [ "$CRONFLOW_ATTEMPT" -ge 2 ]'
schedule = "0 6 * * *"
retries = 1
retry_delay = 0
[jobs.transform]
command = "test ! -e {flag}"
depends_on = ["extract"]
[jobs.load]
command = "true"
depends_on = ["transform"]
[jobs.slow]
command = "sleep 5"
timeout = "0.2s"
kill_grace = "0.1s"
[jobs.hourly]
command = "true"
schedule = "*/15 * * * *"
[jobs.paused]
command = "true"
enabled = false
"""


def scenario(tmp_path):
    flag = tmp_path / "transform-fails"
    (tmp_path / "jobs.toml").write_text(SCENARIO.format(flag=flag))
    run_cli(
        "run",
        "--date",
        "2026-01-13",
        "--job",
        "extract",
        "--job",
        "transform",
        "--job",
        "load",
        cwd=tmp_path,
    )
    flag.touch()
    run_cli("run", "--date", "2026-01-14", cwd=tmp_path)
    return jobs_toml.load(tmp_path / "jobs.toml")


def test_status_rows_strip_and_json_for_a_busy_scenario(tmp_path):
    scenario(tmp_path)
    result = run_cli("status", "--json", cwd=tmp_path)
    document = json.loads(result.stdout)
    rows = {row["job"]: row for row in document["jobs"]}
    assert list(rows) == ["extract", "transform", "load", "slow", "hourly"]  # flows; no paused
    assert [row["flow"] for row in rows.values()] == [1, 1, 1, 2, 3]
    assert rows["extract"]["status"] == "success" and rows["extract"]["attempt"] == 2
    assert [c["status"] for c in rows["extract"]["recent"]] == ["success", "success"]
    assert rows["transform"]["failing_streak"] == 1
    assert [c["status"] for c in rows["transform"]["recent"]] == ["success", "failed"]
    assert rows["load"]["status"] == "upstream_failed"
    assert rows["slow"]["status"] == "timed_out" and "timed out" in rows["slow"]["reason"]
    assert rows["hourly"]["schedule_words"] == "every 15 minutes"
    assert len(rows["hourly"]["recent"]) == 12  # 96 runs that day: the strip keeps 12
    assert rows["extract"]["next_due"].endswith("06:00:00+00:00")
    assert rows["load"]["next_due"] is None
    assert document["summary"] == {"failing": 3, "running": 0, "healthy": 2, "never_run": 0}
    plain = run_cli("status", cwd=tmp_path).stdout
    [transform] = [line.split() for line in plain.splitlines() if line.split()[:1] == ["transform"]]
    assert transform[-5:] == ["1", ".F", "exit", "status", "1"]  # streak, strip, why
    assert "\x1b[" not in plain
    everything = json.loads(run_cli("status", "--json", "--all", cwd=tmp_path).stdout)
    assert [row["job"] for row in everything["jobs"]][-1] == "paused"


def test_status_check_exits_1_only_when_a_latest_run_failed(tmp_path):
    scenario(tmp_path)
    assert run_cli("status", "--check", cwd=tmp_path).returncode == 1
    assert (
        run_cli("status", "--check", "--job", "hourly", "--job", "extract", cwd=tmp_path).returncode
        == 0
    )


def record_hourly(store: Store, base: datetime, events: list[tuple[EventType, RunStatus]]) -> None:
    """Job a's runs at base, base + 1h, ...: one event of each (type, status) given."""
    for hour, (event, status) in enumerate(events):
        store.append(
            RunEvent(
                event=event,
                job="a",
                logical_time=base + timedelta(hours=hour),
                run_id=str(hour),
                status=status,
                kind=RunKind.SCHEDULED,
            )
        )


def test_a_missed_tick_a_waiting_and_a_running_run_show_in_the_strip(tmp_path):
    (tmp_path / "jobs.toml").write_text('[jobs.a]\ncommand = "true"\nschedule = "@hourly"\n')
    store = Store(tmp_path / ".cronflow")
    store.prepare()
    base = datetime(2026, 1, 14, tzinfo=UTC)
    record_hourly(
        store,
        base,
        [
            (EventType.FINISHED, RunStatus.SUCCESS),
            (EventType.MISSED, RunStatus.MISSED),
            (EventType.STARTED, RunStatus.RUNNING),
        ],
    )
    document = json.loads(run_cli("status", "--json", cwd=tmp_path).stdout)
    [row] = document["jobs"]
    assert [c["status"] for c in row["recent"]] == ["success", "missed", "running"]
    assert document["summary"]["running"] == 1 and row["failing_streak"] == 0
    plain = run_cli("status", cwd=tmp_path).stdout
    assert ".MR" in plain


@pytest.mark.parametrize("before, failing", [(RunStatus.SUCCESS, False), (RunStatus.FAILED, True)])
def test_an_interrupted_run_neither_starts_nor_ends_a_failing_streak(tmp_path, before, failing):
    """A run cronflow's own stop interrupted is retried at the next start: `status` and
    `status --check` agree that it changes nothing (they once disagreed)."""
    (tmp_path / "jobs.toml").write_text('[jobs.a]\ncommand = "true"\nschedule = "@hourly"\n')
    store = Store(tmp_path / ".cronflow")
    store.prepare()
    base = datetime(2026, 1, 14, tzinfo=UTC)
    record_hourly(
        store, base, [(EventType.FINISHED, before), (EventType.INTERRUPTED, RunStatus.INTERRUPTED)]
    )
    document = json.loads(run_cli("status", "--json", cwd=tmp_path).stdout)
    assert document["summary"]["failing"] == int(failing)
    assert document["jobs"][0]["failing_streak"] == int(failing)
    assert run_cli("status", "--check", cwd=tmp_path).returncode == int(failing)


def test_a_state_that_never_ran_by_the_clock_suggests_a_crontab_line_that_works_under_cron(
    tmp_path,
):
    """cron has no PATH to speak of and no --jobs: the line names both absolutely."""
    import sys

    (tmp_path / "jobs.toml").write_text('[jobs.a]\ncommand = "true"\nschedule = "@hourly"\n')
    shown = " ".join(run_cli("status", cwd=tmp_path).stdout.split())
    assert f"* * * * * {sys.executable} -m cronflow run --jobs {tmp_path / 'jobs.toml'}" in shown


def test_the_failing_streak_is_exact_however_long_and_a_missed_tick_does_not_end_it(tmp_path):
    """5,138 failures in a row (a missed tick and a skipped one among them) after a
    success: status counts every one, and only a success ends the streak."""
    (tmp_path / "jobs.toml").write_text('[jobs.a]\ncommand = "true"\nschedule = "* * * * *"\n')
    state = tmp_path / ".cronflow"
    state.mkdir(mode=0o700)
    base = datetime(2026, 1, 14, tzinfo=UTC)
    statuses = [RunStatus.SUCCESS] + [RunStatus.FAILED] * 5_138
    statuses[3_000:3_000] = [RunStatus.MISSED, RunStatus.SKIPPED]
    with open(state / "runs.jsonl", "w") as log:  # as Store.append writes it, without fsyncs
        for minute, status in enumerate(statuses):
            event = RunEvent(
                event=EventType.FINISHED,
                job="a",
                logical_time=base + timedelta(minutes=minute),
                run_id=str(minute),
                status=status,
                kind=RunKind.SCHEDULED,
            )
            log.write(json.dumps(event_to_json(event), separators=(",", ":")) + "\n")
    document = json.loads(run_cli("status", "--json", cwd=tmp_path).stdout)
    assert document["jobs"][0]["failing_streak"] == 5_138
    assert document["summary"]["failing"] == 1
    with open(state / "runs.jsonl", "a") as log:  # then it succeeds once
        event = RunEvent(
            event=EventType.FINISHED,
            job="a",
            logical_time=base + timedelta(minutes=len(statuses)),
            run_id="ok",
            status=RunStatus.SUCCESS,
            kind=RunKind.SCHEDULED,
        )
        log.write(json.dumps(event_to_json(event), separators=(",", ":")) + "\n")
    document = json.loads(run_cli("status", "--json", cwd=tmp_path).stdout)
    assert document["jobs"][0]["failing_streak"] == 0


def test_the_stale_warning_follows_the_injected_clock(tmp_path):
    (tmp_path / "jobs.toml").write_text('[jobs.a]\ncommand = "true"\nschedule = "@hourly"\n')
    jobfile = jobs_toml.load(tmp_path / "jobs.toml")
    store = Store(tmp_path / ".cronflow")
    store.prepare()
    ticked = datetime(2026, 1, 14, 6, 0, tzinfo=UTC)
    store.write_stamp(LAST_TICK, ticked)
    rows = overview.summarise(jobfile, RunIndex([]), {}, ticked)
    fresh = overview.overview(
        jobfile, rows, store.read_stamp(LAST_TICK), ticked + timedelta(minutes=4)
    )
    stale = overview.overview(
        jobfile, rows, store.read_stamp(LAST_TICK), ticked + timedelta(minutes=6)
    )
    assert (fresh.stale, stale.stale) == (False, True)
    assert stale.last_ran_at == ticked
    shown = run_cli("status", cwd=tmp_path).stdout
    assert "warning: no tick for a while" in shown  # the real clock is long past 2026-01-14
    never = overview.overview(jobfile, rows, None, ticked)
    assert not never.stale and never.last_ran_at is None  # not stale: it never ran yet


def test_history_lists_runs_newest_first_and_filters(tmp_path):
    scenario(tmp_path)
    document = json.loads(run_cli("history", "--json", "--job", "extract", cwd=tmp_path).stdout)
    runs = document["runs"]
    assert [(r["logical_time"][:10], r["status"], r["attempts"]) for r in runs] == [
        ("2026-01-14", "success", 2),
        ("2026-01-13", "success", 2),
    ]
    assert runs[0]["exit_code"] == 0 and runs[0]["kind"] == "backfill"
    failed = json.loads(run_cli("history", "--json", "--status", "failed", cwd=tmp_path).stdout)[
        "runs"
    ]
    assert [r["job"] for r in failed] == ["transform"]
    recent = json.loads(
        run_cli("history", "--json", "--since", "2026-01-14", "--limit", "3", cwd=tmp_path).stdout
    )["runs"]
    assert len(recent) == 3 and all(r["logical_time"] >= "2026-01-14" for r in recent)
    bad = run_cli("history", "--status", "broken", cwd=tmp_path)
    assert bad.returncode == 2 and "is not a status" in bad.stderr


def test_logs_of_each_attempt_and_by_run_id(tmp_path):
    scenario(tmp_path)
    first = run_cli("logs", "extract", "--date", "2026-01-14", "--attempt", "1", cwd=tmp_path)
    assert first.stdout.splitlines() == [
        "==> stdout of extract @ 2026-01-14T06:00:00+00:00, attempt 1 <==",
        "out 1",
        "==> stderr of extract @ 2026-01-14T06:00:00+00:00, attempt 1 <==",
        "err 1",
    ]
    last = run_cli("logs", "extract", "--stderr", cwd=tmp_path)
    assert last.stdout == "err 2\n"
    runs = json.loads(run_cli("history", "--json", "--job", "extract", cwd=tmp_path).stdout)
    older = runs["runs"][1]["run_id"]
    by_id = run_cli("logs", "extract", "--run", older, "--stdout", cwd=tmp_path)
    assert by_id.stdout == "out 2\n"
    missing = run_cli("logs", "extract", "--attempt", "3", cwd=tmp_path)
    assert missing.returncode == 2 and "has attempts 1, 2, not 3" in missing.stderr


def test_logs_follow_prints_a_running_attempt_until_it_ends(tmp_path):
    import subprocess
    import sys

    (tmp_path / "jobs.toml").write_text(
        "[jobs.ticker]\ncommand = 'for i in 1 2 3; do echo line $i; "
        "while [ ! -e go-$i ]; do sleep 0.05; done; done'\n"
    )
    runner = subprocess.Popen(
        [sys.executable, "-m", "cronflow", "run", "--date", "2026-01-14"],
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
    )
    output = tmp_path / ".cronflow" / "output" / "ticker"
    while runner.poll() is None and not list(output.glob("*.stdout")):
        pass  # until the job has started
    follower = subprocess.Popen(
        [sys.executable, "-m", "cronflow", "logs", "ticker", "--follow"],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        text=True,
    )
    seen = []
    for step in (1, 2, 3):
        seen.append(follower.stdout.readline())
        (tmp_path / f"go-{step}").touch()
    rest, _ = follower.communicate(timeout=30)
    runner.wait(timeout=30)
    assert seen + ([rest] if rest else []) == ["line 1\n", "line 2\n", "line 3\n"]
    assert follower.returncode == 0


def test_graph_in_every_format(tmp_path):
    (tmp_path / "jobs.toml").write_text(SCENARIO.format(flag="x"))
    jobfile = jobs_toml.load(tmp_path / "jobs.toml")
    text = run_cli("graph", cwd=tmp_path).stdout
    assert text.splitlines()[:3] == [
        "extract  [daily at 06:00 (UTC)]",
        "└── transform  [after extract]",
        "    └── load  [after transform]",
    ]
    dot = run_cli("graph", "--format", "dot", cwd=tmp_path).stdout
    edges = set(re.findall(r'"([^"]+)" -> "([^"]+)";', dot))
    nodes = set(re.findall(r'^  "([^"]+)" \[label=', dot, re.M))
    assert edges == {("extract", "transform"), ("transform", "load")}
    assert nodes == set(jobfile.jobs)
    assert dot.startswith("digraph cronflow {") and dot.rstrip().endswith("}")
    mermaid = run_cli("graph", "--format", "mermaid", cwd=tmp_path).stdout
    ids = dict(re.findall(r'^  (j\d+)\["([^<]+)<br/>', mermaid, re.M))
    arrows = {(ids[a], ids[b]) for a, b in re.findall(r"^  (j\d+) --> (j\d+)$", mermaid, re.M)}
    assert mermaid.startswith("flowchart LR") and arrows == edges


def test_a_diamond_draws_the_shared_job_once():
    from pathlib import Path

    jobfile = jobs_toml.parse(
        '[jobs.a]\ncommand="x"\n[jobs.b]\ncommand="x"\ndepends_on=["a"]\n'
        '[jobs.c]\ncommand="x"\ndepends_on=["a"]\n'
        '[jobs.d]\ncommand="x"\ndepends_on=["b","c"]\n',
        Path("/tmp/j.toml"),
    )
    assert graphs.as_text(jobfile).splitlines() == [
        "a  [manual]",
        "├── b  [after a]",
        "│   └── d  [after b, c]",
        "└── c  [after a]",
        "    └── d (see above)",
    ]


def test_tables_wrap_the_last_column_to_the_width_and_end_no_line_in_blanks():
    import io

    from rich.console import Console

    from cronflow.tell.terminal import Column, _print_grid

    out = io.StringIO()
    console = Console(file=out, width=60, force_terminal=False)
    reason = "upstream extract @ 2026-01-14 06:00 is failed and this explains it at length"
    _print_grid(
        console,
        [Column("job"), Column("status"), Column("why")],
        [["load", ("failed", "red"), reason], None, ["x", "ok", ""]],
        width=60,
    )
    lines = out.getvalue().split("\n")
    assert lines[1].split() == ["job", "status", "why"]
    assert set(lines[2].strip()) == {"─"}
    why_at = lines[1].index("why")
    wrapped = [
        line
        for line in lines[3:]
        if line.strip() and not line.startswith(" load") and not line.startswith(" x")
    ]
    assert wrapped and all(line[:why_at].strip() == "" for line in wrapped)  # under "why"
    assert " ".join(line.strip() for line in [lines[3][why_at:], *wrapped]) == reason
    assert all(len(line) <= 60 for line in lines)
    assert all(line == line.rstrip() for line in lines)
    x_row = next(index for index, line in enumerate(lines) if line.startswith(" x"))
    assert lines[x_row - 1] == ""  # the blank line between groups
    assert "\x1b[" not in out.getvalue()  # no colour without a terminal


def test_what_status_validate_graph_and_run_say_of_small_things(tmp_path):
    """Seen by a new user: @reboot shown as "manual only", a backfill that ran a minute
    ago shown "20h ago", a next due in the past without a mark, never-run jobs counted as
    healthy, "1 runs"."""
    missing = installed("faketime", "faketime")
    if missing:
        pytest.skip(missing)
    (tmp_path / "jobs.toml").write_text(
        '[jobs.boot]\ncommand = "true"\nschedule = "@reboot"\n'
        '[jobs.hourly]\ncommand = "true"\nschedule = "0 * * * *"\n'
        '[jobs.never]\ncommand = "true"\n'
    )
    validated = run_cli("validate", cwd=tmp_path).stdout
    assert "boot: @reboot (once per boot)" in validated and "boot: manual" not in validated
    assert "[@reboot: once per boot]" in run_cli("graph", cwd=tmp_path).stdout
    ran = run_cli("run", "--date", "2026-01-14", "--job", "hourly", cwd=tmp_path)
    assert ran.returncode == 0 and "24 runs: 24 success" in ran.stdout, ran.stdout
    one = run_cli("run", "--job", "boot", cwd=tmp_path)
    assert "1 run: 1 success" in one.stdout and "1 runs" not in one.stdout
    subprocess.run(  # a tick two hours ago: the next tick it leaves is past by now
        ["faketime", "-f", "-2h", sys.executable, "-m", "cronflow", "run"],
        cwd=tmp_path,
        env={**os.environ, "TZ": "UTC", "CRONFLOW_JOBS": str(tmp_path / "jobs.toml")},
        capture_output=True,
        check=True,
        timeout=120,
    )
    shown = run_cli("status", cwd=tmp_path, env={"COLUMNS": "150"}).stdout
    assert "2 healthy, 1 never run." in shown.splitlines()[0], shown
    [hourly] = [line for line in shown.splitlines() if line.lstrip().startswith("hourly ")]
    assert "overdue" in hourly, hourly
    summary = json.loads(run_cli("status", "--json", cwd=tmp_path).stdout)["summary"]
    assert (summary["healthy"], summary["never_run"]) == (2, 1)


def test_a_backfill_shows_when_it_ran_with_the_date_it_was_for(tmp_path):
    (tmp_path / "jobs.toml").write_text('[jobs.daily]\ncommand = "true"\nschedule = "0 6 * * *"\n')
    assert run_cli("run", "--date", "2026-01-14", cwd=tmp_path).returncode == 0
    shown = run_cli("status", cwd=tmp_path, env={"COLUMNS": "150"}).stdout
    [daily] = [line for line in shown.splitlines() if line.lstrip().startswith("daily ")]
    assert re.search(r"\b\d+s ago \(01-14\)", daily), daily  # not "325d ago"
