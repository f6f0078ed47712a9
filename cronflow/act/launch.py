"""How an attempt's process starts: who it runs as, its environment (as cron gives it, then
the job's env_files and env, then the CRONFLOW_* variables) and the secrets to mask in what
it prints."""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass

from cronflow import masking
from cronflow.load import accounts, env_files
from cronflow.model import Job, PlannedRun


@dataclass(frozen=True, slots=True)
class Launch:
    """How one attempt's process starts."""

    env: dict[str, str]
    account: accounts.Account | None
    secrets: tuple[str, ...]


class CannotStart(Exception):
    """Why an attempt could not start (its env_file or account); the attempt fails with it."""


def launch_of(
    planned: PlannedRun, job: Job, run_id: str, attempt: int, environ: dict[str, str]
) -> Launch:
    """Who the attempt runs as, its environment and the secrets to mask in its output:
    cronflow's environment (only PATH, locale and TZ for a job with `user`, as cron gives),
    that user's HOME, USER and LOGNAME, the env_files, `env`, then CRONFLOW_*."""
    account = None
    base = environ
    if job.user is not None:
        try:
            account = accounts.account(job.user, job.group)
        except accounts.UnknownAccount as error:
            raise CannotStart(f"{error}; fix user/group of job {job.name}") from None
        base = {
            name: value
            for name, value in environ.items()
            if name in ("PATH", "TZ", "LANG") or name.startswith("LC_")
        }
        base |= {
            "HOME": account.home,
            "USER": account.name,
            "LOGNAME": account.name,
            "SHELL": "/bin/sh",
        }
    try:
        from_files = env_files.read_job_env_files(job)
    except env_files.Unusable as problem:
        raise CannotStart(str(problem)) from None
    local_time = planned.logical_time.astimezone(job.timezone)
    env = {
        **base,
        **from_files,
        **job.env,
        "CRONFLOW_JOB": job.name,
        "CRONFLOW_LOGICAL_TIME": local_time.isoformat(),
        "CRONFLOW_DATE": local_time.date().isoformat(),
        "CRONFLOW_RUN_ID": run_id,
        "CRONFLOW_ATTEMPT": str(attempt),
        "CRONFLOW_RUN_KIND": planned.kind.value,
    }
    return Launch(
        env=env, account=account, secrets=masking.secrets_of(job.env, from_files.values())
    )


def inherited_environment() -> dict[str, str]:
    """cronflow's environment as its jobs inherit it: as it was given, not as Python changed
    it at start-up. PEP 538's C-locale coercion sets LC_CTYPE=C.UTF-8 when the locale is C
    (as under cron, which never sets it, or when LC_CTYPE names a locale not installed): a
    job sees what cron would have given it."""
    environ = dict(os.environ)
    given = _lc_ctype_at_start()
    if given is None:
        environ.pop("LC_CTYPE", None)
    elif given:
        environ["LC_CTYPE"] = given
    return environ


@functools.cache
def _lc_ctype_at_start() -> str | None:
    """LC_CTYPE as this process was started with it (the kernel keeps that environment):
    None if it had none, "" if that cannot be told (nothing is changed then)."""
    try:
        with open("/proc/self/environ", "rb") as given:
            entries = given.read().split(b"\0")
    except OSError:
        return ""
    for entry in entries:
        name, _, value = entry.partition(b"=")
        if name == b"LC_CTYPE":
            return value.decode(errors="surrogateescape")
    return None
