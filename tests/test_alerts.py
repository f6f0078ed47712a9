"""Alerts through apprise to a real HTTP receiver on 127.0.0.1."""

from __future__ import annotations

import json
import socket
import time
from datetime import UTC, date, datetime, timedelta

import pytest

from cronflow.decide import selection
from cronflow.masking import redact
from cronflow.model import ClockSetBack, EventType, HostAlert, RunKind, RunStatus
from cronflow.state.store import Store
from cronflow.tell.apprise_sender import CHILD_START
from tests.conftest import load, real_engine, run_cli
from tests.fakes import FakeClock

DAY = date(2026, 1, 14)


@pytest.fixture
def run_date(clock):
    """Run every job of a jobs file for DAY with real processes, alerts and a fake clock."""

    def run(jobfile, names=(), day=DAY):
        runs = selection.runs_for_date(
            jobfile, selection.select_jobs(jobfile, list(names), False), day, RunKind.BACKFILL
        )
        return real_engine(jobfile, clock).executor.execute(runs)

    return run


def alert_events(jobfile):
    return [
        e for e in Store(jobfile.settings.state_dir).read().events if e.event is EventType.ALERT
    ]


PIPELINE = """
    [alerts]
    urls = ["{url}"]
    {extra}
    [jobs.extract]
    command = "true"
    schedule = "0 6 * * *"
    timezone = "Europe/Berlin"
    [jobs.load]
    command = 'echo "connection refused on try $CRONFLOW_ATTEMPT" >&2; test -e {ok}'
    depends_on = ["extract"]
    retries = 2
    retry_delay = "1m"
    {load_extra}
    [jobs.report]
    command = "true"
    depends_on = ["load"]
    [jobs.publish]
    command = "true"
    depends_on = ["report"]
"""


def pipeline(write_jobs, receiver, tmp_path, extra="", load_extra="", url=None):
    return load(
        write_jobs(
            PIPELINE.format(
                url=url or receiver.url(), ok=tmp_path / "ok", extra=extra, load_extra=load_extra
            )
        )
    )


def test_a_job_that_fails_all_its_tries_alerts_once_with_what_to_act_on(
    write_jobs, receiver, run_date, tmp_path
):
    jobfile = pipeline(write_jobs, receiver, tmp_path)
    run_date(jobfile)
    [message] = receiver.messages()
    assert message.path == "/hook"
    assert message.body["type"] == "failure"
    assert message.body["title"] == "cronflow: load failed (2026-01-14)"
    body = message.body["message"]
    for expected in [
        "**Job:** load",
        "2026-01-14T06:00:00+01:00 (Europe/Berlin)",
        "**Attempt:** 3 of 3",
        "**Result:** exit status 1",
        "**Duration:**",
        f"**Host:** {socket.gethostname()}",
        "**Held back:** publish, report",
        "connection refused on try 3",
        "cronflow logs load --date 2026-01-14",
    ]:
        assert expected in body, expected
    assert "connection refused on try 2" not in body
    [event] = alert_events(jobfile)
    assert event.alert["on"] == "failure" and event.alert["delivered"] == 1
    assert event.alert["targets"] == [
        {"target": f"json://127.0.0.1:{receiver.port}", "delivery": "sent"}
    ]


def test_a_failure_then_a_success_sends_failure_then_recovery(
    write_jobs, receiver, run_date, tmp_path
):
    jobfile = pipeline(write_jobs, receiver, tmp_path)
    run_date(jobfile)
    (tmp_path / "ok").touch()
    run_date(jobfile, day=DAY + timedelta(days=1))
    run_date(jobfile, day=DAY + timedelta(days=2))  # a second success is no news
    titles = [m.body["title"] for m in receiver.messages()]
    assert titles == ["cronflow: load failed (2026-01-14)", "cronflow: load recovered (2026-01-15)"]


def test_a_failing_streak_alerts_once_unless_repeat_says_so(
    write_jobs, receiver, run_date, tmp_path, clock
):
    jobfile = pipeline(write_jobs, receiver, tmp_path)
    for offset in range(3):
        run_date(jobfile, day=DAY + timedelta(days=offset))
    assert len(receiver.messages()) == 1

    reminders = tmp_path / "reminders"
    reminders.mkdir()
    jobfile = load(
        write_jobs(
            PIPELINE.format(
                url=receiver.url(), ok=tmp_path / "ok", extra='repeat = "1h"', load_extra=""
            ),
            name="reminders/jobs.toml",
        )
    )
    run_date(jobfile)
    run_date(jobfile, day=DAY + timedelta(days=1))  # 2 minutes of retries later: too soon
    clock.advance(timedelta(hours=1))
    run_date(jobfile, day=DAY + timedelta(days=2))
    assert [m.body["title"] for m in receiver.messages()] == [
        "cronflow: load failed (2026-01-14)",
        "cronflow: load failed (2026-01-16)",
    ]


def test_a_silenced_job_sends_nothing(write_jobs, receiver, run_date, tmp_path):
    jobfile = pipeline(write_jobs, receiver, tmp_path, load_extra="alerts = false")
    run_date(jobfile)
    assert receiver.messages() == [] and alert_events(jobfile) == []


def test_retry_and_success_alerts_when_asked_for(write_jobs, receiver, run_date, tmp_path):
    jobfile = pipeline(write_jobs, receiver, tmp_path, load_extra='alert_on = ["retry", "success"]')
    run_date(jobfile, ["load"])  # extract never ran: load is held back, no alert
    run_date(jobfile, ["extract"])
    run_date(jobfile, ["load"])
    # deliveries run in the background, so they may arrive in either order
    assert sorted(m.body["title"] for m in receiver.messages()) == [
        "cronflow: load try 1 failed, retrying (2026-01-14)",
        "cronflow: load try 2 failed, retrying (2026-01-14)",
    ]
    (tmp_path / "ok").touch()
    run_date(jobfile, ["load"])
    assert [(m.body["title"], m.body["type"]) for m in receiver.messages()] == [
        ("cronflow: load succeeded (2026-01-14)", "success")
    ]


def test_tags_route_two_jobs_to_two_receivers(write_jobs, receiver, run_date, tmp_path):
    from tests.receivers import start_receiver

    other = start_receiver()
    try:
        (tmp_path / "apprise.yml").write_text(
            f"urls:\n  - {receiver.url('form', 'team-a')}:\n      tag: team-a\n"
            f"  - {other.url('json', 'team-b')}:\n      tag: team-b\n"
        )
        jobfile = load(
            write_jobs("""
            [alerts]
            config = "apprise.yml"
            [jobs.a]
            command = "exit 1"
            alert_tags = ["team-a"]
            [jobs.b]
            command = "exit 2"
            alert_tags = ["team-b"]
        """)
        )
        run_date(jobfile)
        [to_a], [to_b] = receiver.messages(), other.messages()
        assert to_a.path == "/team-a" and to_a.body["title"] == "cronflow: a failed (2026-01-14)"
        assert to_b.path == "/team-b" and to_b.body["title"] == "cronflow: b failed (2026-01-14)"
    finally:
        other.server.shutdown()


@pytest.mark.parametrize("mode", ["error", "closed", "hang", "trickle"])
def test_a_failed_delivery_is_recorded_and_changes_nothing_else(
    write_jobs, receiver, tmp_path, mode
):
    url = receiver.url()
    if mode == "closed":
        receiver.server.shutdown()
        receiver.server.server_close()
    receiver.mode = mode
    (tmp_path / "jobs.toml").write_text(
        f'[alerts]\nurls = ["{url}"]\ntimeout = "1s"\n'
        '[jobs.broken]\ncommand = "exit 3"\n[jobs.fine]\ncommand = "true"\n'
    )
    started = time.monotonic()
    result = run_cli("run", "--date", "2026-01-14", cwd=tmp_path)
    # A receiver answering a byte at a time once held cronflow for ever: the whole sending
    # is bounded by the timeout and the sender's start-up (then it is stopped).
    assert time.monotonic() - started < 1 + CHILD_START + 15
    assert result.returncode == 1 and "Traceback" not in result.stderr
    events = Store(tmp_path / ".cronflow").read().events
    finished = {e.job: e.status for e in events if e.event is EventType.FINISHED}
    assert finished == {"broken": RunStatus.FAILED, "fine": RunStatus.SUCCESS}
    [alert] = [e for e in events if e.event is EventType.ALERT]
    assert alert.alert["delivered"] == 0
    delivery = alert.alert["targets"][0]["delivery"]
    assert delivery.startswith("timeout" if mode in ("hang", "trickle") else "failed"), delivery
    if mode == "trickle":  # cronflow's bound, counted from the sender's readiness, stops it
        assert delivery.endswith("no answer within 6s: the sending was stopped"), delivery
    ok = run_cli("run", "--date", "2026-01-14", "--job", "fine", "--rerun", "all", cwd=tmp_path)
    assert ok.returncode == 0


def test_a_missed_alert_when_catch_up_leaves_ticks_unrun(write_jobs, receiver):
    jobfile = load(
        write_jobs(f"""
        [alerts]
        urls = ["{receiver.url()}"]
        on = ["missed"]
        [jobs.hourly]
        command = "true"
        schedule = "0 * * * *"
    """)
    )
    clock = FakeClock(datetime(2026, 1, 14, 6, 0, tzinfo=UTC))
    real_engine(jobfile, clock).tick()
    clock.advance(timedelta(hours=5))
    real_engine(jobfile, clock).tick()
    [message] = receiver.messages()
    assert message.body["title"] == "cronflow: hourly missed 4 tick(s)"
    assert "2026-01-14T07:00:00+00:00 to 2026-01-14T10:00:00+00:00" in message.body["message"]


def test_a_clock_put_right_after_a_jump_ahead_alerts_warns_and_runs_again(
    write_jobs, receiver, tmp_path
):
    """The clock runs three days ahead, then is put right: the ticks from now on run again
    (not three days later), once each, and the step back is recorded, alerted and shown."""
    out = tmp_path / "ran.txt"
    jobfile = load(
        write_jobs(f"""
        [alerts]
        urls = ["{receiver.url()}"]
        [jobs.quarterly]
        command = 'echo "$CRONFLOW_LOGICAL_TIME" >> {out}'
        schedule = "*/15 * * * *"
    """)
    )
    now = datetime.now(UTC)  # status in a real process reads the real clock
    quarter = now.replace(minute=now.minute - now.minute % 15, second=0, microsecond=0)
    clock = FakeClock(quarter + timedelta(seconds=30))
    real_engine(jobfile, clock).tick()  # runs `quarter`
    clock.advance(timedelta(days=3))
    real_engine(jobfile, clock).tick()  # catches up: runs quarter + 3 days
    clock.advance(timedelta(days=-3, minutes=15))
    real_engine(jobfile, clock).tick()  # put right: quarter + 15 min is due now
    assert [message.body["title"] for message in receiver.messages()] == [
        f"cronflow: the clock went back on {socket.gethostname()}"
    ]
    recorded = Store(jobfile.settings.state_dir).read().host_events
    [step] = [e for e in recorded if isinstance(e, ClockSetBack)]
    assert step.reached == quarter + timedelta(days=3)
    [alert] = [e for e in recorded if isinstance(e, HostAlert)]
    assert alert.about == socket.gethostname() and alert.alert["on"] == "clock"
    assert alert.alert["delivered"] == 1
    shown = run_cli("status", cwd=tmp_path)
    words = " ".join(shown.stdout.split())
    assert "warning: the clock went back at least 2 days, 23:44:30" in words
    assert "later than now by this machine's clock" in words
    as_json = json.loads(run_cli("status", "--json", cwd=tmp_path).stdout)
    assert "went back" in as_json["cronflow"]["clock_warning"]
    clock.advance(timedelta(days=3, minutes=-15))
    real_engine(jobfile, clock).tick()  # quarter + 3 days comes again: already done
    ran = [datetime.fromisoformat(line) for line in out.read_text().split()]
    assert ran == [quarter, quarter + timedelta(days=3), quarter + timedelta(minutes=15)]


def test_a_job_cannot_ask_for_clock_alerts(write_jobs, tmp_path):
    path = write_jobs("""
        [jobs.one]
        command = "true"
        alert_on = ["clock"]
    """)
    result = run_cli("validate", "--jobs", str(path), cwd=tmp_path)
    assert result.returncode == 2
    assert '"clock" is not allowed' in result.stderr and "alert_on" in result.stderr


SECRETS = ["hunter2", "HDRSECRET", "GETSECRET", "PATHTOKEN"]


def test_secrets_in_alert_urls_never_appear_in_any_output_or_the_log(receiver, tmp_path):
    urls = [
        f"json://admin:hunter2@127.0.0.1:{receiver.port}/hook?+X-Token=HDRSECRET",
        f"form://127.0.0.1:{receiver.port}/PATHTOKEN?-token=GETSECRET",
        "json://admin:hunter2@127.0.0.1:1/closed?+X-Token=HDRSECRET",
    ]
    (tmp_path / "jobs.toml").write_text(
        f'[alerts]\nurls = {json.dumps(urls)}\ntimeout = "2s"\n'
        '[jobs.broken]\ncommand = "exit 3"\nschedule = "0 6 * * *"\n'
        '[jobs.ticking]\ncommand = "exit 3"\nschedule = "* * * * *"\n'
    )
    outputs = [
        run_cli(*args, cwd=tmp_path)
        for args in (
            ["validate"],
            ["run", "--date", "2026-01-14", "--job", "broken"],
            ["run", "--verbose"],
            ["status"],
            ["status", "--json"],
            ["run", "--dry-run"],
            ["next"],
            ["logs", "broken"],
            ["alerts", "test"],
        )
    ]
    assert len(receiver.messages()) >= 3  # the alerts did go out (backfill, clock, test)
    texts = [o.stdout + o.stderr for o in outputs]
    texts += [
        path.read_text(errors="replace")
        for path in (tmp_path / ".cronflow").rglob("*")
        if path.is_file()
    ]
    for text in texts:
        for secret in SECRETS:
            assert secret not in text
    assert f"json://127.0.0.1:{receiver.port}: sent" in outputs[-1].stdout


def test_redact_keeps_only_scheme_host_and_port():
    assert redact("json://u:p@example.org:8080/x?+H=1&-q=2") == "json://example.org:8080"
    assert redact("mailto://user:pass@gmail.com") == "mailto://gmail.com"
    assert redact("tgram://123456:ABCDEF/42") == "tgram://***"
    assert redact("slack://TokenA/TokenB/TokenC/#channel") == "slack://***"
    assert redact("ntfy://localhost:8080/topic") == "ntfy://localhost:8080"
    assert redact("json://[::1]:9000/x") == "json://[::1]:9000"


def test_alerts_test_reports_each_target(receiver, tmp_path):
    (tmp_path / "jobs.toml").write_text(
        f'[alerts]\nurls = ["{receiver.url()}", "json://u:SECRETPW@127.0.0.1:1/closed-s3cret"]\n'
        'timeout = "2s"\n[jobs.a]\ncommand = "true"\n'
    )
    result = run_cli("alerts", "test", "--job", "a", cwd=tmp_path)
    assert result.returncode == 1
    assert result.stdout.splitlines() == [
        f"json://127.0.0.1:{receiver.port}: sent",
        # why, as apprise said it (a failure once gave no reason), nothing secret in it
        "json://127.0.0.1:1: failed: A Connection error occurred sending JSON notification "
        "to 127.0.0.1.",
    ]
    assert "SECRETPW" not in result.stdout + result.stderr and "s3cret" not in result.stdout
    [message] = receiver.messages()
    assert message.body["title"] == "cronflow: test alert for job a"


@pytest.mark.parametrize(
    "alerts, words",
    [
        ('urls = ["bogus://SECRETVALUE@host/x"]', "not a URL apprise understands"),
        ('urls = ["no scheme SECRETVALUE"]', "entry 1 is not a URL"),
        ('config = "missing.yml"', "cannot be read"),
    ],
)
def test_bad_alert_targets_are_config_errors(tmp_path, alerts, words):
    (tmp_path / "jobs.toml").write_text(f'[alerts]\n{alerts}\n[jobs.a]\ncommand = "true"\n')
    result = run_cli("validate", cwd=tmp_path)
    assert result.returncode == 2 and words in result.stderr
    assert "SECRETVALUE" not in result.stderr and "Traceback" not in result.stderr


def test_the_alert_policy_reads_facts_in_log_order():
    """Streaks and owed recoveries are decided by alerts.py from where in the log the index
    saw each alert and success (not by the index, and not by clocks that may go back)."""
    from cronflow.model import RunEvent
    from cronflow.state.index import RunIndex
    from cronflow.tell.alerts import owes_recovery, streak_alerted_at

    at = datetime(2026, 1, 14, 6, tzinfo=UTC)

    def alert(on: str, delivered: int = 1) -> RunEvent:
        return RunEvent(
            event=EventType.ALERT,
            job="a",
            logical_time=at,
            run_id="r",
            status=RunStatus.FAILED,
            kind=RunKind.SCHEDULED,
            ended_at=at,
            alert={"on": on, "delivered": delivered},
        )

    success = RunEvent(
        event=EventType.FINISHED,
        job="a",
        logical_time=at,
        run_id="r",
        status=RunStatus.SUCCESS,
        kind=RunKind.SCHEDULED,
        ended_at=at,
    )
    index = RunIndex()
    steps = [
        ([alert("failure")], at, False),
        ([success], None, True),
        ([alert("recovery")], None, False),
        ([success], None, False),
        ([alert("failure", delivered=0)], None, False),  # reached no one: no streak
        ([alert("failure"), success], None, True),
    ]
    for events, streak, owed in steps:
        index.add_all(events)
        facts = index.alert_facts("a")
        assert (streak_alerted_at(facts), owes_recovery(facts)) == (streak, owed), events
