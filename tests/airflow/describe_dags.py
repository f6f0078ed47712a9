"""Run by the Airflow virtual environment's Python: load a DAG folder with Airflow's own
DagBag and write, as JSON, what the cronflow tests compare with the jobs file."""

import json
import sys
from pathlib import Path

from airflow.dag_processing.dagbag import DagBag


def describe_task(task) -> dict:
    seconds = lambda value: value.total_seconds() if value is not None else None  # noqa: E731
    return {
        "operator": type(task).__name__,
        "upstream": sorted(task.upstream_task_ids),
        "retries": task.retries,
        "retry_delay": seconds(task.retry_delay),
        "retry_exponential_backoff": task.retry_exponential_backoff,
        "max_retry_delay": seconds(task.max_retry_delay),
        "execution_timeout": seconds(task.execution_timeout),
        "max_active_tis_per_dag": task.max_active_tis_per_dag,
        "pool": task.pool,
        "pool_slots": task.pool_slots,
        "priority_weight": task.priority_weight,
        "bash_command": getattr(task, "bash_command", None),
        "cwd": getattr(task, "cwd", None),
        "env": getattr(task, "env", None),
        "skip_on_exit_code": list(getattr(task, "skip_on_exit_code", []) or []),
        "on_failure_callback": bool(task.on_failure_callback),
        "external_dag_id": getattr(task, "external_dag_id", None),
        "external_task_id": getattr(task, "external_task_id", None),
    }


def describe_dag(dag) -> dict:
    timetable = dag.timetable
    return {
        "schedule": getattr(timetable, "expression", None),
        "timezone": str(getattr(timetable, "timezone", "")) or None,
        "start_date": dag.start_date.isoformat() if dag.start_date else None,
        "timetable": type(timetable).__name__,
        "catchup": dag.catchup,
        "max_active_tasks": dag.max_active_tasks,
        "paused": dag.is_paused_upon_creation,
        "tasks": {task.task_id: describe_task(task) for task in dag.tasks},
    }


def main(folder: str, report: str) -> None:
    bag = DagBag(dag_folder=folder)
    Path(report).write_text(json.dumps({
        "import_errors": bag.import_errors,
        "dags": {dag_id: describe_dag(dag) for dag_id, dag in bag.dags.items()},
    }, default=str))


if __name__ == "__main__":
    main(*sys.argv[1:3])  # Airflow logs to stdout, so the report goes to a file
