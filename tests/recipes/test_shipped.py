"""The two shipped recipes end to end (offline and against loopback APIs), and how they appear in the code location."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import dagster as dg
import polars as pl
import pytest
from sqlalchemy import select

from control_plane import db
from control_plane.models import DeliverableDelivery
from io_managers.predicates import Eq
from tests.deliverables.conftest import LoopbackHttp, arxiv_api
from tests.deliverables.helpers import create, run_resources, sample_content, seed_silver
from tests.deliverables.test_research import web_search
from tests.fakes.anthropic_server import FakeAnthropic, text, tool_use
from tests.recipes.helpers import output, run, statuses
from yarn_assets.core.tables import PLATFORM_CONTENT
from yarn_assets.deliverables.prompting import OFFLINE_LABEL
from yarn_assets.deliverables.run import run_deliverable
from yarn_assets.deliverables.tables import DELIVERABLE_VERSIONS, RETAINED_ITEMS
from yarn_assets.recipes.samples import sample_rows
from yarn_assets.recipes.tables import RECIPE_OUTPUTS
from yarn_assets.recipes.validation import validate_file

RECIPES = Path(__file__).resolve().parents[2] / "yarn_assets" / "defs" / "recipes"
RESEARCH = RECIPES / "research_email" / "recipe.yaml"
DIGEST = RECIPES / "project_digest" / "recipe.yaml"

#: every column of the version row that says what was written and from what (ids and timings aside)
SAME = ("status", "draft_content", "final_content", "offline", "model", "input_tokens", "output_tokens", "cost_usd",
        "prompt_chars", "items_in_prompt", "sources_used", "source_snapshot", "stale_sources", "research",
        "strategy", "trigger", "deliverable_type", "title", "version_number", "user_id", "destination",
        "delivery_status", "delivery_error")


def _row(store, deliverable_id: str) -> dict:  # type: ignore[no-untyped-def]
    df = store.read(DELIVERABLE_VERSIONS, Eq("deliverable_id", deliverable_id))
    assert df.height == 1
    return df.row(0, named=True)


def _delivered_text(settings, row: dict) -> str:  # type: ignore[no-untyped-def]
    files = list((settings.resolved_home / "outbox" / row["user_id"] / row["deliverable_id"]).glob("*.md"))
    assert len(files) == 1
    return files[0].read_text()


def _research_pair(workspace: str, now: dt.datetime, focus: str) -> tuple[str, str]:
    kwargs = {"type_config": {"focus": focus}, "title": "Research: ranking", "now": now,
              "recipient_context": {"name": "Alice", "role": "search lead"}}
    first = create(workspace, "alice", "research_brief", **kwargs)
    return first, create(workspace, "alice", "research_brief", **kwargs)


def test_research_recipe_writes_what_the_builtin_strategy_writes_offline(workspace, store, settings) -> None:  # type: ignore[no-untyped-def]
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    seed_silver(store, sample_content("alice", now) + sample_content("bob", now))
    builtin_id, recipe_id = _research_pair(workspace, now, "learning to rank for product search")
    builtin = run_deliverable(run_resources(), deliverable_id=builtin_id, run_id="builtin-run", now=now)
    assert builtin.status == "delivered"
    report = validate_file(RESEARCH)
    assert report.ok, report.text()
    result = run(report, {"deliverable_id": recipe_id, "now": now.isoformat()})
    assert result.success
    s = statuses(result, report)
    assert [s[k] for k in ("request", "gather", "plan", "search", "papers", "compose", "store", "publish",
                           "store_empty")] == ["ok"] * 4 + ["skipped"] + ["ok"] * 3 + ["skipped"]
    a, b = _row(store, builtin_id), _row(store, recipe_id)
    assert {k: a[k] for k in SAME} == {k: b[k] for k in SAME}
    assert b["status"] == "delivered" and b["offline"] is True and OFFLINE_LABEL in b["final_content"]
    assert "Web search and arXiv were not run (offline mode)." in b["final_content"]
    assert "Bob" not in b["final_content"] and "bob" not in b["sources_used"]
    assert _delivered_text(settings, a).split("\n---\n", 1)[-1] == _delivered_text(settings, b).split("\n---\n", 1)[-1]
    # the same items were retained for both versions
    marks = store.read(RETAINED_ITEMS, Eq("user_id", "alice"))
    assert marks.height == b["items_in_prompt"] and set(marks["retained_ref"]) == {a["version_id"]}  # first wins
    with db.session_scope(workspace) as session:
        sent = list(session.scalars(select(DeliverableDelivery).where(DeliverableDelivery.deliverable_id == recipe_id)))
    assert [(d.channel, d.status) for d in sent] == [("file", "sent")]


def test_research_recipe_matches_the_builtin_against_the_apis(workspace, store, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """Online: the same requests (plan, two web searches, papers, compose) and the same version."""
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    seed_silver(store, sample_content("alice", now))
    builtin_id, recipe_id = _research_pair(workspace, now, "learning to rank for product search")
    replies = (tool_use({"search_terms": ["learning to rank product search", "click models position bias"],
                         "academic": True}), web_search, web_search,
               text("## Key findings\n- LambdaMART is a strong baseline [1]\n## Sources\n1. guide\n"
                    "## Relevant papers\n- Neural LTR [4]\n## Implications\n- Relevant to the billing search work"))
    monkeypatch.setenv("ANTHROPIC_API_KEY", "test-key")
    with FakeAnthropic() as api1, FakeAnthropic() as api2, LoopbackHttp() as arxiv:
        arxiv_api(arxiv)
        monkeypatch.setenv("YARNNN_ARXIV_BASE_URL", arxiv.base_url + "/api/query")
        monkeypatch.setenv("YARNNN_ANTHROPIC_BASE_URL", api1.base_url)
        api1.enqueue(*replies)
        builtin = run_deliverable(run_resources(), deliverable_id=builtin_id, run_id="builtin-run", now=now)
        assert builtin.status == "delivered", builtin.reason
        monkeypatch.setenv("YARNNN_ANTHROPIC_BASE_URL", api2.base_url)
        api2.enqueue(*replies)
        report = validate_file(RESEARCH)
        result = run(report, {"deliverable_id": recipe_id, "now": now.isoformat()})
        assert result.success
        assert statuses(result, report)["papers"] == "ok"  # academic and online: the route ran the child step
        assert [r.body for r in api1.requests] == [r.body for r in api2.requests]
        assert len(api2.requests) == 4
        assert len(arxiv.to("/api/query")) == 2  # one papers query per run
    a, b = _row(store, builtin_id), _row(store, recipe_id)
    assert {k: a[k] for k in SAME} == {k: b[k] for k in SAME}
    assert b["offline"] is False and b["model"] == "claude-sonnet-4-6" and b["cost_usd"] > 0.02
    assert "LambdaMART is a strong baseline" in b["final_content"]


def _digest_inputs(deliverable_id: str, now: dt.datetime, projects: list[dict]) -> dict:  # type: ignore[type-arg]
    return {"deliverable_id": deliverable_id, "projects": projects, "now": now.isoformat()}


def test_project_digest_groups_a_week_by_project_checks_and_delivers(workspace, store, settings) -> None:  # type: ignore[no-untyped-def]
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    rows = sample_rows("alice", now) + [dict(r, content="Apollo secret: bob's salary review") for r in
                                        sample_rows("bob", now) if r["platform"] == "notion"]
    rows.append(dict(sample_rows("alice", now - dt.timedelta(days=10))[0], external_id="old",
                     content="Apollo kickoff, ten days ago"))
    store.merge(PLATFORM_CONTENT, pl.DataFrame(rows, schema=dict(PLATFORM_CONTENT.schema)))
    did = create(workspace, "alice", "custom", title="Alice's projects", type_config={"focus": "projects"}, now=now)
    report = validate_file(DIGEST)
    assert report.ok, report.text()
    projects = [{"name": "Apollo", "keywords": ["apollo"]}, {"name": "Billing", "keywords": ["billing", "invoice"]},
                {"name": "Zeppelin", "keywords": ["zeppelin"]}]
    with dg.instance_for_test() as instance:
        instance.report_runless_asset_event(dg.AssetMaterialization(asset_key=["silver", "platform_content"]))
        result = run(report, _digest_inputs(did, now, projects), instance=instance)
        assert result.success
        s = statuses(result, report)
        assert s["publish"] == "ok" and s["quiet"] == "skipped"
        assert {k for k in s if k.startswith(("match[", "summarize["))} == {
            "match[0]", "match[1]", "match[2]", "summarize[0]", "summarize[1]", "summarize[2]"}
        checks = {e.check_name: e.passed for e in result.get_asset_check_evaluations()}
        assert checks == {"coverage_summarized": True, "coverage_on_topic": True, "coverage_material": True}
        per_project = output(result, report, "per_project__collect")["output"]
        assert [r["match"]["count"] for r in per_project["results"]] == [3, 2, 0]
        out = store.read(RECIPE_OUTPUTS, Eq("recipe_id", "project_digest"))
        assert out.height == 1
        row = out.row(0, named=True)
        year, week, _ = now.isocalendar()
        assert row["user_id"] == "alice" and row["output_key"] == f"{year}-W{week:02d}" and row["offline"] is True
        content = row["content"]
        assert "## Apollo\nApollo: 3 items this week (1 Notion, 2 Slack)." in content
        assert "## Zeppelin\n_No Notion or Slack activity this week._" in content
        assert "Who signs off the Apollo pricing?" in content  # an open question, from Slack
        assert "salary" not in content and "ten days ago" not in content  # bob's rows, last month's rows
        assert OFFLINE_LABEL in content
        delivered = list((settings.resolved_home / "outbox" / "alice" / did).glob("*.md"))
        assert len(delivered) == 1 and content in delivered[0].read_text()

        # a second run of the same week replaces the row and delivers a new version
        again = run(report, _digest_inputs(did, now, projects), instance=instance)
        assert again.success
        assert store.read(RECIPE_OUTPUTS, Eq("recipe_id", "project_digest")).height == 1
        assert len(list((settings.resolved_home / "outbox" / "alice" / did).glob("*.md"))) == 2

        # nothing on the tracked projects: the conditional routes to the quiet branch, nothing is delivered
        quiet = run(report, _digest_inputs(did, now, [{"name": "Zeppelin", "keywords": ["zeppelin"]}]),
                    instance=instance)
        assert quiet.success
        qs = statuses(quiet, report)
        assert qs["quiet"] == "ok" and qs["render"] == "skipped" and qs["publish"] == "skipped"
        assert len(list((settings.resolved_home / "outbox" / "alice" / did).glob("*.md"))) == 2


def test_recipes_are_assets_with_one_op_per_step_in_the_code_location() -> None:
    from resources.settings import load_settings
    from yarn_assets.definitions import build_definitions

    defs = build_definitions(load_settings())
    graph = defs.resolve_asset_graph()
    research = graph.get(dg.AssetKey(["gold", "recipes", "research_email"]))
    digest = graph.get(dg.AssetKey(["gold", "recipes", "project_digest"]))
    assert research.group_name == digest.group_name == "recipes"
    assert sorted(k.to_user_string() for k in digest.parent_keys) == ["silver/platform_content"]
    assert sorted(c.name for c in digest.check_keys) == ["coverage_material", "coverage_on_topic",
                                                         "coverage_summarized"]
    assets_def = defs.get_assets_def(dg.AssetKey(["gold", "recipes", "research_email"]))
    ops = {n.name: n.definition for n in assets_def.node_def.nodes}
    assert set(ops) == {f"research_email__{s}" for s in (
        "input", "request", "gather", "plan", "search", "papers", "material", "route", "compose", "store",
        "publish", "store_empty", "result")}
    assert ops["research_email__plan"].retry_policy == dg.RetryPolicy(max_retries=2, delay=2,
                                                                      backoff=dg.Backoff.EXPONENTIAL)
    assert ops["research_email__plan"].pool == "llm"
    assert {j.name for j in defs.resolve_all_job_defs()} >= {"recipe_research_email", "recipe_project_digest"}


@pytest.mark.slow
def test_dg_check_defs_validates_the_whole_code_location() -> None:
    import os
    import subprocess
    import sys

    repo = Path(__file__).resolve().parents[2]
    venv = Path(sys.executable).parent.parent
    env = {k: v for k, v in os.environ.items() if not k.startswith("YARNNN_")}
    env["VIRTUAL_ENV"] = str(venv)
    out = subprocess.run([str(Path(sys.executable).parent / "dg"), "check", "defs"], cwd=repo, env=env,
                         capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    assert "All definitions loaded successfully." in out.stdout + out.stderr


def test_shipped_recipes_dry_run_on_sample_data() -> None:
    from click.testing import CliRunner

    from yarn_assets.cli import main

    research = CliRunner().invoke(main, ["recipes", "validate", str(RESEARCH), "--dry-run", "--width", "200"])
    assert research.exit_code == 0, research.output
    assert "valid (research_email: 11 steps, 2 LLM call(s)" in research.output
    lines = {line.split()[0]: line.split()[1] for line in research.output.splitlines()
             if line.startswith("  ") and len(line.split()) > 1}
    assert lines["papers"] == "skipped" and lines["store_empty"] == "skipped"
    assert all(lines[s] == "ok" for s in ("request", "gather", "plan", "search", "compose", "store", "publish"))
    assert '"model": "offline-rules"' in research.output

    digest = CliRunner().invoke(main, ["recipes", "validate", str(DIGEST), "--dry-run"])
    assert digest.exit_code == 0, digest.output
    lines = {line.split()[0]: line.split()[1] for line in digest.output.splitlines()
             if line.startswith("  ") and len(line.split()) > 1}
    assert lines["per_project"] == "ok" and lines["coverage"] == "ok" and lines["publish"] == "ok"
    assert lines["quiet"] == "skipped"
