"""Distribution: `make dist` builds a wheel, an sdist and dist/cronflow.pyz; each installs and
runs where it should. Shell completion offers the jobs file's job names.

Building needs PyPI (the build backend, shiv and the dependencies inside the .pyz); without it
the build tests are skipped, saying so.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
import sys
import tarfile
import zipfile
from email.parser import Parser
from pathlib import Path

import pytest

from cronflow import __version__
from tests.conftest import run_cli

ROOT = Path(__file__).resolve().parent.parent
DIST = ROOT / "dist"
BASE_PYTHON = Path(sys.base_prefix) / "bin" / f"python{sys.version_info[0]}.{sys.version_info[1]}"
JOBS = '[jobs.hello]\ncommand = "echo hello from $CRONFLOW_JOB on $CRONFLOW_DATE"\n'


@pytest.fixture(scope="module")
def dist(tmp_path_factory) -> Path:
    """dist/ as `make dist` leaves it, built once per test run: the test workers that need it
    take turns under a lock in the run's own temporary folder, and the first one builds."""
    run_folder = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        run_folder = run_folder.parent  # shared by this run's workers, and only by them
    with open(run_folder / "dist.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (run_folder / "dist.built").exists():
            _make_dist()
            (run_folder / "dist.built").touch()
    return DIST


def _make_dist() -> None:
    built = subprocess.run(["make", "dist"], cwd=ROOT, capture_output=True, text=True, timeout=1200)
    if built.returncode != 0:
        probe = subprocess.run(
            [sys.executable, "-m", "pip", "index", "versions", "shiv"],
            capture_output=True,
            text=True,
            timeout=120,
        )
        if probe.returncode != 0:
            pytest.skip(
                f"PyPI cannot be reached, so `make dist` cannot build: {probe.stderr[-300:]}"
            )
        pytest.fail(f"make dist failed:\n{built.stdout[-3000:]}\n{built.stderr[-3000:]}")


def pythons() -> list[str]:
    """The interpreter under the test venv and every other CPython 3.11+ found on the PATH,
    in /usr and in pyenv's versions: the single file must run on each."""
    candidates = [shutil.which(f"python3.{minor}") for minor in range(11, 16)]
    pyenv = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv")) / "versions"
    for folder in ("/usr/bin", "/usr/local/bin", *pyenv.glob("3.*/bin")):
        candidates += map(str, Path(folder).glob("python3.1[1-9]"))
    found = {str(BASE_PYTHON)}
    for candidate in filter(None, candidates):
        real = subprocess.run(  # the interpreter itself, not a shim in front of it
            [candidate, "-c", "import sys; print(sys.executable, sys.version_info >= (3, 11))"],
            capture_output=True,
            text=True,
        )
        if real.returncode == 0 and real.stdout.split()[1] == "True":
            found.add(real.stdout.split()[0])
    return sorted(found)


def plain(python: str, *args: str, cwd: Path, home: Path) -> subprocess.CompletedProcess:
    """`python -I ARGS` with nothing of ours in its environment."""
    env = {"PATH": os.environ["PATH"], "HOME": str(home), "LANG": "C.UTF-8"}
    return subprocess.run(
        [python, "-I", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        stdin=subprocess.DEVNULL,
    )


@pytest.fixture(scope="module")
def shared_home(tmp_path_factory) -> Path:
    """One HOME for every Python that runs the single file, as for a user with several:
    shiv unpacks it into ~/.shiv once (2 s), and each Python then runs from there."""
    return tmp_path_factory.mktemp("home")


@pytest.mark.parametrize("python", pythons())
def test_the_single_file_runs_on_a_plain_python_in_an_empty_folder(
    dist, tmp_path, python, shared_home
):
    assert (
        plain(python, "-c", "import cronflow", cwd=tmp_path, home=tmp_path).returncode != 0
    )  # nothing of cronflow is installed there
    empty = tmp_path / "empty"
    empty.mkdir()
    shutil.copy(dist / "cronflow.pyz", empty)
    jobs = tmp_path / "jobs.toml"
    jobs.write_text(JOBS)
    home = shared_home

    shown = plain(python, "cronflow.pyz", "--version", cwd=empty, home=home)
    assert shown.stdout == f"cronflow {__version__}\n", shown.stderr
    checked = plain(python, "cronflow.pyz", "validate", "--jobs", str(jobs), cwd=empty, home=home)
    assert checked.returncode == 0 and "1 jobs, no problems" in checked.stdout, checked.stderr
    ran = plain(
        python,
        "cronflow.pyz",
        "run",
        "--date",
        "2026-01-14",
        "--jobs",
        str(jobs),
        cwd=empty,
        home=home,
    )
    assert ran.returncode == 0, ran.stderr
    log = (tmp_path / ".cronflow" / "runs.jsonl").read_text().splitlines()
    assert [line.count('"event":"finished"') for line in log] == [0, 1]
    logs = plain(python, "cronflow.pyz", "logs", "hello", "--jobs", str(jobs), cwd=empty, home=home)
    assert logs.stdout.startswith("==> stdout of hello @ 2026-01-14")
    assert "hello from hello on 2026-01-14" in logs.stdout
    unit = plain(
        python,
        "cronflow.pyz",
        "systemd",
        "install",
        "--dry-run",
        "--jobs",
        str(jobs),
        cwd=empty,
        home=home,
    )
    assert f"ExecStart={python} {empty / 'cronflow.pyz'} daemon --jobs {jobs}" in unit.stdout
    status = plain(python, "cronflow.pyz", "status", "--jobs", str(jobs), cwd=empty, home=home)
    cron_line = f"* * * * * {python} {empty / 'cronflow.pyz'} run --jobs {jobs}"
    assert cron_line in " ".join(status.stdout.split())  # a line that works under cron
    unpacked = [path for path in (home / ".shiv").iterdir() if path.is_dir()]
    assert [path.name.split("_")[0] for path in unpacked] == ["cronflow.pyz"]  # ~/.shiv
    assert sorted(path.name for path in empty.iterdir()) == ["cronflow.pyz"]


def test_the_single_file_is_executable_and_carries_every_supported_python(dist, tmp_path):
    pyz = dist / "cronflow.pyz"
    assert os.access(pyz, os.X_OK)
    assert pyz.read_bytes().startswith(b"#!/usr/bin/env python3\n")
    names = zipfile.ZipFile(pyz).namelist()
    for minor in (11, 12, 13, 14):
        assert [name for name in names if "yaml/_yaml.cpython-3" + str(minor) in name], minor
    direct = subprocess.run(
        [str(pyz), "--version"],
        capture_output=True,
        text=True,
        env={**os.environ, "HOME": str(tmp_path)},
    )
    assert direct.stdout == f"cronflow {__version__}\n"


def test_the_wheel_installs_into_a_fresh_venv_with_its_command(dist, tmp_path):
    [wheel] = dist.glob("cronflow-*.whl")
    subprocess.run([sys.executable, "-m", "venv", str(tmp_path / "venv")], check=True)
    pip = subprocess.run(
        [
            str(tmp_path / "venv" / "bin" / "pip"),
            "install",
            "--quiet",
            "--disable-pip-version-check",
            str(wheel),
        ],
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert pip.returncode == 0, pip.stderr[-3000:]
    command = tmp_path / "venv" / "bin" / "cronflow"
    helped = subprocess.run([str(command), "--help"], capture_output=True, text=True)
    assert helped.returncode == 0 and "cron for jobs that depend on each other" in helped.stdout
    version = subprocess.run([str(command), "--version"], capture_output=True, text=True)
    assert version.stdout == f"cronflow {__version__}\n"


def test_pipx_and_uv_install_the_wheel_as_a_tool(dist, tmp_path):
    [wheel] = dist.glob("cronflow-*.whl")
    subprocess.run([sys.executable, "-m", "venv", str(tmp_path / "tools")], check=True)
    tools = tmp_path / "tools" / "bin"
    subprocess.run(
        [str(tools / "pip"), "install", "--quiet", "--disable-pip-version-check", "pipx", "uv"],
        check=True,
        capture_output=True,
        timeout=600,
    )
    env = {
        **os.environ,
        "PIPX_HOME": str(tmp_path / "pipx"),
        "PIPX_BIN_DIR": str(tmp_path / "px"),
        "UV_TOOL_DIR": str(tmp_path / "uv"),
        "UV_TOOL_BIN_DIR": str(tmp_path / "uvbin"),
        "UV_CACHE_DIR": str(tmp_path / "uvcache"),
        "UV_PYTHON_DOWNLOADS": "never",
    }
    installs = {
        "px": [str(tools / "pipx"), "install", "--python", str(BASE_PYTHON), str(wheel)],
        "uvbin": [str(tools / "uv"), "tool", "install", "--python", str(BASE_PYTHON), str(wheel)],
    }
    for bin_dir, command in installs.items():
        installed = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)
        assert installed.returncode == 0, installed.stderr[-3000:]
        version = subprocess.run(
            [str(tmp_path / bin_dir / "cronflow"), "--version"], capture_output=True, text=True
        )
        assert version.stdout == f"cronflow {__version__}\n", (bin_dir, version.stderr)


def test_the_packages_carry_complete_metadata(dist):
    [wheel] = dist.glob("cronflow-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        metadata = Parser().parsestr(
            archive.read(f"cronflow-{__version__}.dist-info/METADATA").decode()
        )
        entry_points = archive.read(f"cronflow-{__version__}.dist-info/entry_points.txt").decode()
        assert f"cronflow-{__version__}.dist-info/licenses/LICENSE" in archive.namelist()
    assert metadata["Name"] == "cronflow" and metadata["Version"] == __version__
    assert metadata["Summary"].startswith("cron for jobs that depend on each other")
    assert metadata["License-Expression"] == "MIT"
    assert metadata["Requires-Python"] == ">=3.11"
    assert metadata["Description-Content-Type"] == "text/markdown"
    assert metadata.get_payload().startswith("# cronflow")  # the README
    assert "Topic :: System :: Systems Administration" in metadata.get_all("Classifier")
    assert {url.split(",")[0] for url in metadata.get_all("Project-URL")} == {
        "Homepage",
        "Documentation",
        "Source",
        "Issues",
    }
    assert "cronflow = cronflow.__main__:main" in entry_points
    [sdist] = dist.glob("cronflow-*.tar.gz")
    with tarfile.open(sdist) as archive:
        names = {name.split("/", 1)[1] for name in archive.getnames() if "/" in name}
    assert {"README.md", "LICENSE", "pyproject.toml", "cronflow/cli/main.py"} <= names


# ---- completion (no build needed) --------------------------------------------------------------


def complete(tmp_path: Path, words: str, shell: str = "bash") -> list[str]:
    """What the shell would offer after `words` (bash and zsh protocol of click and typer)."""
    environment = {
        "_CRONFLOW_COMPLETE": f"complete_{shell}",
        "COMP_WORDS": words,
        "COMP_CWORD": str(len(words.split()) - (0 if words.endswith(" ") else 1)),
        "_TYPER_COMPLETE_ARGS": words,
    }
    result = run_cli(cwd=tmp_path, env=environment)
    assert result.returncode == 0, result.stderr
    return result.stdout.split()


@pytest.fixture
def three_jobs(write_jobs):
    write_jobs(
        '[jobs.extract]\ncommand = "true"\n[jobs.export_csv]\ncommand = "true"\n'
        '[jobs.load]\ncommand = "true"\n'
    )


def test_completion_offers_the_job_names_for_job_options(three_jobs, tmp_path):
    assert complete(tmp_path, "cronflow status --job ") == ["extract", "export_csv", "load"]
    assert complete(tmp_path, "cronflow run --date 2026-01-14 --job ex") == [
        "extract",
        "export_csv",
    ]
    assert complete(tmp_path, "cronflow history --job l") == ["load"]
    assert complete(tmp_path, "cronflow logs ") == ["extract", "export_csv", "load"]
    assert complete(tmp_path, "cronflow alerts test --job lo") == ["load"]


def test_completion_reads_the_jobs_file_named_on_the_line(three_jobs, write_jobs, tmp_path):
    other = write_jobs('[jobs.backup]\ncommand = "true"\n', name="other.toml")
    assert complete(tmp_path, f"cronflow status --jobs {other} --job ") == ["backup"]
    assert complete(tmp_path, "cronflow status --jobs missing.toml --job ") == []


def test_zsh_and_fish_get_the_same_names(three_jobs, tmp_path):
    zsh = " ".join(complete(tmp_path, "cronflow logs ", shell="zsh"))
    assert '"extract"' in zsh and '"load"' in zsh
    fish = run_cli(
        cwd=tmp_path,
        env={
            "_CRONFLOW_COMPLETE": "complete_fish",
            "_TYPER_COMPLETE_ARGS": "cronflow logs ex",
            "_TYPER_COMPLETE_FISH_ACTION": "get-args",
        },
    )
    assert fish.stdout.split() == ["extract", "export_csv"]


def test_the_version_is_in_status(three_jobs, tmp_path):
    assert run_cli("--version", cwd=tmp_path).stdout == f"cronflow {__version__}\n"
    assert run_cli("status", cwd=tmp_path).stdout.startswith(f"cronflow {__version__}: ")
    import json

    document = json.loads(run_cli("status", "--json", cwd=tmp_path).stdout)
    assert document["cronflow"]["version"] == __version__


def test_the_installed_bash_completion_completes_job_names_in_bash(three_jobs, tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    command = Path(sys.executable).parent / "cronflow"
    env = {**os.environ, "HOME": str(home), "PATH": f"{command.parent}:{os.environ['PATH']}"}
    installed = subprocess.run(  # typer installs for the shell it runs under: bash here
        ["bash", "-c", f'"{command}" --install-completion; exit $?'],
        env=env,
        capture_output=True,
        text=True,
    )
    assert installed.returncode == 0, installed.stderr
    script = home / ".bash_completions" / "cronflow.sh"
    in_bash = subprocess.run(
        [
            "bash",
            "-c",
            f'source "{script}"; COMP_WORDS=(cronflow logs ex); COMP_CWORD=2; '
            '_cronflow_completion cronflow; printf "%s\\n" "${COMPREPLY[@]}"',
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
    )
    assert in_bash.stdout.split() == ["extract", "export_csv"], in_bash.stderr
