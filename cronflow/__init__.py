"""cronflow: cron for jobs that depend on each other."""

__version__ = "0.1.0"
