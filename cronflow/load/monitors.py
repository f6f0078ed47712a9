"""What a monitor URL asks of cronflow before anything is sent: which protocol it speaks,
and the name a job's check has in it (`{job}` in a `ping_url`). Imports nothing heavy: the
idle tick's heartbeat uses it."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

HEALTHCHECKS, CRONITOR = "healthchecks", "cronitor"  # the values of model.PingProtocol
_NOT_IN_SLUG = re.compile(r"[^a-z0-9_-]+")


def protocol_for(url: str, chosen: str | None = None) -> str:
    """The protocol to ping `url` with: the one chosen, else Cronitor for its hosts
    (cronitor.link, cronitor.io), else Healthchecks (hc-ping.com and self-hosted ones)."""
    if chosen:
        return chosen
    host = (urlsplit(url).hostname or "").lower()
    cronitor = host in ("cronitor.link", "cronitor.io") or host.endswith(
        (".cronitor.link", ".cronitor.io")
    )
    return CRONITOR if cronitor else HEALTHCHECKS


def check_name(job: str, protocol: str) -> str:
    """What `{job}` becomes in a ping URL. Healthchecks slugs hold only a-z, 0-9, hyphens
    and underscores (an uppercase letter or a dot got HTTP 400 or 404), so for Healthchecks
    the job's name is lowercased and every run of other characters becomes one hyphen
    ("Nightly.Backup" -> "nightly-backup"); Cronitor's monitor keys take the name as it is."""
    if protocol == CRONITOR:
        return job
    return _NOT_IN_SLUG.sub("-", job.lower())
