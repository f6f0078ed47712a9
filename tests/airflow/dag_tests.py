"""Run by the Airflow virtual environment's Python: `airflow dags test DAG_ID DATE` for each
DAG_ID@DATE given, in order, in this one process (Airflow's own command-line function,
parsed by its own parser: one start-up instead of one a DAG), and write, as JSON, how each
ended ("ok", or the exception a failed run ended the command with)."""

import json
import sys
from pathlib import Path

from airflow.cli import cli_parser


def main(report: str, *pairs: str) -> None:
    parser = cli_parser.get_parser()
    ended = {}
    for pair in pairs:
        dag_id, when = pair.split("@")
        arguments = parser.parse_args(["dags", "test", dag_id, when])
        try:
            arguments.func(arguments)
            ended[pair] = "ok"
        except BaseException as error:  # noqa: BLE001 - a failed run ends the command so
            ended[pair] = f"{type(error).__name__}: {error}"
    Path(report).write_text(json.dumps(ended))


if __name__ == "__main__":
    main(sys.argv[-1], *sys.argv[1:-1])  # Airflow logs to stdout, so the report goes to a file
