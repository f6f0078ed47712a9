"""How an attempt's process starts: who it runs as, its environment (as cron gives it, then
the job's env_files and env, then the CRONFLOW_* variables) and the secrets to mask in what
it prints."""

from __future__ import annotations

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
