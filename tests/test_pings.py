"""Heartbeat pings to a real monitor on 127.0.0.1 speaking the Healthchecks and Cronitor
protocols (tests/receivers.py): what each try and each outcome says, pairing, body limits,
unknown checks, hanging servers, and cronflow's own heartbeat."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from cronflow.act import idle_tick
from cronflow.decide import selection
from cronflow.load import monitors
from cronflow.model import EventType, RunKind, RunStatus
from cronflow.state.store import Store
from cronflow.tell import ping_reports, ping_requests
from tests.conftest import load, real_engine, refused, run_cli
from tests.fakes import FakeClock
from tests.fast_daemon import START
from tests.system_tools import installed
from tests.waiting import wait_for

DAY = date(2026, 1, 14)
CHECK = "5f0e4c1b-9a53-4b1e-8a43-2d9c1f6e7a10"  # the secret of a Healthchecks URL


def run_day(jobfile, clock, day=DAY, names=()):
    """Every run of `names` (all jobs) for `day` as its schedule runs them (a backfill never
    pings), with real processes and a fake clock."""
    runs = selection.runs_for_date(
        jobfile, selection.select_jobs(jobfile, list(names), False), day, RunKind.SCHEDULED
    )
    return real_engine(jobfile, clock).executor.execute(runs)


def ping_events(jobfile):
    store = Store(jobfile.settings.state_dir)
    return [e for e in store.read().events if e.event is EventType.PING]


def jobs_with(write_jobs, command, ping_url, extra=""):
    return load(
        write_jobs(
            f"""
            [cronflow]
            ping_timeout = 2
            [jobs.backup]
            command = '{command}'
            ping_url = "{ping_url}"
            {extra}
            """
        )
    )


def test_a_successful_run_pings_start_then_success_with_one_rid_and_its_output(
    write_jobs, monitor, clock
):
    jobfile = jobs_with(write_jobs, "echo dumped 42 tables", monitor.check_url(CHECK))
    [outcome] = run_day(jobfile, clock)
    assert outcome.status is RunStatus.SUCCESS
    start, end = monitor.pings(CHECK)
    assert (start.signal, end.signal) == ("start", "success")
    assert start.run == end.run and uuid.UUID(start.run)  # Healthchecks wants a UUID
    assert end.body == b"dumped 42 tables\n"
    recorded = ping_events(jobfile)
    assert [(e.ping["signal"], e.ping["delivery"]) for e in recorded] == [
        ("start", "sent"),
        ("success", "sent"),
    ]
    assert recorded[0].run_id == outcome.event.run_id


def test_a_retried_run_pings_each_try_and_only_the_final_outcome_with_its_exit_status(
    write_jobs, monitor, clock
):
    jobfile = jobs_with(
        write_jobs,
        'echo "disk full on try $CRONFLOW_ATTEMPT" >&2; exit 3',
        monitor.check_url(CHECK),
        extra='retries = 1\nretry_delay = "1m"',
    )
    [outcome] = run_day(jobfile, clock)
    assert outcome.status is RunStatus.FAILED
    seen = monitor.pings(CHECK)
    assert [p.signal for p in seen] == ["start", "log", "start", "3"]
    assert len({p.run for p in seen}) == 1  # one run, retried: one rid
    assert seen[1].body.startswith(b"try 1 of 2: exit status 3; retrying\n")
    assert b"disk full on try 1" in seen[1].body
    assert seen[3].body.endswith(b"disk full on try 2\n")


def test_a_run_without_an_exit_status_pings_fail(write_jobs, monitor, clock):
    jobfile = jobs_with(write_jobs, "sleep 30", monitor.check_url(CHECK), extra="timeout = 1")
    [outcome] = run_day(jobfile, clock)
    assert outcome.status is RunStatus.TIMED_OUT
    assert [p.signal for p in monitor.pings(CHECK)] == ["start", "fail"]
    assert b"timed out" in monitor.pings(CHECK)[-1].body


def test_the_body_is_the_tail_of_the_output_cut_to_the_limit_the_server_announced(
    write_jobs, monitor, clock
):
    monitor.body_limit = 100
    command = "seq 1 2000; echo the end >&2"
    jobfile = jobs_with(write_jobs, command, monitor.check_url(CHECK))
    run_day(jobfile, clock)
    end = monitor.pings(CHECK)[-1]
    assert len(end.body) == 100  # learnt from the answer to `start`
    assert end.body.endswith(b"2000\nthe end\n")


def test_runs_that_overlap_in_two_invocations_pair_by_rid(write_jobs, monitor, tmp_path):
    """Two one-shot ticks a minute apart (cron's, on clocks libfaketime sets) start runs of
    one job (overlap = allow) in two real processes, each run waiting until both have
    started: the monitor pairs each end with its own start."""
    missing = installed("faketime", "faketime")
    if missing:
        pytest.skip(missing)
    waits_for_both = (
        'touch "started.$CRONFLOW_LOGICAL_TIME"; '
        "for i in $(seq 3000); do [ $(ls started.* | wc -l) -ge 2 ] && break; sleep 0.01; done; "
        "[ $(ls started.* | wc -l) -ge 2 ] && echo overlapped >> effects"
    )
    jobfile = jobs_with(
        write_jobs,
        waits_for_both,
        monitor.check_url(CHECK),
        'overlap = "allow"\nschedule = "* * * * *"',
    )
    ticks: list[subprocess.Popen] = []

    def started() -> bool:  # as many runs as ticks started so far
        return len(list(tmp_path.glob("started.*"))) >= len(ticks)

    for at in ("2026-01-14 06:00:30", "2026-01-14 06:01:30"):
        ticks.append(
            subprocess.Popen(
                ["faketime", "-f", f"@{at}", sys.executable, "-m", "cronflow", "run"],
                cwd=tmp_path,
                env={**os.environ, "TZ": "UTC", "CRONFLOW_JOBS": str(jobfile.path)},
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
            )
        )
        wait_for(started, "a run start")
    assert [tick.wait(timeout=120) for tick in ticks] == [0, 0]
    assert (tmp_path / "effects").read_text() == "overlapped\n" * 2
    by_run: dict[str, list[str]] = {}
    for ping in monitor.pings(CHECK):
        by_run.setdefault(ping.run, []).append(ping.signal)
    assert sorted(by_run.values()) == [["start", "success"]] * 2


def test_an_unknown_check_is_recorded_failed_shown_masked_and_changes_nothing(
    write_jobs, monitor, clock, tmp_path
):
    url = f"http://127.0.0.1:{monitor.port}/ping/{CHECK}"  # not a check the monitor knows
    jobfile = jobs_with(write_jobs, "true", url)
    [outcome] = run_day(jobfile, clock)
    assert outcome.status is RunStatus.SUCCESS
    assert [p.status for p in monitor.pings(CHECK)] == [404, 404]  # no retry after a 404
    failed = ping_events(jobfile)[-1]
    assert failed.ping["delivery"] == "failed: HTTP 404 Not Found"
    assert failed.ping["target"] == f"http://127.0.0.1:{monitor.port}"
    status = run_cli("status", "--jobs", str(jobfile.path), cwd=tmp_path, env={"COLUMNS": "200"})
    assert status.returncode == 0, status.stderr
    assert "ping failed" in status.stdout and "HTTP 404" in status.stdout
    log_text = (jobfile.settings.state_dir / "runs.jsonl").read_text()
    for shown in (status.stdout, status.stderr, log_text):
        assert CHECK not in shown


def test_a_redirect_is_never_followed_and_is_recorded_failed_with_its_target(
    write_jobs, monitor, receiver, clock
):
    """Healthchecks and Cronitor never redirect a ping: a 302 (to an inner address, say)
    is a failed delivery naming where it pointed, and nothing is sent there."""
    monitor.redirect_to = f"http://127.0.0.1:{receiver.port}/internal/{CHECK}"
    jobfile = jobs_with(write_jobs, "true", monitor.check_url(CHECK))
    [outcome] = run_day(jobfile, clock)
    assert outcome.status is RunStatus.SUCCESS
    assert [p.signal for p in monitor.pings(CHECK)] == ["start", "success"]
    assert receiver.messages() == []
    deliveries = [e.ping["delivery"] for e in ping_events(jobfile)]
    redirected = f"failed: HTTP 302, to http://127.0.0.1:{receiver.port}: not followed"
    assert deliveries == [redirected, redirected]


def test_a_ping_url_with_a_user_and_password_sends_them_as_basic_auth(write_jobs, monitor, clock):
    url = monitor.check_url(CHECK).replace("http://", "http://ops:p%40ss@")
    jobfile = jobs_with(write_jobs, "true", url)
    run_day(jobfile, clock)
    pings = monitor.pings(CHECK)
    assert [(p.signal, p.status) for p in pings] == [("start", 200), ("success", 200)]
    assert {p.authorization for p in pings} == {"Basic b3BzOnBAc3M="}  # ops:p@ss
    log_text = (jobfile.settings.state_dir / "runs.jsonl").read_text()
    assert "p%40ss" not in log_text and "ops:" not in log_text


@pytest.mark.parametrize("mode, timeout", [("hang", 0.3), ("trickle", 0.3)])
def test_a_hanging_monitor_delays_nothing_but_the_end_of_the_invocation(
    write_jobs, monitor, clock, mode, timeout
):
    """Silent, or answering a byte every 0.1 s (within the timeout: every read gets
    something, so only a bound on the whole exchange ends it), a monitor costs each ping its
    timeout at most."""
    monitor.mode = mode
    jobfile = jobs_with(write_jobs, "true", monitor.check_url(CHECK))
    text = jobfile.path.read_text().replace("ping_timeout = 2", f"ping_timeout = {timeout}")
    jobfile.path.write_text(text)
    jobfile = load(jobfile.path)
    begun = time.monotonic()
    [outcome] = run_day(jobfile, clock)
    took = time.monotonic() - begun
    assert outcome.status is RunStatus.SUCCESS
    deliveries = [e.ping["delivery"] for e in ping_events(jobfile)]
    assert deliveries == [f"timeout: no answer within {timeout:g}s"] * 2
    # Three tries and backoffs of 0.5 and 1 s for each of two pings, one after the other (a
    # run's pings keep their order): bounded, whatever the server does.
    assert took < 2 * (3 * timeout + 1.5) + 5


def test_cronitor_pings_say_run_complete_and_fail_in_a_series(write_jobs, monitor, clock):
    url = monitor.cronitor_url("apikey123", "nightly")
    jobfile = load(
        write_jobs(
            f"""
            [defaults]
            ping_protocol = "cronitor"
            [jobs.good]
            command = "echo fine"
            ping_url = "{url}"
            [jobs.bad]
            command = "echo broke >&2; exit 4"
            ping_url = "{url}"
            """
        )
    )
    run_day(jobfile, clock, names=["good"])
    run_day(jobfile, clock, names=["bad"])
    run, complete, run_bad, fail = monitor.pings("nightly")
    assert (run.signal, complete.signal, run_bad.signal, fail.signal) == (
        "run",
        "complete",
        "run",
        "fail",
    )
    assert run.run == complete.run != run_bad.run == fail.run
    assert complete.query["message"] == "fine\n"
    assert fail.query["status_code"] == "4"
    assert fail.query["message"] == "exit status 4\nbroke\n"
    assert fail.query["host"]


def test_the_protocol_is_told_from_the_url():
    assert monitors.protocol_for("https://cronitor.link/p/k/job") == monitors.CRONITOR
    assert monitors.protocol_for("https://hc-ping.com/uuid") == monitors.HEALTHCHECKS
    assert monitors.protocol_for("https://hc.example.org/ping/uuid") == monitors.HEALTHCHECKS
    assert monitors.protocol_for("https://hc.example.org/x", "cronitor") == monitors.CRONITOR


def test_the_heartbeat_is_pinged_by_full_ticks_and_idle_ticks(write_jobs, monitor):
    path = write_jobs(
        f"""
        [cronflow]
        heartbeat_url = "{monitor.check_url("cronflow-heartbeat")}"
        [jobs.hourly]
        command = "true"
        schedule = "0 * * * *"
        """
    )
    clock = FakeClock(datetime(2026, 1, 10, 12, 0, 30, tzinfo=UTC))
    real_engine(load(path), clock).tick()  # runs 12:00, pings, leaves the stamp
    assert [p.signal for p in monitor.pings("cronflow-heartbeat")] == ["success"]
    assert idle_tick.answer(str(path), clock.now() + timedelta(minutes=1))
    assert idle_tick.answer(str(path), clock.now() + timedelta(minutes=2))
    assert [p.status for p in monitor.pings("cronflow-heartbeat")] == [200] * 3
    kept = ping_requests.read_heartbeat(str(path.parent / ".cronflow"))
    assert kept["last"]["delivery"] == "sent" and kept["last_failed"] is None


def test_a_failing_heartbeat_is_kept_for_status(write_jobs, monitor, tmp_path):
    url = f"http://127.0.0.1:{monitor.port}/ping/{CHECK}"  # unknown: 404
    path = write_jobs(
        f"""
        [cronflow]
        heartbeat_url = "{url}"
        [jobs.hourly]
        command = "true"
        schedule = "0 * * * *"
        """
    )
    ran = run_cli("run", "--jobs", str(path), cwd=tmp_path)
    assert ran.returncode == 0, ran.stderr
    kept = ping_requests.read_heartbeat(str(path.parent / ".cronflow"))
    assert kept["last_failed"]["delivery"] == "failed: HTTP 404 Not Found"
    status = run_cli("status", "--jobs", str(path), cwd=tmp_path, env={"COLUMNS": "200"})
    assert "heartbeat ping failed" in status.stdout
    assert CHECK not in status.stdout + ran.stdout + ran.stderr


@pytest.mark.parametrize(
    "value, problem",
    [
        ('"ftp://hc-ping.com/5f0e4c1b"', "is not a well-formed http(s) URL"),
        ('"hc-ping.com/5f0e4c1b"', "is not a well-formed http(s) URL"),
        ('"http://[::1/5f0e4c1b"', "is not a well-formed http(s) URL"),
        ('"http://hc-ping.com:99999/5f0e4c1b"', "is not a well-formed http(s) URL"),
        ('"http://hc ping.com/5f0e4c1b"', "is not a well-formed http(s) URL"),
        ("42", "must be a string"),
    ],
)
def test_a_bad_ping_url_is_a_clear_error_that_never_shows_it(tmp_path, value, problem):
    said = refused(tmp_path, f'[jobs.a]\ncommand = "true"\nping_url = {value}\n')
    assert problem in said and "ping_url" in said
    assert "5f0e4c1b" not in said


def test_the_daemon_pings_its_heartbeat_and_renews_the_metrics_every_loop(
    write_jobs, monitor, tmp_path
):
    """A real daemon on a fast clock (tests/fast_daemon.py): five wake-ups, five decisions,
    each one a heartbeat; the every-minute job's runs ping start and success."""
    (tmp_path / "textfile").mkdir()
    path = write_jobs(
        f"""
        [cronflow]
        heartbeat_url = "{monitor.check_url("cronflow-daemon")}"
        metrics_file = "textfile/cronflow.prom"
        [jobs.every_minute]
        command = "true"
        schedule = "* * * * *"
        ping_url = "{monitor.check_url(CHECK)}"
        """
    )
    metrics = tmp_path / "textfile" / "cronflow.prom"
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.fast_daemon", str(path), "5"],
        cwd=Path(__file__).parent.parent,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    last_tick = (START + timedelta(minutes=5)).replace(second=0).timestamp()
    labels = f'cronflow_instance="{tmp_path / ".cronflow"}"'

    def ticked_five_times() -> bool:
        text = metrics.read_text() if metrics.exists() else ""
        return (
            len(monitor.pings("cronflow-daemon")) >= 6  # the start, then five wake-ups
            and f"cronflow_tick_last_timestamp_seconds{{{labels}}} {last_tick!r}" in text
            and len(monitor.pings(CHECK)) >= 12  # 06:00 at the start, then one a minute
        )

    try:
        wait_for(ticked_five_times, "six heartbeats and the sixth tick in the metrics")
    finally:
        process.send_signal(signal.SIGTERM)
        _, errors = process.communicate(timeout=60)
    assert process.returncode == 0, errors.decode()
    assert {p.status for p in monitor.pings()} == {200}
    by_run: dict[str, list[str]] = {}
    for seen in monitor.pings(CHECK):
        by_run.setdefault(seen.run, []).append(seen.signal)
    assert set(map(tuple, by_run.values())) == {("start", "success")}


def test_a_defaults_url_with_job_in_it_gives_each_job_its_own_check(write_jobs, monitor, clock):
    """`{job}` becomes a Healthchecks slug: lowercase, other characters a hyphen (a job
    named with capitals or dots once pinged a URL no check has, and failed)."""
    base = f"http://127.0.0.1:{monitor.port}/ping"
    monitor.checks.update({"extract", "nightly-load"})
    jobfile = load(
        write_jobs(
            f"""
            [defaults]
            ping_url = "{base}/{{job}}?create=1"
            [jobs.extract]
            command = "true"
            [jobs."Nightly.Load"]
            command = "true"
            depends_on = ["extract"]
            """
        )
    )
    assert jobfile.warnings == ()
    run_day(jobfile, clock)
    for check in ("extract", "nightly-load"):
        seen = monitor.pings(check)
        assert [(p.signal, p.status) for p in seen] == [("start", 200), ("success", 200)]
        assert seen[0].query["create"] == "1" and uuid.UUID(seen[0].query["rid"])
    assert {e.ping["delivery"] for e in ping_events(jobfile)} == {"sent"}


def test_jobs_whose_names_make_one_check_are_told_at_validation(tmp_path):
    (tmp_path / "jobs.toml").write_text(
        '[defaults]\nping_url = "https://hc-ping.com/KEY/{job}"\n'
        '[jobs.Backup]\ncommand = "true"\n[jobs.backup]\ncommand = "true"\n'
        '[jobs."db.dump"]\ncommand = "true"\n'
    )
    said = run_cli("validate", cwd=tmp_path)
    assert said.returncode == 0
    told = " ".join((said.stdout + said.stderr).split())
    assert "jobs 'Backup', 'backup' all ping the check \"backup\"" in told
    assert told.count("all ping the check") == 1  # db.dump's check, "db-dump", is its own


def test_status_shows_every_job_whose_last_ping_failed(write_jobs, monitor, clock, tmp_path):
    """One broken check never hides another: status once showed only the newest failure."""
    base = f"http://127.0.0.1:{monitor.port}/ping"
    monitor.checks.update({"fine"})
    jobfile = load(
        write_jobs(
            f"""
            [defaults]
            ping_url = "{base}/{{job}}"
            [jobs.fine]
            command = "true"
            [jobs.unknown-a]
            command = "true"
            [jobs.unknown-b]
            command = "true"
            """
        )
    )
    run_day(jobfile, clock)
    status = run_cli("status", cwd=tmp_path, env={"COLUMNS": "250"})
    failed = [line for line in status.stdout.splitlines() if "ping failed" in line]
    assert len(failed) == 2, status.stdout
    assert any("unknown-a's" in line for line in failed)
    assert any("unknown-b's" in line for line in failed)
    assert not any("fine's" in line for line in failed)
    rows = json.loads(run_cli("status", "--json", cwd=tmp_path).stdout)["jobs"]
    assert {row["job"]: row["last_ping"] for row in rows} == {
        "fine": "sent",
        "unknown-a": "failed: HTTP 404 Not Found",
        "unknown-b": "failed: HTTP 404 Not Found",
    }


def test_only_runs_of_the_live_schedule_ping(write_jobs, monitor, tmp_path):
    """A monitor watches the live schedule. A backfill pinged it 1,506 times for a week,
    a week-old failure turning today's check red: backfills and catch-ups of older ticks
    now send nothing; a scheduled run, the catch-up of the newest tick and a manual run
    (`run --job`: the job's work, done now) do."""
    jobfile = load(
        write_jobs(f"""
        [jobs.hourly]
        command = 'echo "$CRONFLOW_LOGICAL_TIME" >> effects'
        schedule = "0 * * * *"
        catchup = "all"
        ping_url = "{monitor.check_url(CHECK)}"
    """)
    )
    backfill = run_cli("run", "--date", "2026-01-10..2026-01-12", cwd=tmp_path)
    assert backfill.returncode == 0, backfill.stderr
    assert len((tmp_path / "effects").read_text().split()) == 72 and monitor.pings() == []
    clock = FakeClock(datetime(2026, 1, 14, 6, 0, 30, tzinfo=UTC))
    real_engine(jobfile, clock).tick()  # 06:00, on time
    clock.advance(timedelta(hours=3, minutes=10))
    real_engine(jobfile, clock).tick()  # 07:00 and 08:00 caught up; 09:00 is the newest
    rids = {
        ping_reports._rid(e.run_id): e
        for e in Store(jobfile.settings.state_dir).read().events
        if e.event is EventType.FINISHED
    }
    pinged = sorted((rids[p.run].logical_time.hour, p.signal) for p in monitor.pings())
    assert pinged == [(6, "start"), (6, "success"), (9, "start"), (9, "success")]
    assert {rids[p.run].kind for p in monitor.pings()} == {RunKind.SCHEDULED, RunKind.CATCHUP}
    manual = run_cli("run", "--job", "hourly", cwd=tmp_path)
    assert manual.returncode == 0, manual.stderr
    assert [p.signal for p in monitor.pings()][4:] == ["start", "success"]
