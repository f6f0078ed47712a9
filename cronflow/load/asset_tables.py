"""The assets of a jobs file: what its jobs produce and use, and the `[assets."NAME"]`
tables, checked (the model: model.Asset)."""

from __future__ import annotations

from cronflow.load.checker import Checker, section_of
from cronflow.load.values import ASSET_KEYS, Invalid, asset_names, close_matches
from cronflow.model import Asset, Job


def _producers(checker: Checker, jobs: dict[str, Job]) -> dict[str, str]:
    """Asset -> the job that produces it; an asset two jobs produce is reported."""
    producers: dict[str, str] = {}
    for job in jobs.values():
        for asset in job.produces:
            if asset in producers:
                checker._report(
                    ("jobs", job.name, "produces"),
                    f'"{asset}" is produced by {producers[asset]} too',
                    "Let one job produce it (others can `use` it), or name the two apart",
                    job=job.name,
                )
            else:
                producers[asset] = job.name
    return producers


def assets(checker: Checker, jobs: dict[str, Job]) -> dict[str, Asset]:
    """Every asset named by a job or an [assets.NAME] table, checked: what is used is
    produced by a job or declared external, and what is declared is one or the other."""
    producers = _producers(checker, jobs)
    tables = section_of(checker, "assets", "Write [assets.NAME] tables")
    for name in tables:
        try:
            asset_names(name)
        except Invalid as invalid:
            checker._report(("assets", name), invalid.problem, invalid.fix)
    declared = {name: checker._table(("assets", name), ASSET_KEYS) for name in tables}
    consumers: dict[str, list[str]] = {}
    for job in jobs.values():
        for asset in job.uses:
            consumers.setdefault(asset, []).append(job.name)
            if asset not in producers and not declared.get(asset, {}).get("external"):
                known = sorted({*producers, *declared})
                close = close_matches(asset, known)
                hint = f'Did you mean "{close[0]}"? ' if close else ""
                checker._report(
                    ("jobs", job.name, "uses"),
                    f'uses "{asset}", which no job produces',
                    f"{hint}Add it to the producing job's produces, or declare it made "
                    f'outside cronflow: [assets."{asset}"] external = true',
                    job=job.name,
                )
    for name, values in declared.items():
        if values.get("external") and name in producers:
            checker._report(
                ("assets", name, "external"),
                f'"{name}" is declared external but job {producers[name]} produces it',
                "Remove external = true, or remove it from that job's produces",
            )
        elif values.get("external") and "deadline" in values:
            checker._report(
                ("assets", name, "deadline"),
                f'"{name}" is made outside cronflow: no run of it could meet a deadline',
                "Remove deadline, or put finish_by on the job that uses it",
            )
        elif not values.get("external") and name not in producers:
            checker._report(
                ("assets", name),
                f'no job produces "{name}"',
                "Add it to a job's produces, or declare external = true",
            )
    names = [*producers, *(n for n in declared if n not in producers)]
    names += [n for n in consumers if n not in names]
    return {
        name: Asset(
            name=name,
            producer=producers.get(name),
            consumers=tuple(consumers.get(name, ())),
            fresh_within=declared.get(name, {}).get("fresh_within"),
            deadline=declared.get(name, {}).get("deadline"),
            description=declared.get(name, {}).get("description", ""),
        )
        for name in names
    }
