"""Running recipes in tests: validate, build, run in process against the per-test workspace."""

from __future__ import annotations

import textwrap
from typing import Any

import dagster as dg

from yarn_assets.recipes import build
from yarn_assets.recipes.validation import Report, validate_text

HEADER = """\
version: "1.0"
pipeline_id: {pid}
name: Test recipe {pid}
functions_from: [tests.recipes.functions]
"""


def recipe(steps: str, *, pid: str = "t", extra: str = "") -> str:
    """A recipe text from a YAML block of steps (indented as written in the test)."""
    body = textwrap.dedent(steps).strip("\n")
    return HEADER.format(pid=pid) + textwrap.dedent(extra) + "steps:\n" + textwrap.indent(body, "  ") + "\n"


def valid(text: str) -> Report:
    report = validate_text(text)
    assert report.ok, report.text()
    return report


def defs_for(report: Report) -> dg.Definitions:
    from resources.registry import build_resources
    from resources.settings import load_settings

    assert report.recipe is not None and report.plan is not None
    return dg.Definitions.merge(build.build_definitions(report.recipe, report.plan),
                                dg.Definitions(resources=build_resources(load_settings())))


def run(report: Report, inputs: dict[str, Any] | None = None, *, instance: dg.DagsterInstance | None = None,
        raise_on_error: bool = False) -> dg.ExecuteInProcessResult:
    assert report.recipe is not None
    job = defs_for(report).resolve_job_def(build.job_name(report.recipe))
    config = {**build.run_config(report.recipe, inputs or {}),
              "loggers": {"console": {"config": {"log_level": "ERROR"}}}}
    return job.execute_in_process(run_config=config, instance=instance, raise_on_error=raise_on_error)


def statuses(result: Any, report: Report) -> dict[str, str]:
    """step id -> ok | skipped | failed (per Dagster step; loop bodies as 'step[i]')."""
    assert report.recipe is not None
    graph = build.asset_key(report.recipe).to_python_identifier()
    prefix = f"{graph}.{report.recipe.pipeline_id}__"
    out: dict[str, str] = {}
    for e in result.all_events:
        key = e.step_key or ""
        if not key.startswith(prefix):
            continue
        name = key[len(prefix):]
        kind = e.event_type_value
        if kind == "STEP_SUCCESS":
            out[name] = "ok"
        elif kind == "STEP_SKIPPED":
            out[name] = "skipped"
        elif kind == "STEP_FAILURE":
            out[name] = "failed"
    return out


def output(result: Any, report: Report, step: str) -> dict[str, Any]:
    """The envelope a step produced in this run."""
    assert report.recipe is not None
    graph = build.asset_key(report.recipe).to_python_identifier()
    return result.output_for_node(f"{graph}.{report.recipe.pipeline_id}__{step}", "result")
