"""A run's captured output as `cronflow logs` prints it: its secrets masked, and followed
while the attempt that writes it runs (as tail -f follows a file)."""

from __future__ import annotations

import sys

from cronflow.model import RunEvent
from cronflow.state.files import no_links
from cronflow.state.store import Store


def follow(store: Store, started: RunEvent, stream: str, secrets: tuple[str, ...]) -> None:
    """Print an output file as it grows, until the attempt that writes it has ended. While it
    runs, whole lines only, never through a secret (masking.shown_while_written)."""
    import time

    from cronflow.masking import mask_bytes, shown_while_written
    from cronflow.tell import overview

    position = 0
    while True:
        still_running = overview.attempt_running(store.index(), started)
        with open(started.output[stream], "rb", opener=no_links) as output:
            output.seek(position)
            chunk = output.read()
        if still_running:
            chunk = chunk[: shown_while_written(chunk, secrets)]
        position += len(chunk)
        sys.stdout.buffer.write(mask_bytes(chunk, secrets))
        sys.stdout.buffer.flush()
        if not still_running:
            return
        time.sleep(0.25)  # following a live file: poll it, as tail -f does
