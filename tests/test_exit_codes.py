"""Exit-code policy with real processes: exit statuses that count as success
(success_exit_codes, systemd's SuccessExitStatus=) and ones that forbid a retry
(no_retry_exit_codes, systemd's RestartPreventExitStatus=), alerts and pings included."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from cronflow.decide import selection
from cronflow.model import EventType, RunKind, RunStatus
from cronflow.state.store import Store
from tests.conftest import load, real_engine, refused
from tests.fakes import FakeClock

DAY = date(2026, 1, 14)


def run_day(jobfile, clock):
    """The day's runs as the schedule runs them (so they ping: a backfill never does)."""
    runs = selection.runs_for_date(
        jobfile, selection.select_jobs(jobfile, [], False), DAY, RunKind.SCHEDULED
    )
    return real_engine(jobfile, clock).executor.execute(runs)


def finished(jobfile):
    events = Store(jobfile.settings.state_dir).read().events
    return [e for e in events if e.event is EventType.FINISHED]


def test_an_exit_status_listed_as_success_succeeds_and_its_downstream_runs(
    write_jobs, clock, tmp_path
):
    jobfile = load(
        write_jobs(
            f"""
            [jobs.rsync]
            command = "echo partial >> {tmp_path}/effects; exit 24"
            success_exit_codes = [24]
            retries = 2
            [jobs.report]
            command = "echo report >> {tmp_path}/effects"
            depends_on = ["rsync"]
            """
        )
    )
    outcomes = run_day(jobfile, clock)
    assert [o.status for o in outcomes] == [RunStatus.SUCCESS, RunStatus.SUCCESS]
    assert (tmp_path / "effects").read_text() == "partial\nreport\n"  # one try, then report
    rsync = finished(jobfile)[0]
    assert (
        rsync.exit_code == 24 and rsync.reason == "exit status 24, a success (success_exit_codes)"
    )


def test_an_exit_status_that_forbids_a_retry_fails_the_run_at_once(
    write_jobs, receiver, monitor, clock, tmp_path
):
    jobfile = load(
        write_jobs(
            f"""
            [alerts]
            urls = ["{receiver.url()}"]
            on = ["failure", "retry"]
            [jobs.importer]
            command = 'echo "try $CRONFLOW_ATTEMPT" >> {tmp_path}/effects; exit 2'
            retries = 3
            retry_delay = "1m"
            no_retry_exit_codes = [2, 64]
            ping_url = "{monitor.check_url("importer")}"
            """
        )
    )
    [outcome] = run_day(jobfile, clock)
    assert outcome.status is RunStatus.FAILED and outcome.attempts == 1
    assert (tmp_path / "effects").read_text() == "try 1\n"
    assert clock.sleeps == []  # no backoff waited for
    [event] = finished(jobfile)
    assert (event.attempt, event.max_attempts) == (1, 1)
    assert event.reason == "exit status 2, not retried (no_retry_exit_codes)"
    [alert] = receiver.messages()
    assert "importer failed" in alert.body["title"]  # a failure alert, not a retry alert
    assert [p.signal for p in monitor.pings("importer")] == ["start", "2"]  # final, not /log
    # Nothing is owed: a later tick does not try it again.
    assert Store(jobfile.settings.state_dir).index().owed_retries() == []


def test_other_exit_statuses_are_still_retried(write_jobs, clock, tmp_path):
    jobfile = load(
        write_jobs(
            f"""
            [jobs.importer]
            command = 'echo "try $CRONFLOW_ATTEMPT" >> {tmp_path}/effects; exit 1'
            retries = 2
            retry_delay = "1m"
            no_retry_exit_codes = [2]
            """
        )
    )
    [outcome] = run_day(jobfile, clock)
    assert outcome.status is RunStatus.FAILED and outcome.attempts == 3
    assert (tmp_path / "effects").read_text() == "try 1\ntry 2\ntry 3\n"


def test_a_run_whose_cronflow_died_is_settled_by_the_same_policy(write_jobs, tmp_path):
    """kill -9 of cronflow while the job ran: the wrapper's exit status file says 2; the
    next invocation records a final failure (no retry owed), as the live one would have."""
    jobfile = load(
        write_jobs(
            f"""
            [jobs.importer]
            command = 'echo "try $CRONFLOW_ATTEMPT" >> {tmp_path}/effects; exit 2'
            retries = 3
            no_retry_exit_codes = [2]
            """
        )
    )
    store = Store(jobfile.settings.state_dir)
    store.prepare()
    clock = FakeClock(datetime(2026, 1, 15, tzinfo=UTC))
    engine = real_engine(jobfile, clock)
    [run] = selection.runs_for_date(jobfile, ["importer"], DAY, RunKind.BACKFILL)
    output = store.output_paths(run.key, "20260114T000000Z-dead00", 1)
    output["exit"].write_text("exit 2\n")  # what its wrapper wrote before cronflow died
    started = store.append(_started(run, output))
    [settled] = engine.settle_orphans()
    assert settled.status is RunStatus.FAILED and settled.max_attempts == 1
    assert "not retried (no_retry_exit_codes)" in settled.reason
    assert store.index().owed_retries() == []
    assert started.run_id == settled.run_id


def _started(run, output):
    from cronflow.model import RunEvent

    return RunEvent(
        event=EventType.STARTED,
        job=run.job,
        logical_time=run.logical_time,
        run_id="20260114T000000Z-dead00",
        status=RunStatus.RUNNING,
        kind=RunKind.BACKFILL,
        attempt=1,
        max_attempts=4,
        started_at=datetime(2026, 1, 15, tzinfo=UTC),
        output={name: str(path) for name, path in output.items()},
    )


@pytest.mark.parametrize(
    "lines, problem",
    [
        ("success_exit_codes = [256]", "holds 256"),
        ('no_retry_exit_codes = ["2"]', "must be a list of exit statuses"),
        ("success_exit_codes = [2]\nno_retry_exit_codes = [2, 3]", "exit status 2 is also in"),
    ],
)
def test_bad_exit_code_lists_are_clear_errors(tmp_path, lines, problem):
    said = refused(tmp_path, f'[jobs.a]\ncommand = "true"\n{lines}\n')
    assert problem in said, said
