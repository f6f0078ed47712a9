"""Run inside the cached Dagster environment by tests/test_dagster_export.py: load an
exported definitions.py and do, in one Dagster instance (a temporary DAGSTER_HOME), the steps
a JSON file lists; print what Dagster said as one JSON line.

Steps:
  {"report_history": true}                       report_history() twice: how many each time
  {"set": {NAME: VALUE}}                         set the module's constants (UPSTREAM_WAIT)
  {"materialise": FLOW, "partitions": [KEY...]}  execute_in_process per partition
  {"materialised": [PATH...]}                    the partitions Dagster holds as materialised
  {"schedule": NAME, "at": ISO}                  the run request the schedule makes at a tick
                                                 ([] when it skips the tick)
  {"partition_keys": FLOW, "until": ISO}         the flow's partition keys at that time
  {"going": FLOW}                                record a run of the flow as started
  {"hide": MODULE}                               make importing MODULE fail from now on
  {"freshness": [PATH...], "after": [SECONDS...]}
      Dagster's own freshness daemon, its clock frozen SECONDS after the asset's newest
      materialisation: the state it records (PASS, WARN, FAIL, UNKNOWN)
"""

import importlib.util
import json
import logging
import sys
from datetime import datetime
from pathlib import Path

import dagster as dg
from dagster._core.remote_origin import InProcessCodeLocationOrigin
from dagster._core.test_utils import (
    InProcessTestWorkspaceLoadTarget,
    create_run_for_test,
    freeze_time,
    instance_for_test,
)
from dagster._core.types.loadable_target_origin import LoadableTargetOrigin
from dagster._core.workspace.context import WorkspaceProcessContext
from dagster._daemon.freshness import FreshnessDaemon

STEP_EVENTS = {
    "STEP_START",
    "STEP_UP_FOR_RETRY",
    "STEP_RESTARTED",
    "STEP_FAILURE",
    "STEP_SUCCESS",
    "ASSET_MATERIALIZATION",
}


def load(path):
    spec = importlib.util.spec_from_file_location("definitions", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def materialise(module, instance, flow, partitions):
    job = module.defs.resolve_job_def(flow)
    runs = {}
    for key in partitions:
        result = job.execute_in_process(partition_key=key, instance=instance, raise_on_error=False)
        steps = {}
        for event in result.all_events:
            if event.event_type_value in STEP_EVENTS and event.step_key:
                said = event.event_type_value
                if event.event_type_value == "STEP_FAILURE":
                    said += ": " + (event.step_failure_data.error.message or "").strip()
                steps.setdefault(event.step_key, []).append(said)
        warned = [
            entry.user_message
            for entry in instance.all_logs(result.run_id)
            if entry.level >= logging.WARNING and not entry.is_dagster_event
        ]
        runs[key] = {"success": result.success, "steps": steps, "warned": warned}
    return runs


def freshness(path, instance, keys, offsets):
    target = InProcessTestWorkspaceLoadTarget(
        InProcessCodeLocationOrigin(LoadableTargetOrigin(python_file=path, attribute="defs"))
    )
    states = {}
    with WorkspaceProcessContext(instance, target) as context:
        for parts in keys:
            key = dg.AssetKey(parts)
            made = instance.get_latest_materialization_event(key).timestamp
            seen = []
            for offset in offsets:
                with freeze_time(made + offset):
                    list(FreshnessDaemon().run_iteration(context))
                record = instance.get_freshness_state_records([key])[key]
                seen.append(record.freshness_state.value)
            states["/".join(parts)] = seen
    return states


def schedule(module, instance, name, at):
    definition = module.defs.resolve_schedule_def(name)
    context = dg.build_schedule_context(
        instance=instance,
        scheduled_execution_time=datetime.fromisoformat(at),
        repository_def=module.defs.get_repository_def(),
    )
    requests = definition.evaluate_tick(context).run_requests or []
    return [{"partition": r.partition_key, "tags": dict(r.tags)} for r in requests]


def main(path, steps_file):
    module = load(path)
    said = []
    with instance_for_test() as instance:
        for step in json.loads(Path(steps_file).read_text()):
            if "set" in step:
                for name, value in step["set"].items():
                    setattr(module, name, value)
                said.append(None)
            elif "report_history" in step:
                first = module.report_history(instance)
                said.append([first, module.report_history(instance)])
            elif "materialise" in step:
                said.append(materialise(module, instance, step["materialise"], step["partitions"]))
            elif "materialised" in step:
                key = dg.AssetKey(step["materialised"])
                said.append(sorted(instance.get_materialized_partitions(key)))
            elif "hide" in step:
                sys.modules[step["hide"]] = None  # import raises ImportError
                said.append(None)
            elif "going" in step:
                create_run_for_test(
                    instance, job_name=step["going"], status=dg.DagsterRunStatus.STARTED
                )
                said.append(None)
            elif "partition_keys" in step:
                partitions = module.defs.resolve_job_def(step["partition_keys"]).partitions_def
                until = datetime.fromisoformat(step["until"])
                said.append(partitions.get_partition_keys(current_time=until))
            elif "schedule" in step:
                said.append(schedule(module, instance, step["schedule"], step["at"]))
            elif "freshness" in step:
                said.append(freshness(path, instance, step["freshness"], step["after"]))
    print(json.dumps(said))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
