"""Sending an alert through apprise: the only code that imports apprise, and only when an
alert is actually sent or checked (importing it costs ~100 ms). The sending runs in a child
process given CHILD_START to start (it says when it is ready), then [alerts] timeout for the
whole sending: a receiver that answers a byte at a time cannot hold cronflow, as apprise's
own timeouts (per read) would let it. Targets are only ever shown as `scheme://host:port`.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from cronflow.masking import mask_text, redact
from cronflow.model import AlertEvent, AlertSettings
from cronflow.tell.deliveries import DeliveryStatus


@dataclass(frozen=True, slots=True, kw_only=True)
class AlertMessage:
    on: AlertEvent
    title: str
    body: str  # Markdown: apprise renders it in chat, and as HTML in mail
    severity: str  # an apprise notify type: info | success | warning | failure


@dataclass(frozen=True, slots=True, kw_only=True)
class Delivery:
    target: str  # scheme://host[:port], never the whole URL
    status: DeliveryStatus
    why: str = ""  # for a failure cronflow itself saw: the reason

    def __str__(self) -> str:
        """As the log and the terminal show it: `sent`, `timeout`, `failed: why`."""
        return f"{self.status}: {self.why}" if self.why else str(self.status)


# What the alert sender's child process may take to start (Python, then apprise's import)
# before it is stopped; [alerts] timeout starts once it said it is ready.
CHILD_START = 10.0
# On top of [alerts] timeout once it is ready: apprise's own work around the requests (a
# loaded machine took over a second to report an HTTP 500 within a 1 s timeout).
SEND_SLACK = 5.0
_CHILD_BOUND = "CRONFLOW_ALERT_BOUND"  # tells the child its bound, in seconds


class AppriseNotifier:
    """Sends through apprise to the [alerts] URLs and the config file's targets."""

    def __init__(self, settings: AlertSettings) -> None:
        self.settings = settings
        self._guard = threading.Lock()
        self._senders: set[subprocess.Popen[bytes]] = set()

    def send(self, message: AlertMessage, tags: Sequence[str]) -> list[Delivery]:
        """Send to every matching target at once, from a child process given CHILD_START to
        start, then `[alerts] timeout` for the whole sending: a receiver that answers a byte
        at a time cannot hold cronflow, as apprise's own timeouts (per read) would let it.
        One Delivery per target, or one saying that the sending was stopped."""
        payload = {
            "urls": list(self.settings.urls),
            "config": None if self.settings.config is None else str(self.settings.config),
            "tags": list(tags),
            "timeout": self.settings.timeout.total_seconds(),
            "message": {
                "on": message.on.value,
                "severity": message.severity,
                "title": message.title,
                "body": message.body,
            },
        }
        within = self.settings.timeout.total_seconds() + CHILD_START
        sender = subprocess.Popen(
            [sys.executable, "-c", "from cronflow.tell.apprise_sender import child; child()"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            env={
                **os.environ,
                "PYTHONPATH": os.pathsep.join(sys.path),
                _CHILD_BOUND: f"{within:g}",
            },
        )
        with self._guard:
            self._senders.add(sender)
        try:
            assert sender.stdin is not None and sender.stdout is not None
            with contextlib.suppress(BrokenPipeError):
                sender.stdin.write(json.dumps(payload).encode())
                sender.stdin.close()
            # Two bounds: CHILD_START to be ready (apprise imported), then `timeout` for the
            # whole sending, so a receiver that trickles holds an alert `timeout`, no more.
            started = _read_within(sender.stdout.fileno(), CHILD_START, until_line=True)
            if started is None:
                why = f"the sender did not start within {CHILD_START:g}s: it was stopped"
                return [Delivery(target="(every target)", status=DeliveryStatus.TIMEOUT, why=why)]
            seconds = self.settings.timeout.total_seconds() + SEND_SLACK
            answer = _read_within(sender.stdout.fileno(), seconds)
            if answer is None:
                why = f"no answer within {seconds:g}s: the sending was stopped"
                return [Delivery(target="(every target)", status=DeliveryStatus.TIMEOUT, why=why)]
            return [
                Delivery(target=e["target"], status=DeliveryStatus(e["status"]), why=e["why"])
                for e in json.loads(started.partition(b"\n")[2] + answer)
            ]
        except (ValueError, TypeError, OSError):  # the child died without its answer
            why = f"the sender ended with status {sender.poll()}"
            return [Delivery(target="(apprise)", status=DeliveryStatus.FAILED, why=why)]
        finally:
            with self._guard:
                self._senders.discard(sender)
            sender.kill()
            sender.wait()

    def stop(self) -> None:
        """End every sending under way (their child processes are killed)."""
        with self._guard:
            senders = list(self._senders)
        for sender in senders:
            sender.kill()

    def send_here(self, message: AlertMessage, tags: Sequence[str]) -> list[Delivery]:
        """Send to every matching target at once, in this process (the child's part)."""
        targets = self.targets(tags)
        if not targets:
            return []
        with ThreadPoolExecutor(max_workers=len(targets)) as pool:
            return list(pool.map(lambda target: self._send_one(message, *target), targets))

    def targets(self, tags: Sequence[str]) -> list[tuple[str, object]]:
        """(shown name, apprise service) of each target: every URL, and the config file's
        targets that carry one of `tags` (all of them when there are no tags)."""
        apprise = _import_apprise()
        targets = []
        for url in self.settings.urls:
            service = apprise.Apprise.instantiate(url)
            targets.append((redact(url), service))
        if self.settings.config is not None:
            from_file = _config_targets(apprise, self.settings.config)
            for service in from_file.find(tag=list(tags) if tags else "all"):
                targets.append((redact(service.url(privacy=True)), service))
        return targets

    def _send_one(self, message: AlertMessage, shown: str, service: object) -> Delivery:
        apprise = _import_apprise()
        if service is None:
            return Delivery(target=shown, status=DeliveryStatus.FAILED, why="not an apprise URL")
        client = apprise.Apprise()
        client.add(service)
        result = client.notify(
            body=message.body,
            title=message.title,
            notify_type=message.severity,
            body_format=apprise.NotifyFormat.MARKDOWN,
            timeout=self.settings.timeout.total_seconds(),
        )
        status = {"SUCCESS": DeliveryStatus.SENT, "TIMEOUT": DeliveryStatus.TIMEOUT}.get(
            result.status.name, DeliveryStatus.FAILED
        )
        why = "" if status is DeliveryStatus.SENT else _failure_reason(result, service)
        return Delivery(target=shown, status=status, why=why)


def _failure_reason(result: Any, service: Any) -> str:
    """What apprise said went wrong (its last warning or error for the target), with every
    part of the target's URL that may be secret masked: "A Connection error occurred
    sending JSON notification to 127.0.0.1."."""
    said = [
        entry.message
        for outcome in getattr(result, "results", ())
        for entry in outcome.logs()
        if entry.level in ("WARNING", "ERROR", "CRITICAL")
    ]
    if not said:
        return ""
    try:
        url = urlsplit(service.url())
    except (AttributeError, TypeError, ValueError):
        return "see apprise's log"
    secrets = [url.username or "", url.password or "", *url.path.split("/")]
    secrets += [value for _, value in parse_qsl(url.query)]
    return mask_text(said[-1], [part for part in secrets if len(part) >= 4])


def child() -> None:
    """The child process AppriseNotifier.send starts: the alert on stdin (JSON), one
    delivery per target on stdout (JSON). It ends itself when its bound is over, should the
    cronflow that started it have been killed."""
    import signal

    signal.alarm(math.ceil(float(os.environ.get(_CHILD_BOUND, "0"))))
    payload = json.load(sys.stdin)
    _import_apprise()  # the slow part of starting: said done, the sending's bound begins
    sys.stdout.write("ready\n")
    sys.stdout.flush()
    settings = AlertSettings(
        urls=tuple(payload["urls"]),
        config=None if payload["config"] is None else Path(payload["config"]),
        timeout=timedelta(seconds=payload["timeout"]),
    )
    told = payload["message"]
    message = AlertMessage(
        on=AlertEvent(told["on"]),
        severity=told["severity"],
        title=told["title"],
        body=told["body"],
    )
    deliveries = AppriseNotifier(settings).send_here(message, payload["tags"])
    json.dump(
        [{"target": d.target, "status": d.status.value, "why": d.why} for d in deliveries],
        sys.stdout,
    )


def _read_within(descriptor: int, seconds: float, until_line: bool = False) -> bytes | None:
    """What a pipe gives within `seconds`: up to its end (or, `until_line`, up to and with
    its first newline, and whatever came with it); None if that takes longer."""
    import selectors

    deadline = time.monotonic() + seconds
    got = b""
    with selectors.DefaultSelector() as selector:
        selector.register(descriptor, selectors.EVENT_READ)
        while True:
            left = deadline - time.monotonic()
            if left <= 0 or not selector.select(left):
                return None
            chunk = os.read(descriptor, 65536)
            got += chunk
            if not chunk or (until_line and b"\n" in got):
                return got


def check_targets(settings: AlertSettings) -> list[str]:
    """What apprise cannot use in [alerts] (for `cronflow validate`); targets shown redacted."""
    apprise = _import_apprise()
    problems = []
    for number, url in enumerate(settings.urls, start=1):
        if apprise.Apprise.instantiate(url) is None:
            problems.append(f"urls entry {number} ({redact(url)}) is not a URL apprise understands")
    if settings.config is not None:
        from_file = _config_targets(apprise, settings.config)
        if len(from_file) == 0:
            problems.append(f"the apprise config {settings.config} holds no usable target")
    return problems


def _config_targets(apprise: Any, path: Path) -> Any:
    """An Apprise holding the targets of an apprise config file (YAML or text)."""
    targets = apprise.Apprise()
    config = apprise.AppriseConfig()
    config.add(str(path))
    targets.add(config)
    return targets


def _import_apprise() -> Any:
    import apprise  # heavy; only imported when an alert is actually sent or checked

    # apprise logs failed deliveries with their URLs, secrets included: keep it quiet.
    quiet = logging.getLogger("apprise")
    quiet.handlers[:] = [logging.NullHandler()]
    quiet.propagate = False
    return apprise
