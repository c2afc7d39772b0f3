"""Research and hybrid strategies against loopback servers: the Anthropic Messages API (plan, web search
tool, compose), arXiv's Atom API and an Exa-compatible search API."""

from __future__ import annotations

import json
import uuid

import pytest
from sqlalchemy import select

from control_plane import db
from control_plane.models import DeliverableVersion, LlmUsage
from resources.search import SearchError
from tests.deliverables.conftest import LoopbackHttp, arxiv_api
from tests.deliverables.helpers import NOW, create, run_resources, sample_content, seed_silver
from tests.fakes.anthropic_server import FakeAnthropic, RecordedRequest, Reply, text, tool_use
from yarn_assets.deliverables.run import run_deliverable

PAGES = {
    "learning to rank product search": [
        ("https://example.org/ltr-guide", "A practical guide to learning to rank",
         "LambdaMART remains a strong baseline."),
        ("https://example.org/ecommerce-ranking", "Ranking in e-commerce", "Click feedback is biased by position."),
    ],
    "click models position bias": [
        ("https://example.org/position-bias", "Unbiased learning to rank",
         "Inverse propensity weighting corrects bias."),
    ],
}


def web_search(req: RecordedRequest) -> Reply:
    """What the Messages API returns for a request carrying the web_search tool."""
    assert req.body["tools"][0]["type"] == "web_search_20250305"
    query = next(q for q in PAGES if q in req.messages_text)
    tool_id = f"srvtoolu_{uuid.uuid4().hex[:20]}"
    results = [{"type": "web_search_result", "url": u, "title": t, "encrypted_content": "enc", "page_age": "2026-10-01"}
               for u, t, _ in PAGES[query]]
    texts = [{"type": "text", "text": snippet, "citations": [{
        "type": "web_search_result_location", "url": u, "title": t, "cited_text": snippet, "encrypted_index": "x"}]}
        for u, t, snippet in PAGES[query]]
    body = {
        "id": f"msg_{uuid.uuid4().hex[:24]}", "type": "message", "role": "assistant", "model": req.body["model"],
        "content": [
            {"type": "server_tool_use", "id": tool_id, "name": "web_search", "input": {"query": query}},
            {"type": "web_search_tool_result", "tool_use_id": tool_id, "content": results},
            *texts,
        ],
        "stop_reason": "end_turn", "stop_sequence": None,
        "usage": {"input_tokens": 2100, "output_tokens": 180, "cache_creation_input_tokens": 0,
                  "cache_read_input_tokens": 0, "server_tool_use": {"web_search_requests": 1}},
    }
    return Reply(body=body)


@pytest.fixture
def api_mode(monkeypatch):  # type: ignore[no-untyped-def]
    with FakeAnthropic() as api, LoopbackHttp() as arxiv:
        arxiv_api(arxiv)
        monkeypatch.setenv("ANTHROPIC_API_KEY", "test-key")
        monkeypatch.setenv("YARNNN_ANTHROPIC_BASE_URL", api.base_url)
        monkeypatch.setenv("YARNNN_ARXIV_BASE_URL", arxiv.base_url + "/api/query")
        yield api, arxiv


def test_research_brief_plans_searches_reads_papers_and_composes(workspace, store, api_mode) -> None:
    api, arxiv = api_mode
    seed_silver(store, sample_content("alice"))
    did = create(workspace, "alice", "research_brief", type_config={"focus": "learning to rank for product search"})
    api.enqueue(
        tool_use({"search_terms": ["learning to rank product search", "click models position bias"],
                  "academic": True}),
        web_search, web_search,
        text("## Key findings\n- LambdaMART is a strong baseline [1]\n## Sources\n1. guide\n"
             "## Relevant papers\n- Neural LTR [4]\n## Implications\n- Relevant to the billing search work"),
    )
    out = run_deliverable(run_resources(), deliverable_id=did, run_id="r1", now=NOW)
    assert out.status == "delivered", out.reason
    steps = {s.name: s for s in out.steps}
    assert [steps[n].status for n in ("plan", "search", "papers", "compose", "deliver")] == ["ok"] * 5
    research = json.loads(out.row["research"])
    assert research["search_terms"] == ["learning to rank product search", "click models position bias"]
    assert [r["url"] for r in research["web_results"]] == [
        "https://example.org/ltr-guide", "https://example.org/ecommerce-ranking", "https://example.org/position-bias"]
    assert research["web_results"][0]["snippet"] == "LambdaMART remains a strong baseline."
    assert [p["title"] for p in research["papers"]] == ["Neural Learning to Rank for Product Search",
                                                       "Click Models Revisited"]
    assert research["papers"][0]["authors"] == ["Jane Smith", "Wei Zhang"]
    # arXiv was asked through its Atom API
    query = arxiv.to("/api/query")[0].query
    assert query["search_query"] == ["all:learning AND all:to AND all:rank AND all:product AND all:search"]
    # the compose prompt carried web results, papers and the user's own (grounding) content
    compose = api.requests_to()[-1]
    assert "[1] A practical guide to learning to rank" in compose.prompt_text
    assert "[4] Neural Learning to Rank for Product Search" in compose.prompt_text
    assert "billing revamp" in compose.prompt_text
    assert compose.body["model"] == "claude-sonnet-4-6" and compose.body["max_tokens"] == 4000
    # tokens and cost of every call (plan, 2 searches, compose) on the version and in llm_usage
    with db.session_scope(workspace) as s:
        usage = list(s.scalars(select(LlmUsage).where(LlmUsage.user_id == "alice")))
        assert len(usage) == 4 and all(u.cost_usd > 0 for u in usage)
        total_in = sum(u.input_tokens + u.cache_read_tokens + u.cache_write_tokens for u in usage)
    assert out.row["input_tokens"] == total_in and out.row["output_tokens"] > 0
    assert out.row["cost_usd"] == pytest.approx(sum(u.cost_usd for u in usage) + 2 * 0.01, rel=1e-4)
    assert out.row["offline"] is False and out.row["model"] == "claude-sonnet-4-6"
    assert "Generated offline" not in out.row["final_content"]


def test_hybrid_runs_research_and_platform_gathering_together(workspace, store, api_mode) -> None:
    api, _ = api_mode
    seed_silver(store, sample_content("alice"))
    did = create(workspace, "alice", "custom", type_config={"focus": "click models position bias"})
    api.enqueue(tool_use({"search_terms": ["click models position bias"], "academic": False}), web_search,
                text("## Custom\n- Position bias matters [1]; #eng build is red."))
    out = run_deliverable(run_resources(), deliverable_id=did, run_id="r1", now=NOW)
    assert out.status == "delivered", out.reason
    names = [s.name for s in out.steps]
    assert {"gather_platform", "plan", "search", "compose"} <= set(names)
    assert next(s for s in out.steps if s.name == "papers").status == "skipped"  # the plan said: not academic
    prompt = api.requests_to()[-1].prompt_text
    assert "Unbiased learning to rank" in prompt and "Build is red on main" in prompt
    assert out.row["strategy"] == "hybrid"


def test_exa_provider_with_offline_composer(workspace, store, monkeypatch) -> None:
    with LoopbackHttp() as exa:
        def search(call):  # type: ignore[no-untyped-def]
            if call.headers.get("x-api-key") != "exa-key":
                return 401, "application/json", b'{"error": "bad key"}'
            q = call.json()["query"]
            body = {"results": [{"title": f"Result for {q}", "url": f"https://exa.example/{i}/{len(q)}",
                                 "text": f"Finding {i} about {q}.", "publishedDate": "2026-09-01"}
                                for i in range(call.json()["numResults"])], "costDollars": {"total": 0.005}}
            return 200, "application/json", json.dumps(body).encode()

        exa.routes["/search"] = search
        monkeypatch.setenv("YARNNN_SEARCH_PROVIDER", "exa")
        monkeypatch.setenv("YARNNN_SEARCH_BASE_URL", exa.base_url)
        monkeypatch.setenv("YARNNN_SEARCH_API_KEY", "exa-key")
        monkeypatch.setenv("YARNNN_ARXIV_BASE_URL", exa.base_url + "/api/query")
        arxiv_api(exa)
        seed_silver(store, sample_content("alice"))
        did = create(workspace, "alice", "research_brief", type_config={"focus": "vector search"})
        out = run_deliverable(run_resources(), deliverable_id=did, run_id="r1", now=NOW)
        assert out.status == "delivered", out.reason
        research = json.loads(out.row["research"])
        assert research["provider"] == "exa" and len(research["web_results"]) == 5
        assert len(research["papers"]) == 2
        final = out.row["final_content"]
        assert "Result for vector search" in final and "Neural Learning to Rank for Product Search" in final
        assert "Generated offline" in final and out.row["offline"] is True


def test_missing_search_key_fails_loudly_naming_the_variable(workspace, store, monkeypatch) -> None:
    monkeypatch.setenv("YARNNN_SEARCH_PROVIDER", "exa")
    seed_silver(store, sample_content("alice"))
    did = create(workspace, "alice", "research_brief", type_config={"focus": "vector search"})
    with pytest.raises(SearchError, match="YARNNN_SEARCH_API_KEY"):
        run_deliverable(run_resources(), deliverable_id=did, run_id="r1", now=NOW)
    with db.session_scope(workspace) as s:
        v = s.scalars(select(DeliverableVersion)).one()
        assert v.status == "failed" and "YARNNN_SEARCH_API_KEY" in (v.error or "")
        assert next(st for st in v.steps if st["name"] == "search")["status"] == "failed"
