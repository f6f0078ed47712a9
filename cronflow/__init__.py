"""cronflow: cron for jobs that depend on each other."""

__version__ = "0.1.0"
JOBS_ENV_VAR = "CRONFLOW_JOBS"  # names the jobs file when --jobs is not given
DEFAULT_JOBS_FILE = "jobs.toml"  # else this, in the current directory
STATE_DIR_ENV_VAR = "CRONFLOW_STATE_DIR"  # puts the state directory here, whatever the file says
DEFAULT_STATE_DIR = ".cronflow"  # beside the jobs file, unless state_dir says otherwise
