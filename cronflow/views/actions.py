"""What `cronflow top` can do: run now (with what depends on it), rerun a run, pause and
resume. Each is the cronflow command a person would type, started as a process of its own,
so it goes through the same code, under the same locks, recorded as that command records
it; the dashboard then sees its effects in the state directory like any other."""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True, slots=True)
class Action:
    """A command to run, and how the confirmation asks for it."""

    question: str  # "Run extract now, and what depends on it?"
    arguments: tuple[str, ...]  # after `cronflow`, before `--jobs PATH`


def run_now(job: str, downstream: bool) -> Action:
    more = ", and the jobs after it" if downstream else ""
    arguments = ("run", "--job", job, *(("--downstream",) if downstream else ()))
    return Action(f"Run {job} now{more}?", arguments)


def rerun(job: str, logical_date: str, status: str) -> Action:
    """Run the job's run of that logical date again (its failed or every run that day)."""
    rerun_option = "failed" if status != "success" else "all"
    return Action(
        f"Run {job} for {logical_date} again ({status})?",
        ("run", "--date", logical_date, "--job", job, "--rerun", rerun_option),
    )


def pause_or_resume(job: str, paused: bool) -> Action:
    if paused:
        return Action(f"Resume {job}?", ("resume", job))
    return Action(f"Pause {job}? Its ticks are recorded skipped until resumed.", ("pause", job))


def carry_out(command: list[str], action: Action, jobs_file: Path) -> str:
    """Run the command to its end (in a session of its own, so a dashboard that quits does
    not stop it) and return the last line it printed: what the dashboard tells."""
    done = subprocess.run(
        [*command, *action.arguments, "--jobs", str(jobs_file)],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        start_new_session=True,
        env={**os.environ, "NO_COLOR": "1"},
    )
    lines = [line for line in (done.stdout + done.stderr).splitlines() if line.strip()]
    said = lines[-1].strip() if lines else ""
    return said if done.returncode == 0 else f"failed (exit status {done.returncode}): {said}"
