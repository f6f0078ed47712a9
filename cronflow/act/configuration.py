"""The jobs file, validated once per change: a validation cached by the file's digest.

Reading and validating a jobs file costs about 70 µs a job (1.4 s for 20,000 jobs), paid by
every command. A validation depends on the file's bytes, who asks, a few variables of the
environment, and the answers the host gave (load/host_facts.py: this shell exists, that
account, this directory). After a full validation, `state_dir/validated` keeps the model
with all of that; the next command reuses it when every one still holds, the host asked
again, and the checks of who may change the files it names (host_checks.trust_findings,
metrics_owner_findings) still find the same. Otherwise the file is validated in full.

The cache is written only into a state directory that exists (a `validate` of a new file
creates nothing), as this user, mode 0600, and read only when this user wrote it and
nobody else can change it; it is unpickled by an unpickler that knows only cronflow's model
and a few standard types. The model holds what the jobs file holds in clear (env values,
alert and ping URLs), which no file of the state directory may show: it is sealed with a
key stream drawn from the jobs file's own bytes (SHAKE-256 of a fresh nonce and the file),
so that only whoever can read the jobs file can read it. The key of the cache (the file's
SHA-256, who asks) stays in clear, as in the idle stamp.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import hashlib
import io
import os
import pickle
from dataclasses import replace
from pathlib import Path
from typing import Any

from cronflow import STATE_DIR_ENV_VAR, __version__
from cronflow.load import host_checks, host_facts, jobs_toml
from cronflow.model import JobFile
from cronflow.state.files import no_links, replace_whole
from cronflow.state.idle_stamp import light_state_dir
from cronflow.state.layout import VALIDATED_NAME

_FORMAT = "cronflow validated configuration 1"


_pending: list[tuple[Path, dict[str, str], host_facts.Answers, JobFile]] = []


def load(path: Path, deferred: bool = False) -> JobFile:
    """jobs_toml.load(path), from the cache when nothing it depended on changed. A new
    validation is cached at once, or, `deferred`, by `keep_deferred` (a command that ends
    in a usage error, exit status 2, writes nothing)."""
    text = jobs_toml.read_text(path)
    key = _key(path, text.encode())
    state_dir = light_state_dir(str(path.absolute()), text)
    cache = Path(state_dir) / VALIDATED_NAME if state_dir is not None else None
    if cache is not None:
        cached = _cached(cache, key, text)
        if cached is not None:
            return cached
    with host_facts.recording() as answers:
        jobfile = jobs_toml.parse(text, path)
    if cache is not None and str(jobfile.settings.state_dir) == state_dir:
        if deferred:
            _pending.append((cache, key, answers, jobfile))
        else:
            _remember(cache, key, answers, jobfile)
    return jobfile


def keep_deferred() -> None:
    """Cache the validations `load(deferred=True)` made."""
    while _pending:
        _remember(*_pending.pop())


def _key(path: Path, content: bytes) -> dict[str, str]:
    """What a validation depends on besides the host's answers."""
    return {
        "format": _FORMAT,
        "version": __version__,
        "model": _model_shape(),
        "euid": str(os.geteuid()),
        "path": str(path),
        "cwd": os.getcwd(),
        "state_dir_variable": os.environ.get(STATE_DIR_ENV_VAR, ""),
        "home": os.environ.get("HOME", ""),
        "sha256": hashlib.sha256(content).hexdigest(),
    }


@functools.cache
def _model_shape() -> str:
    """A digest of every model class's fields: a cache pickled by a cronflow whose model had
    other fields (an upgrade within one version number) is not unpickled into this one."""
    from cronflow import calendars, model, pools

    shapes = [
        f"{name}:{','.join(field.name for field in dataclasses.fields(value))}"
        for module in (model, calendars, pools)
        for name, value in sorted(vars(module).items())
        if dataclasses.is_dataclass(value) and isinstance(value, type)
    ]
    return hashlib.sha256("\n".join(shapes).encode()).hexdigest()[:16]


def _model_checks(jobfile: JobFile) -> Any:
    """The checks made on the built model, asked again at each use."""
    return (
        host_checks.trust_findings(
            jobfile.path, jobfile.settings, jobfile.alerts, jobfile.jobs, os.geteuid()
        ),
        host_checks.metrics_owner_findings(jobfile.settings),
    )


def _remember(
    cache: Path, key: dict[str, str], answers: host_facts.Answers, jobfile: JobFile
) -> None:
    if not cache.parent.is_dir():
        return
    stored = replace(jobfile, text="")  # its digest is in the key
    body = pickle.dumps((answers, _model_checks(jobfile), stored), protocol=5)
    sealed = _sealed(jobfile.text.encode(), body)
    with contextlib.suppress(OSError):  # a cache: the next command validates in full
        replace_whole(cache, pickle.dumps(key, protocol=5) + sealed)


def _cached(cache: Path, key: dict[str, str], text: str) -> JobFile | None:
    """The cached validation, if it is this user's and still holds; else None."""
    try:
        with open(cache, "rb", opener=no_links) as file:
            found = os.fstat(file.fileno())
            if found.st_uid != os.geteuid() or found.st_mode & 0o077:
                return None
            if _ModelUnpickler(file).load() != key:
                return None
            body = _opened(text.encode(), file.read())
        answers, checks, jobfile = _ModelUnpickler(io.BytesIO(body)).load()
        if not isinstance(jobfile, JobFile) or not host_facts.still_true(answers):
            return None
        if _model_checks(jobfile) != checks:
            return None
        return replace(jobfile, text=text)
    except Exception:  # noqa: BLE001 - unreadable, refused, damaged, a zone gone, a model of
        return None  # another shape (a field missing): validate in full


_NONCE_BYTES = 16


def _key_stream(content: bytes, nonce: bytes, size: int) -> bytes:
    return hashlib.shake_256(b"cronflow validated configuration\0" + nonce + content).digest(size)


def _xor(data: bytes, stream: bytes) -> bytes:
    return (int.from_bytes(data, "little") ^ int.from_bytes(stream, "little")).to_bytes(
        len(data), "little"
    )


def _sealed(content: bytes, body: bytes) -> bytes:
    """`body` sealed with a key stream only the jobs file's bytes (`content`) give."""
    nonce = os.urandom(_NONCE_BYTES)
    return nonce + _xor(body, _key_stream(content, nonce, len(body)))


def _opened(content: bytes, sealed: bytes) -> bytes:
    nonce, body = sealed[:_NONCE_BYTES], sealed[_NONCE_BYTES:]
    return _xor(body, _key_stream(content, nonce, len(body)))


_STANDARD = {
    ("datetime", "timedelta"),
    ("datetime", "datetime"),
    ("datetime", "date"),
    ("datetime", "time"),
    ("datetime", "timezone"),
    ("zoneinfo", "ZoneInfo"),
    ("pathlib", "PosixPath"),
    ("copyreg", "_reconstructor"),
    ("builtins", "object"),
    ("builtins", "set"),
    ("builtins", "frozenset"),
}


def _attribute(owner: object, name: str) -> Any:
    """getattr for the pickles of enums and zones, never reaching a dunder."""
    if name.startswith("__"):
        raise pickle.UnpicklingError(f"refused attribute {name!r}")
    return getattr(owner, name)


class _ModelUnpickler(pickle.Unpickler):
    """Builds cronflow's model and a few standard types, and nothing else."""

    def find_class(self, module: str, name: str) -> Any:
        if module == "builtins" and name == "getattr":
            return _attribute
        if module.startswith("cronflow.") or (module, name) in _STANDARD:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"refused {module}.{name}")
