"""The dependency graph drawn as text, Graphviz DOT or Mermaid. Pure. Arrows into a job
whose run_if is not all_success are dashed and carry the rule."""

from __future__ import annotations

import json

from cronflow.decide.schedule_words import describe
from cronflow.model import Job, JobFile, RunIf
from cronflow.tell.overview import dependency_groups


def _label(job: Job) -> str:
    if job.at_boot:
        label = "@reboot: once per boot"
    elif job.schedule:
        label = f"{describe(job.schedule, job.cadence.day_and)} ({job.timezone.key})"
    else:
        label = f"after {', '.join(job.depends_on)}" if job.depends_on else "manual"
    return label + ("" if job.run_if is RunIf.ALL_SUCCESS else f", run_if {job.run_if}")


def as_text(jobfile: JobFile) -> str:
    """Each flow as a tree from its roots; a job reached twice is drawn once, then referred to."""
    dependents = _dependents(jobfile)
    lines: list[str] = []
    for flow in dependency_groups(jobfile):
        drawn: set[str] = set()
        for root in (name for name in flow if not jobfile.jobs[name].depends_on):
            _draw(jobfile, dependents, root, "", "", drawn, lines)
        lines.append("")
    return "\n".join(lines).rstrip("\n") + "\n"


def _draw(
    jobfile: JobFile,
    dependents: dict[str, list[str]],
    name: str,
    prefix: str,
    connector: str,
    drawn: set[str],
    lines: list[str],
) -> None:
    """One job, then (indented under it) the jobs that depend on it."""
    if name in drawn:
        lines.append(f"{prefix}{connector}{name} (see above)")
        return
    drawn.add(name)
    lines.append(f"{prefix}{connector}{name}  [{_label(jobfile.jobs[name])}]")
    children = dependents.get(name, [])
    deeper = prefix + {"": "", "├── ": "│   ", "└── ": "    "}[connector]
    for index, child in enumerate(children):
        last = index == len(children) - 1
        _draw(jobfile, dependents, child, deeper, "└── " if last else "├── ", drawn, lines)


def as_dot(jobfile: JobFile) -> str:
    lines = ["digraph cronflow {", "  rankdir=LR;", "  node [shape=box];"]
    for job in jobfile.jobs.values():
        label = json.dumps(f"{job.name}\n{_label(job)}")
        lines.append(f"  {json.dumps(job.name)} [label={label}];")
    for job in jobfile.jobs.values():
        style = "" if job.run_if is RunIf.ALL_SUCCESS else f' [style=dashed, label="{job.run_if}"]'
        for upstream in job.depends_on:
            lines.append(f"  {json.dumps(upstream)} -> {json.dumps(job.name)}{style};")
    lines.append("}")
    return "\n".join(lines) + "\n"


def as_mermaid(jobfile: JobFile) -> str:
    ids = {name: f"j{index}" for index, name in enumerate(jobfile.jobs)}
    lines = ["flowchart LR"]
    for job in jobfile.jobs.values():
        text = f"{job.name}<br/>{_label(job)}".replace('"', "#quot;")
        lines.append(f'  {ids[job.name]}["{text}"]')
    for job in jobfile.jobs.values():
        arrow = "-->" if job.run_if is RunIf.ALL_SUCCESS else f"-.->|{job.run_if}|"
        for upstream in job.depends_on:
            lines.append(f"  {ids[upstream]} {arrow} {ids[job.name]}")
    return "\n".join(lines) + "\n"


def _dependents(jobfile: JobFile) -> dict[str, list[str]]:
    dependents: dict[str, list[str]] = {}
    for job in jobfile.jobs.values():
        for upstream in job.depends_on:
            dependents.setdefault(upstream, []).append(job.name)
    return dependents


# ---- the asset view: jobs and what they produce and use ---------------------------------------


def assets_text(jobfile: JobFile) -> str:
    """One line per asset: who produces it, who uses it."""
    lines = []
    for asset in jobfile.assets.values():
        made = f"made by {asset.producer}" if asset.producer else "external"
        used = ", ".join(asset.consumers) or "nobody"
        lines.append(f"{asset.name}  [{made}; used by {used}]")
    return "\n".join(lines) + "\n" if lines else "no assets: no job produces or uses one\n"


def assets_dot(jobfile: JobFile) -> str:
    """Jobs as boxes, assets as cylinders; arrows from producer to asset to consumers."""
    lines = ["digraph cronflow_assets {", "  rankdir=LR;", "  node [shape=box];"]
    for asset in jobfile.assets.values():
        node, label = json.dumps("asset:" + asset.name), asset.name
        style = "" if asset.producer else ", style=dashed"
        label += "" if asset.producer else " (external)"
        lines.append(f"  {node} [shape=cylinder{style}, label={json.dumps(label)}];")
    for asset in jobfile.assets.values():
        node = json.dumps("asset:" + asset.name)
        if asset.producer:
            lines.append(f"  {json.dumps(asset.producer)} -> {node};")
        for consumer in asset.consumers:
            lines.append(f"  {node} -> {json.dumps(consumer)};")
    lines.append("}")
    return "\n".join(lines) + "\n"


def assets_mermaid(jobfile: JobFile) -> str:
    """The same in Mermaid: assets as cylinders `[(name)]`."""
    jobs = {name: f"j{index}" for index, name in enumerate(jobfile.jobs)}
    ids = {name: f"a{index}" for index, name in enumerate(jobfile.assets)}
    lines = ["flowchart LR"]
    for name, node in ids.items():
        external = "" if jobfile.assets[name].producer else " (external)"
        lines.append(f'  {node}[("{(name + external).replace(chr(34), "#quot;")}")]')
    for name, node in jobs.items():
        lines.append(f'  {node}["{name}"]')
    for asset in jobfile.assets.values():
        if asset.producer:
            lines.append(f"  {jobs[asset.producer]} --> {ids[asset.name]}")
        for consumer in asset.consumers:
            lines.append(f"  {ids[asset.name]} --> {jobs[consumer]}")
    return "\n".join(lines) + "\n"
