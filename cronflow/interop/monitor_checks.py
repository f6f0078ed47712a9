"""What each job's monitor check should hold, from the job itself (for `cronflow monitors
sync`): a check auto-created by a ping gets its monitor's defaults (Healthchecks: a day's
period and an hour's grace), so a per-minute job that stops is flagged after 25 hours. A
check configured from the job's own schedule, zone and timeout is flagged when one run is
late. Pure: reading and writing checks is monitor_api.py's part.

Healthchecks (Management API v3): a ping URL names its check by UUID (`/ping/<uuid>`,
`hc-ping.com/<uuid>`) or by slug (`/ping/<ping-key>/<slug>`); its API is at `/api/v3/` of the
same site (`healthchecks.io` for `hc-ping.com`). Cronitor: `cronitor.link/p/<key>/<monitor>`
names the monitor by key; its API is `https://cronitor.io/api`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

from cronflow.decide.schedule import SEPARATOR
from cronflow.load.monitors import CRONITOR, protocol_for
from cronflow.model import Job, JobFile

MIN_GRACE, MAX_GRACE = 60, 31_536_000  # seconds, as Healthchecks bounds them
NO_TIMEOUT_GRACE = 3600  # seconds a run with no timeout may take before it is late
_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
TAG = "cronflow"  # every check cronflow configures carries it


@dataclass(frozen=True, slots=True, kw_only=True)
class CheckPlan:
    """One job's check as it should be."""

    job: str
    protocol: str  # healthchecks | cronitor
    api: str  # the management API's base URL, without a trailing slash
    by: str  # how the check is named: "uuid", "slug" or "key"
    name: str  # that name
    fields: dict[str, Any] = field(default_factory=dict)  # in the API's own words
    skipped: str = ""  # why it is not configured (nothing to send then)


def plan_checks(jobfile: JobFile, api_urls: dict[str, str] | None = None) -> list[CheckPlan]:
    """Every job with a ping_url: its check as its schedule, zone and timeout make it.
    `api_urls` overrides the API base per protocol (a self-hosted Cronitor-compatible
    server, or a test's)."""
    plans = []
    for job in jobfile.jobs.values():
        if job.ping_url:
            plans.append(_plan(job, (api_urls or {})))
    return plans


def grace_seconds(job: Job) -> int:
    """How late a run may be before its monitor calls it down: one try's timeout, and the
    run's random delay or offset, and a minute (Healthchecks' grace also bounds a run that
    pinged `start` and never finished). With no timeout, an hour."""
    if job.timeout is None:
        return NO_TIMEOUT_GRACE
    spread = job.random_delay or timedelta(0)
    seconds = int((job.timeout + spread).total_seconds()) + 60
    return max(MIN_GRACE, min(MAX_GRACE, seconds))


def _plan(job: Job, api_urls: dict[str, str]) -> CheckPlan:
    assert job.ping_url is not None
    protocol = protocol_for(job.ping_url, job.ping_protocol)
    by, name, api = _named(job.ping_url, protocol)
    api = api_urls.get(protocol, api).rstrip("/")
    plan = CheckPlan(job=job.name, protocol=protocol, api=api, by=by, name=name)
    why = _why_not(job, by)
    if why:
        return _with(plan, skipped=why)
    assert job.cadence.expression is not None
    tags = [TAG, *job.alert_tags]
    about = job.description or f"cronflow job {job.name}"
    if protocol == CRONITOR:
        fields: dict[str, Any] = {
            "key": name,
            "name": job.name,
            "type": "job",
            "schedule": job.cadence.expression,
            "timezone": job.cadence.timezone.key,
            "grace_seconds": grace_seconds(job),
            "tags": tags,
            "note": about,
        }
    else:
        fields = {
            "name": job.name,
            "tags": " ".join(tags),
            "desc": about,
            "schedule": job.cadence.expression,
            "tz": job.cadence.timezone.key,
            "grace": grace_seconds(job),
        }
        if by == "slug":
            fields["slug"] = name
    return _with(plan, fields=fields)


def _why_not(job: Job, by: str) -> str:
    if not by:
        return "its ping_url names no check cronflow can tell (not /ping/UUID, /ping/KEY/SLUG)"
    if not job.enabled:
        return "disabled: it does not run by the clock"
    if job.at_boot:
        return "@reboot runs once per boot: a monitor has no schedule to expect it by"
    if job.cadence.expression is None:
        return "it runs only when asked: a monitor has no schedule to expect it by"
    if SEPARATOR in job.cadence.expression:
        return "it has several schedules: a monitor's check takes one"
    return ""


def _named(url: str, protocol: str) -> tuple[str, str, str]:
    """(how the check is named, its name, the API base) from a ping URL; ("", "", api)
    when the URL is not of a form cronflow knows."""
    parts = urlsplit(url)
    segments = [segment for segment in parts.path.split("/") if segment]
    if protocol == CRONITOR:
        key = segments[2] if len(segments) >= 3 and segments[0] == "p" else ""
        return ("key" if key else "", key, "https://cronitor.io/api")
    host = parts.hostname or ""
    if host == "hc-ping.com" or host.endswith(".hc-ping.com"):
        site, named = "https://healthchecks.io", segments
    else:
        at = segments.index("ping") if "ping" in segments else -1
        prefix = "/".join(segments[:at]) if at >= 0 else ""
        site = f"{parts.scheme}://{parts.netloc}" + (f"/{prefix}" if prefix else "")
        named = segments[at + 1 :] if at >= 0 else []
    api = f"{site}/api/v3"
    if len(named) == 1 and _UUID.fullmatch(named[0]):
        return "uuid", named[0], api
    if len(named) == 2:
        return "slug", named[1], api
    return "", "", api


def _with(plan: CheckPlan, **changes: Any) -> CheckPlan:
    from dataclasses import replace

    return replace(plan, **changes)
