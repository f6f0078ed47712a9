"""`cronflow monitors sync` against a server that answers as Healthchecks' Management API v3
and Cronitor's Monitor API are documented to, checking every field (tests/monitor_apis.py):
each job's check gets its schedule, zone and a grace from its timeout; a second sync
changes nothing; an edit changes only what it changed; --dry-run writes nothing."""

from __future__ import annotations

import pytest

from tests.conftest import run_cli
from tests.monitor_apis import KEY, start_monitor_apis
from tests.receivers import serving


@pytest.fixture
def apis():
    yield from serving(start_monitor_apis())


def jobs_file(folder, apis, schedule="*/5 * * * *", timeout='"10m"'):
    (folder / "jobs.toml").write_text(
        f'[cronflow]\ntimezone = "Europe/Berlin"\n'
        f'[defaults]\nping_url = "{apis.base}/ping/PINGKEY/{{job}}"\n'
        f'[jobs."Nightly.Export"]\ncommand = "true"\nschedule = "{schedule}"\n'
        f'timeout = {timeout}\nrandom_delay = "2m"\ndescription = "exports the day"\n'
        f'alert_tags = ["ops"]\n'
        '[jobs.after]\ncommand = "true"\ndepends_on = ["Nightly.Export"]\n'
        '[jobs.by_hand]\ncommand = "true"\n'
        f'[jobs.cron]\ncommand = "true"\nschedule = "0 6 * * 1-5"\ntimezone = "UTC"\n'
        f'ping_url = "https://cronitor.link/p/PINGKEY/cron-job"\n'
    )


def sync(folder, apis, *more, key=KEY):
    return run_cli(
        "monitors",
        "sync",
        "--cronitor-api",
        f"{apis.base}/cronitor",
        *more,
        cwd=folder,
        env={"HEALTHCHECKS_API_KEY": key, "CRONITOR_API_KEY": key},
    )


def test_sync_creates_each_check_from_the_job_then_changes_only_what_changed(tmp_path, apis):
    jobs_file(tmp_path, apis)
    first = sync(tmp_path, apis)
    assert first.returncode == 0, first.stdout + first.stderr
    assert apis.refused == []
    said = first.stdout.splitlines()
    assert said[0].startswith("Nightly.Export: created (")
    assert said[1].startswith("after: created (")
    assert (
        said[2]
        == "by_hand: skipped (it runs only when asked: a monitor has no schedule to expect it by)"
    )
    assert said[3].startswith("cron: created (")
    by_slug = {check["slug"]: check for check in apis.checks.values()}
    expected = {
        "name": "Nightly.Export",
        "tags": "cronflow ops",
        "desc": "exports the day",
        "schedule": "*/5 * * * *",
        "tz": "Europe/Berlin",
        "grace": 600 + 120 + 60,  # one try's timeout, the random delay, a minute
        "channels": "*",  # a new check alerts through the project's integrations
    }
    assert {key: by_slug["nightly-export"][key] for key in expected} == expected
    assert by_slug["after"]["schedule"] == "*/5 * * * *"  # its upstream's cadence
    assert by_slug["after"]["grace"] == 3600  # no timeout: an hour
    assert apis.monitors["cron-job"] == {
        "key": "cron-job",
        "name": "cron",
        "type": "job",
        "schedule": "0 6 * * 1-5",
        "timezone": "UTC",
        "grace_seconds": 3600,
        "tags": ["cronflow"],
        "note": "cronflow job cron",
    }
    writes = len(apis.writes)
    again = sync(tmp_path, apis)
    assert again.returncode == 0 and len(apis.writes) == writes  # idempotent: nothing sent
    assert [line.split(": ", 1)[1] for line in again.stdout.splitlines()] == [
        "unchanged",
        "unchanged",
        "skipped (it runs only when asked: a monitor has no schedule to expect it by)",
        "unchanged",
    ]
    apis.checks[next(iter(apis.checks))]["channels"] = "my-own"  # chosen in Healthchecks
    jobs_file(tmp_path, apis, schedule="0 * * * *")
    edited = sync(tmp_path, apis)
    assert "Nightly.Export: updated (schedule '0 * * * *')" in edited.stdout
    method, path, body = apis.writes[-2]  # Nightly.Export's update, then after's
    assert (method, body) == ("POST", {"schedule": "0 * * * *"}) and path != "/checks/"
    assert by_slug["nightly-export"]["channels"] == "my-own"  # an update keeps them
    assert KEY not in edited.stdout + edited.stderr


def test_a_dry_run_writes_nothing_and_a_missing_key_is_a_clear_error(tmp_path, apis):
    jobs_file(tmp_path, apis)
    dry = sync(tmp_path, apis, "--dry-run")
    assert dry.returncode == 0 and apis.writes == [] and apis.checks == {}
    assert "Nightly.Export: would be created (" in dry.stdout
    missing = run_cli(
        "monitors", "sync", cwd=tmp_path, env={"HEALTHCHECKS_API_KEY": "", "CRONITOR_API_KEY": KEY}
    )
    assert missing.returncode == 2 and "HEALTHCHECKS_API_KEY is not set" in missing.stderr
    wrong = sync(tmp_path, apis, key="wrong")
    assert wrong.returncode == 1 and "HTTP 401" in wrong.stdout and "wrong" not in wrong.stdout


def test_a_job_with_several_schedules_is_left_to_the_user(tmp_path, apis):
    (tmp_path / "jobs.toml").write_text(
        f'[jobs.shifts]\ncommand = "true"\nschedule = ["0 6 * * 1-5", "0 9 * * 6,7"]\n'
        f'ping_url = "{apis.base}/ping/PINGKEY/shifts"\n'
    )
    done = sync(tmp_path, apis)
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.splitlines() == [
        "shifts: skipped (it has several schedules: a monitor's check takes one)"
    ]
    assert apis.checks == {}
