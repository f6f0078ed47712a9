"""Assets: what jobs produce and use, dependencies derived from them, freshness over time on
an injected clock after real runs, lineage, `run --asset`, `cronflow assets`, and
`status --check`."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from cronflow.act import idle_tick
from cronflow.decide import freshness, selection
from cronflow.model import RunKind
from cronflow.state.store import Store
from tests.conftest import load, real_engine, refused, run_cli
from tests.fakes import FakeClock

PIPELINE = """
[assets."crm.contacts"]
external = true

[assets."warehouse.sales"]
fresh_within = "26h"

[jobs.extract]
command = "echo extract >> effects"
schedule = "0 6 * * *"
produces = ["raw.orders"]

[jobs.load]
command = "echo load >> effects; {load}"
uses = ["raw.orders", "crm.contacts"]
produces = ["warehouse.sales"]
depends_on = ["extract"]  # said both ways: one dependency

[jobs.report]
command = "echo report >> effects"
uses = ["warehouse.sales"]
produces = "/srv/reports/daily.pdf"
"""
DAY = date(2026, 1, 14)
SIX = datetime(2026, 1, 14, 6, tzinfo=UTC)


def pipeline(folder: Path, load_: str = "true") -> Path:
    (folder / "jobs.toml").write_text(PIPELINE.format(load=load_))
    return folder / "jobs.toml"


def run_day(jobfile, day=DAY):
    runs = selection.runs_for_date(
        jobfile, selection.select_jobs(jobfile, [], False), day, RunKind.BACKFILL
    )
    clock = FakeClock(datetime.combine(day, datetime.min.time(), UTC) + timedelta(hours=7))
    return real_engine(jobfile, clock).executor.execute(runs)


def states_at(jobfile, now):
    index = Store(jobfile.settings.state_dir).index()
    return {state.name: state for state in freshness.states(jobfile, index, now)}


def test_uses_become_dependencies_and_one_given_both_ways_is_one(tmp_path):
    jobfile = load(pipeline(tmp_path))
    assert jobfile.jobs["load"].depends_on == ("extract",)
    assert jobfile.jobs["report"].depends_on == ("load",)  # from `uses` alone
    assert jobfile.assets["warehouse.sales"].producer == "load"
    assert jobfile.assets["warehouse.sales"].consumers == ("report",)
    assert jobfile.assets["crm.contacts"].producer is None
    run_day(jobfile)
    assert (tmp_path / "effects").read_text().split() == ["extract", "load", "report"]


def test_freshness_over_time(tmp_path):
    jobfile = load(pipeline(tmp_path))
    run_day(jobfile)
    fresh = states_at(jobfile, SIX + timedelta(hours=25))
    assert fresh["warehouse.sales"].state == "fresh"
    assert fresh["warehouse.sales"].fresh_as_of == SIX
    assert fresh["raw.orders"].fresh_within == timedelta(days=2)  # two daily intervals
    assert fresh["crm.contacts"].state == "external"
    later = states_at(jobfile, SIX + timedelta(hours=27))
    assert later["warehouse.sales"].state == "stale"
    assert later["raw.orders"].state == "fresh"  # 27 h is within two days
    assert later["/srv/reports/daily.pdf"].state == "fresh"  # unscheduled: no default age


def test_why_an_asset_is_stale(tmp_path):
    run_day(load(pipeline(tmp_path)), date(2026, 1, 13))  # all fresh as of the 13th
    jobfile = load(pipeline(tmp_path, load_="exit 3"))
    run_day(jobfile)  # load fails on the 14th; report is held back
    found = states_at(jobfile, SIX + timedelta(hours=10))
    sales = found["warehouse.sales"]
    assert sales.state == "stale" and sales.fresh_as_of == SIX - timedelta(days=1)
    assert sales.why == "producer load @ 2026-01-14T06:00:00+00:00 is failed"
    assert found["/srv/reports/daily.pdf"].state == "fresh"  # no default age: unscheduled


def test_an_asset_never_produced_is_new_for_its_first_fresh_within_then_stale(tmp_path, receiver):
    """A fresh install: an asset not produced yet is new, not stale (`status --check`
    passes), until its first fresh_within since a decision first found it has gone by;
    then it is stale, and alerts once."""
    (tmp_path / "jobs.toml").write_text(
        f'[alerts]\nurls = ["{receiver.url()}"]\n[assets.sales]\nfresh_within = "2h"\n'
        '[jobs.load]\ncommand = "exit 1"\nschedule = "0 * * * *"\nproduces = ["sales"]\n'
    )
    checked = run_cli("status", "--check", cwd=tmp_path)  # nothing decided yet
    assert checked.returncode == 0 and "stale" not in checked.stdout, checked.stdout
    jobfile = load(tmp_path / "jobs.toml")
    clock = FakeClock(SIX + timedelta(seconds=30))
    titles = []
    for _ in range(3):  # 06:00, 07:00, 08:00: load fails each time
        engine = real_engine(jobfile, clock)
        engine.tick()
        engine.executor.alerter.wait()
        titles += [message.body["title"] for message in receiver.messages()]
        state = states_at(jobfile, clock.now())["sales"]
        clock.advance(timedelta(hours=1))
    assert "cronflow: sales is stale" not in titles
    assert (state.state, state.why) == ("new", "not produced yet")
    assert state.stale_at == SIX + timedelta(hours=2, seconds=30)
    later = states_at(jobfile, SIX + timedelta(hours=2, minutes=1))["sales"]
    assert (later.state, later.why) == ("stale", "never produced")
    engine = real_engine(jobfile, clock)  # 09:00:30
    engine.tick()
    engine.executor.alerter.wait()
    assert [m.body["title"] for m in receiver.messages()].count("cronflow: sales is stale") == 1


def test_a_stale_input_is_named_as_the_reason(tmp_path):
    (tmp_path / "jobs.toml").write_text(
        '[assets.b]\nfresh_within = "1h"\n'
        '[jobs.a]\ncommand = "true"\nschedule = "0 6 * * *"\nproduces = ["a"]\n'
        '[jobs.b]\ncommand = "true"\nschedule = "30 6 * * *"\nuses = ["a"]\nproduces = ["b"]\n'
        '[assets.a]\nfresh_within = "1h"\n'
    )
    jobfile = load(tmp_path / "jobs.toml")
    run_day(jobfile)
    found = states_at(jobfile, SIX + timedelta(hours=3))
    assert found["a"].state == found["b"].state == "stale"
    assert found["b"].why == "upstream asset a is stale"


def test_lineage_of_a_diamond(tmp_path):
    (tmp_path / "jobs.toml").write_text(
        '[jobs.A]\ncommand = "true"\nproduces = ["a"]\n'
        '[jobs.B]\ncommand = "true"\nuses = ["a"]\nproduces = ["b"]\n'
        '[jobs.C]\ncommand = "true"\nuses = ["a"]\nproduces = ["c"]\n'
        '[jobs.D]\ncommand = "true"\nuses = ["b", "c"]\nproduces = ["d"]\n'
    )
    shown = json.loads(run_cli("assets", "d", "--lineage", "--json", cwd=tmp_path).stdout)
    assert shown["upstream"] == [
        "asset d",
        "  job D",
        "    asset b",
        "      job B",
        "        asset a",
        "          job A",
        "    asset c",
        "      job C",
        "        asset a",
    ]
    down = json.loads(run_cli("assets", "a", "--lineage", "--json", cwd=tmp_path).stdout)
    assert down["downstream"][:3] == ["asset a", "  job B", "    asset b"]
    assert "  job C" in down["downstream"]


def test_run_by_asset_and_the_assets_command(tmp_path):
    pipeline(tmp_path)
    assert run_cli("run", "--date", "2026-01-14", cwd=tmp_path).returncode == 0
    day = ["run", "--date", "2026-01-14", "--rerun", "all"]
    ran = run_cli(*day, "--asset", "warehouse.sales", cwd=tmp_path)
    assert ran.returncode == 0, ran.stderr
    effects = tmp_path / "effects"
    assert effects.read_text().split()[3:] == ["load"]  # its producer alone
    ran = run_cli(*day, "--asset", "raw.orders", "--downstream", cwd=tmp_path)
    assert effects.read_text().split()[4:] == ["extract", "load", "report"]
    listed = json.loads(run_cli("assets", "--json", cwd=tmp_path).stdout)["assets"]
    by_name = {entry["asset"]: entry for entry in listed}
    assert by_name["warehouse.sales"]["fresh_as_of"] == "2026-01-14T06:00:00+00:00"
    assert by_name["warehouse.sales"]["state"] == "stale"  # long ago by the real clock
    assert by_name["crm.contacts"]["state"] == "external"
    checked = run_cli("status", "--check", cwd=tmp_path)
    assert checked.returncode == 1 and "stale assets: " in checked.stdout
    external = run_cli("run", "--date", "2026-01-14", "--asset", "crm.contacts", cwd=tmp_path)
    assert external.returncode == 2 and "is external" in external.stderr
    unknown = run_cli("run", "--date", "2026-01-14", "--asset", "nope", cwd=tmp_path)
    assert unknown.returncode == 2 and 'no asset is named "nope"' in unknown.stderr


@pytest.mark.parametrize(
    "text, problem",
    [
        (
            '[jobs.a]\ncommand = "true"\nuses = ["warehouse.sale"]\n'
            '[jobs.b]\ncommand = "true"\nproduces = ["warehouse.sales"]\n',
            'uses "warehouse.sale", which no job produces',
        ),
        (
            '[jobs.a]\ncommand = "true"\nproduces = ["t"]\n'
            '[jobs.b]\ncommand = "true"\nproduces = ["t"]\n',
            '"t" is produced by a too',
        ),
        ('[assets.t]\nfresh_within = "1h"\n[jobs.a]\ncommand = "true"\n', 'no job produces "t"'),
        (
            '[assets.t]\nexternal = true\n[jobs.a]\ncommand = "true"\nproduces = ["t"]\n',
            "declared external but job a produces it",
        ),
    ],
)
def test_asset_mistakes_are_clear_errors(tmp_path, text, problem):
    said = refused(tmp_path, text)
    assert problem in said, said
    if "warehouse.sale" in text:
        assert 'Did you mean "warehouse.sales"?' in said


@pytest.mark.parametrize("odd", ["\r", "\u2028", "\x85", "\x1b", "\n", "\u200b"])
def test_an_asset_name_with_a_control_or_separator_character_is_refused(tmp_path, odd):
    """The metrics file is lines; a name holding \\r or U+2028 once broke all of it. The
    message shows the character escaped."""
    toml = f"\\u{ord(odd):04x}"
    shown = f'"sales{odd.encode("unicode_escape").decode()}x" is not an asset name'
    said = refused(tmp_path, f'[jobs.a]\ncommand = "true"\nproduces = ["sales{toml}x"]\n')
    assert shown in said, said
    said = refused(
        tmp_path, f'[jobs.a]\ncommand = "true"\n[assets."sales{toml}x"]\nexternal = true\n'
    )
    assert shown in said, said


def test_one_bad_entry_of_produces_keeps_the_good_ones(tmp_path):
    """Only the bad name is reported: the others are still produced, so the job using one
    of them is not told that no job produces it."""
    said = refused(
        tmp_path,
        '[jobs.a]\ncommand = "true"\nproduces = ["sales", " padded"]\n'
        '[jobs.b]\ncommand = "true"\nuses = ["sales"]\n',
    )
    assert '" padded" is not an asset name' in said and "1 problem found" in said, said


def test_metrics_tell_each_assets_freshness(tmp_path):
    from prometheus_client.parser import text_string_to_metric_families

    pipeline(tmp_path)
    (tmp_path / "jobs.toml").write_text(
        '[cronflow]\nmetrics_file = "cronflow.prom"\n' + (tmp_path / "jobs.toml").read_text()
    )
    jobfile = load(tmp_path / "jobs.toml")
    run_day(jobfile)
    samples = {
        (sample.name, sample.labels.get("asset")): sample.value
        for family in text_string_to_metric_families(jobfile.settings.metrics_file.read_text())
        for sample in family.samples
    }
    fresh = "cronflow_asset_fresh_timestamp_seconds"
    assert samples[(fresh, "warehouse.sales")] == SIX.timestamp()
    assert samples[("cronflow_asset_fresh_within_seconds", "warehouse.sales")] == 26 * 3600
    assert samples[("cronflow_asset_fresh_within_seconds", "raw.orders")] == 2 * 86400
    assert (fresh, "crm.contacts") not in samples  # external: cronflow cannot tell


def test_the_graph_has_an_asset_view(tmp_path):
    pipeline(tmp_path)
    text = run_cli("graph", "--assets", cwd=tmp_path).stdout
    assert "warehouse.sales  [made by load; used by report]" in text
    assert "crm.contacts  [external; used by load]" in text
    dot = run_cli("graph", "--assets", "--format", "dot", cwd=tmp_path).stdout
    assert '"load" -> "asset:warehouse.sales";' in dot
    assert '"asset:warehouse.sales" -> "report";' in dot
    assert '"asset:crm.contacts" [shape=cylinder, style=dashed' in dot
    mermaid = run_cli("graph", "--assets", "--format", "mermaid", cwd=tmp_path).stdout
    assert '[("warehouse.sales")]' in mermaid and mermaid.startswith("flowchart LR")


def test_a_stale_asset_alerts_once_and_again_when_fresh(tmp_path, receiver):
    """Ticks on an injected clock, alerts to a real receiver: stale once (not at every
    tick), fresh again once its producer succeeds for a newer tick."""
    (tmp_path / "jobs.toml").write_text(
        f'[alerts]\nurls = ["{receiver.url()}"]\n'
        '[assets.sales]\nfresh_within = "90m"\n'
        '[jobs.load]\ncommand = "test ! -e broken"\nschedule = "0 * * * *"\nproduces = ["sales"]\n'
    )
    jobfile = load(tmp_path / "jobs.toml")
    clock = FakeClock(SIX + timedelta(seconds=30))

    def tick(minutes: int) -> list[str]:
        for _ in range(minutes):
            engine = real_engine(jobfile, clock)
            engine.tick()
            engine.executor.alerter.wait()  # as a one-shot cronflow does before it exits
            clock.advance(timedelta(minutes=1))
        return [message.body["title"] for message in receiver.messages()]

    assert tick(5) == []  # 06:00 ran: fresh
    (tmp_path / "broken").touch()  # load fails from 07:00 on
    titles = tick(120)  # until 08:05: as of 06:00, older than 90 minutes at 07:30
    assert titles.count("cronflow: sales is stale") == 1
    assert Store(jobfile.settings.state_dir).stale_alerted() == {"sales"}
    (tmp_path / "broken").unlink()
    titles = tick(60)  # 09:00 succeeds
    assert titles.count("cronflow: sales is fresh again") == 1
    assert "cronflow: sales is stale" not in titles
    assert Store(jobfile.settings.state_dir).stale_alerted() == set()
    recorded = Store(jobfile.settings.state_dir).read().host_events  # about the asset
    assert [(e.about, e.alert["on"], e.alert["delivered"]) for e in recorded] == [
        ("sales", "stale", 1),
        ("sales", "stale", 1),
    ]


def test_the_idle_tick_wakes_up_when_an_asset_turns_stale(tmp_path, receiver):

    (tmp_path / "jobs.toml").write_text(
        f'[cronflow]\nkeep_days = 0\nkeep_history_days = 0\n[alerts]\nurls = ["{receiver.url()}"]\n'
        '[assets.sales]\nfresh_within = "3h"\n'
        '[jobs.load]\ncommand = "true"\nschedule = "0 6 * * *"\nproduces = ["sales"]\n'
    )
    jobfile = load(tmp_path / "jobs.toml")
    clock = FakeClock(SIX + timedelta(seconds=30))
    real_engine(jobfile, clock).tick()  # runs 06:00
    real_engine(jobfile, clock).tick()  # decides again, leaves the stamp
    turns_stale = SIX + timedelta(hours=3)
    assert idle_tick.answer(str(jobfile.path), turns_stale - timedelta(seconds=1))
    assert not idle_tick.answer(str(jobfile.path), turns_stale)  # a full tick: it alerts
