"""Dependency graphs (of job names, or of runs): cycles, order and closures. Pure functions."""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Mapping, Sequence
from graphlib import CycleError, TopologicalSorter
from typing import TYPE_CHECKING, TypeVar

if TYPE_CHECKING:
    from cronflow.model import JobFile, PlannedRun

Node = TypeVar("Node", bound=Hashable)
Graph = Mapping[Node, Iterable[Node]]  # a node -> the nodes it depends on


def find_cycle(graph: Graph[Node]) -> list[Node] | None:
    """A list of jobs forming a cycle, first job repeated at the end (a -> b -> a), or None."""
    try:
        TopologicalSorter(graph).prepare()
    except CycleError as error:
        # graphlib reports the cycle walked against the dependency direction; reverse it so it
        # reads "a depends on b depends on a".
        return list(reversed(error.args[1]))
    return None


def topological_order(graph: Graph[Node]) -> list[Node]:
    """Every job after all the jobs it depends on; ties keep the graph's own order."""
    sorter = TopologicalSorter(graph)
    sorter.prepare()
    order: list[Node] = []
    position = {name: index for index, name in enumerate(graph)}
    while sorter.is_active():
        ready = sorted(sorter.get_ready(), key=lambda name: position.get(name, len(position)))
        order.extend(ready)
        sorter.done(*ready)
    return order


def downstream_of(graph: Graph[Node], names: Iterable[Node]) -> set[Node]:
    """The given jobs and every job that depends on them, directly or not."""
    return reachable(dependents(graph), names)


def dependents(graph: Graph[Node]) -> dict[Node, set[Node]]:
    """Each node's direct dependents: the graph turned around, for walking downstream many
    times (`reachable(dependents(graph), names)` is `downstream_of`)."""
    turned: dict[Node, set[Node]] = {}
    for job, upstreams in graph.items():
        for upstream in upstreams:
            turned.setdefault(upstream, set()).add(job)
    return turned


def components(graph: Graph[Node], order: Iterable[Node]) -> list[list[Node]]:
    """The groups of nodes joined by dependencies, in either direction: one list per group,
    its nodes as they come in `order`, the groups as their first nodes come in the graph.
    One pass over the graph, however many groups (status draws thousands of flows)."""
    linked: dict[Node, set[Node]] = {}
    for job, upstreams in graph.items():
        linked.setdefault(job, set())
        for upstream in upstreams:
            linked[job].add(upstream)
            linked.setdefault(upstream, set()).add(job)
    group_of: dict[Node, int] = {}
    count = 0
    for node in linked:
        if node not in group_of:
            group_of.update(dict.fromkeys(reachable(linked, [node]), count))
            count += 1
    groups: list[list[Node]] = [[] for _ in range(count)]
    for node in order:
        groups[group_of[node]].append(node)
    return groups


def reachable(links: Mapping[Node, set[Node]], starts: Iterable[Node]) -> set[Node]:
    """The starts and every node the links lead to from them."""
    seen = set(starts)
    pending = list(seen)
    while pending:
        for other in links.get(pending.pop(), ()):
            if other not in seen:
                seen.add(other)
                pending.append(other)
    return seen


def dependency_graph(jobfile: JobFile) -> dict[str, tuple[str, ...]]:
    """Each job -> the jobs it depends on."""
    return {name: job.depends_on for name, job in jobfile.jobs.items()}


def each_jobs_runs_in_order(runs: Sequence[PlannedRun]) -> list[tuple[PlannedRun, PlannedRun]]:
    """(earlier, later) for each two runs of one job next to each other by logical time:
    a later run starts only once the earlier one has ended (a backfill replays in order,
    whatever its other jobs do meanwhile)."""
    by_job: dict[str, list[PlannedRun]] = {}
    for run in runs:
        by_job.setdefault(run.key.job, []).append(run)
    pairs = []
    for own in by_job.values():
        own.sort(key=lambda run: run.key.logical_time)
        pairs += list(zip(own, own[1:], strict=False))
    return pairs
