"""Dependency graphs: order, closures and cycles, over random graphs."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from cronflow.decide import dag


@st.composite
def acyclic_graphs(draw):
    """Random DAGs: names in a random order, edges only from later to earlier names."""
    names = draw(
        st.lists(st.text("abcdefgh", min_size=1, max_size=4), min_size=1, max_size=12, unique=True)
    )
    graph = {}
    for index, name in enumerate(names):
        graph[name] = draw(st.lists(st.sampled_from(names[:index]), unique=True)) if index else []
    shuffled = draw(st.permutations(list(graph)))
    return {name: graph[name] for name in shuffled}


@given(acyclic_graphs())
def test_topological_order_puts_every_job_after_its_dependencies(graph):
    order = dag.topological_order(graph)
    assert sorted(order) == sorted(graph)
    position = {name: index for index, name in enumerate(order)}
    for job, upstreams in graph.items():
        assert all(position[upstream] < position[job] for upstream in upstreams)


@given(acyclic_graphs())
def test_an_acyclic_graph_has_no_cycle(graph):
    assert dag.find_cycle(graph) is None


@given(acyclic_graphs(), st.data())
def test_a_back_edge_is_always_reported_as_a_real_cycle(graph, data):
    order = dag.topological_order(graph)
    later = data.draw(st.sampled_from(order))
    reachable_up = [name for name in graph if later in dag.downstream_of(graph, [name])]
    earlier = data.draw(st.sampled_from(sorted(reachable_up)))
    graph = {name: list(upstreams) for name, upstreams in graph.items()}
    graph[earlier] = [*graph[earlier], later]  # earlier now also waits for later: a cycle
    cycle = dag.find_cycle(graph)
    assert cycle is not None and cycle[0] == cycle[-1]
    for job, upstream in zip(cycle, cycle[1:], strict=False):
        assert upstream in graph[job], f"{job} does not depend on {upstream}"


@given(acyclic_graphs(), st.data())
def test_downstream_closure_holds_everything_that_depends_on_it(graph, data):
    start = data.draw(st.sampled_from(sorted(graph)))
    downstream = dag.downstream_of(graph, [start])
    for job, upstreams in graph.items():
        if any(upstream in downstream for upstream in upstreams):
            assert job in downstream
    assert all(job == start or _depends_on(graph, job, start) for job in downstream)


def _depends_on(graph, job: str, upstream: str) -> bool:
    """True when `job` depends on `upstream`, directly or not (walked here, independently)."""
    return any(parent == upstream or _depends_on(graph, parent, upstream) for parent in graph[job])


def test_a_job_depending_on_itself_is_a_cycle():
    assert dag.find_cycle({"a": ["a"]}) == ["a", "a"]


@given(acyclic_graphs())
def test_components_split_the_graph_where_no_dependency_joins_it(graph):
    order = dag.topological_order(graph)
    groups = dag.components(graph, order)
    assert sorted(node for group in groups for node in group) == sorted(graph)  # each once
    group_of = {node: index for index, group in enumerate(groups) for node in group}
    for job, upstreams in graph.items():
        assert all(group_of[upstream] == group_of[job] for upstream in upstreams)
    for group in groups:  # a group is joined: each node reaches the first one
        assert all(group[0] in _joined(graph, node) for node in group)
        assert group == [node for node in order if node in group]
    firsts = [
        next(node for node in graph if group_of[node] == index) for index in range(len(groups))
    ]
    assert firsts == [node for node in graph if node in firsts]  # groups in the graph's order


def _joined(graph, start: str) -> set[str]:
    """Everything linked to `start` by dependencies either way (walked here, independently)."""
    seen, pending = {start}, [start]
    while pending:
        node = pending.pop()
        linked = set(graph[node]) | {job for job, ups in graph.items() if node in ups}
        pending += linked - seen
        seen |= linked
    return seen
