"""System tools a test needs (tmux, chromium, unshare): installed with apt-get when missing,
as CI machines run as root and reach Debian's packages; a test skips only when that fails."""

from __future__ import annotations

import os
import shutil
import subprocess

INSTALL_TIMEOUT = 900  # seconds: chromium is a large package on a slow mirror


def installed(command: str, package: str) -> str:
    """Why `command` cannot be had here, or "" when it can (installing `package` if need be,
    fetching the package lists first on a fresh machine that has none)."""
    for first in ([], ["apt-get", "update", "-q"]):
        if shutil.which(command) is not None:
            break
        for step in (first, ["apt-get", "install", "-y", "-q", package]):
            if step:
                try:
                    subprocess.run(
                        step,
                        capture_output=True,
                        stdin=subprocess.DEVNULL,
                        timeout=INSTALL_TIMEOUT,
                        env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"},
                    )
                except (OSError, subprocess.TimeoutExpired):
                    break  # no apt-get, or no mirror in time
    if shutil.which(command) is None:
        return f"{command} is missing and apt-get could not install {package}"
    return ""
