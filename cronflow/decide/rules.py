"""Trigger rules (run_if): whether a run may start, given how its upstream runs stand."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from cronflow.model import (
    Job,
    JobFile,
    RunIf,
    RunKey,
    RunStatus,
    describe_key,
)


@dataclass(frozen=True, slots=True)
class Gate:
    """Whether a run may start, given how its upstream runs stand (see `gate`)."""

    held: RunStatus | None = None  # None: it runs; else UPSTREAM_FAILED or SKIPPED
    blocking: RunKey | None = None  # an upstream that has not ended (it may yet: wait for it)
    reason: str = ""


def has_ended(status: RunStatus | None) -> bool:
    """Whether an upstream run came to an outcome a trigger rule can judge (None: never run)."""
    return status is not None and status.has_outcome


def gate(jobfile: JobFile, job: Job, upstreams: Sequence[tuple[RunKey, RunStatus | None]]) -> Gate:
    """The job's run_if applied to its upstream runs' statuses (None: never run).

    all_success (the default) holds the run back at the first upstream that did not
    succeed: upstream_failed, or skipped after a skipped one, as always. The other rules
    need every upstream to have ended (`blocking` names one that has not), then run or
    skip: all_done runs whatever they ended as, one_failed when one failed, all_failed
    when all did, none_failed when none did (succeeded or skipped)."""
    rule = job.run_if
    for key, status in upstreams:
        said = f"upstream {describe_key(jobfile, key)} " + (
            "has not run" if status is None else f"is {status}"
        )
        if rule is RunIf.ALL_SUCCESS and status is not RunStatus.SUCCESS:
            held = RunStatus.SKIPPED if status is RunStatus.SKIPPED else RunStatus.UPSTREAM_FAILED
            return Gate(held, key, said)
        if rule is not RunIf.ALL_SUCCESS and not has_ended(status):
            return Gate(RunStatus.SKIPPED, key, f"{said} (run_if = {rule} waits for all to end)")
    failed = [key for key, status in upstreams if status is not None and status.is_failure]
    met = {
        RunIf.ALL_SUCCESS: True,
        RunIf.ALL_DONE: True,
        RunIf.ONE_FAILED: bool(failed),
        RunIf.ALL_FAILED: len(failed) == len(upstreams),
        RunIf.NONE_FAILED: not failed,
    }[rule]
    if met:
        return Gate()
    why = {
        RunIf.ONE_FAILED: "no upstream failed",
        RunIf.ALL_FAILED: "not every upstream failed",
        RunIf.NONE_FAILED: f"upstream {describe_key(jobfile, failed[0]) if failed else ''} failed",
    }[rule]
    return Gate(RunStatus.SKIPPED, None, f"run_if = {rule}: {why}")
