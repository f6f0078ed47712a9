"""The shipped alerting rules (`cronflow metrics --rules`), proven by Prometheus's own rule
tester: `promtool test rules` evaluates them over the metrics cronflow wrote for a real
history (jobs run by a real engine), with the labels a scrape of node_exporter adds (`job`,
`instance`), on two hosts that share an asset's name. Each rule fires where it must and
stays quiet everywhere else. promtool comes from Debian's `prometheus` package."""

from __future__ import annotations

import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import yaml  # apprise's dependency
from prometheus_client.parser import text_string_to_metric_families

from cronflow.act import pausing
from cronflow.tell.metrics import alerting_rules
from tests.conftest import load, real_engine, run_cli
from tests.fakes import FakeClock
from tests.system_tools import installed

START = datetime(2026, 1, 14, 0, 0, 30, tzinfo=UTC)
SCRAPE = {"job": "node", "instance": "host-a:9100"}  # what Prometheus adds to every series
MINUTES = 400  # how long the test's series last

JOBS = """\
[cronflow]
metrics_file = "textfile/cronflow.prom"
instance = "etl"
[jobs.good]
command = "true"
schedule = "0 * * * *"
produces = ["report"]
max_runtime = "1h"
finish_by = "+30m"
[jobs.broken]
command = "test -e broke || {{ touch broke; exit 0; }}; exit 3"
schedule = "0 * * * *"
produces = ["table"]
[jobs.never]
command = "exit 1"
schedule = "0 * * * *"
produces = ["lake"]
finish_by = "+30m"
[jobs.paused]
command = "exit 1"
schedule = "0 * * * *"
[assets.table]
fresh_within = "2h"
[assets.lake]
fresh_within = "10h"
deadline = "+30m"
"""


@pytest.fixture(scope="module")
def promtool() -> str:
    missing = installed("promtool", "prometheus")
    if missing:
        pytest.skip(missing)
    return "promtool"


def history(tmp_path: Path) -> tuple[str, datetime]:
    """Six hourly ticks (00:00 to 05:00): `good` always succeeds, `broken` succeeds once
    then fails, `never` never succeeds; `paused` never succeeds either, and is paused after
    them. The metrics file as the last tick left it."""
    (tmp_path / "textfile").mkdir()
    (tmp_path / "jobs.toml").write_text(JOBS.replace("{{", "{").replace("}}", "}"))
    jobfile = load(tmp_path / "jobs.toml")
    clock = FakeClock(START)
    for hour in range(6):
        if hour:
            clock.advance(timedelta(hours=1))
        real_engine(jobfile, clock).tick()
    engine = real_engine(jobfile, clock)
    pausing.pause(
        engine.store, engine.locks, ["paused"], by="ops", now=clock.now(), until=None, reason=""
    )
    engine.tick()  # nothing due: the metrics file is written again
    return (tmp_path / "textfile" / "cronflow.prom").read_text(), clock.now()


def series(exposition: str, at: datetime, scrape: dict[str, str]) -> list[dict[str, str]]:
    """promtool input series holding the file's samples from time 0 on, with timestamps
    counted from `at` (promtool's time 0), and the scrape's labels added."""
    found = []
    for family in text_string_to_metric_families(exposition):
        for sample in family.samples:
            value = sample.value
            if sample.name.endswith("_timestamp_seconds"):
                value -= at.timestamp()
            found.append(one(sample.name, {**sample.labels, **scrape}, value))
    return found


def one(name: str, labels: dict[str, str], value: float) -> dict[str, str]:
    """A series that keeps `value` for the whole test."""
    text = ",".join(f'{key}="{label}"' for key, label in labels.items())
    return {"series": f"{name}{{{text}}}", "values": f"{value!r}+0x{MINUTES}"}


def alert(summary: str, **labels: str) -> dict:
    return {"exp_labels": labels, "exp_annotations": {"summary": summary}}


def test_the_shipped_rules_fire_where_they_must_and_nowhere_else(tmp_path, promtool):
    exposition, at = history(tmp_path)
    labels = {
        name
        for family in text_string_to_metric_families(exposition)
        for sample in family.samples
        for name in sample.labels
    }
    assert labels == {"cronflow_instance", "cronflow_job", "result", "asset"}  # never `job`
    # A second host has an asset of the same name, fresh, and ticks too.
    b = {"cronflow_instance": "etl", "job": "node", "instance": "host-b:9100"}
    host_b = [
        one("cronflow_asset_fresh_timestamp_seconds", {**b, "asset": "table"}, 0.0),
        one("cronflow_asset_fresh_within_seconds", {**b, "asset": "table"}, 7200.0),
        one("cronflow_tick_last_timestamp_seconds", b, 0.0),
        one("cronflow_job_slow", {**b, "cronflow_job": "good"}, 1.0),  # a run goes on there
    ]
    a = {"cronflow_instance": "etl", **SCRAPE}
    page, warn = {"severity": "page"}, {"severity": "warning"}
    tests = {
        "rule_files": ["rules.yml"],
        "evaluation_interval": "1m",
        "tests": [
            {
                "interval": "1m",
                "input_series": series(exposition, at, SCRAPE) + host_b,
                "alert_rule_test": [
                    {
                        "eval_time": "1m",
                        "alertname": "CronflowJobNotSucceeding",
                        "exp_alerts": [
                            alert(
                                "broken on host-a:9100 has not succeeded in two intervals",
                                cronflow_job="broken",
                                **a,
                                **page,
                            ),
                            alert(
                                "never on host-a:9100 has not succeeded in two intervals",
                                cronflow_job="never",
                                **a,
                                **page,
                            ),
                        ],
                    },
                    {
                        "eval_time": "1m",
                        "alertname": "CronflowJobFailing",
                        "exp_alerts": [
                            alert(
                                "broken on host-a:9100 failed 5 runs in a row",
                                cronflow_job="broken",
                                **a,
                                **warn,
                            ),
                            alert(
                                "never on host-a:9100 failed 6 runs in a row",
                                cronflow_job="never",
                                **a,
                                **warn,
                            ),
                            alert(
                                "paused on host-a:9100 failed 6 runs in a row",
                                cronflow_job="paused",
                                **a,
                                **warn,
                            ),
                        ],
                    },
                    {
                        "eval_time": "1m",
                        "alertname": "CronflowAssetStale",
                        "exp_alerts": [
                            alert("table on host-a:9100 is stale", asset="table", **a, **warn)
                        ],
                    },
                    {
                        "eval_time": "1m",
                        "alertname": "CronflowJobSlow",
                        "exp_alerts": [
                            alert(
                                "good on host-b:9100 runs past its max_runtime",
                                cronflow_job="good",
                                **b,
                                **warn,
                            )
                        ],
                    },
                    {
                        "eval_time": "1m",
                        "alertname": "CronflowJobLate",
                        "exp_alerts": [
                            alert("lake on host-a:9100 is late", asset="lake", **a, **page),
                            alert(
                                "never on host-a:9100 is late", cronflow_job="never", **a, **page
                            ),
                        ],
                    },
                    {"eval_time": "1m", "alertname": "CronflowNotTicking", "exp_alerts": []},
                    {
                        "eval_time": "6m",
                        "alertname": "CronflowNotTicking",
                        "exp_alerts": [
                            alert(
                                "cronflow etl on host-a:9100 has not decided anything for 5 minutes",
                                **a,
                                **page,
                            ),
                            alert(
                                "cronflow etl on host-b:9100 has not decided anything for 5 minutes",
                                **b,
                                **page,
                            ),
                        ],
                    },
                    {
                        # The never-produced lake is new for its first 10 hours, then stale;
                        # nothing ran for 5 hours: the report is 2 intervals old too.
                        "eval_time": "5h10m",
                        "alertname": "CronflowAssetStale",
                        "exp_alerts": [
                            alert("lake on host-a:9100 is stale", asset="lake", **a, **warn),
                            alert("report on host-a:9100 is stale", asset="report", **a, **warn),
                            alert("table on host-a:9100 is stale", asset="table", **a, **warn),
                            alert("table on host-b:9100 is stale", asset="table", **b, **warn),
                        ],
                    },
                ],
            }
        ],
    }
    for case in tests["tests"][0]["alert_rule_test"]:
        for expected in case["exp_alerts"]:
            expected["exp_labels"]["alertname"] = case["alertname"]
    (tmp_path / "rules.yml").write_text(alerting_rules())
    (tmp_path / "rules_test.yml").write_text(yaml.safe_dump(tests, sort_keys=False))
    checked = subprocess.run(
        [promtool, "test", "rules", "rules_test.yml"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_the_rules_and_the_metrics_pass_promtool_checks(tmp_path, promtool):
    printed = run_cli("metrics", "--rules", cwd=tmp_path)
    assert printed.returncode == 0 and printed.stdout == alerting_rules()
    (tmp_path / "rules.yml").write_text(printed.stdout)
    rules = subprocess.run(
        [promtool, "check", "rules", "rules.yml"], cwd=tmp_path, capture_output=True, text=True
    )
    assert rules.returncode == 0 and "6 rules found" in rules.stdout, rules.stdout + rules.stderr
    exposition, _ = history(tmp_path)
    lint = subprocess.run(
        [promtool, "check", "metrics"], input=exposition, capture_output=True, text=True
    )
    assert lint.returncode == 0, lint.stdout + lint.stderr
