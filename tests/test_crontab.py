"""import-crontab and init: cron users switch in one step."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tomllib
from datetime import datetime
from zoneinfo import ZoneInfo

from croniter import croniter

from cronflow import config
from cronflow.crontab import translate
from tests.conftest import run_cli

SYSTEM_CRONTAB = r"""
# /etc/crontab: system-wide crontab
SHELL=/bin/bash
PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
MAILTO="ops@example.org"
CRON_TZ=Europe/Berlin

# Nightly database dump
30 2 * * *   nobody    pg_dump app > /var/backups/app-$(date +\%F).sql
# Rotate logs
17 *  * * *  root      cd / && run-parts --report /etc/cron.hourly
@daily       root      /usr/local/bin/cleanup.sh --days 30
*/15 9-17 * * MON-FRI  root  /usr/local/bin/poll.sh
0 4 1 JAN,JUL *  root  /usr/local/bin/rotate-keys
BACKUP_TARGET=s3://bucket/path
45 23 * * 7  root  /usr/local/bin/weekly-backup "$BACKUP_TARGET"
@reboot root /usr/local/bin/on-boot.sh
0 0 * * * root echo hello % world
"""


def test_a_system_crontab_round_trips_into_a_valid_jobs_file(tmp_path):
    (tmp_path / "crontab").write_text(SYSTEM_CRONTAB)
    result = run_cli("import-crontab", "crontab", "--system", "-o", "jobs.toml", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "not translated: line 17: @reboot" in result.stderr
    assert "not translated: line 18: 0 0 * * * root echo hello % world" in result.stderr
    assert ('check: line 9: runs as user nobody (user = "nobody"), which needs cronflow to run '
            "as root, as cron did") in result.stderr
    text = (tmp_path / "jobs.toml").read_text()
    assert "#   line 17: @reboot root /usr/local/bin/on-boot.sh" in text  # listed, not dropped
    validate = run_cli("validate", cwd=tmp_path)
    assert validate.returncode == (0 if os.geteuid() == 0 else 2), validate.stderr
    document = tomllib.loads(text)
    jobs = document["jobs"]
    assert list(jobs) == ["pg_dump", "cd", "cleanup_sh", "poll_sh", "rotate_keys",
                          "weekly_backup"]
    assert document["cronflow"]["timezone"] == "Europe/Berlin"
    assert document["alerts"] == {"urls": ["mailto://localhost?to=ops@example.org"],
                                  "on": ["failure"]}
    assert document["defaults"]["env"]["PATH"].startswith("/usr/local/sbin")
    assert jobs["weekly_backup"]["env"] == {"BACKUP_TARGET": "s3://bucket/path"}
    assert jobs["pg_dump"]["description"] == "Nightly database dump"
    assert jobs["pg_dump"]["user"] == "nobody"
    assert "user" not in jobs["cd"]  # root's lines run as cronflow, which is root
    assert jobs["pg_dump"]["command"] == (
        "/bin/bash -c 'pg_dump app > /var/backups/app-$(date +%F).sql'")
    assert jobs["cleanup_sh"]["schedule"] == "@daily"


def test_imported_schedules_fire_when_cron_would(tmp_path):
    (tmp_path / "crontab").write_text(SYSTEM_CRONTAB)
    run_cli("import-crontab", "crontab", "--system", "-o", "jobs.toml", cwd=tmp_path)
    start = "2026-04-01T00:00:00+00:00"  # no DST change in the next ticks
    ours = json.loads(run_cli("next", "--json", "--count", "6", "--from", start,
                              cwd=tmp_path).stdout)["ticks"]
    zone = ZoneInfo("Europe/Berlin")
    jobs = tomllib.loads((tmp_path / "jobs.toml").read_text())["jobs"]
    for name, table in jobs.items():
        cron = croniter(table["schedule"], datetime.fromisoformat(start).astimezone(zone))
        expected = [cron.get_next(datetime).isoformat() for _ in range(6)]
        assert [t["logical_time"] for t in ours if t["job"] == name] == expected, name


def test_a_user_crontab_from_standard_input():
    result = subprocess.run([sys.executable, "-m", "cronflow", "import-crontab", "-"],
                            input="# say hello\n*/5 * * * * echo hello \\% there\n",
                            capture_output=True, text=True)
    assert result.returncode == 0
    jobs = tomllib.loads(result.stdout)["jobs"]
    assert jobs == {"echo": {"command": "echo hello % there", "schedule": "*/5 * * * *",
                             "description": "say hello"}}


def test_crontab_lines_with_bad_schedules_are_listed():
    translation = translate("61 * * * * echo x\n0 0 * * * echo ok\nnot a line\n", system=False)
    assert list(translation.document["jobs"]) == ["echo"]
    assert [line.split(":")[0] for line in translation.untranslated] == ["line 1", "line 3"]


def test_import_never_overwrites_a_file(tmp_path):
    (tmp_path / "crontab").write_text("0 0 * * * true\n")
    (tmp_path / "jobs.toml").write_text("mine")
    result = run_cli("import-crontab", "crontab", "-o", "jobs.toml", cwd=tmp_path)
    assert result.returncode == 2 and "already exists" in result.stderr
    assert (tmp_path / "jobs.toml").read_text() == "mine"


def test_init_writes_a_starter_that_loads_and_runs(tmp_path):
    assert run_cli("init", cwd=tmp_path).returncode == 0
    jobfile = config.load(tmp_path / "jobs.toml")
    assert list(jobfile.jobs) == ["extract", "report"]
    run = run_cli("run", "--date", "2026-01-14", cwd=tmp_path)
    assert run.returncode == 0 and "2 runs: 2 success" in run.stdout
    again = run_cli("init", cwd=tmp_path)
    assert again.returncode == 2 and "already exists" in again.stderr
