"""import-crontab and init: cron users switch in one step."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tomllib
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from croniter import croniter

from cronflow.interop.crontab import FormatUnknown, Host, detect_format, translate
from cronflow.load import jobs_toml
from tests.conftest import run_cli

HOST = Host(
    zone="Europe/Paris",
    home_of=lambda user: f"/home/{user or 'me'}",
    is_account=lambda name: name in ("root", "backup", "sync"),
    is_command=lambda name: name in ("echo", "sync", "curl"),
)

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
    result = run_cli("import-crontab", "crontab", "-o", "jobs.toml", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "read crontab as a system crontab" in result.stderr  # told from the content
    assert "not translated: line 18: 0 0 * * * root echo hello % world" in result.stderr
    assert (
        'check: line 9: runs as user nobody (user = "nobody"), which needs cronflow to run '
        "as root, as cron did"
    ) in result.stderr
    assert "check: line 9 (pg_dump): it computes a date with `date`" in result.stderr
    text = (tmp_path / "jobs.toml").read_text()
    assert "#   line 18: 0 0 * * * root echo hello % world" in text  # listed, not dropped
    validate = run_cli("validate", cwd=tmp_path)
    assert validate.returncode == (0 if os.geteuid() == 0 else 2), validate.stderr
    document = tomllib.loads(text)
    jobs = document["jobs"]
    assert list(jobs) == [
        "pg_dump",
        "run_parts_cron_hourly",
        "cleanup",
        "poll",
        "rotate_keys",
        "weekly_backup",
        "on_boot",
    ]
    assert document["cronflow"]["timezone"] == "Europe/Berlin"
    assert document["alerts"] == {
        "urls": ["mailto://localhost?to=ops@example.org"],
        "on": ["failure"],
    }
    assert document["defaults"]["env"]["PATH"].startswith("/usr/local/sbin")
    assert document["defaults"]["shell"] == "/bin/bash"  # SHELL=
    assert jobs["weekly_backup"]["env"] == {"BACKUP_TARGET": "s3://bucket/path"}
    assert jobs["pg_dump"]["description"] == "Nightly database dump"
    assert jobs["pg_dump"]["user"] == "nobody"
    assert "user" not in jobs["run_parts_cron_hourly"]  # root's lines run as cronflow (root)
    assert jobs["run_parts_cron_hourly"]["cwd"] == str(Path("~root").expanduser())
    assert jobs["pg_dump"]["command"] == "pg_dump app > /var/backups/app-$(date +%F).sql"
    assert jobs["cleanup"]["schedule"] == "@daily"
    assert jobs["on_boot"]["schedule"] == "@reboot"  # once per boot, as cron did


def test_imported_schedules_fire_when_cron_would(tmp_path):
    (tmp_path / "crontab").write_text(SYSTEM_CRONTAB)
    run_cli("import-crontab", "crontab", "--system", "-o", "jobs.toml", cwd=tmp_path)
    start = "2026-04-01T00:00:00+00:00"  # no DST change in the next ticks
    ours = json.loads(
        run_cli("next", "--json", "--count", "6", "--from", start, cwd=tmp_path).stdout
    )["ticks"]
    zone = ZoneInfo("Europe/Berlin")
    jobs = tomllib.loads((tmp_path / "jobs.toml").read_text())["jobs"]
    for name, table in jobs.items():
        if table["schedule"] == "@reboot":
            assert name not in {t["job"] for t in ours}  # no ticks: it runs at boot
            continue
        cron = croniter(table["schedule"], datetime.fromisoformat(start).astimezone(zone))
        expected = [cron.get_next(datetime).isoformat() for _ in range(6)]
        assert [t["logical_time"] for t in ours if t["job"] == name] == expected, name


def test_a_user_crontab_from_standard_input():
    result = subprocess.run(
        [sys.executable, "-m", "cronflow", "import-crontab", "-"],
        input="# say hello\n*/5 * * * * echo hello \\% there\n",
        capture_output=True,
        text=True,
        env={**os.environ, "TZ": "Asia/Tokyo"},
    )
    assert result.returncode == 0, result.stderr
    assert "read standard input as a user crontab" in result.stderr
    document = tomllib.loads(result.stdout)
    assert document["cronflow"] == {"timezone": "Asia/Tokyo"}  # the zone cron read it in
    assert document["defaults"] == {"cwd": str(Path.home())}  # cron ran it in $HOME
    assert document["jobs"] == {
        "echo": {
            "command": "echo hello % there",
            "schedule": "*/5 * * * *",
            "description": "say hello",
        }
    }


def test_crontab_lines_with_bad_schedules_are_listed():
    translation = translate(
        "61 * * * * echo x\n0 0 * * * echo ok\nnot a line\n", system=False, host=HOST
    )
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
    jobfile = jobs_toml.load(tmp_path / "jobs.toml")
    assert list(jobfile.jobs) == ["extract", "report"]
    run = run_cli("run", "--date", "2026-01-14", cwd=tmp_path)
    assert run.returncode == 0 and "2 runs: 2 success" in run.stdout
    again = run_cli("init", cwd=tmp_path)
    assert again.returncode == 2 and "already exists" in again.stderr


def lines_of(translation) -> list[str]:
    return [line.split(" (")[0] for line in translation.untranslated]


def test_the_format_is_told_from_the_content_or_asked_for(tmp_path):
    assert detect_format("0 0 * * * root /usr/bin/true\n@daily backup /bin/b\n", HOST) is True
    assert detect_format("0 0 * * * /usr/bin/true\n*/5 * * * * echo hi\n", HOST) is False
    assert detect_format("0 0 * * * backup.sh\n", HOST) is False  # no command after a user
    for unclear in (
        "0 0 * * * root /bin/a\n0 1 * * * echo b\n",  # the lines disagree
        "0 0 * * * sync now\n",
        "# nothing\n",
    ):  # sync: a user and a command
        with pytest.raises(FormatUnknown):
            detect_format(unclear, HOST)
    (tmp_path / "crontab").write_text("0 0 * * * root /bin/a\n0 1 * * * echo b\n")
    asked = run_cli("import-crontab", "crontab", cwd=tmp_path)
    assert asked.returncode == 2 and "--system" in asked.stderr and "--user-format" in asked.stderr
    assert "line 1 reads as a system crontab" in asked.stderr


def test_lines_cron_refuses_are_never_imported():
    text = (
        "0 0 0 * * * echo seconds\n@DAILY echo loud\n0 0 L * * echo last\n"
        "0 0 ? * 1 echo what\n0 0 15W * * echo weekday\n5/15 * * * * echo step\n"
        "0 0 * * 1 echo fine\n0 1 * * * echo no-newline"
    )
    translation = translate(text, system=False, host=HOST)
    assert [table["command"] for table in translation.document["jobs"].values()] == ["echo fine"]
    assert lines_of(translation) == [
        f"line {number}: {line}"
        for number, line in enumerate(text.split("\n"), start=1)
        if "fine" not in line
    ]
    reasons = " ".join(translation.untranslated)
    for words in (
        "six time fields",
        "macros are lower case",
        "no L, W, # or ?",
        "a step only after * or a range (write 5-<last>/15)",
        "no newline",
    ):
        assert words in reasons
    crlf = translate("0 0 * * * echo a\r\n\r\n0 1 * * * echo b\r\n", system=False, host=HOST)
    assert not crlf.document["jobs"] and "CRLF" in crlf.untranslated[0]


def test_each_job_keeps_its_own_mailto():
    translation = translate(
        'MAILTO=a@example.org\n0 0 * * * echo one\nMAILTO=""\n'
        "0 1 * * * echo two\nMAILTO=b@example.org,c@example.org\n"
        "0 2 * * * echo three\n",
        system=False,
        host=HOST,
    )
    jobs = translation.document["jobs"]
    assert jobs["echo"]["alert_tags"] == ["mail1"] and jobs["echo_3"]["alert_tags"] == ["mail2"]
    assert jobs["echo_2"]["alerts"] is False and "alert_tags" not in jobs["echo_2"]
    notes = " ".join(translation.notes)
    assert "mailto://localhost?to=b@example.org, mailto://localhost?to=c@example.org" in notes
    one = translate("MAILTO=ops@example.org\n0 0 * * * echo a\n", system=False, host=HOST)
    assert one.document["alerts"]["urls"] == ["mailto://localhost?to=ops@example.org"]


def test_percent_variables_blanks_and_comments_follow_cron():
    text = (
        "# 0 5 * * * old-job --switched-off\n# Real description\n"
        "0 0 * * * printf 'a\\\\\\\\%s' b\n"  # \\% : the % ends the command in cron
        "0 1 * * * echo 100\\% done\\ \n"  # \% is %, the escaped blank stays
        "MY-VAR=x\nEMPTY=\nHOME=/srv/work\nSHELL=/bin/bash\nCRON_TZ=Asia/Tokyo\n"
        "0 2 * * * echo with-home\n"
    )
    translation = translate(text, system=False, host=HOST)
    jobs = translation.document["jobs"]
    assert [line.split(":")[0] for line in translation.untranslated] == [
        "line 3",
        "line 5",
        "line 6",
    ]
    assert "MY-VAR to its jobs" in translation.untranslated[1]
    assert "refuses a variable with no value" in translation.untranslated[2]
    assert jobs["echo"] == {
        "command": "echo 100% done\\ ",
        "schedule": "0 1 * * *",
        "timezone": "Europe/Paris",
        "cwd": "/home/me",
    }
    assert jobs["echo_2"]["cwd"] == "/srv/work" and jobs["echo_2"]["shell"] == "/bin/bash"
    assert jobs["echo_2"]["timezone"] == "Asia/Tokyo"
    assert "description" not in jobs["echo_2"]
    assert all("old-job" not in table.get("description", "") for table in jobs.values())


def test_habits_that_break_under_cronflow_are_listed_and_jobs_named_by_what_they_run():
    text = (
        "0 0 * * * cd /srv/app && ./bin/report.py --daily > /tmp/log 2>&1\n"
        "0 1 * * * curl -fsS https://example.org/api/refresh-cache || true\n"
        "0 2 * * * nice -n 10 /usr/local/bin/backup.sh $(date -d yesterday +\\%F)\n"
        "0 3 * * * run-parts /etc/cron.daily\n"
    )
    translation = translate(text, system=False, host=HOST)
    assert list(translation.document["jobs"]) == [
        "report",
        "refresh_cache",
        "backup",
        "run_parts_cron_daily",
    ]
    notes = "\n".join(translation.notes)
    assert "line 1 (report): its output is redirected to a file" in notes
    assert "line 2 (refresh_cache): `|| ...` swallows the failure" in notes
    assert "line 3 (backup): it computes a date with `date`" in notes
