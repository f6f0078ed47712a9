"""A real headless Chromium driven over the DevTools protocol, for the HTML status page's tests.

The protocol runs over a pipe (`--remote-debugging-pipe`: Chromium reads commands from its
fd 3 and writes answers and events to its fd 4, each message JSON ended by a NUL byte), so
no WebSocket library is needed. The browser is offline: its network is switched off and
every host name resolves to nothing, and every request it makes is recorded.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from tests.system_tools import installed


def chromium_missing() -> str:
    """Why no Chromium can be had here, or "" when it can (installed with apt-get if need be)."""
    return installed("chromium", "chromium")


def _chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


class Browser:
    """One headless Chromium with one page. Use as a context manager."""

    def __init__(self, loopback: bool = False) -> None:
        """`loopback`: the page may reach servers on 127.0.0.1 (names still resolve to
        nothing); else the network is off."""
        self._profile = tempfile.mkdtemp(prefix="cronflow-chromium-")
        commands_read, self._commands = os.pipe()
        self._answers, answers_written = os.pipe()
        chromium = _chromium()
        assert chromium is not None
        self.process = subprocess.Popen(
            [
                chromium,
                "--headless=new",
                "--remote-debugging-pipe",
                "--no-sandbox",  # tests run as root
                "--disable-gpu",
                "--no-first-run",
                "--no-default-browser-check",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                # No name resolves: nothing leaves (but the loopback, when asked for).
                "--host-resolver-rules=MAP * ~NOTFOUND"
                + (", EXCLUDE 127.0.0.1" if loopback else ""),
                f"--user-data-dir={self._profile}",
                "about:blank",
            ],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            pass_fds=(3, 4),
            preexec_fn=lambda: (os.dup2(commands_read, 3), os.dup2(answers_written, 4)),
        )
        os.close(commands_read)
        os.close(answers_written)
        self._next_id = 0
        self._answered: dict[int, dict[str, Any]] = {}
        self.events: list[dict[str, Any]] = []
        self._arrived = threading.Condition()
        threading.Thread(target=self._read, daemon=True).start()
        target = self.call("Target.createTarget", url="about:blank")["targetId"]
        self.session = self.call("Target.attachToTarget", targetId=target, flatten=True)[
            "sessionId"
        ]
        for domain in ("Page", "Runtime", "Log", "Network"):
            self.send(f"{domain}.enable")
        self.send(
            "Network.emulateNetworkConditions",
            offline=not loopback,
            latency=0,
            downloadThroughput=0,
            uploadThroughput=0,
        )

    def __enter__(self) -> Browser:
        return self

    def __exit__(self, *_: object) -> None:
        self.process.kill()
        self.process.wait(timeout=30)
        os.close(self._commands)
        shutil.rmtree(self._profile, ignore_errors=True)

    # ---- the protocol -----------------------------------------------------------------------

    def _read(self) -> None:
        buffer = b""
        while chunk := os.read(self._answers, 1 << 16):
            buffer += chunk
            *messages, buffer = buffer.split(b"\0")
            with self._arrived:
                for raw in messages:
                    message = json.loads(raw)
                    if "id" in message:
                        self._answered[message["id"]] = message
                    else:
                        self.events.append(message)
                self._arrived.notify_all()
        os.close(self._answers)

    def call(self, method: str, session: str | None = None, **params: Any) -> dict[str, Any]:
        """Send a command and wait for its answer (60 s at most)."""
        self._next_id += 1
        number = self._next_id
        message: dict[str, Any] = {"id": number, "method": method, "params": params}
        if session:
            message["sessionId"] = session
        os.write(self._commands, json.dumps(message).encode() + b"\0")
        with self._arrived:
            answered = self._arrived.wait_for(lambda: number in self._answered, timeout=60)
        assert answered, f"no answer to {method} within 60s"
        answer = self._answered.pop(number)
        assert "error" not in answer, f"{method}: {answer['error']}"
        result: dict[str, Any] = answer.get("result", {})
        return result

    def send(self, method: str, **params: Any) -> dict[str, Any]:
        """A command to the page."""
        return self.call(method, self.session, **params)

    def wait_for_event(self, method: str, after: int, within: float = 60) -> dict[str, Any]:
        """The first event `method` among those arrived after the first `after` events."""
        deadline = time.monotonic() + within
        with self._arrived:
            while True:
                for event in self.events[after:]:
                    if event["method"] == method:
                        return event
                left = deadline - time.monotonic()
                assert left > 0, f"no {method} within {within}s"
                self._arrived.wait(left)

    # ---- what the tests ask ------------------------------------------------------------------

    def open(self, url: str, *, scripts: bool = True) -> None:
        """Load `url` and wait for its load event."""
        self.send("Emulation.setScriptExecutionDisabled", value=not scripts)
        seen = len(self.events)
        self.send("Page.navigate", url=url)
        self.wait_for_event("Page.loadEventFired", after=seen)

    def click(self, selector: str) -> None:
        """Click the element `selector` finds, as a person would, and wait for the page it
        leads to to load."""
        seen = len(self.events)
        self.evaluate(f"document.querySelector({json.dumps(selector)}).click()")
        self.wait_for_event("Page.loadEventFired", after=seen)

    def evaluate(self, expression: str) -> Any:
        """The value of a JavaScript expression in the page (scripts on or off: the
        protocol's own evaluation runs either way)."""
        result = self.send("Runtime.evaluate", expression=expression, returnByValue=True)
        assert "exceptionDetails" not in result, result["exceptionDetails"]
        return result["result"].get("value")

    def requests(self) -> list[str]:
        """The URL of every request the page made."""
        return [
            event["params"]["request"]["url"]
            for event in self.events
            if event["method"] == "Network.requestWillBeSent"
        ]

    def console_errors(self) -> list[str]:
        """Console errors, uncaught exceptions and the browser's own error log entries."""
        errors = []
        for event in self.events:
            method, params = event["method"], event.get("params", {})
            if method == "Runtime.exceptionThrown":
                errors.append(params["exceptionDetails"].get("text", "exception"))
            elif method == "Runtime.consoleAPICalled" and params.get("type") in ("error", "assert"):
                errors.append(" ".join(str(arg.get("value")) for arg in params.get("args", [])))
            elif method == "Log.entryAdded" and params["entry"]["level"] == "error":
                errors.append(params["entry"]["text"])
        return errors

    def screenshot(self, path: Path, width: int) -> None:
        """A PNG of the whole page at `width` CSS pixels."""
        self.send(
            "Emulation.setDeviceMetricsOverride",
            width=width,
            height=800,
            deviceScaleFactor=1,
            mobile=width < 600,
        )
        height = self.evaluate("document.documentElement.scrollHeight")
        self.send(
            "Emulation.setDeviceMetricsOverride",
            width=width,
            height=int(height),
            deviceScaleFactor=1,
            mobile=width < 600,
        )
        shot = self.send("Page.captureScreenshot", format="png")
        path.write_bytes(base64.b64decode(shot["data"]))
