"""Durability: a run killed mid-recipe (SIGKILL) resumes from the interrupted step with the earlier
steps' stored outputs; replay from a named step; retries and handled failures are in test_steps."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import dagster as dg
import pytest

from tests.recipes.helpers import recipe
from tests.recipes.resume_target import recon
from yarn_assets.recipes import build
from yarn_assets.recipes.validation import validate_file

REPO = Path(__file__).resolve().parents[2]


def _steps(instance: dg.DagsterInstance, run_id: str, kind: dg.DagsterEventType) -> list[str]:
    records = instance.get_records_for_run(run_id, of_type=kind).records
    return sorted(r.event_log_entry.dagster_event.step_key.split(".")[-1].removeprefix("t__") for r in records)


def _lines(path: Path) -> int:
    return len(path.read_text().splitlines()) if path.exists() else 0


@pytest.mark.slow
def test_killed_run_resumes_from_the_interrupted_step(tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    counters = {s: tmp_path / f"{s}.count" for s in ("a", "b", "c", "d")}
    started, marker = tmp_path / "c.started", tmp_path / "hold"
    marker.write_text("hold")
    path = tmp_path / "recipe.yaml"
    path.write_text(recipe(f"""
        - id: a
          type: function
          method: test.echo
          inputs: {{value: "{{{{input.word}}}}", counter: "{counters['a']}"}}
        - id: b
          type: function
          method: test.echo
          inputs: {{value: "{{{{a.value}}}}-b", counter: "{counters['b']}"}}
        - id: c
          type: function
          method: test.hang
          depends_on: [b]
          inputs: {{counter: "{counters['c']}", started: "{started}", marker: "{marker}"}}
        - id: d
          type: function
          method: test.echo
          inputs: {{value: "{{{{b.value}}}}+{{{{c.done}}}}", counter: "{counters['d']}"}}
        """, extra="inputs:\n  word: {type: string, required: true}\n"))
    report = validate_file(path)
    assert report.ok, report.text()
    home = tmp_path / "dagster_home"
    home.mkdir()
    (home / "dagster.yaml").write_text("telemetry: {enabled: false}\n")
    env = {**os.environ, "DAGSTER_HOME": str(home), "PYTHONPATH": str(REPO)}
    config = build.run_config(report.recipe, {"word": "hello"})
    proc = subprocess.Popen([sys.executable, "-m", "tests.recipes.resume_target", str(path), json.dumps(config)],
                            cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 180
        while not started.exists():
            assert proc.poll() is None, proc.stdout.read().decode()[-3000:] if proc.stdout else ""
            assert time.monotonic() < deadline, "step c never started"
            time.sleep(0.1)
        os.kill(proc.pid, signal.SIGKILL)  # mid-recipe: a and b done, c running, d not started
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == -signal.SIGKILL

    monkeypatch.setenv("DAGSTER_HOME", str(home))
    with dg.DagsterInstance.get() as instance:
        (run,) = instance.get_runs()
        assert run.status == dg.DagsterRunStatus.STARTED  # the process died without reporting anything
        assert _steps(instance, run.run_id, dg.DagsterEventType.STEP_SUCCESS) == ["a", "b", "input"]
        instance.report_run_failed(run)  # what run monitoring does for a dead run worker
        marker.unlink()  # whatever held step c is gone now

        with dg.execute_job(recon(str(path)), instance=instance,
                            reexecution_options=build.replay_options(report.recipe, run.run_id, instance)) as resumed:
            assert resumed.success
            d = resumed.output_for_node("gold__recipes__t.t__d")
        assert resumed.dagster_run.parent_run_id == run.run_id
        ran = _steps(instance, resumed.run_id, dg.DagsterEventType.STEP_START)
        assert ran == ["c", "d", "result"]  # a, b (and the inputs) were not executed again
        assert [_lines(counters[s]) for s in "abcd"] == [1, 1, 2, 1]
        assert d["output"]["value"] == "hello-b+true"  # b's output came from the killed run's store
        parent_store = Path(os.environ["YARNNN_HOME"]) / "recipe_steps" / run.run_id
        assert (parent_store / "gold__recipes__t.t__b" / "result.json").exists()

        # replay from a named step: b and everything after it run again, a does not
        with dg.execute_job(recon(str(path)), instance=instance,
                            reexecution_options=build.replay_options(report.recipe, resumed.run_id, instance,
                                                                     from_step="b")) as again:
            assert again.success
        assert _steps(instance, again.run_id, dg.DagsterEventType.STEP_START) == ["b", "c", "d", "result"]
        assert [_lines(counters[s]) for s in "abcd"] == [1, 2, 3, 2]


@pytest.mark.slow
def test_cli_replays_a_shipped_recipe_from_a_step_without_delivering_twice(workspace, store, settings,  # type: ignore[no-untyped-def]
                                                                            tmp_path, monkeypatch) -> None:
    import datetime as dt

    from click.testing import CliRunner
    from sqlalchemy import select

    from control_plane import db
    from control_plane.models import DeliverableDelivery, DeliverableVersion
    from tests.deliverables.helpers import create, sample_content, seed_silver
    from yarn_assets.cli import main
    from yarn_assets.recipes.jobs import reconstructable

    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    seed_silver(store, sample_content("alice", now))
    did = create(workspace, "alice", "research_brief", type_config={"focus": "vector search"}, now=now)
    home = tmp_path / "dagster_home"
    home.mkdir()
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    report = validate_file(REPO / "yarn_assets" / "defs" / "recipes" / "research_email" / "recipe.yaml")
    with dg.DagsterInstance.get() as instance:
        config = build.run_config(report.recipe, {"deliverable_id": did, "now": now.isoformat()})
        with dg.execute_job(reconstructable("research_email", True), instance=instance, run_config=config) as first:
            assert first.success
            run_id = first.run_id
    out = CliRunner().invoke(main, ["recipes", "replay", "research_email", run_id, "--from", "compose", "--in-process"])
    assert out.exit_code == 0, out.output
    assert "success; steps run: compose, publish, result, store" in out.output
    with db.session_scope(workspace) as session:
        versions = list(session.scalars(select(DeliverableVersion).where(DeliverableVersion.deliverable_id == did)))
        deliveries = list(session.scalars(select(DeliverableDelivery).where(DeliverableDelivery.deliverable_id == did)))
    assert len(versions) == 1 and versions[0].status == "delivered"  # the replay resumed the same version
    assert [(d.status, d.attempts) for d in deliveries] == [("sent", 1)]  # and the outbox did not send it again
    bad = CliRunner().invoke(main, ["recipes", "replay", "research_email", run_id, "--from", "nope"])
    assert bad.exit_code == 1 and "recipe research_email has no step 'nope'" in bad.output
