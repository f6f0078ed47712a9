"""The run log: atomic appends by several processes, tolerant reading of damaged files."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
from dataclasses import replace
from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from cronflow.model import ClockSetBack, EventType, HostAlert, RunEvent, RunKind, RunStatus
from cronflow.state.codec import event_from_json, event_to_json, parse_log
from cronflow.state.index import RunIndex
from cronflow.state.store import Store

T0 = datetime(2026, 1, 14, 6, 0, tzinfo=UTC)


def event(job="extract", status=RunStatus.SUCCESS, logical_time=T0, **fields) -> RunEvent:
    kind = EventType.FINISHED if status is not RunStatus.RUNNING else EventType.STARTED
    return RunEvent(
        event=fields.pop("event", kind),
        job=job,
        logical_time=logical_time,
        run_id="r1",
        status=status,
        kind=RunKind.BACKFILL,
        attempt=1,
        **fields,
    )


def test_events_round_trip_through_the_log(tmp_path):
    store = Store(tmp_path / "state")
    store.prepare()
    written = event(
        stderr_tail="boom\nline 2",
        exit_code=1,
        status=RunStatus.FAILED,
        started_at=T0,
        ended_at=T0 + timedelta(seconds=2),
        duration_s=2.0,
        output={"stdout": "/x/out"},
        host="h",
        pid=42,
        config_hash="abc",
    )
    store.append(written)
    contents = store.read()
    assert contents.events == [written] and contents.skipped == []


def test_state_directory_and_log_are_private(tmp_path):
    store = Store(tmp_path / "state")
    store.prepare()
    store.append(event())
    assert store.state_dir.stat().st_mode & 0o777 == 0o700
    assert store.log_path.stat().st_mode & 0o777 == 0o600


def test_an_empty_or_missing_log_reads_as_no_events(tmp_path):
    store = Store(tmp_path)
    assert store.read().events == []
    store.log_path.write_bytes(b"")
    assert store.read().events == [] and store.read().skipped == []


def test_a_torn_last_line_is_skipped_and_reported(tmp_path):
    store = Store(tmp_path)
    store.append(event())
    whole = store.log_path.read_bytes()
    with open(store.log_path, "ab") as log:
        log.write(whole[: len(whole) // 2])  # a writer killed half-way through a line
    contents = store.read()
    assert len(contents.events) == 1
    assert [s.reason for s in contents.skipped] == ["incomplete last line"]
    assert contents.skipped[0].offset == len(whole)


def test_the_next_append_after_a_torn_line_starts_on_a_new_line(tmp_path):
    store = Store(tmp_path)
    store.append(event(job="a"))
    with open(store.log_path, "ab") as log:
        log.write(b'{"v":1,"event":"fini')
    store.append(event(job="b"))
    contents = store.read()
    assert [e.job for e in contents.events] == ["a", "b"]
    assert len(contents.skipped) == 1
    assert store.log_path.read_bytes().count(b'{"v":1,"event":"fini\n') == 1  # history kept


def test_garbage_lines_are_skipped_and_counted_never_rewritten(tmp_path):
    store = Store(tmp_path)
    store.append(event(job="a"))
    with open(store.log_path, "ab") as log:
        log.write(b'not json at all\n[1, 2]\n{"v": 1}\n\xff\xfe\n')
    store.append(event(job="b"))
    before = store.log_path.read_bytes()
    contents = store.read()
    assert [e.job for e in contents.events] == ["a", "b"]
    assert len(contents.skipped) == 4
    assert store.log_path.read_bytes() == before


APPENDER = """
import sys
from datetime import UTC, datetime
from pathlib import Path
from cronflow.model import ClockSetBack, EventType, HostAlert, RunEvent, RunKind, RunStatus
from cronflow.state.store import Store
store = Store(Path(sys.argv[1]))
name, count = sys.argv[2], int(sys.argv[3])
print("ready", flush=True)
for i in range(count):
    store.append(RunEvent(event=EventType.FINISHED, job=name, run_id=str(i),
                          logical_time=datetime(2026, 1, 1, tzinfo=UTC), status=RunStatus.SUCCESS,
                          kind=RunKind.BACKFILL, stderr_tail="x" * (5000 if i % 10 == 0 else 10)))
"""


def test_two_processes_appending_1000_records_each_lose_and_tear_none(tmp_path):
    writers = [
        subprocess.Popen(
            [sys.executable, "-c", APPENDER, str(tmp_path), name, "1000"], stdout=subprocess.PIPE
        )
        for name in ("a", "b")
    ]
    for writer in writers:
        assert writer.wait(timeout=120) == 0
    contents = Store(tmp_path).read()
    assert contents.skipped == []
    for name in ("a", "b"):
        assert sorted(int(e.run_id) for e in contents.events if e.job == name) == list(range(1000))


def test_killing_a_writer_mid_stream_leaves_every_complete_line_readable(tmp_path):
    writer = subprocess.Popen(
        [sys.executable, "-c", APPENDER, str(tmp_path), "a", "1000000"], stdout=subprocess.PIPE
    )
    assert writer.stdout.readline() == b"ready\n"
    log = tmp_path / "runs.jsonl"
    while writer.poll() is None and (not log.exists() or log.stat().st_size < 20_000):
        pass  # wait for real progress, not for the wall clock
    assert writer.poll() is None, "the writer stopped before it could be killed"
    os.kill(writer.pid, signal.SIGKILL)
    writer.wait()
    data = log.read_bytes()
    contents = parse_log(data)
    complete_lines = data.count(b"\n")
    assert len(contents.events) == complete_lines
    assert len(contents.skipped) <= 1


def test_history_keeps_the_latest_event_of_each_run(tmp_path):
    later = T0 + timedelta(days=1)
    history = RunIndex(
        [
            event(status=RunStatus.RUNNING),
            event(status=RunStatus.FAILED),
            event(status=RunStatus.RUNNING, logical_time=later),
            event(status=RunStatus.SUCCESS, logical_time=T0 - timedelta(days=1)),
        ]
    )
    assert history.status(event().key) is RunStatus.FAILED
    assert history.last_run("extract").logical_time == later
    assert history.last_run("nothing") is None


texts = st.text(alphabet=st.characters(codec="utf-8"), max_size=50)


@settings(max_examples=200)
@given(
    job=st.from_regex(r"[a-z][a-z0-9_-]{0,10}", fullmatch=True),
    tail=texts,
    reason=texts,
    status=st.sampled_from(RunStatus),
    kind=st.sampled_from(RunKind),
    exit_code=st.none() | st.integers(0, 255),
    seconds=st.integers(0, 10**9),
    duration=st.none() | st.floats(0, 1e6),
)
def test_any_event_round_trips_through_json(
    job, tail, reason, status, kind, exit_code, seconds, duration
):
    original = RunEvent(
        event=EventType.FINISHED,
        job=job,
        run_id="r",
        logical_time=datetime.fromtimestamp(seconds, UTC),
        status=status,
        kind=kind,
        exit_code=exit_code,
        stderr_tail=tail,
        reason=reason,
        duration_s=duration,
    )
    line = json.dumps(event_to_json(original), ensure_ascii=False)
    assert event_from_json(json.loads(line)) == original


def test_lines_about_no_run_are_host_events_and_round_trip(tmp_path):
    store = Store(tmp_path / "state")
    store.prepare()
    clock = ClockSetBack(reached=T0, noticed_at=T0 - timedelta(hours=1), reason="went back")
    alert = HostAlert(about="daily-report", sent_at=T0, reason="stale alert", alert={"on": "stale"})
    run = event()
    for line in (clock, run, alert):
        store.append(line)
    contents = store.read()
    assert [e.run_id for e in contents.events] == [run.run_id]
    host = socket.gethostname()
    assert [replace(e, host="", pid=0) for e in contents.host_events] == [clock, alert]
    assert {(e.host, e.pid) for e in contents.host_events} == {(host, os.getpid())}
    assert store.index().clock_set_back() == contents.host_events[0]


def test_lines_about_no_run_written_as_run_events_still_read_as_host_events(tmp_path):
    """Before host events had a shape of their own, they were run events with job "": the
    log and an index built from such lines read them as what they are."""
    old_clock = {
        "v": 1, "event": "clock", "job": "", "logical_time": "2026-01-14T06:00:00+00:00",
        "run_id": "", "status": "skipped", "kind": "scheduled", "attempt": 0,
        "max_attempts": 0, "started_at": None, "ended_at": "2026-01-14T05:00:00+00:00",
        "reason": "the clock went back", "host": "h", "pid": 7,
    }  # fmt: skip
    old_alert = {
        **old_clock, "event": "alert", "status": "failed", "reason": "stale alert: 1 of 1",
        "alert": {"on": "stale", "title": "t", "delivered": 1, "targets": []},
    }  # fmt: skip
    state = tmp_path / "state"
    Store(state).prepare()
    (state / "runs.jsonl").write_text(
        "".join(json.dumps(line) + "\n" for line in (old_clock, old_alert))
    )
    contents = Store(state).read()
    assert contents.events == [] and contents.skipped == []
    clock = ClockSetBack(
        reached=T0, noticed_at=T0 - timedelta(hours=1), reason="the clock went back", host="h",
        pid=7,
    )  # fmt: skip
    alert = HostAlert(
        about="h", sent_at=T0 - timedelta(hours=1), reason="stale alert: 1 of 1",
        alert=old_alert["alert"], host="h", pid=7,
    )  # fmt: skip
    assert contents.host_events == [clock, alert]
    assert Store(state).index().clock_set_back() == clock


def test_a_line_with_a_field_of_the_wrong_type_is_skipped_not_a_crash(tmp_path):
    import json as json_module

    from tests.conftest import run_cli

    (tmp_path / "jobs.toml").write_text('[jobs.a]\ncommand = "true"\n')
    assert run_cli("run", "--date", "2026-01-14", cwd=tmp_path).returncode == 0
    log = tmp_path / ".cronflow" / "runs.jsonl"
    good = json_module.loads(log.read_text().splitlines()[-1])
    damaged = [
        {**good, "logical_time": "2026-01-15T00:00:00+00:00", field: value}
        for field, value in (
            ("duration_s", "fast"),
            ("attempt", "1"),
            ("output", [1]),
            ("exit_code", 0.5),
            ("process", {"pid": "x"}),
        )
    ]
    with open(log, "a") as appending:
        for record in damaged:
            appending.write(json_module.dumps(record) + "\n")
    for command in (("status",), ("history",), ("status", "--json")):
        result = run_cli(*command, cwd=tmp_path)
        assert result.returncode == 0 and "Traceback" not in result.stderr, result.stderr
    assert len(Store(tmp_path / ".cronflow").read().skipped) == len(damaged)
    assert Store(tmp_path / ".cronflow").index().skipped_lines == len(damaged)
