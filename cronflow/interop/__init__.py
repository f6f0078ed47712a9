"""Other tools' formats: crontabs in, Airflow DAGs and systemd units out, the init template."""
