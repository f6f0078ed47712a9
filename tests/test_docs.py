"""The README and docs/ are the manual: docs/commands.md covers every command and option,
docs/jobs-toml.md every key, every example in them loads (the README's first file runs), every
link leads somewhere, and each help page points to the reference."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
import typer.main

from cronflow.cli.main import app
from cronflow.load import jobs_toml, values
from tests.conftest import run_cli

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()
PAGES = {path.name: path.read_text() for path in sorted((ROOT / "docs").glob("*.md"))}
COMMANDS_PAGE, KEYS_PAGE = PAGES["commands.md"], PAGES["jobs-toml.md"]
MANUAL = "\n".join([README, *PAGES.values()])  # every page, for examples found anywhere
COMMANDS = typer.main.get_command(app).commands


def toml_blocks() -> list[str]:
    return re.findall(r"```toml\n(.*?)```", MANUAL, re.S)


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_every_command_is_documented_with_help_text(name):
    assert f"### `cronflow {name}" in COMMANDS_PAGE
    assert COMMANDS[name].help


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_every_option_is_documented(name):
    for param in COMMANDS[name].params:
        if param.param_type_name != "option":
            continue  # arguments are named in the command's heading
        for option in param.opts:
            assert option in COMMANDS_PAGE, f"cronflow {name} {option} is not in docs/commands.md"


@pytest.mark.parametrize(
    "key",
    sorted(
        {
            *values.JOB_KEYS,
            *values.SETTINGS_KEYS,
            *values.ALERT_KEYS,
            *values.ASSET_KEYS,
        }
    ),
)
def test_every_jobs_toml_key_is_in_the_reference(key):
    assert f"| `{key}` |" in KEYS_PAGE


def test_the_manual_has_toml_examples():
    assert len(toml_blocks()) >= 2


@pytest.mark.parametrize("index", range(len(toml_blocks())))
def test_every_toml_block_in_the_manual_loads(tmp_path, index):
    if "user = " in toml_blocks()[index] and os.geteuid() != 0:
        pytest.skip("this example runs a job as another user, which needs cronflow as root")
    (tmp_path / "work").mkdir()
    [apprise_yml] = re.findall(r"```yaml\n(urls:.*?)```", MANUAL, re.S)
    (tmp_path / "apprise.yml").write_text(apprise_yml)
    [env_file] = re.findall(r"```text\n(# secrets\.env.*?)```", MANUAL, re.S)
    (tmp_path / "secrets.env").write_text(env_file)
    path = tmp_path / "jobs.toml"
    block = toml_blocks()[index]
    # The examples' own directories (node_exporter's, a web server's), made here instead.
    for example in ("/var/lib/node_exporter/textfile_collector", "/var/www/cronflow"):
        made = tmp_path / example.strip("/").replace("/", "_")
        made.mkdir()
        block = block.replace(example, str(made))
    path.write_text(block)
    jobs_toml.load(path)


def test_the_shipped_alerting_rules_are_documented_and_quoted_as_they_are():
    import yaml  # apprise's dependency

    from cronflow.tell.metrics import alerting_rules

    [shipped] = yaml.safe_load(alerting_rules())["groups"]
    [text] = re.findall(r"```yaml\n(groups:.*?)```", MANUAL, re.S)
    [quoted] = yaml.safe_load(text)["groups"]
    assert quoted["rules"] == shipped["rules"][:1]  # the excerpt is the shipped rule
    for rule in shipped["rules"]:
        assert f"| `{rule['alert']}` |" in MANUAL  # each is in the table
        for metric in re.findall(r"cronflow_\w+", rule["expr"]):
            assert f"| `{metric}" in MANUAL  # every metric a rule uses is documented


def test_the_env_file_example_parses():
    from cronflow.load.env_files import parse_env

    [env_file] = re.findall(r"```text\n(# secrets\.env.*?)```", MANUAL, re.S)
    assert parse_env(env_file) == {
        "DB_PASSWORD": "s3cret with spaces",
        "API_TOKEN": "abc123",
        "PRIVATE_KEY": "-----BEGIN KEY-----\nMIIB...\n-----END KEY-----",
    }


def test_the_readme_shows_the_two_setup_commands():
    assert "make demo" in README and "make test" in README


def test_the_readme_is_a_first_hour_that_links_every_page():
    assert len(README.splitlines()) <= 400
    for name in PAGES:
        assert f"](docs/{name})" in README, f"the README does not link docs/{name}"


def test_the_readme_first_jobs_file_runs_offline_as_it_says(tmp_path):
    [first] = re.findall(r"## A first jobs file.*?```toml\n(.*?)```", README, re.S)
    (tmp_path / "jobs.toml").write_text(first)
    [commands] = re.findall(r"## A first jobs file.*?```sh\n(.*?)```", README, re.S)
    for line in commands.splitlines():
        words = line.split()
        assert words[0] == "cronflow"
        result = run_cli(*words[1:], cwd=tmp_path, env={"TZ": "UTC"})
        assert result.returncode == 0, (line, result.stderr)
    assert (tmp_path / "data" / "warehouse.txt").read_text() == "sales of 2026-01-14\n"
    again = run_cli("run", "--jobs", "jobs.toml", "--date", "2026-01-14", cwd=tmp_path)
    assert again.returncode == 0 and "2 not run" in again.stdout  # both runs are done


def slug(heading: str) -> str:
    """GitHub's anchor for a heading."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


@pytest.mark.parametrize("name", ["README.md", *(f"docs/{name}" for name in PAGES)])
def test_every_link_leads_to_a_file_and_heading_that_exist(name):
    path = ROOT / name
    for target in re.findall(r"\]\(([^)\s]+)\)", path.read_text()):
        if re.match(r"[a-z]+://", target):
            continue
        file_part, _, anchor = target.partition("#")
        linked = (path.parent / file_part).resolve() if file_part else path
        assert linked.exists(), f"{name}: {target} leads nowhere"
        if anchor:
            headings = re.findall(r"^#+ (.*)$", linked.read_text(), re.M)
            assert anchor in {slug(h) for h in headings}, f"{name}: no heading for {target}"


def every_command_line() -> list[list[str]]:
    """Every command and subcommand of the CLI, as the words that name it."""
    found = []

    def walk(command, words):
        found.append(words)
        for name, sub in getattr(command, "commands", {}).items():
            walk(sub, [*words, name])

    walk(typer.main.get_command(app), [])
    return found


@pytest.mark.parametrize("words", every_command_line(), ids=lambda words: " ".join(words) or "-")
def test_every_help_page_reads_cleanly_at_80_columns(tmp_path, words):
    """No type placeholders (`<str>`, `<bool>`, `<list[str]>`, `<int range>`), no text eaten
    by markup ("The jobs file ."), nothing wider than 80 columns."""
    result = run_cli(*words, "--help", cwd=tmp_path, env={"COLUMNS": "80", "TERM": "dumb"})
    assert result.returncode == 0, result.stderr
    page = result.stdout
    assert all(len(line) <= 80 for line in page.splitlines())
    assert not re.search(r"<(str|bool|int|float|file|path|directory|list|text)\b[^>]*>", page)
    assert not re.search(r"\w \.(\s|$)", page, re.M) and "[x>=" not in page
    reference = "docs/jobs-toml.md" if not words else "docs/commands.md"
    if words in (["systemd"], ["export"], ["alerts"], ["monitors"]):
        return  # a group: its commands' pages say where their reference is
    assert reference in page and (ROOT / reference).exists()  # the page points to its reference
