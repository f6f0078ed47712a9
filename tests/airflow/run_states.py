"""Run by the Airflow virtual environment's Python: write, as JSON, the state of every DAG
run and task instance in the Airflow database that $AIRFLOW_HOME points to."""

import json
import sys
from pathlib import Path

from airflow.models import DagRun, TaskInstance
from airflow.utils.session import create_session


def main(report: str) -> None:
    runs = {}
    with create_session() as session:
        for run in session.query(DagRun).order_by(DagRun.dag_id):
            instances = session.query(TaskInstance).filter(
                TaskInstance.dag_id == run.dag_id, TaskInstance.run_id == run.run_id)
            runs[f"{run.dag_id}/{run.run_id}"] = {
                "dag_id": run.dag_id,
                "state": str(run.state),
                "logical_date": run.logical_date.isoformat() if run.logical_date else None,
                "tasks": {ti.task_id: {"state": str(ti.state), "try_number": ti.try_number}
                          for ti in instances},
            }
    Path(report).write_text(json.dumps(runs))


if __name__ == "__main__":
    main(sys.argv[1])  # Airflow logs to stdout, so the report goes to a file
