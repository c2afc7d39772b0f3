"""Nightly extraction against the loopback Anthropic API: single calls, the Message Batches path
(create, poll, JSONL results), retries of failed batch items, resuming a batch, usage at batch price."""

import datetime as dt
import json
import re

import dagster as dg
import polars as pl
import pytest
from sqlalchemy import select

from control_plane.models import LlmBatch, LlmUsage
from resources.llm import LLM, LLMScope
from resources.llm_batches import BatchRequest, BatchTimeout, LLMBatches
from resources.llm_pricing import cost_usd
from resources.registry import build_resources
from tests.fakes.anthropic_batches import FakeBatches, errored, text_answer, tool_answer
from tests.fakes.anthropic_server import FakeAnthropic, respond
from tests.memory.conftest import chat_line, register_chat, write_jsonl
from yarn_assets.ingest.platforms.chat.assets import bronze_imported_chats, silver_chat
from yarn_assets.memory import user_context
from yarn_assets.memory.assets import day_key, memory_facts, session_summaries
from yarn_assets.memory.extraction import FACTS_SYSTEM, FactExtraction
from yarn_assets.memory.tables import FACT_CANDIDATES, SESSION_SUMMARIES

DAY = "2026-11-18"
T = dt.datetime(2026, 11, 18, 9, 0, tzinfo=dt.UTC)
MODEL = "claude-sonnet-4-6"


def _sessions(settings, tmp_path) -> None:  # type: ignore[no-untyped-def]
    alice = [chat_line("a1", 0, "system", "You are yarnnn.", T)]
    for i, text in enumerate(["Remember that my role is Head of Ops.", "I prefer tables.", "Draft the update.",
                              "Shorter please.", "Thanks."], start=1):
        at = T + dt.timedelta(minutes=2 * i)
        alice += [chat_line("a1", 2 * i - 1, "user", text, at),
                  chat_line("a1", 2 * i, "assistant", f"SECRET-ASSISTANT-REPLY-{i}", at + dt.timedelta(minutes=1))]
    alice += [chat_line("a2", i, "user", f"Second session message {i}", T + dt.timedelta(hours=3, minutes=i))
              for i in range(3)]
    bob = [chat_line("b1", i, "user", t, T + dt.timedelta(hours=1, minutes=i))
           for i, t in enumerate(["I work at Contoso.", "Check my inbox.", "Thanks."])]
    register_chat(settings, "alice", write_jsonl(tmp_path / "alice.jsonl", alice), DAY)
    register_chat(settings, "bob", write_jsonl(tmp_path / "bob.jsonl", bob), DAY)


def _model_answer(tool: str | None, prompt: str) -> dict:
    """A deterministic stand-in for the model: what it 'extracts' depends only on the prompt."""
    if tool == "record_session_summary":
        return {"summary": "The user asked for a status update and asked to shorten it."}
    facts = [{"key": "fact:assistant_identity", "value": "You are a helpful assistant.", "confidence": 0.9}]
    if "my role is Head of Ops" in prompt:
        facts.append({"key": "fact:role", "value": "Head of Ops", "confidence": 0.95, "explicit": True,
                      "evidence": 1})
    if "I prefer tables" in prompt:
        facts.append({"key": "preference:format", "value": "Prefers tables.", "confidence": 0.8, "evidence": 2})
    if "I work at Contoso" in prompt:
        facts.append({"key": "fact:company", "value": "Contoso", "evidence": 1})  # confidence defaults to 0.8
    return {"facts": facts}


def _prompt_of(params: dict) -> str:
    return "\n".join(m["content"] if isinstance(m["content"], str) else json.dumps(m["content"])
                     for m in params["messages"])


@pytest.fixture
def api():  # type: ignore[no-untyped-def]
    with FakeAnthropic(default=respond(lambda req: _model_answer(req.tool_name, req.messages_text))) as server:
        yield server


def _resources(settings, api, threshold: int) -> dict:  # type: ignore[no-untyped-def]
    res = build_resources(settings)
    llm = LLM(control_plane=res["control_plane"], offline=False, api_key="sk-test-not-a-secret", base_url=api.base_url,
              timeout_seconds=5.0, max_retries=0)
    res["llm"] = llm
    res["llm_batches"] = LLMBatches(llm=llm, threshold=threshold, poll_seconds=0.01, timeout_seconds=10)
    return res


def _run(res: dict) -> dg.ExecuteInProcessResult:
    assert dg.materialize([bronze_imported_chats, silver_chat], partition_key=DAY, resources=res).success
    result = dg.materialize([memory_facts, session_summaries], partition_key=day_key(DAY), resources=res)
    assert result.success
    return result


def _usage(cp) -> list[LlmUsage]:  # type: ignore[no-untyped-def]
    with cp.session() as s:
        return list(s.scalars(select(LlmUsage).where(LlmUsage.offline.is_(False)).order_by(LlmUsage.created_at)))


def _facts(store) -> pl.DataFrame:  # type: ignore[no-untyped-def]
    return store.read(FACT_CANDIDATES).drop("observed_at").sort("candidate_id")


def test_single_calls_send_user_turns_only_and_apply_the_rules(settings, cp, store, api, tmp_path) -> None:  # type: ignore[no-untyped-def]
    _sessions(settings, tmp_path)
    result = _run(_resources(settings, api, threshold=100))
    calls = api.requests_to("/v1/messages")
    assert len(calls) == 4  # facts for 3 sessions (>= 3 user messages) + 1 summary (>= 5)
    assert not api.requests_to("/v1/messages/batches")
    for req in calls:
        assert "SECRET-ASSISTANT-REPLY" not in req.messages_text or req.tool_name == "record_session_summary"
        assert req.body["model"] == MODEL
    facts_req = next(r for r in calls if r.tool_name == "record_fact_extraction" and "Head of Ops" in r.messages_text)
    assert facts_req.system_text == FACTS_SYSTEM and facts_req.body["system"][0]["cache_control"]
    assert "[1] Remember that my role is Head of Ops." in facts_req.messages_text
    assert "You are yarnnn" not in facts_req.messages_text  # the system turn is not shown either

    facts = store.read(FACT_CANDIDATES)
    assert set(facts["extractor"]) == {MODEL} and not facts["offline"].any()
    junk = facts.filter(pl.col("key") == "fact:assistant_identity")
    assert set(junk["decision"]) == {"rejected"} and set(junk["reason"]) == {"system_prompt"}
    with cp.session() as s:
        role = {r.key: r for r in user_context.current(s, "alice")}["fact:role"]
        assert (role.source, role.confidence) == ("user_stated", 0.95)
        assert {r.key: r.value for r in user_context.current(s, "bob")} == {"fact:company": "Contoso"}
    summary = store.read(SESSION_SUMMARIES)
    assert summary["summary"].to_list() == [f"[{DAY}] The user asked for a status update and asked to shorten it."]
    meta = result.asset_materializations_for_node("gold__memory_facts")[0].metadata
    assert meta["llm_mode"].value == "sync" and meta["llm_calls"].value == 3
    rows = _usage(cp)
    assert {(r.user_id, r.task) for r in rows} == {("alice", "memory"), ("bob", "memory")}
    for r in rows:
        assert r.cost_usd == pytest.approx(cost_usd(MODEL, input_tokens=r.input_tokens, output_tokens=r.output_tokens,
                                                    cache_write_tokens=r.cache_write_tokens,
                                                    cache_read_tokens=r.cache_read_tokens))


def test_batch_path_gives_the_same_memory_at_half_price(settings, cp, store, api, tmp_path) -> None:  # type: ignore[no-untyped-def]
    _sessions(settings, tmp_path)
    with FakeBatches(api, tool_answer(lambda cid, params: _model_answer(params["tool_choice"]["name"],
                                                                         _prompt_of(params))),
                     polls_before_end=2) as batches:
        result = _run(_resources(settings, api, threshold=0))
    assert not api.requests_to("/v1/messages")  # everything went through batches
    assert [len(b["requests"]) for b in batches.created] == [3, 1]  # facts, then summaries
    for body in batches.created:
        for r in body["requests"]:
            assert re.fullmatch(r"[A-Za-z0-9_-]{1,64}", r["custom_id"])
            assert r["params"]["model"] == MODEL and r["params"]["tool_choice"]["type"] == "tool"
    # in_progress twice, ended on the third poll; the SDK's results() retrieves once more for results_url
    assert all(n == 4 for n in batches.polls.values())
    assert all(n == 1 for n in batches.results_fetched.values())
    meta = result.asset_materializations_for_node("gold__memory_facts")[0].metadata
    assert meta["llm_mode"].value == "batch" and meta["llm_batch_polls"].value == 2
    for r in _usage(cp):
        full = cost_usd(MODEL, input_tokens=r.input_tokens, output_tokens=r.output_tokens,
                        cache_write_tokens=r.cache_write_tokens, cache_read_tokens=r.cache_read_tokens)
        assert r.cost_usd == pytest.approx(full / 2)
    with cp.session() as s:
        assert [b.status for b in s.scalars(select(LlmBatch))] == ["ended", "ended"]
    batch_facts = _facts(store)
    assert batch_facts.filter(pl.col("key") == "fact:role")["decision"].to_list() == ["kept"]

    # the same night through single calls (a fresh warehouse/control plane would be equivalent): replaying
    # it here recognises every candidate, so the gold partition is identical
    again = _run(_resources(settings, api, threshold=100))
    assert _facts(store).equals(batch_facts)
    assert again.asset_materializations_for_node("gold__memory_facts")[0].metadata["events_written"].value == 0


def test_failed_or_malformed_batch_items_are_retried_as_single_calls(settings, cp, store, api, tmp_path) -> None:  # type: ignore[no-untyped-def]
    _sessions(settings, tmp_path)

    def answer(custom_id: str, params: dict) -> dict:
        prompt = _prompt_of(params)
        if "Contoso" in prompt:
            return errored("Overloaded")
        if "Second session" in prompt:
            return text_answer(custom_id, params, "sorry, I cannot produce JSON today")
        return tool_answer(lambda c, p: _model_answer(p["tool_choice"]["name"], prompt))(custom_id, params)

    with FakeBatches(api, answer):
        result = _run(_resources(settings, api, threshold=0))
    meta = result.asset_materializations_for_node("gold__memory_facts")[0].metadata
    assert meta["llm_retried_sync"].value == 2 and meta["extraction_errors"].value == 0
    singles = api.requests_to("/v1/messages")
    assert sorted("Contoso" in r.messages_text for r in singles) == [False, True]
    with cp.session() as s:
        assert {r.key for r in user_context.current(s, "bob")} == {"fact:company"}


def test_a_batch_is_resumed_not_resubmitted_and_usage_counted_once(settings, cp, api) -> None:  # type: ignore[no-untyped-def]
    res = _resources(settings, api, threshold=0)
    llm = res["llm"]
    requests = [BatchRequest(custom_id=f"r{i}", user_id="alice", system=FACTS_SYSTEM, prompt=f"[1] I prefer tables {i}",
                             output=FactExtraction, offline=lambda: FactExtraction()) for i in range(2)]
    scope = LLMScope(run_id="run-1", asset_key="gold/memory_facts", partition_key=DAY)
    with FakeBatches(api, tool_answer(lambda cid, p: _model_answer("record_fact_extraction", _prompt_of(p))),
                     polls_before_end=1000) as batches:
        impatient = LLMBatches(llm=llm, threshold=0, poll_seconds=0.01, timeout_seconds=0.05)
        with pytest.raises(BatchTimeout, match="a retried run resumes it"):
            impatient.run(task="memory", requests=requests, scope=scope)
        assert len(batches.created) == 1
        batches.polls_before_end = 0  # the batch finishes while nobody is watching
        patient = LLMBatches(llm=llm, threshold=0, poll_seconds=0.01, timeout_seconds=5)
        results, run = patient.run(task="memory", requests=requests, scope=scope)
        assert run.resumed and len(batches.created) == 1
        assert all(r.value is not None and r.via == "batch" for r in results.values())
        recorded = len(_usage(cp))
        assert recorded == 2
        results, run = patient.run(task="memory", requests=requests, scope=scope)  # e.g. a Dagster retry
        assert run.resumed and len(batches.created) == 1 and len(_usage(cp)) == recorded
        assert [r.value.facts[-1].value for r in results.values()] == ["Prefers tables.", "Prefers tables."]


def test_users_over_budget_are_not_sent_in_a_batch(settings, cp, api) -> None:  # type: ignore[no-untyped-def]
    res = _resources(settings, api, threshold=0)
    llm = res["llm"].model_copy(update={"daily_token_budgets": {"free": 1, "starter": None, "pro": None}})
    with cp.session() as s:
        from control_plane.models import User

        s.get(User, "bob").tier = "free"
    requests = [BatchRequest(custom_id=u, user_id=u, system=FACTS_SYSTEM, prompt="[1] I prefer tables",
                             output=FactExtraction, offline=lambda: FactExtraction()) for u in ("alice", "bob")]
    with FakeBatches(api, tool_answer(lambda cid, p: {"facts": []})) as batches:
        results, _ = LLMBatches(llm=llm, threshold=0, poll_seconds=0.01).run(task="memory", requests=requests)
    assert [r["custom_id"] for r in batches.created[0]["requests"]] == ["alice"]
    assert results["bob"].value is None and "budget" in results["bob"].error
    assert results["alice"].value == FactExtraction()


def test_offline_mode_answers_batch_sized_nights_with_the_labelled_rules(settings, cp, store, tmp_path) -> None:  # type: ignore[no-untyped-def]
    _sessions(settings, tmp_path)
    res = build_resources(settings)
    assert res["llm"].is_offline
    res["llm_batches"] = LLMBatches(llm=res["llm"], threshold=0)
    result = _run(res)
    meta = result.asset_materializations_for_node("gold__memory_facts")[0].metadata
    assert meta["llm_mode"].value == "offline" and meta["extractor"].value == "offline-rules"
    assert meta["llm_offline_calls"].value == 3
    with cp.session() as s:
        role = {r.key: r for r in user_context.current(s, "alice")}["fact:role"]
        assert (role.value, role.source) == ("Head of Ops", "user_stated")
