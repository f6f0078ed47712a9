"""The cached validation of the jobs file (act/configuration.py): reused only while the
file, who asks and every answer the host gave still hold; never trusted from a file that
someone else could have written; never able to run code."""

from __future__ import annotations

import os
import pickle
import shutil
from dataclasses import replace
from pathlib import Path

import pytest

from cronflow.act import configuration
from cronflow.load import host_facts, jobs_toml
from cronflow.state.layout import VALIDATED_NAME
from tests.conftest import run_cli

JOBS = """
[jobs.extract]
command = "true"
cwd = "work"
shell = "{shell}"
env_file = ["extract.env"]
schedule = "0 6 * * *"
[jobs.load]
command = "true"
depends_on = ["extract"]
"""


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "work").mkdir()
    (tmp_path / "extract.env").write_text("TOKEN=abc\n")
    os.chmod(tmp_path / "extract.env", 0o600)
    shell = tmp_path / "shell"
    shutil.copy("/bin/sh", shell)
    (tmp_path / "jobs.toml").write_text(JOBS.format(shell=shell))
    (tmp_path / ".cronflow").mkdir(mode=0o700)
    return tmp_path


def key_of(folder: Path) -> dict[str, str]:
    """The key a command run in `folder` computes (its cwd is part of it)."""
    path = folder / "jobs.toml"
    before = os.getcwd()
    os.chdir(folder)
    try:
        return configuration._key(path, path.read_bytes())
    finally:
        os.chdir(before)


def cache_hit(folder: Path) -> bool:
    text = jobs_toml.read_text(folder / "jobs.toml")
    cache = folder / ".cronflow" / VALIDATED_NAME
    return configuration._cached(cache, key_of(folder), text) is not None


def test_no_secret_of_the_jobs_file_is_readable_in_the_cache(project, monkeypatch):
    path = project / "jobs.toml"
    path.write_text(path.read_text() + '[jobs.load.env]\nAPI_TOKEN = "s3cret-token-value"\n')
    monkeypatch.chdir(project)
    assert configuration.load(path).jobs["load"].env["API_TOKEN"] == "s3cret-token-value"
    assert cache_hit(project)
    assert b"s3cret-token-value" not in (project / ".cronflow" / VALIDATED_NAME).read_bytes()
    assert configuration.load(path).jobs["load"].env["API_TOKEN"] == "s3cret-token-value"


def test_the_second_load_reuses_the_validation_and_equals_a_full_one(project, monkeypatch):
    monkeypatch.chdir(project)
    path = project / "jobs.toml"
    first = configuration.load(path)
    cache = project / ".cronflow" / VALIDATED_NAME
    assert cache.stat().st_mode & 0o777 == 0o600
    assert cache_hit(project)
    again = configuration.load(path)
    assert again == first == jobs_toml.load(path)
    assert path.read_text() not in cache.read_text(errors="replace")  # a digest, not the text


def test_no_state_directory_no_cache(tmp_path):
    (tmp_path / "jobs.toml").write_text('[jobs.a]\ncommand = "true"\n')
    assert run_cli("validate", cwd=tmp_path).returncode == 0
    assert not (tmp_path / ".cronflow").exists()


def remove_cwd(folder: Path) -> None:
    (folder / "work").rmdir()


def break_env_file(folder: Path) -> None:
    (folder / "extract.env").write_text("not a variable line\n")


def remove_env_file(folder: Path) -> None:
    (folder / "extract.env").unlink()


def unexecutable_shell(folder: Path) -> None:
    os.chmod(folder / "shell", 0o644)


def edit_one_byte(folder: Path) -> None:
    path = folder / "jobs.toml"
    path.write_text(path.read_text().replace('"0 6 * * *"', '"0 7 * * *"'))


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (remove_cwd, "is not a directory"),
        (break_env_file, "extract.env"),
        (remove_env_file, "cannot be read"),
        (unexecutable_shell, "is not an executable file here"),
    ],
)
def test_a_changed_host_is_validated_again(project, change, expected):
    assert run_cli("validate", cwd=project).returncode == 0
    assert cache_hit(project)
    change(project)
    assert not cache_hit(project)
    checked = run_cli("validate", cwd=project)
    assert checked.returncode == 2 and expected in checked.stderr, checked.stderr
    assert "Traceback" not in checked.stderr


def test_an_edited_file_is_validated_again(project):
    assert run_cli("validate", cwd=project).returncode == 0
    edit_one_byte(project)
    assert not cache_hit(project)
    shown = run_cli("next", "--job", "extract", "--json", cwd=project)
    assert shown.returncode == 0 and "T07:00:00" in shown.stdout, shown.stdout


def test_who_may_change_the_files_is_asked_again(project):
    """As root a jobs file others could change is refused, as a warning otherwise: the cached
    validation of the same bytes does not hide it."""
    assert run_cli("validate", cwd=project).returncode == 0
    os.chmod(project / "jobs.toml", 0o666)
    assert not cache_hit(project)
    checked = run_cli("validate", cwd=project)
    if os.geteuid() == 0:
        assert checked.returncode == 2, checked.stderr
    assert "the jobs file" in checked.stderr and "writable" in checked.stderr, checked.stderr


def forge(folder: Path, other_text: str) -> Path:
    """A cache that says this jobs file validated to another file's model: accepted only
    when it is trusted (then it proves the cache is used: no command would see it else)."""
    path = folder / "jobs.toml"
    other = folder / "other.toml"
    other.write_text(other_text)
    with host_facts.recording() as answers:
        model = jobs_toml.parse(other_text, path)
    model = replace(model, text=path.read_text())  # sealed with this file's bytes
    cache = folder / ".cronflow" / VALIDATED_NAME
    configuration._remember(cache, key_of(folder), answers, model)
    return cache


def test_a_trusted_cache_is_used(project):
    forge(project, '[jobs.forged]\ncommand = "true"\n')
    listed = run_cli("validate", cwd=project)
    assert listed.returncode == 0 and "forged" in listed.stdout, listed.stdout


@pytest.mark.parametrize("mode", [0o620, 0o604])
def test_a_cache_others_could_write_is_ignored(project, mode):
    cache = forge(project, '[jobs.forged]\ncommand = "true"\n')
    os.chmod(cache, mode)
    listed = run_cli("validate", cwd=project)
    assert listed.returncode == 0 and "forged" not in listed.stdout, listed.stdout
    assert "extract" in listed.stdout


def test_a_cache_through_a_link_is_ignored(project):
    cache = forge(project, '[jobs.forged]\ncommand = "true"\n')
    planted = project / "planted"
    cache.rename(planted)
    cache.symlink_to(planted)
    listed = run_cli("validate", cwd=project)
    assert listed.returncode == 0 and "forged" not in listed.stdout, listed.stdout


class _Payload:
    def __init__(self, folder: Path) -> None:
        self.mark = str(folder / "pwned")

    def __reduce__(self):
        return (os.system, (f"touch {self.mark}",))


def test_a_cache_that_would_run_code_is_refused(project):
    cache = project / ".cronflow" / VALIDATED_NAME
    key = key_of(project)
    content = (project / "jobs.toml").read_bytes()
    payload = configuration._sealed(content, pickle.dumps(_Payload(project)))
    cache.write_bytes(pickle.dumps(key) + payload)
    os.chmod(cache, 0o600)
    listed = run_cli("validate", cwd=project)
    assert listed.returncode == 0 and "extract" in listed.stdout, listed.stderr
    assert not (project / "pwned").exists()


def test_a_cache_of_a_model_with_other_fields_is_validated_again(project, monkeypatch):
    """An upgrade within one version number added a field to the model: the model pickled
    by the older cronflow lacks it (its state is shorter), and must not be used (using it
    failed with AttributeError)."""
    import copyreg
    from dataclasses import fields

    from cronflow.model import JobFile

    class Older:  # pickles as a JobFile whose state stops before its last fields
        def __reduce_ex__(self, protocol: int) -> tuple:
            state = tuple(getattr(whole, f.name) for f in fields(JobFile))[:-2]
            return (copyreg._reconstructor, (JobFile, object, None), state)

    monkeypatch.chdir(project)
    path = project / "jobs.toml"
    whole = configuration.load(path)
    cache = project / ".cronflow" / VALIDATED_NAME
    key = pickle.dumps(key_of(project), protocol=5)
    sealed = cache.read_bytes()[len(key) :]
    answers, checks, _ = pickle.loads(configuration._opened(path.read_bytes(), sealed))
    body = pickle.dumps((answers, checks, Older()), protocol=5)
    cache.write_bytes(key + configuration._sealed(path.read_bytes(), body))
    os.chmod(cache, 0o600)
    assert not cache_hit(project)
    assert configuration.load(path) == whole
