"""The commented jobs.toml that `cronflow init` writes (a test checks that it loads)."""

STARTER = """\
# jobs.toml: the jobs cronflow runs. Reference: docs/jobs-toml.md in cronflow's source.
# Check it with `cronflow validate`; try a date with `cronflow run --date 2026-01-14`;
# let cron or systemd run it: `* * * * * cronflow run`, or `cronflow systemd install`.

[cronflow]
timezone = "UTC"          # the zone schedules are read in (never the machine's own)
state_dir = ".cronflow"   # run log, locks and job output; relative to this file
max_parallel = 4          # runs at once

[defaults]                # any job key, for every job that does not set it
retries = 2               # tries after the first
retry_delay = "30s"       # then 1m, 2m, ... (retry_backoff = 2.0), at most retry_max_delay
timeout = "1h"            # then SIGTERM to the job's processes, and SIGKILL 10s later

# [alerts]                # failures and recoveries, through apprise (Slack, mail, ntfy, ...)
# urls = ["ntfy://ntfy.sh/your-topic"]

[jobs.extract]
description = "Fetch the day's data"
schedule = "0 6 * * *"    # cron: minute hour day-of-month month day-of-week, or @daily
command = \'\'\'
mkdir -p data
echo "extracting $CRONFLOW_DATE" > "data/$CRONFLOW_DATE.txt"
\'\'\'

[jobs.report]
description = "Runs after extract succeeded, for the same date"
depends_on = ["extract"]
command = 'wc -l "data/$CRONFLOW_DATE.txt"'
"""
