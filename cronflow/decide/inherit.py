"""What a job takes from the jobs around it: upstreams from the assets it uses (their
producers), and, when it has no schedule of its own, the cadence its upstreams share (it
runs after them, for their logical times). Pure; the loader reports what cannot be
inherited."""

from __future__ import annotations

from dataclasses import dataclass, replace

from cronflow.decide import dag
from cronflow.model import Job


def with_asset_upstreams(jobs: dict[str, Job]) -> dict[str, Job]:
    """Each job's upstreams with the producers of what it uses (a dependency given both
    ways is one dependency; its own assets are not)."""
    producers = {asset: job.name for job in jobs.values() for asset in job.produces}
    linked = {}
    for name, job in jobs.items():
        derived = [producers[a] for a in job.uses if a in producers and producers[a] != name]
        depends_on = tuple(dict.fromkeys([*job.depends_on, *derived]))
        linked[name] = replace(job, depends_on=depends_on) if derived else job
    return linked


@dataclass(frozen=True, slots=True)
class CadenceClash:
    """An unscheduled job whose upstreams run on different schedules."""

    job: str
    upstreams: tuple[str, ...]


def with_inherited_cadences(
    jobs: dict[str, Job], graph: dag.Graph[str], own_zone: set[str]
) -> tuple[dict[str, Job], list[CadenceClash]]:
    """Every unscheduled job with the cadence its upstreams share (in its own zone only
    when it sets `timezone`: `own_zone`), and the jobs that cannot have one."""
    jobs = dict(jobs)
    clashes = []
    for name in dag.topological_order(graph):
        job = jobs[name]
        upstreams = graph[name]
        if job.schedule is not None or not upstreams:
            continue
        cadences = {jobs[upstream].cadence for upstream in upstreams}
        if len(cadences) > 1:
            clashes.append(CadenceClash(name, tuple(upstreams)))
            continue
        cadence = cadences.pop()
        zone = job.timezone if name in own_zone else cadence.timezone
        jobs[name] = replace(job, cadence=cadence, timezone=zone)
    return jobs, clashes
