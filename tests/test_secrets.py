"""Secrets never leave unmasked: not from a command's output or a file, not from a run settled
after its cronflow died, not from an alert, a ping or the page, not while `logs --follow`
shows a run still writing. Real processes, a real receiver and monitor, kill -9."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys

from cronflow.masking import mask_bytes, shown_while_written
from cronflow.state.outputs import tail_of
from tests.conftest import run_cli
from tests.waiting import wait_for

SECRETS = {
    "env": "env-s3cret-value",
    "env_file": "file-s3cret-value",
    "url_password": "url-s3cret-pass",
    "url_token": "url-s3cret-token",
}


def test_no_command_shows_a_secret_anywhere(write_jobs, tmp_path, receiver):
    (tmp_path / "secrets.env").write_text(f"DB_PASSWORD={SECRETS['env_file']}\n")
    (tmp_path / "secrets.env").chmod(0o600)
    url = (
        f"json://admin:{SECRETS['url_password']}@127.0.0.1:{receiver.port}/hook"
        f"?token={SECRETS['url_token']}"
    )
    jobs = write_jobs(f"""
        [alerts]
        urls = ["{url}"]
        [jobs.leaky]
        schedule = "0 6 * * *"
        env = {{ API_TOKEN = "{SECRETS["env"]}" }}
        env_file = "secrets.env"
        command = '''
        echo "token $API_TOKEN password $DB_PASSWORD"
        echo "token $API_TOKEN password $DB_PASSWORD" >&2
        exit 1
        '''
    """)
    commands = [
        ["validate"],
        ["run", "--date", "2026-01-14"],
        ["run", "--date", "2026-01-14", "--dry-run"],
        ["run"],
        ["run", "--dry-run"],
        ["status"],
        ["status", "--json"],
        ["status", "--all"],
        ["history"],
        ["history", "--json"],
        ["logs", "leaky"],
        ["logs", "leaky", "--stderr"],
        ["next"],
        ["next", "--json"],
        ["graph"],
        ["alerts", "test"],
        ["reindex"],
        ["export", "airflow", "--out", str(tmp_path.parent / f"{tmp_path.name}-dags")],
    ]
    shown = []
    for command in commands:
        result = run_cli(*command, cwd=tmp_path)
        assert result.returncode in (0, 1), (command, result.stderr)
        shown.append(result.stdout + result.stderr)
    jobs.write_text(
        jobs.read_text()
        .replace("exit 1", "exit 1\nbad_key = 1", 1)
        .replace("[jobs.leaky]", "[jobs.leaky]\nretries = -1")
    )
    error = run_cli("validate", cwd=tmp_path)
    assert error.returncode == 2
    shown.append(error.stdout + error.stderr)
    shown += [json.dumps(message.body) for message in receiver.messages()]
    assert any("token *** password ***" in text for text in shown)  # the job's output, masked
    files = [path for path in (tmp_path / ".cronflow").rglob("*") if path.is_file()]
    assert len(files) > 5
    for secret in SECRETS.values():
        assert not [text for text in shown if secret in text], secret
        assert not [path for path in files if secret.encode() in path.read_bytes()], secret


def test_a_run_settled_after_its_cronflow_died_leaks_no_secret(
    write_jobs, tmp_path, receiver, monitor
):
    """cronflow is killed (-9) while the job, which printed its secrets, goes on; the job
    fails; the next invocation settles the run from its exit status file. Nothing it
    records or tells holds a secret: the log, the output files, the alert, the fail ping,
    the page, the metrics."""
    (tmp_path / "secrets.env").write_text(f"DB_PASSWORD={SECRETS['env_file']}\n")
    (tmp_path / "secrets.env").chmod(0o600)
    write_jobs(f"""
        [cronflow]
        html_file = "page/index.html"
        metrics_file = "metrics/cronflow.prom"
        [alerts]
        urls = ["{receiver.url()}"]
        [jobs.leaky]
        env = {{ API_TOKEN = "{SECRETS["env"]}" }}
        env_file = "secrets.env"
        ping_url = "{monitor.check_url("5f7c3a52-9d1e-4b8e-a9f2-3c4d5e6f7a8b")}"
        command = '''
        echo "token $API_TOKEN password $DB_PASSWORD"
        echo "token $API_TOKEN password $DB_PASSWORD" >&2
        touch printed
        while [ ! -e go ]; do sleep 0.05; done
        exit 1
        '''
    """)
    for folder in ("page", "metrics"):
        (tmp_path / folder).mkdir(mode=0o750)
    doomed = subprocess.Popen(
        [sys.executable, "-m", "cronflow", "run", "--job", "leaky"],  # a manual run pings
        cwd=tmp_path,
        env={**os.environ, "CI": "true"},
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    wait_for((tmp_path / "printed").exists, "the job's output")
    doomed.send_signal(signal.SIGKILL)
    doomed.wait(timeout=60)
    (tmp_path / "go").touch()
    state = tmp_path / ".cronflow"
    wait_for(lambda: any(p.read_bytes() for p in state.rglob("*.exit")), "the job's exit status")
    settled = run_cli("run", cwd=tmp_path)  # a tick: it settles the run, nothing is due
    assert settled.returncode in (0, 1), settled.stderr
    log = [json.loads(line) for line in (state / "runs.jsonl").read_text().splitlines()]
    [ended] = [line for line in log if line["event"] == "finished"]
    assert ended["status"] == "failed" and "token *** password ***" in ended["stderr_tail"]
    # Recorded before the settling cronflow exited (it waits for its deliveries).
    assert [line["alert"]["on"] for line in log if line["event"] == "alert"] == ["failure"]
    assert "fail" in [line["ping"]["signal"] for line in log if line["event"] == "ping"]
    wait_for(lambda: [p for p in monitor.pings() if p.signal == "1"], "the fail ping (exit 1)")
    told = [json.dumps(message.body) for message in receiver.messages()]
    told += [ping.body.decode() for ping in monitor.pings()]
    assert any("token *** password ***" in text for text in told), told
    files = [p for p in [*state.rglob("*"), *tmp_path.glob("[pm]*/*")] if p.is_file()]
    assert {p.parent.name for p in files} >= {"page", "metrics", "leaky", ".cronflow"}
    for secret in (SECRETS["env"], SECRETS["env_file"]):
        assert not [text for text in told if secret in text], secret
        assert not [p for p in files if secret.encode() in p.read_bytes()], secret


def test_a_tail_window_never_shows_part_of_a_secret(tmp_path):
    """A secret cut by the start of a tail's window is masked too, not shown in part."""
    secret = "abcdefghij-secret"
    path = tmp_path / "err"
    path.write_bytes(b"x" * 100 + secret.encode() + b"\nend\n")
    for limit in range(1, 40):
        tail = tail_of(path, limit=limit, secrets=(secret,))
        assert not any(secret[i:] in tail for i in range(len(secret) - 4)), (limit, tail)


def test_logs_follow_shows_a_growing_file_as_masking_it_whole_would():
    """A run still writing: `logs --follow` shows what it may so far, and never cuts
    through a secret, even one that spans lines, however the reads fall."""
    secrets = ("first-line\nsecond-line-s3cret", "short-s3cret")
    data = b"ok\nbefore first-line\nsecond-line-s3cret after\nshort-s3cret\nmore\n"
    for step in (1, 2, 3, 5, 8, 13):
        shown, out = 0, b""
        for end in range(0, len(data) + 1, step):
            cut = shown + shown_while_written(data[shown:end], secrets)
            assert cut == shown or data[:cut].endswith(b"\n")  # whole lines only
            out, shown = out + mask_bytes(data[shown:cut], secrets), cut
        out += mask_bytes(data[shown:], secrets)  # the attempt ended: the rest, at once
        assert out == mask_bytes(data, secrets) and b"s3cret" not in out, step
