"""Reading jobs.toml: the only module that sees raw TOML.

`load()` turns a file into a validated `JobFile` or raises one `ConfigError` that lists every
problem found, each with its line, job, key and a fix, so a user mends them all in one pass.
"""

from __future__ import annotations

import hashlib
import os
import re
import tomllib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from cronflow import DEFAULT_JOBS_FILE, DEFAULT_STATE_DIR, JOBS_ENV_VAR, STATE_DIR_ENV_VAR
from cronflow.calendars import Calendar
from cronflow.decide import dag, inherit
from cronflow.errors import ConfigError, Problem
from cronflow.load import (
    asset_tables,
    calendar_tables,
    host_checks,
    monitors,
    pool_tables,
    service_units,
    toml_lines,
)
from cronflow.load.bounded import MIB, read_regular
from cronflow.load.values import (
    ALERT_FIELDS,
    ALERT_KEYS,
    AT_BOOT,
    JOB_FIELDS,
    JOB_KEYS,
    NOT_IN_DEFAULTS,
    RETRY_FIELDS,
    SETTINGS_KEYS,
    TABLES,
    Invalid,
    close_matches,
    type_name,
)
from cronflow.model import (
    AlertSettings,
    Cadence,
    Job,
    JobFile,
    RetryPolicy,
    RunIf,
    Settings,
)
from cronflow.pools import Pool

JOB_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*\Z")
# Limits that keep every value usable where it ends up (file names, argv, timedelta, the
# clock): a job name is part of lock and output file names (255 bytes at most on Linux); a
# command is one argument to /bin/sh and an env entry one string of the environment (Linux's
# MAX_ARG_STRLEN, 128 KiB, each).
MAX_NAME = 100


def find_jobs_file(explicit: Path | None, environ: Mapping[str, str], cwd: Path) -> Path:
    """The jobs file to use: --jobs, else $CRONFLOW_JOBS, else ./jobs.toml."""
    if explicit is not None:
        return explicit
    if environ.get(JOBS_ENV_VAR):
        return Path(environ[JOBS_ENV_VAR])
    return cwd / DEFAULT_JOBS_FILE


def load(path: Path, euid: int | None = None) -> JobFile:
    """Read and validate a jobs file; raise ConfigError listing every problem found.

    `euid` is who cronflow runs as (default: this process): as root, files that others could
    change are refused and jobs may name a `user`; otherwise such files only warn.
    """
    return parse(read_text(path), path, euid)


def read_text(path: Path) -> str:
    """The text of a jobs file; a ConfigError says why it cannot be read."""
    try:
        text = read_regular(path, MAX_JOBS_FILE_BYTES).decode("utf-8")
    except FileNotFoundError:
        raise _single(
            path,
            "the file does not exist",
            f"Write one with `cronflow init {path}` (a commented example), or point to "
            f"yours with --jobs PATH or ${JOBS_ENV_VAR}",
        ) from None
    except UnicodeDecodeError as error:
        raise _single(
            path, f"the file is not UTF-8 text (byte {error.start})", "Save it as UTF-8"
        ) from None
    except OSError as error:
        raise _single(
            path,
            f"the file cannot be read ({error.strerror})",
            "Check its permissions, or point to another file with --jobs PATH",
        ) from None
    return text


# Far above any real jobs file (a thousand jobs take some 200 KB): a bound on what is read.
MAX_JOBS_FILE_BYTES = 4 * MIB
# jobs.NAME.env.VAR is four levels deep; nothing in a jobs file goes much deeper.
MAX_NESTING = 16


def parse(text: str, path: Path, euid: int | None = None) -> JobFile:
    """Validate the text of a jobs file; `path` locates it (relative paths start from its folder)."""
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(path, [toml_lines.syntax_problem(error, text)]) from None
    except RecursionError:
        raw = None  # so deep that tomllib itself gave up
    if raw is None or toml_lines.nesting(raw) >= MAX_NESTING:
        raise _single(
            path,
            "arrays or tables are nested too deeply to read",
            "No jobs.toml key takes more than a list of strings or a table of "
            "values: remove the nesting",
        )
    if nul := toml_lines.holding_nul(raw, ()):
        where = ".".join(nul).replace("\0", "\\0")
        raise _single(
            path,
            f"{where} holds a NUL character (\\0), which no command, path or variable can carry",
            "Remove it",
        )
    return _Validator(path, raw, text, os.geteuid() if euid is None else euid).job_file()


def _single(path: Path, problem: str, fix: str) -> ConfigError:
    return ConfigError(path, [Problem(problem=problem, fix=fix)])


def _present(values: dict[str, Any], fields: dict[str, str]) -> dict[str, Any]:
    return {field: values[key] for key, field in fields.items() if key in values}


@dataclass
class _Validator:
    """Collects every problem in a parsed jobs file while building its model."""

    path: Path
    raw: dict[str, Any]
    text: str
    euid: int  # who cronflow runs as: root may run jobs as other users, and trusts less

    def __post_init__(self) -> None:
        self._lines: dict[tuple[str, ...], int] | None = None  # mapped only if a problem needs it
        self.problems: list[Problem] = []
        self.checks: dict[str, list[tuple[str, str]]] = {}  # ping URL from {job} -> (job, check)
        self.folder = self.path.parent
        self.zone_set: set[str] = set()  # jobs that set `timezone` (or get it from [defaults])
        self.calendars: dict[str, Calendar] = {}  # [calendars.NAME], before the jobs using them
        self.pools: dict[str, Pool] = {}  # [pools.NAME], likewise
        self._resolved: dict[str, Path] = {}

    def job_file(self) -> JobFile:
        self._check_keys(self.raw, TABLES, ())
        settings = self._settings()
        alerts = self._alerts()
        self.calendars = calendar_tables.calendars(self)
        self.pools = pool_tables.pools(self)
        blackouts = calendar_tables.blackouts(self)
        defaults = self._table(
            ("defaults",), {k: v for k, v in JOB_KEYS.items() if k not in NOT_IN_DEFAULTS}
        )
        jobs = self._jobs(defaults, settings)
        assets = asset_tables.assets(self, jobs)
        findings, warnings = host_checks.trust_findings(
            self.path, settings, alerts, jobs, self.euid
        )
        warnings += self._shared_checks()
        self._report_all(findings + host_checks.metrics_owner_findings(settings))
        if self.problems:
            raise ConfigError(self.path, self.problems)
        return JobFile(
            path=self.path,
            settings=settings,
            alerts=alerts,
            jobs=jobs,
            assets=assets,
            warnings=tuple(warnings),
            calendars=self.calendars,
            pools=self.pools,
            blackouts=blackouts,
            text=self.text,
        )

    def _shared_checks(self) -> list[str]:
        """Jobs whose `{job}` in ping_url names one check (Healthchecks slugs are lowercase:
        "Backup" and "backup" both become "backup"): their pings would mix."""
        return [
            f"jobs {', '.join(repr(name) for name, _ in named)} all ping the check "
            f'"{named[0][1]}" ({{job}} in ping_url becomes it for each): their pings mix. '
            "Rename one, or give it a ping_url of its own"
            for named in self.checks.values()
            if len(named) > 1
        ]

    # ---- tables ------------------------------------------------------------------------------

    def _table(
        self, at: tuple[str, ...], converters: Mapping[str, Callable[[Any], Any]]
    ) -> dict[str, Any]:
        """The converted values of the table at `at`, reporting bad or unknown keys."""
        table = self.raw
        for part in at:
            table = table.get(part, {})
        if not isinstance(table, dict):
            self._report(
                at,
                f"must be a table, not {type_name(table)}",
                f"Write it as a [{'.'.join(at)}] table",
            )
            return {}
        self._check_keys(table, converters, at)
        values = {}
        for key, value in table.items():
            if key in converters:
                try:
                    values[key] = converters[key](value)
                except Invalid as invalid:
                    self._report(at + (key,), invalid.problem, invalid.fix)
                    if invalid.usable is not None:
                        values[key] = invalid.usable
        return values

    def _check_keys(self, table: dict[str, Any], known: Iterable[str], at: tuple[str, ...]) -> None:
        for key in table:
            if key not in known:
                close = close_matches(key, list(known), cutoff=0.6)
                fix = (
                    f'Did you mean "{close[0]}"?'
                    if close
                    else f"Known keys: {', '.join(sorted(known))}"
                )
                where = f"[{'.'.join(at)}]" if at else "the top level"
                self._report(at + (key,), f"unknown key in {where}", fix)

    def _settings(self) -> Settings:
        values = self._table(("cronflow",), SETTINGS_KEYS)
        state_dir, state_dir_from = (
            self._resolve(values.get("state_dir", DEFAULT_STATE_DIR)),
            "default",
        )
        if "state_dir" in values:
            state_dir_from = "state_dir"
        if os.environ.get(STATE_DIR_ENV_VAR):  # a systemd unit's StateDirectory=, say
            state_dir = Path(os.path.expanduser(os.environ[STATE_DIR_ENV_VAR])).absolute()
            state_dir_from = STATE_DIR_ENV_VAR
        elif state_dir_from == "default":  # a shell finds the state of the file's service
            service = service_units.service_state_dir(self.path.absolute(), self.euid)
            if service is not None:
                state_dir, unit = service
                state_dir_from = f"the systemd service {unit}"
        if not self._usable_state_dir(state_dir, state_dir_from):
            state_dir = self.folder / DEFAULT_STATE_DIR  # reported: the file is refused
        return Settings(
            timezone=values.get("timezone", ZoneInfo("UTC")),
            state_dir=state_dir,
            state_dir_from=state_dir_from,
            host_seed=host_checks.host_identity(),
            metrics_file=self._output_path("metrics_file", values.get("metrics_file")),
            html_file=self._output_path("html_file", values.get("html_file")),
            **_present(
                values,
                {
                    key: key
                    for key in (
                        "max_parallel",
                        "shutdown_grace",
                        "keep_days",
                        "keep_runs",
                        "keep_history_days",
                        "heartbeat_url",
                        "heartbeat_protocol",
                        "ping_timeout",
                        "instance",
                        "show_stderr",
                    )
                },
            ),
        )

    def _usable_state_dir(self, state_dir: Path, named_by: str) -> bool:
        """A directory, or nothing yet (cronflow creates it); else reported."""
        problem = host_checks.path_problem(state_dir)
        if problem == "file":
            self._report(
                ("cronflow", "state_dir"),
                f'"{state_dir}" is a file, not a directory',
                "Name a directory (cronflow creates it), or move that file away",
            )
        elif problem is not None:  # a name too long (from CRONFLOW_STATE_DIR, say)
            self._report(
                ("cronflow", "state_dir"),
                f'"{state_dir}" ({named_by}) cannot be used ({problem})',
                "Name a directory cronflow can create, or fix the path",
            )
        return problem is None

    def _output_path(self, key: str, text: str | None) -> Path | None:
        """Where a file cronflow keeps current goes (metrics_file, html_file): resolved like
        every path, in a writable directory (see host_checks.output_dir_findings)."""
        if text is None:
            return None
        path = self._resolve(text)
        self._report_all(host_checks.output_dir_findings(key, path, self.euid))
        return path

    def _alerts(self) -> AlertSettings:
        values = self._table(("alerts",), ALERT_KEYS)
        config = self._resolve(values["config"]) if "config" in values else None
        if config is not None:
            problem = host_checks.unreadable(config)
            if problem is not None:
                self._report(
                    ("alerts", "config"),
                    f'"{config}" cannot be read ({problem})',
                    "Fix the path (relative paths start at the jobs file) or its permissions",
                )
        return AlertSettings(config=config, **_present(values, ALERT_FIELDS))

    def _jobs(self, defaults: dict[str, Any], settings: Settings) -> dict[str, Job]:
        tables = self.raw.get("jobs", {})
        if not isinstance(tables, dict) or not tables:
            self._report(
                ("jobs",),
                "no jobs are declared",
                'Add a job: [jobs.hello] with command = "echo hello"',
            )
            return {}
        jobs = {}
        for name, table in tables.items():
            if not JOB_NAME.match(name):
                self._report(
                    ("jobs", name),
                    f'job name "{name}" is not allowed',
                    "Use letters, digits, '_', '-' and '.', starting with a letter or digit",
                    job=name,
                )
                continue
            if len(name) > MAX_NAME:
                self._report(
                    ("jobs", name),
                    f"job name is {len(name)} characters long",
                    f"Use at most {MAX_NAME} (it names lock and output files)",
                    job=name[:MAX_NAME] + "…",
                )
                continue
            if not isinstance(table, dict):
                self._report(
                    ("jobs", name),
                    f"must be a table, not {type_name(table)}",
                    f'Write [jobs.{name}] followed by command = "..."',
                    job=name,
                )
                continue
            values = {**defaults, **self._table(("jobs", name), JOB_KEYS)}
            if "timezone" in values:
                self.zone_set.add(name)
            if "env" in defaults and "env" in values:
                values["env"] = {**defaults["env"], **values["env"]}
            if "command" not in values:
                if "command" not in table:
                    self._report(
                        ("jobs", name),
                        "has no command",
                        'Add command = "..." (run by /bin/sh -c)',
                        job=name,
                    )
                continue
            jobs[name] = self._job(name, values, settings)
        jobs = inherit.with_asset_upstreams(jobs)
        self._check_dependencies(jobs)
        return jobs

    def _job(self, name: str, values: dict[str, Any], settings: Settings) -> Job:
        cwd = self._resolve(values.get("cwd", "."))
        if "cwd" in values and not host_checks.is_directory(cwd):
            self._report(
                ("jobs", name, "cwd"),
                f'"{cwd}" is not a directory',
                "Create it, or fix the path (relative paths start at the jobs file)",
            )
        if "shell" in values:
            self._report_all(host_checks.shell_findings(name, values["shell"]))
        env_files = tuple(self._resolve(text) for text in values.get("env_file", ()))
        for env_file in env_files:
            self._report_all(host_checks.env_file_findings(name, env_file))
        if "user" in values or "group" in values:
            self._report_all(host_checks.account_findings(name, values, self.euid))
        timezone = values.get("timezone", settings.timezone)
        at_boot = values.get("schedule") == AT_BOOT
        if at_boot and values.get("depends_on"):
            self._report(
                ("jobs", name, "schedule"),
                "@reboot runs once per boot, before anything else: it cannot have depends_on",
                "Remove depends_on, or give the job the schedule of its upstreams "
                "(jobs after a @reboot job are fine)",
                job=name,
            )
        own = self.raw["jobs"][name]  # a [defaults] run_if is for the jobs with upstreams
        rule = values.get("run_if", RunIf.ALL_SUCCESS)
        if "run_if" in own and rule is not RunIf.ALL_SUCCESS and not own.get("depends_on"):
            self._report(
                ("jobs", name, "run_if"),
                f'run_if = "{rule}" but the job has no depends_on',
                "A trigger rule is about upstreams: add depends_on, or remove run_if",
                job=name,
            )
        both = values.get("success_exit_codes", set()) & values.get("no_retry_exit_codes", set())
        if both:
            self._report(
                ("jobs", name, "no_retry_exit_codes"),
                f"exit status {min(both)} is also in success_exit_codes",
                "Keep each exit status in one list: a success is never retried anyway",
                job=name,
            )
        if "{job}" in values.get("ping_url", ""):  # one check per job from a [defaults] URL
            protocol = monitors.protocol_for(values["ping_url"], values.get("ping_protocol"))
            check = monitors.check_name(name, protocol)
            values["ping_url"] = values["ping_url"].replace("{job}", check)
            self.checks.setdefault(values["ping_url"], []).append((name, check))
        retry = RetryPolicy(**_present(values, RETRY_FIELDS))
        if "retries" in values:
            retry = replace(retry, attempts=values["retries"] + 1)
        definition: dict[str, Any] = dict(
            name=name,
            command=values["command"],
            schedule=None if at_boot else values.get("schedule"),
            at_boot=at_boot,
            timezone=timezone,
            cadence=Cadence(
                None if at_boot else values.get("schedule"),
                timezone,
                day_and=values.get("day_rule") == "and",
                days=calendar_tables.job_days(
                    self,
                    name,
                    values,
                    self.calendars,
                    own_schedule="schedule" in values and not at_boot,
                ),
            ),
            cwd=cwd,
            env_files=env_files,
            retry=retry,
            timeout=values.get("timeout") or None,  # 0 means no timeout
            max_runtime=None
            if values.get("max_runtime", "auto") == "auto"
            else values["max_runtime"],
            max_runtime_auto=values.get("max_runtime") == "auto",
            pool=pool_tables.job_pool(self, name, values, self.pools),
            **_present(values, JOB_FIELDS),
        )
        digest = hashlib.sha256(repr(definition).encode()).hexdigest()[:12]
        return Job(**definition, config_hash=digest)

    # ---- assets ------------------------------------------------------------------------------

    # ---- the graph ---------------------------------------------------------------------------

    def _check_dependencies(self, jobs: dict[str, Job]) -> None:
        declared = set(self.raw.get("jobs", {}))
        for job in jobs.values():
            for upstream in job.depends_on:
                if upstream not in declared:
                    close = close_matches(upstream, sorted(declared))
                    hint = f'Did you mean "{close[0]}"? ' if close else ""
                    self._report(
                        ("jobs", job.name, "depends_on"),
                        f'depends on "{upstream}", which is not a job',
                        f"{hint}Fix the name or add [jobs.{upstream}]",
                    )
        graph = {job.name: [u for u in job.depends_on if u in jobs] for job in jobs.values()}
        cycle = dag.find_cycle(graph)
        if cycle:
            self._report(
                ("jobs", cycle[0], "depends_on"),
                f"dependency cycle: {' -> '.join(cycle)}",
                "Remove one of these dependencies; a job cannot wait for itself",
            )
            return
        inherited, clashes = inherit.with_inherited_cadences(jobs, graph, self.zone_set)
        jobs.update(inherited)
        for clash in clashes:
            listed = ", ".join(f"{u} runs {jobs[u].cadence.describe()}" for u in clash.upstreams)
            self._report(
                ("jobs", clash.job, "depends_on"),
                f"has no schedule and its upstreams run on different schedules ({listed})",
                "Give this job its own schedule; it then runs after the latest "
                "run of each upstream at or before its own time",
            )

    # ---- helpers -----------------------------------------------------------------------------

    def _resolve(self, text: str) -> Path:
        """A path of the file: from its folder, ~ expanded (each text resolved once)."""
        if text not in self._resolved:
            self._resolved[text] = (self.folder / os.path.expanduser(text)).absolute()
        return self._resolved[text]

    def _report_all(self, findings: list[host_checks.Finding]) -> None:
        for at, problem, fix in findings:
            if at:
                self._report(at, problem, fix)
            else:  # about the jobs file itself
                self.problems.append(Problem(problem=problem, fix=fix))

    def _report(self, at: tuple[str, ...], problem: str, fix: str, job: str | None = None) -> None:
        if job is None and len(at) >= 2 and at[0] == "jobs":
            job = at[1]
        # A job's key by its name (`retries`), any other by its path (`defaults.retries`).
        key = (at[2] if len(at) >= 3 else None) if at[:1] == ("jobs",) else ".".join(at)
        self.problems.append(
            Problem(problem=problem, fix=fix, line=self._line_of(at), job=job, key=key)
        )

    def _line_of(self, at: tuple[str, ...]) -> int | None:
        if self._lines is None:
            self._lines = toml_lines.key_lines(self.text)
        for length in range(len(at), 0, -1):
            if at[:length] in self._lines:
                return self._lines[at[:length]]
        return None
