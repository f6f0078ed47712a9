"""`cronflow pause` and `resume`: a paused job's ticks are recorded skipped with who paused it,
why and until when; the jobs after it follow their run_if; backfills and manual runs leave it
out unless --include-paused; a pause with --until ends by itself. Pausing and resuming are
real commands; the ticks run through a real engine on a clock that starts at the real now,
and the runs are counted by the effects of real processes."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from cronflow.model import EventType, PauseAction, PauseChange, RunStatus
from cronflow.state.store import Store
from tests.conftest import load, real_engine, run_cli
from tests.fakes import FakeClock

JOBS = """
[jobs.extract]
command = 'echo "extract $CRONFLOW_LOGICAL_TIME" >> effects'
schedule = "*/5 * * * *"

[jobs.load]
command = 'echo "load $CRONFLOW_LOGICAL_TIME" >> effects'
depends_on = ["extract"]

[jobs.report]
command = 'echo "report $CRONFLOW_LOGICAL_TIME" >> effects'
schedule = "*/5 * * * *"
"""


def effects(folder: Path) -> list[str]:
    path = folder / "effects"
    return sorted(path.read_text().split("\n")[:-1]) if path.exists() else []


def cli(folder: Path, *args: str) -> str:
    done = run_cli(*args, cwd=folder)
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    return done.stdout + done.stderr


def clock_now() -> FakeClock:
    """A clock at the real now (pauses are stamped with it), on a minute 1 of 5."""
    now = datetime.now(UTC).replace(second=30, microsecond=0)
    return FakeClock(now - timedelta(minutes=now.minute % 5 - 1))


def pause_lines(folder: Path) -> list[PauseChange]:
    contents = Store(folder / ".cronflow").read()
    return [line for line in contents.host_events if isinstance(line, PauseChange)]


def test_a_paused_jobs_ticks_are_skipped_with_the_pause_and_its_downstream_follows(
    write_jobs, tmp_path
):
    path = write_jobs(JOBS)
    said = cli(tmp_path, "pause", "extract", "--reason", "warehouse migration")
    assert "extract: paused by" in said and "until resumed: warehouse migration" in said
    clock = clock_now()
    engine = real_engine(load(path), clock)
    engine.tick()  # the first tick: the one just gone by
    for _ in range(2):
        clock.advance(timedelta(minutes=5))
        engine.tick()
    ran = effects(tmp_path)
    assert ran and all(line.startswith("report ") for line in ran)  # only the other job
    events = Store(tmp_path / ".cronflow").read().events
    skipped = [e for e in events if e.job == "extract" and e.event is EventType.SKIPPED]
    assert len(skipped) == len(ran) >= 2  # each tick of the other job: one of this one
    assert all("paused by" in e.reason and "warehouse migration" in e.reason for e in skipped)
    held = [e for e in events if e.job == "load"]
    assert [e.status for e in held] == [RunStatus.SKIPPED] * len(ran)  # run_if all_success
    status = json.loads(cli(tmp_path, "status", "--json").split("\ncronflow:")[0])
    paused = {row["job"]: row["paused"] for row in status["jobs"]}
    assert paused["extract"]["reason"] == "warehouse migration" and paused["report"] is None

    assert "extract: resumed" in cli(tmp_path, "resume", "extract")
    clock.advance(timedelta(minutes=5))
    engine.tick()
    tick = clock.now().replace(second=0) - timedelta(minutes=1)
    assert f"extract {tick.isoformat()}" in effects(tmp_path)
    assert f"load {tick.isoformat()}" in effects(tmp_path)
    assert [line.action for line in pause_lines(tmp_path)] == [
        PauseAction.PAUSED,
        PauseAction.RESUMED,
    ]


def test_a_pause_until_a_time_ends_by_itself_and_says_so(write_jobs, tmp_path):
    path = write_jobs(JOBS)
    cli(tmp_path, "pause", "extract", "--until", "12m")
    clock = clock_now()
    engine = real_engine(load(path), clock)
    engine.tick()
    assert not [line for line in effects(tmp_path) if line.startswith("extract")]
    clock.advance(timedelta(minutes=20))  # past the pause's end (the clock may start 3m early)
    engine.tick()
    assert [line for line in effects(tmp_path) if line.startswith("extract")]
    actions = [line.action for line in pause_lines(tmp_path)]
    assert actions == [PauseAction.PAUSED, PauseAction.EXPIRED]
    assert json.loads((tmp_path / ".cronflow" / "paused.json").read_text())["jobs"] == {}


def test_backfills_and_manual_runs_leave_a_paused_job_out_unless_included(write_jobs, tmp_path):
    write_jobs(JOBS.replace('"*/5 * * * *"', '"0 */6 * * *"'))  # 4 ticks a day
    cli(tmp_path, "pause", "--all", "--reason", "freeze")
    said = cli(tmp_path, "run", "--date", "2026-01-14", "--job", "extract", "--downstream")
    assert "extract is paused by" in said and "--include-paused" in said
    assert effects(tmp_path) == []
    said = cli(tmp_path, "run", "--job", "report")
    assert "report is paused by" in said and effects(tmp_path) == []
    cli(tmp_path, "run", "--date", "2026-01-14", "--job", "extract", "--include-paused")
    assert len(effects(tmp_path)) == 4  # every 6 hours of the day
    assert "report: resumed" in cli(tmp_path, "resume", "--all")


def test_bad_pause_commands_are_refused_and_write_nothing(write_jobs, tmp_path):
    write_jobs(JOBS)
    for args, words in [
        (["pause"], "Name the jobs to pause"),
        (["pause", "extract", "--all"], "not both"),
        (["pause", "extrct"], 'did you mean "extract"'),
        (["pause", "extract", "--until", "soonish"], "is neither a duration"),
        (["pause", "extract", "--until", "2020-01-01T00:00"], "has passed already"),
        (["resume"], "Name the jobs to resume"),
    ]:
        refused = run_cli(*args, cwd=tmp_path)
        assert refused.returncode == 2, (args, refused.stderr)
        assert words in refused.stderr and "Traceback" not in refused.stderr, refused.stderr
    assert not (tmp_path / ".cronflow").exists()
    assert "extract: was not paused" in cli(tmp_path, "resume", "extract")


def test_until_takes_a_wall_time_in_the_files_zone(write_jobs, tmp_path):
    write_jobs('[cronflow]\ntimezone = "Europe/Berlin"\n' + JOBS)
    assert "report: paused by" in cli(tmp_path, "pause", "report", "--until", "23:59")
    pauses = json.loads((tmp_path / ".cronflow" / "paused.json").read_text())["jobs"]
    ends = datetime.fromisoformat(pauses["report"]["until"])
    local = ends.astimezone(ZoneInfo("Europe/Berlin"))
    assert (local.hour, local.minute) == (23, 59)
    assert timedelta(0) < ends - datetime.now(UTC) <= timedelta(days=1)


def test_the_page_and_the_metrics_show_a_pause(write_jobs, tmp_path):
    write_jobs(JOBS)
    cli(tmp_path, "pause", "extract", "--reason", "disk <full>")
    cli(tmp_path, "status", "--html", str(tmp_path / "page.html"))
    page = (tmp_path / "page.html").read_text()
    assert 'data-job="extract" data-state="paused"' in page
    assert "until resumed: disk &lt;full&gt;" in page  # escaped
    metrics = cli(tmp_path, "metrics")
    paused = {
        line.split('cronflow_job="')[1].split('"')[0]: line.rsplit(" ", 1)[1]
        for line in metrics.splitlines()
        if line.startswith("cronflow_job_paused{")
    }
    assert paused == {"extract": "1", "load": "0", "report": "0"}


def test_next_marks_the_ticks_a_pause_holds(write_jobs, tmp_path):
    write_jobs(JOBS)
    cli(tmp_path, "pause", "extract", "--until", "12m")
    ticks = json.loads(cli(tmp_path, "next", "--json", "-n", "6"))["ticks"]
    marked = [tick["paused"] for tick in ticks if tick["job"] == "extract"]
    assert marked[:2] == [True, True] and marked[-2:] == [False, False]  # 5-minute ticks
    assert not any(tick["paused"] for tick in ticks if tick["job"] == "report")
    assert "extract (paused)" in cli(tmp_path, "next", "-n", "1")


FLAKY = """
[alerts]
urls = ["{url}"]

[jobs.flaky]
command = 'echo "flaky $CRONFLOW_LOGICAL_TIME" >> effects; exit 1'
schedule = "*/5 * * * *"
alert_after_failures = 2
pause_after_failures = 3
"""


def test_alert_after_and_pause_after_failures_in_a_row(write_jobs, tmp_path, receiver):
    """The failure alert waits for the second failure in a row; the third pauses the job,
    with one alert saying how to resume; its later ticks are skipped, nothing runs."""
    path = write_jobs(FLAKY.format(url=receiver.url()))
    clock = clock_now()
    engine = real_engine(load(path), clock)
    engine.tick()
    for _ in range(5):
        clock.advance(timedelta(minutes=5))
        engine.tick()
    titles = [message.body["title"] for message in receiver.messages()]
    assert len(titles) == 2, titles
    assert "flaky failed" in titles[0] and "paused after 3 failed runs in a row" in titles[1]
    assert len(effects(tmp_path)) == 3  # then paused: nothing more ran
    events = Store(tmp_path / ".cronflow").read().events
    ran = sorted(e.logical_time for e in events if e.event is EventType.FINISHED)
    alerted = [e.logical_time for e in events if e.event is EventType.ALERT]
    assert alerted == ran[1:]  # the second failure's, then the third's (the pause)
    skipped = [e for e in events if e.event is EventType.SKIPPED]
    assert len(skipped) >= 2 and all("paused by cronflow" in e.reason for e in skipped)
    said = cli(tmp_path, "status", "--json")
    paused = {row["job"]: row["paused"] for row in json.loads(said.split("\ncronflow:")[0])["jobs"]}
    assert paused["flaky"]["by"] == "cronflow"
    assert "resume with: cronflow resume flaky" in paused["flaky"]["reason"]
