"""A recipe job built from a file path, reconstructable in another process (the resume test's subprocess)."""

from __future__ import annotations

import dagster as dg


def make_job(path: str) -> dg.JobDefinition:
    from resources.registry import build_resources
    from resources.settings import load_settings
    from yarn_assets.recipes import build
    from yarn_assets.recipes.validation import validate_file

    report = validate_file(path)
    assert report.ok, report.text()
    assert report.recipe is not None and report.plan is not None
    defs = dg.Definitions.merge(
        build.build_definitions(report.recipe, report.plan, executor=dg.in_process_executor),
        dg.Definitions(resources=build_resources(load_settings())),
    )
    return defs.resolve_job_def(build.job_name(report.recipe))


def recon(path: str):  # type: ignore[no-untyped-def]
    return dg.build_reconstructable_job("tests.recipes.resume_target", "make_job", reconstructable_args=(path,))


if __name__ == "__main__":  # python -m tests.recipes.resume_target RECIPE RUN_CONFIG_JSON
    import json
    import sys

    with dg.DagsterInstance.get() as instance:
        result = dg.execute_job(recon(sys.argv[1]), instance=instance, run_config=json.loads(sys.argv[2]))
        print("finished", result.success)
