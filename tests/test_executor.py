"""The executor with real shell processes, a real log and real locks; only the clock is fake."""

from __future__ import annotations

from datetime import date

from cronflow.decide import selection
from cronflow.model import EventType, Rerun, RunKind, RunStatus
from cronflow.state.store import Store
from tests.conftest import load

DAY = date(2026, 1, 14)


def runs_of(jobfile, names=(), downstream=False, day=DAY):
    selected = selection.select_jobs(jobfile, list(names), downstream)
    return selection.runs_for_date(jobfile, selected, day, RunKind.BACKFILL)


def trace(jobfile):
    """(event, job, status, attempt) of every line in the log, in order."""
    events = Store(jobfile.settings.state_dir).read().events
    return [(e.event.value, e.job, e.status.value, e.attempt) for e in events]


def test_jobs_run_in_dependency_order(write_jobs, make_executor, tmp_path):
    order = tmp_path / "order.txt"
    jobfile = load(
        write_jobs(f"""
        [defaults]
        env = {{ ORDER = "{order}" }}
        [jobs.report]
        command = 'echo report >> "$ORDER"'
        depends_on = ["load"]
        [jobs.load]
        command = 'echo load >> "$ORDER"'
        depends_on = ["transform"]
        [jobs.extract]
        command = 'echo extract >> "$ORDER"'
        schedule = "0 6 * * *"
        [jobs.transform]
        command = 'echo transform >> "$ORDER"'
        depends_on = ["extract"]
    """)
    )
    outcomes = make_executor(jobfile).execute(runs_of(jobfile))
    assert order.read_text().split() == ["extract", "transform", "load", "report"]
    assert [o.status for o in outcomes] == [RunStatus.SUCCESS] * 4


def test_independent_jobs_run_at_the_same_time(write_jobs, make_executor, tmp_path):
    spans = tmp_path / "spans"
    spans.mkdir()
    command = (
        f"date +%s.%N > {spans}/$CRONFLOW_JOB; sleep 0.5; date +%s.%N >> {spans}/$CRONFLOW_JOB"
    )
    jobfile = load(
        write_jobs(f"""
        [jobs.a]
        command = '{command}'
        [jobs.b]
        command = '{command}'
    """)
    )
    make_executor(jobfile).execute(runs_of(jobfile))
    (a_start, a_end), (b_start, b_end) = (
        [float(x) for x in (spans / name).read_text().split()] for name in ("a", "b")
    )
    assert a_start < b_end and b_start < a_end, "the two sleeps did not overlap"


def test_max_parallel_one_runs_jobs_one_after_another(write_jobs, make_executor, tmp_path):
    spans = tmp_path / "spans"
    spans.mkdir()
    command = (
        f"date +%s.%N > {spans}/$CRONFLOW_JOB; sleep 0.2; date +%s.%N >> {spans}/$CRONFLOW_JOB"
    )
    jobfile = load(
        write_jobs(f"""
        [cronflow]
        max_parallel = 1
        [jobs.a]
        command = '{command}'
        [jobs.b]
        command = '{command}'
    """)
    )
    make_executor(jobfile).execute(runs_of(jobfile))
    (a_start, a_end), (b_start, b_end) = (
        [float(x) for x in (spans / name).read_text().split()] for name in ("a", "b")
    )
    assert a_end <= b_start or b_end <= a_start


def test_a_job_failing_until_its_third_try_is_retried_with_backoff(
    write_jobs, make_executor, clock
):
    jobfile = load(
        write_jobs("""
        [jobs.flaky]
        command = '[ "$CRONFLOW_ATTEMPT" -ge 3 ] || { echo "try $CRONFLOW_ATTEMPT failed" >&2; exit 7; }'
        retries = 4
        retry_delay = "10s"
        retry_backoff = 3
        retry_max_delay = "1m"
    """)
    )
    [outcome] = make_executor(jobfile).execute(runs_of(jobfile))
    assert outcome.status is RunStatus.SUCCESS and outcome.attempts == 3
    assert clock.sleeps == [10.0, 30.0]
    assert trace(jobfile) == [
        ("started", "flaky", "running", 1),
        ("finished", "flaky", "failed", 1),
        ("started", "flaky", "running", 2),
        ("finished", "flaky", "failed", 2),
        ("started", "flaky", "running", 3),
        ("finished", "flaky", "success", 3),
    ]
    failed = Store(jobfile.settings.state_dir).read().events[1]
    assert failed.exit_code == 7 and failed.stderr_tail == "try 1 failed"
    assert failed.reason == "exit status 7" and failed.max_attempts == 5


def test_retry_delays_are_capped_by_retry_max_delay(write_jobs, make_executor, clock):
    jobfile = load(
        write_jobs("""
        [jobs.broken]
        command = "exit 1"
        retries = 4
        retry_delay = "1m"
        retry_max_delay = "3m"
    """)
    )
    [outcome] = make_executor(jobfile).execute(runs_of(jobfile))
    assert outcome.status is RunStatus.FAILED and outcome.attempts == 5
    assert clock.sleeps == [60.0, 120.0, 180.0, 180.0]


def test_downstream_of_a_failure_is_upstream_failed_and_never_started(
    write_jobs, make_executor, tmp_path
):
    marker = tmp_path / "started"
    jobfile = load(
        write_jobs(f"""
        [jobs.extract]
        command = "exit 2"
        [jobs.load]
        command = "touch {marker}-load"
        depends_on = ["extract"]
        [jobs.report]
        command = "touch {marker}-report"
        depends_on = ["load"]
        [jobs.independent]
        command = "true"
    """)
    )
    outcomes = make_executor(jobfile).execute(runs_of(jobfile))
    assert {o.key.job: o.status for o in outcomes} == {
        "extract": RunStatus.FAILED,
        "load": RunStatus.UPSTREAM_FAILED,
        "report": RunStatus.UPSTREAM_FAILED,
        "independent": RunStatus.SUCCESS,
    }
    assert not list(tmp_path.glob("started-*"))
    recorded = [t for t in trace(jobfile) if t[1] in ("load", "report")]
    assert recorded == [
        ("upstream_failed", "load", "upstream_failed", 0),
        ("upstream_failed", "report", "upstream_failed", 0),
    ]


def test_a_timed_out_job_is_recorded_and_retried(write_jobs, make_executor):
    jobfile = load(
        write_jobs("""
        [jobs.slow]
        command = "sleep 30"
        timeout = "0.2s"
        kill_grace = "0.2s"
        retries = 1
        retry_delay = 5
    """)
    )
    [outcome] = make_executor(jobfile).execute(runs_of(jobfile))
    assert outcome.status is RunStatus.TIMED_OUT and outcome.attempts == 2
    finished = [
        e for e in Store(jobfile.settings.state_dir).read().events if e.event is EventType.FINISHED
    ]
    assert [e.status for e in finished] == [RunStatus.TIMED_OUT] * 2
    assert finished[0].signal == 15 and finished[0].exit_code is None


def test_a_job_sees_cronflow_variables_its_env_and_its_cwd(write_jobs, make_executor, tmp_path):
    workdir = tmp_path / "work"
    workdir.mkdir()
    jobfile = load(
        write_jobs("""
        [defaults]
        env = { SHARED = "from-defaults", OVERRIDDEN = "defaults" }
        [jobs.show]
        command = 'env | grep -E "^(CRONFLOW_|SHARED|OVERRIDDEN|PORT)" | sort > seen.env; pwd >> seen.env'
        schedule = "30 23 * * *"
        timezone = "America/New_York"
        cwd = "work"
        env = { OVERRIDDEN = "job", PORT = 8080 }
    """)
    )
    [outcome] = make_executor(jobfile).execute(runs_of(jobfile))
    lines = (workdir / "seen.env").read_text().splitlines()
    seen = dict(line.split("=", 1) for line in lines[:-1])
    run_id = seen.pop("CRONFLOW_RUN_ID")
    assert seen == {
        "CRONFLOW_ATTEMPT": "1",
        "CRONFLOW_DATE": "2026-01-14",
        "CRONFLOW_JOB": "show",
        "CRONFLOW_LOGICAL_TIME": "2026-01-14T23:30:00-05:00",
        "CRONFLOW_RUN_KIND": "backfill",
        "OVERRIDDEN": "job",
        "PORT": "8080",
        "SHARED": "from-defaults",
    }
    assert run_id.startswith("20260115T043000Z-")
    assert lines[-1] == str(workdir)


def test_the_runs_of_one_job_on_a_date_go_one_at_a_time_oldest_first(
    write_jobs, make_executor, tmp_path
):
    jobfile = load(
        write_jobs(f"""
        [jobs.often]
        command = 'echo "$CRONFLOW_LOGICAL_TIME" >> {tmp_path}/ticks'
        schedule = "0 */3 * * *"
        timezone = "Europe/Berlin"
    """)
    )
    make_executor(jobfile).execute(runs_of(jobfile))
    assert (tmp_path / "ticks").read_text().split() == [
        f"2026-01-14T{hour:02d}:00:00+01:00" for hour in range(0, 24, 3)
    ]


def test_succeeded_runs_are_skipped_unless_rerun_all(write_jobs, make_executor, tmp_path):
    jobfile = load(
        write_jobs(f"""
        [jobs.ok]
        command = "echo x >> {tmp_path}/ok"
        [jobs.bad]
        command = "echo x >> {tmp_path}/bad; exit 1"
    """)
    )
    executor = make_executor(jobfile)
    executor.execute(runs_of(jobfile))
    second = executor.execute(runs_of(jobfile))
    assert [(o.key.job, o.already_done) for o in second] == [("ok", True), ("bad", False)]
    assert (tmp_path / "ok").read_text() == "x\n" and (tmp_path / "bad").read_text() == "x\nx\n"
    executor.execute(runs_of(jobfile), Rerun.ALL)
    assert (tmp_path / "ok").read_text() == "x\nx\n"
    executor.execute(runs_of(jobfile), Rerun.NONE)
    assert (tmp_path / "bad").read_text() == "x\nx\nx\n"


def test_resuming_after_a_failure_runs_only_what_did_not_succeed(
    write_jobs, make_executor, tmp_path
):
    flag = tmp_path / "fixed"
    jobfile = load(
        write_jobs(f"""
        [jobs.extract]
        command = "echo extract >> {tmp_path}/ran"
        [jobs.load]
        command = "echo load >> {tmp_path}/ran; test -e {flag}"
        depends_on = ["extract"]
        [jobs.report]
        command = "echo report >> {tmp_path}/ran"
        depends_on = ["load"]
    """)
    )
    executor = make_executor(jobfile)
    executor.execute(runs_of(jobfile))
    flag.touch()
    outcomes = executor.execute(runs_of(jobfile))
    assert (tmp_path / "ran").read_text().split() == ["extract", "load", "load", "report"]
    assert all(o.status is RunStatus.SUCCESS for o in outcomes)


def test_selecting_a_job_whose_upstream_never_ran_does_not_run_it(
    write_jobs, make_executor, tmp_path
):
    jobfile = load(
        write_jobs(f"""
        [jobs.extract]
        command = "true"
        [jobs.load]
        command = "touch {tmp_path}/loaded"
        depends_on = ["extract"]
    """)
    )
    executor = make_executor(jobfile)
    [outcome] = executor.execute(runs_of(jobfile, ["load"]))
    assert outcome.status is RunStatus.UPSTREAM_FAILED
    assert "extract" in outcome.reason and "has not run" in outcome.reason
    assert not (tmp_path / "loaded").exists()
    executor.execute(runs_of(jobfile, ["extract"]))
    [outcome] = executor.execute(runs_of(jobfile, ["load"]))
    assert outcome.status is RunStatus.SUCCESS and (tmp_path / "loaded").exists()


def test_downstream_adds_the_jobs_that_depend_on_the_selected_ones(write_jobs):
    jobfile = load(
        write_jobs("""
        [jobs.a]
        command = "true"
        [jobs.b]
        command = "true"
        depends_on = ["a"]
        [jobs.c]
        command = "true"
        depends_on = ["b"]
        [jobs.other]
        command = "true"
    """)
    )
    assert selection.select_jobs(jobfile, ["b"], downstream=True) == ["b", "c"]
    assert selection.select_jobs(jobfile, ["b"], downstream=False) == ["b"]
    assert selection.select_jobs(jobfile, [], downstream=False) == ["a", "other", "b", "c"]


def test_a_daily_job_waits_for_its_hourly_upstreams_latest_tick(
    write_jobs, make_executor, tmp_path
):
    jobfile = load(
        write_jobs(f"""
        [jobs.hourly]
        command = 'echo "$CRONFLOW_LOGICAL_TIME" >> {tmp_path}/hours; [ "$CRONFLOW_LOGICAL_TIME" != "2026-01-14T05:00:00+00:00" ]'
        schedule = "0 * * * *"
        [jobs.daily]
        command = "echo done > {tmp_path}/daily"
        schedule = "30 5 * * *"
        depends_on = ["hourly"]
    """)
    )
    runs = runs_of(jobfile)
    [daily] = [r for r in runs if r.job == "daily"]
    assert [(k.job, k.logical_time.hour) for k in daily.upstreams] == [("hourly", 5)]
    outcomes = {o.key: o for o in make_executor(jobfile).execute(runs)}
    assert outcomes[daily.key].status is RunStatus.UPSTREAM_FAILED
    assert not (tmp_path / "daily").exists()
    assert len((tmp_path / "hours").read_text().split()) == 24


def ran_then_broke(write_jobs, make_executor, tmp_path):
    """extract -> load both succeed once; then extract starts failing."""
    flag = tmp_path / "broken"
    jobfile = load(
        write_jobs(f"""
        [jobs.extract]
        command = "test ! -e {flag}"
        [jobs.load]
        command = "true"
        depends_on = ["extract"]
    """)
    )
    executor = make_executor(jobfile)
    executor.execute(runs_of(jobfile))
    flag.touch()
    return jobfile, executor


def test_rerun_none_records_nothing_for_a_run_already_recorded(write_jobs, make_executor, tmp_path):
    jobfile, executor = ran_then_broke(write_jobs, make_executor, tmp_path)
    executor.execute(runs_of(jobfile), Rerun.ALL)  # extract fails now: load is held back
    history = Store(jobfile.settings.state_dir).index()
    [_, load_run] = runs_of(jobfile)
    assert history.status(load_run.key) is RunStatus.UPSTREAM_FAILED
    executor.execute(runs_of(jobfile, ["extract"]))  # still failing
    [outcome] = executor.execute(runs_of(jobfile, ["load"]), Rerun.NONE)
    assert outcome.already_done and outcome.status is RunStatus.UPSTREAM_FAILED
    assert [
        e.event.value for e in Store(jobfile.settings.state_dir).read().events if e.job == "load"
    ] == ["started", "finished", "upstream_failed"]


def test_a_succeeded_run_is_not_recorded_held_back_when_its_upstream_fails_later(
    write_jobs, make_executor, tmp_path
):
    jobfile, executor = ran_then_broke(write_jobs, make_executor, tmp_path)
    executor.execute(runs_of(jobfile, ["extract"]), Rerun.ALL)
    [outcome] = executor.execute(runs_of(jobfile, ["load"]))
    assert outcome.already_done and outcome.status is RunStatus.SUCCESS


def test_a_disabled_job_runs_only_when_named(write_jobs, make_executor, tmp_path):
    jobfile = load(
        write_jobs(f"""
        [jobs.active]
        command = "echo active >> {tmp_path}/ran"
        [jobs.paused]
        command = "echo paused >> {tmp_path}/ran"
        enabled = false
        [jobs.after_active]
        command = "echo after >> {tmp_path}/ran"
        depends_on = ["active"]
    """)
    )
    assert selection.select_jobs(jobfile, [], downstream=False) == ["active", "after_active"]
    make_executor(jobfile).execute(runs_of(jobfile))
    assert (tmp_path / "ran").read_text().split() == ["active", "after"]
    make_executor(jobfile).execute(runs_of(jobfile, ["paused"]))
    assert (tmp_path / "ran").read_text().split() == ["active", "after", "paused"]


def test_a_job_runs_in_its_own_shell(write_jobs, make_executor, tmp_path):
    jobfile = load(
        write_jobs(f"""
        [jobs.bashism]
        command = '[[ "$BASH_VERSION" ]] && echo "in bash" > {tmp_path / "out"}'
        shell = "/bin/bash"
    """)
    )
    [outcome] = make_executor(jobfile).execute(
        selection.runs_for_date(jobfile, ["bashism"], date(2026, 1, 14), RunKind.BACKFILL)
    )
    assert outcome.status is RunStatus.SUCCESS
    assert (tmp_path / "out").read_text() == "in bash\n"
