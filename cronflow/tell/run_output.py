"""A run's captured output as `cronflow logs` prints it: its secrets masked, and followed
while the attempt that writes it runs (as tail -f follows a file)."""

from __future__ import annotations

import sys

from cronflow.model import Job, RunEvent
from cronflow.state.store import Store


def secrets_of_job(job: Job) -> tuple[str, ...]:
    """What to mask in a job's output; an env_file that cannot be read now masks nothing."""
    from cronflow.load.env_files import Unusable, read_job_env_files
    from cronflow.masking import secrets_of

    try:
        return secrets_of(job.env, read_job_env_files(job).values())
    except Unusable:
        return secrets_of(job.env)


def follow(store: Store, started: RunEvent, stream: str, secrets: tuple[str, ...]) -> None:
    """Print an output file as it grows, until the attempt that writes it has ended. Whole
    lines only while it runs, so a secret is never split across two reads unmasked."""
    import time

    from cronflow.masking import mask_bytes
    from cronflow.tell import overview

    position = 0
    while True:
        still_running = overview.attempt_running(store.index(), started)
        with open(started.output[stream], "rb") as output:
            output.seek(position)
            chunk = output.read()
        if still_running:
            chunk = chunk[: chunk.rfind(b"\n") + 1]
        position += len(chunk)
        sys.stdout.buffer.write(mask_bytes(chunk, secrets))
        sys.stdout.buffer.flush()
        if not still_running:
            return
        time.sleep(0.25)  # following a live file: poll it, as tail -f does
