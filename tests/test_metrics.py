"""Prometheus metrics: read back by an independent parser (prometheus_client's), compared with
what the log says, never torn under concurrent writers, counters that survive retention."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from cronflow.act import idle_tick
from cronflow.decide import selection
from cronflow.model import EventType, RunKind, RunStatus
from cronflow.state.store import Store
from cronflow.tell.metrics import FAMILIES, exposition
from tests.conftest import load, real_engine, refused, run_cli
from tests.fakes import FakeClock
from tests.waiting import wait_for

DAY = date(2026, 1, 14)

JOBS = """
    [cronflow]
    metrics_file = "textfile/cronflow.prom"
    [jobs.extract]
    command = "echo rows"
    schedule = "0 6 * * *"
    [jobs.load]
    command = "echo refused >&2; exit 3"
    depends_on = ["extract"]
    [jobs.report]
    command = "true"
    depends_on = ["load"]
"""


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """{(name, labels): value} of every sample, as Prometheus's own parser reads them; every
    one names the instance that wrote it (left out of the labels returned)."""
    found = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            labels = dict(sample.labels)
            assert labels.pop("cronflow_instance", None), sample
            assert not {"job", "instance"} & labels.keys(), sample  # Prometheus's own
            found[(sample.name, tuple(sorted(labels.items())))] = sample.value
    return found


def pipeline(write_jobs, tmp_path):
    (tmp_path / "textfile").mkdir()
    return load(write_jobs(JOBS))


def run_day(jobfile, clock, day=DAY):
    runs = selection.runs_for_date(
        jobfile, selection.select_jobs(jobfile, [], False), day, RunKind.BACKFILL
    )
    return real_engine(jobfile, clock).executor.execute(runs)


def test_the_file_holds_what_the_log_says_after_every_run(write_jobs, tmp_path, clock):
    jobfile = pipeline(write_jobs, tmp_path)
    run_day(jobfile, clock)
    run_day(jobfile, clock, DAY + timedelta(days=1))
    found = samples(jobfile.settings.metrics_file.read_text())
    events = Store(jobfile.settings.state_dir).read().events
    finished = {e.job: e for e in events if e.event is EventType.FINISHED}  # the newest
    extract, load_ = finished["extract"], finished["load"]

    def value(name, **labels):
        return found[(name, tuple(sorted(labels.items())))]

    assert value("cronflow_job_last_success_timestamp_seconds", cronflow_job="extract") == round(
        extract.ended_at.timestamp(), 6
    )
    assert value("cronflow_job_last_completion_timestamp_seconds", cronflow_job="load") == round(
        load_.ended_at.timestamp(), 6
    )
    assert value("cronflow_job_last_duration_seconds", cronflow_job="load") == load_.duration_s
    assert value("cronflow_job_last_exit_code", cronflow_job="load") == 3
    assert value("cronflow_job_runs_total", cronflow_job="extract", result="success") == 2
    assert value("cronflow_job_runs_total", cronflow_job="load", result="failed") == 2
    assert value("cronflow_job_runs_total", cronflow_job="report", result="upstream_failed") == 2
    assert value("cronflow_job_runs_total", cronflow_job="report", result="success") == 0
    assert value("cronflow_job_failing_streak", cronflow_job="load") == 2
    assert value("cronflow_job_failing_streak", cronflow_job="extract") == 0
    assert value("cronflow_job_running", cronflow_job="load") == 0
    assert ("cronflow_job_last_success_timestamp_seconds", (("cronflow_job", "load"),)) not in found


def test_a_tick_writes_its_time_and_an_idle_tick_renews_only_that(write_jobs, tmp_path):
    jobfile = pipeline(write_jobs, tmp_path)
    clock = FakeClock(datetime(2026, 1, 14, 6, 0, 30, tzinfo=UTC))
    real_engine(jobfile, clock).tick()
    path = jobfile.settings.metrics_file
    first = path.read_text()
    assert samples(first)[("cronflow_tick_last_timestamp_seconds", ())] == clock.now().timestamp()
    later = clock.now() + timedelta(minutes=7)
    assert idle_tick.answer(str(jobfile.path), later)
    renewed = path.read_text()
    assert samples(renewed)[("cronflow_tick_last_timestamp_seconds", ())] == later.timestamp()
    unchanged = [line for line in first.splitlines() if "tick_last" not in line]
    assert [line for line in renewed.splitlines() if "tick_last" not in line] == unchanged


def test_renewing_the_tick_line_splits_the_file_at_newlines_only(tmp_path):
    """A \\r, U+2028 or U+0085 inside a line (a label value) stays inside it: once, the
    idle tick broke such a line in two and node_exporter could read none of the file."""
    from cronflow.tell.tick_marks import TICK_METRIC, renew_tick_metric

    state = tmp_path / "state"
    (state / "locks").mkdir(parents=True)
    path = tmp_path / "cronflow.prom"
    odd = 'cronflow_asset_fresh{asset="a\rb\u2028c\x85d"} 1\n'
    path.write_text(f"{odd}{TICK_METRIC} 1.0\n", encoding="utf-8")
    renew_tick_metric(str(path), 2.5, str(state))
    with open(path, encoding="utf-8", newline="") as renewed:
        assert renewed.read() == f"{odd}{TICK_METRIC} 2.5\n"


def test_help_and_type_lines_are_the_same_on_every_write(write_jobs, tmp_path, clock):
    jobfile = pipeline(write_jobs, tmp_path)
    path = jobfile.settings.metrics_file
    comments = []
    for day in range(3):
        run_day(jobfile, clock, DAY + timedelta(days=day))
        comments.append([line for line in path.read_text().splitlines() if line.startswith("#")])
    assert comments[0] == comments[1] == comments[2]
    assert comments[0][0] == f"# cronflow instance: {jobfile.settings.state_dir}"
    assert len(comments[0]) == 1 + 2 * len(FAMILIES)  # the instance, then HELP and TYPE of each


def test_cronflow_metrics_prints_what_the_file_holds(write_jobs, tmp_path, clock):
    jobfile = pipeline(write_jobs, tmp_path)
    run_day(jobfile, clock)
    printed = run_cli("metrics", "--jobs", str(jobfile.path), cwd=tmp_path)
    assert printed.returncode == 0, printed.stderr
    assert printed.stdout == jobfile.settings.metrics_file.read_text()


WRITER = """
import sys
from pathlib import Path
from cronflow.tell.derived_files import write_atomically
path, stop, me = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3]
text = "".join(
    f"cronflow_job_running{{cronflow_instance=\\"{me}\\",cronflow_job=\\"{me}-{n}\\"}} {n}\\n"
    for n in range(500)
)
while not stop.exists():
    write_atomically(path, "# TYPE cronflow_job_running gauge\\n" + text + "# END\\n")
"""


def test_concurrent_writers_never_leave_a_torn_file(tmp_path):
    """Four real processes replace the file as fast as they can while it is read and parsed
    (200 times, and until two writers' files were read): every read is one whole file."""
    path, stop = tmp_path / "cronflow.prom", tmp_path / "stop"
    writers = [
        subprocess.Popen([sys.executable, "-c", WRITER, str(path), str(stop), f"w{n}"])
        for n in range(4)
    ]
    try:
        wait_for(path.exists, "a first metrics file")
        writers_seen, torn, reads = set(), 0, 0
        deadline = time.monotonic() + 60
        while reads < 200 or (len(writers_seen) < 2 and time.monotonic() < deadline):
            reads += 1
            text = path.read_text()
            found = samples(text.replace("# END\n", ""))
            torn += not (text.endswith("# END\n") and len(found) == 500)
            writers_seen.add(text.partition('cronflow_job="')[2][:2])
    finally:
        stop.touch()
        codes = [writer.wait(timeout=60) for writer in writers]
    assert codes == [0] * 4 and torn == 0
    assert len(writers_seen) > 1  # the reads did fall among several writers' files
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporaries left


def test_counters_survive_retention(write_jobs, tmp_path, clock):
    jobfile = pipeline(write_jobs, tmp_path)
    for day in range(20):
        run_day(jobfile, clock, DAY + timedelta(days=day))
    store = Store(jobfile.settings.state_dir)
    before = exposition(jobfile, store.index(), None)
    forgotten, _ = store.forget_before(datetime(2026, 2, 1, tzinfo=UTC))
    assert forgotten > 0
    after = exposition(jobfile, store.reindex(), None)  # rebuilt from the snapshot, even
    assert samples(after) == samples(before)
    assert (
        samples(after)[
            ("cronflow_job_runs_total", (("cronflow_job", "extract"), ("result", "success")))
        ]
        == 20
    )


def test_metrics_file_errors_are_clear(tmp_path):
    for value, problem in (
        ('"metrics.txt"', "does not end in .prom"),
        ('"missing/cronflow.prom"', "does not exist"),
    ):
        said = refused(
            tmp_path, f'[cronflow]\nmetrics_file = {value}\n[jobs.a]\ncommand = "true"\n'
        )
        assert problem in said and "metrics_file" in said


def test_a_failed_run_counts_once_however_many_tries(write_jobs, tmp_path, clock):
    (tmp_path / "textfile").mkdir()
    jobfile = load(
        write_jobs(
            """
            [cronflow]
            metrics_file = "textfile/cronflow.prom"
            [jobs.flaky]
            command = "exit 1"
            retries = 2
            retry_delay = "1m"
            """
        )
    )
    [outcome] = run_day(jobfile, clock)
    assert outcome.status is RunStatus.FAILED and outcome.attempts == 3
    found = samples(Path(jobfile.settings.metrics_file).read_text())
    assert (
        found[("cronflow_job_runs_total", (("cronflow_job", "flaky"), ("result", "failed")))] == 1
    )


def test_an_index_from_before_counting_counts_the_runs_it_holds(write_jobs, tmp_path, clock):
    """An index an earlier cronflow built has runs but no counts: they start from its runs."""
    jobfile = pipeline(write_jobs, tmp_path)
    for day in range(3):
        run_day(jobfile, clock, DAY + timedelta(days=day))
    store = Store(jobfile.settings.state_dir)
    counted = exposition(jobfile, store.index(), None)
    store.index().close()
    with sqlite3.connect(store.index_path) as db:  # as the earlier cronflow left it
        db.execute("DELETE FROM outcomes")
        db.execute("DELETE FROM meta WHERE key = 'outcomes_counted'")
    assert samples(exposition(jobfile, Store(store.state_dir).index(), None)) == samples(counted)


def test_another_cronflows_metrics_file_is_refused_not_taken_over(tmp_path):
    """Two cronflows given one file would each hide the other (node_exporter keeps one
    series of two): the file's first line names its writer, and another is refused."""
    (tmp_path / "textfile").mkdir()
    jobs = '[cronflow]\nmetrics_file = "textfile/cronflow.prom"\n{more}[jobs.a]\ncommand = "true"\n'
    (tmp_path / "jobs.toml").write_text(jobs.format(more='instance = "etl"\n'))
    assert run_cli("run", "--date", "2026-01-14", cwd=tmp_path).returncode == 0
    written = (tmp_path / "textfile" / "cronflow.prom").read_text()
    assert written.startswith("# cronflow instance: etl\n")
    other = tmp_path / "other"
    other.mkdir()
    (other / "jobs.toml").write_text(
        jobs.replace("textfile/", "../textfile/").format(more='instance = "backups"\n')
    )
    said = run_cli("validate", cwd=other)
    assert said.returncode == 2 and "Traceback" not in said.stderr
    assert 'is written by another cronflow (instance "etl")' in said.stderr
    assert "cronflow-NAME.prom" in said.stderr
    assert (tmp_path / "textfile" / "cronflow.prom").read_text() == written  # untouched
    # A cronflow named by its state directory (the default) may take a name of its own:
    (tmp_path / "jobs.toml").write_text(jobs.format(more=""))
    (tmp_path / "textfile" / "cronflow.prom").unlink()
    assert run_cli("run", "--date", "2026-01-15", cwd=tmp_path).returncode == 0
    assert (
        (tmp_path / "textfile" / "cronflow.prom")
        .read_text()
        .startswith(f"# cronflow instance: {tmp_path / '.cronflow'}\n")
    )
    (tmp_path / "jobs.toml").write_text(jobs.format(more='instance = "etl"\n'))
    assert run_cli("validate", cwd=tmp_path).returncode == 0
