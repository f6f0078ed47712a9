"""The OpenAPI description of `cronflow serve`'s JSON API (served at /api/v1/openapi.json).
The shapes are those of the commands' `--json` (docs/commands.md), version 1 unless said."""

from __future__ import annotations

from typing import Any

from cronflow import __version__


def _get(summary: str, content: str = "application/json", **parameters: str) -> dict[str, Any]:
    return {
        "get": {
            "summary": summary,
            "parameters": [
                {
                    "name": name,
                    "in": "path",
                    "required": True,
                    "schema": {"type": "string"},
                    "description": text,
                }
                for name, text in parameters.items()
            ],
            "responses": {
                "200": {"description": "OK", "content": {content: {}}},
                "404": {"description": "no such job, run or stream"},
            },
        }
    }


OPENAPI: dict[str, Any] = {
    "openapi": "3.1.0",
    "info": {
        "title": "cronflow",
        "version": __version__,
        "description": "The jobs of one jobs file: status, runs, output, assets, timeline; "
        "and, when started with --allow-actions, run now, rerun, pause and resume.",
    },
    "paths": {
        "/api/v1/status": _get("`cronflow status --json` (schema version 2)"),
        "/api/v1/jobs/{job}/runs": _get(
            "A job's runs, newest first (`cronflow history --json`)", job="the job's name"
        ),
        "/api/v1/jobs/{job}/runs/{run_id}/output/{stream}": _get(
            "A run's last try's output, secrets masked",
            "text/plain",
            job="the job's name",
            run_id="the run's id (as `runs` gives it)",
            stream="stdout or stderr",
        ),
        "/api/v1/assets": _get("`cronflow assets --json`"),
        "/api/v1/timeline": _get("The runs that started or ended in the last 24 hours"),
        "/api/v1/actions/{action}": {
            "post": {
                "summary": "Run a command as a person would: run, run-downstream, rerun, "
                "pause, resume. Needs --allow-actions and the token (Authorization: Bearer "
                "TOKEN); refused when a browser says it comes from another site.",
                "parameters": [
                    {
                        "name": "action",
                        "in": "path",
                        "required": True,
                        "schema": {"enum": ["run", "run-downstream", "rerun", "pause", "resume"]},
                    }
                ],
                "requestBody": {
                    "content": {
                        "application/json": {
                            "schema": {
                                "type": "object",
                                "required": ["job"],
                                "properties": {
                                    "job": {"type": "string"},
                                    "date": {"type": "string", "description": "rerun: YYYY-MM-DD"},
                                },
                            }
                        }
                    }
                },
                "responses": {
                    "200": {"description": "the command ran: what it said"},
                    "401": {"description": "no token, or a wrong one"},
                    "403": {"description": "read-only, or from another site"},
                },
            }
        },
    },
}
