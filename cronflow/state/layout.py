"""The state directory, by name: every file and lock cronflow keeps there, in one place.

Imports nothing (the idle tick reads it before anything else loads). Paths are relative to
the state directory; locks are files `locks/NAME.lock`, where a job's lock is its name and a
lock of cronflow's own starts with "@" (no job name can).
"""

# Records: lost only with the directory.
LOG_NAME = "runs.jsonl"  # every event, one JSON line each; rolls over into segments
SEGMENT_GLOB = "runs-[0-9][0-9][0-9][0-9][0-9][0-9].jsonl"  # runs-000001.jsonl, ...
WATERMARKS_NAME = "watermarks.json"  # each job's newest scheduled tick decided
PAUSED_NAME = "paused.json"  # the jobs paused now: by whom, since and until when, why
BOOTS_NAME = "boots"  # each boot seen: its id and the time first estimated for it
STALE_ALERTED_NAME = "stale-alerted"  # the assets a stale alert went out for, not yet fresh
OVERDUE_NAME = "overdue.json"  # the slow and late episodes under way (decide/overdue.py)
OUTPUT_DIR = "output"  # output/JOB/<run>.<attempt>.{out,err,exit}

# Caches: rebuilt from the records when missing or damaged.
INDEX_NAME = "index.sqlite3"
SNAPSHOT_NAME = "index-snapshot.sqlite3"  # the index as retention left it
IDLE_STAMP_NAME = "idle-until"  # lets an idle one-shot tick answer without deciding
VALIDATED_NAME = "validated"  # the jobs file's last validation (act/configuration.py)

# Stamps: when something last happened (one ISO time each).
LAST_TICK = "last-tick"  # cronflow last decided what was due (status warns when old)
LAST_PRUNE = "last-prune"  # run output was last pruned
LAST_RETENTION = "last-retention"  # history past keep_history_days was last forgotten
LAST_HEARTBEAT = "last-heartbeat"  # heartbeat_url's last delivery and last failure
EXPOSURE_WARNED = "exposure-warned"  # the state directory mode last warned about
HOUSEKEEPING_ALERTED = "housekeeping-alerted"  # housekeeping that failed and was alerted

# Space held back and given up when the disk is full, so the records that end runs fit.
RESERVE_NAME = "reserve"
DAEMON_PID = "daemon.pid"

LOCK_DIR = "locks"
PLAN_LOCK = "@plan"  # one decision at a time: deciding, recording the decision, watermarks
RETENTION_LOCK = "@retention"  # one forgetting at a time
DAEMON_LOCK = "@daemon"  # one daemon per state directory
METRICS_LOCK = "@metrics"  # every writer of metrics_file, from reading to renaming
PAGE_LOCK = "@page"  # the same for html_file
# A pool's slots: locks/POOL@pool.lock (a byte a slot), POOL@pool.slot-N (who holds slot N)
# and POOL@pool.waiting/ (a file per run waiting): see state/pool_slots.py.


def lock_file(name: str) -> str:
    """The lock file of a job or of cronflow's own lock `@NAME`, under the state directory."""
    return f"{LOCK_DIR}/{name}.lock"
