"""The LLM resource against a loopback Anthropic Messages API, with the real ``anthropic`` client."""


import datetime as dt
import time

import dagster as dg
import pytest
from pydantic import BaseModel, Field
from sqlalchemy import select

from control_plane.models import LlmUsage, User
from resources.control_plane import ControlPlane
from resources.llm import (
    LLM,
    LLMBudgetExceeded,
    LLMCallError,
    LLMConfigError,
    LLMOutputError,
    LLMScope,
)
from resources.llm_pricing import cost_usd, price_for
from tests.fakes.anthropic_server import (
    FakeAnthropic,
    error,
    overloaded,
    rate_limited,
    slow,
    text,
    tool_use,
)

SYSTEM = "You classify things. " * 50


class Verdict(BaseModel):
    """The classification."""

    label: str
    confidence: float = Field(ge=0, le=1)


@pytest.fixture
def control_plane(settings) -> ControlPlane:  # type: ignore[no-untyped-def]
    cp = ControlPlane(url=settings.resolved_control_plane_url)
    with cp.session() as s:
        s.add_all([
            User(id="free_user", email="f@example.com", tier="free"),
            User(id="starter_user", email="s@example.com", tier="starter"),
            User(id="pro_user", email="p@example.com", tier="pro"),
            User(id="odd_user", email="o@example.com", tier="enterprise-trial"),
        ])
    return cp


@pytest.fixture
def api():  # type: ignore[no-untyped-def]
    with FakeAnthropic() as server:
        yield server


def online(cp: ControlPlane, api: FakeAnthropic, **kw) -> LLM:  # type: ignore[no-untyped-def]
    base = {"control_plane": cp, "offline": False, "api_key": "sk-test-not-a-secret", "base_url": api.base_url,
            "timeout_seconds": 5.0, "max_retries": 2}
    base.update(kw)
    return LLM(**base)


def usage_rows(cp: ControlPlane) -> list[LlmUsage]:
    with cp.session() as s:
        return list(s.scalars(select(LlmUsage).order_by(LlmUsage.created_at)))


def ask(llm: LLM, user: str = "pro_user", **kw):  # type: ignore[no-untyped-def]
    args = {"task": "signals", "user_id": user, "system": SYSTEM, "prompt": "Is this urgent? 'server down'",
            "output": Verdict, "offline": lambda: Verdict(label="offline", confidence=0.5),
            "scope": LLMScope(run_id="run-1", asset_key="gold/x", partition_key="2026-11-23-10:00")}
    args.update(kw)
    return llm.structured(**args)


def test_valid_tool_use_answer_is_validated_recorded_and_cached(control_plane, api) -> None:
    api.enqueue(tool_use({"label": "urgent", "confidence": 0.9}), tool_use({"label": "calm", "confidence": 0.2}))
    llm = online(control_plane, api, model_signals="claude-haiku-4-5-20251001")
    first = ask(llm)
    second = ask(llm)
    assert first.value == Verdict(label="urgent", confidence=0.9) and not first.offline
    assert second.value.label == "calm"
    req = api.requests[0]
    assert req.api_key == "sk-test-not-a-secret"
    assert req.body["model"] == "claude-haiku-4-5-20251001"
    assert req.body["tool_choice"] == {"type": "tool", "name": "record_verdict"}
    assert req.body["tools"][0]["input_schema"]["properties"]["confidence"]["maximum"] == 1
    assert req.body["system"][0]["cache_control"] == {"type": "ephemeral"}
    assert "server down" in req.messages_text
    # the stable prefix is written to the cache once, then read
    assert first.usage.cache_write_tokens > 0 and first.usage.cache_read_tokens == 0
    assert second.usage.cache_read_tokens > 0 and second.usage.cache_write_tokens == 0
    rows = usage_rows(control_plane)
    assert len(rows) == 2
    r = rows[0]
    assert (r.user_id, r.task, r.model, r.offline) == ("pro_user", "signals", "claude-haiku-4-5-20251001", False)
    assert (r.run_id, r.asset_key, r.partition_key) == ("run-1", "gold/x", "2026-11-23-10:00")
    assert r.usage_date == dt.datetime.now(dt.UTC).date().isoformat()
    assert r.input_tokens == first.usage.input_tokens > 0 and r.output_tokens > 0
    expected = cost_usd("claude-haiku-4-5-20251001", input_tokens=r.input_tokens, output_tokens=r.output_tokens,
                        cache_write_tokens=r.cache_write_tokens, cache_read_tokens=r.cache_read_tokens)
    assert r.cost_usd == pytest.approx(expected) and r.cost_usd > 0
    meta = (first.usage + second.usage).as_metadata()
    assert meta["llm_calls"] == 2 and meta["llm_models"] == "claude-haiku-4-5-20251001"


def test_json_text_answer_in_code_fences_is_accepted(control_plane, api) -> None:
    api.enqueue(text('```json\n{"label": "fyi", "confidence": 0.7}\n```'))
    assert ask(online(control_plane, api)).value.label == "fyi"


def test_malformed_json_is_sent_back_once_then_valid(control_plane, api) -> None:
    api.enqueue(text("Sure! The label is urgent."), tool_use({"label": "urgent", "confidence": 0.8}))
    result = ask(online(control_plane, api))
    assert result.value.label == "urgent" and result.attempts == 2
    retry = api.requests[1]
    assert retry.body["messages"][1]["role"] == "assistant"
    assert "answer was invalid" in retry.body["messages"][2]["content"][0]["text"]
    assert result.usage.calls == 2 and len(usage_rows(control_plane)) == 2  # the wasted call is paid for too


def test_invalid_tool_input_gets_a_tool_result_error(control_plane, api) -> None:
    api.enqueue(tool_use({"label": "urgent", "confidence": 7}), tool_use({"label": "urgent", "confidence": 0.7}))
    assert ask(online(control_plane, api)).value.confidence == 0.7
    correction = api.requests[1].body["messages"][2]["content"][0]
    assert correction["type"] == "tool_result" and correction["is_error"] is True
    assert "confidence" in correction["content"]


def test_malformed_twice_raises_output_error(control_plane, api) -> None:
    api.enqueue(text("nope"), text("{still not valid"))
    with pytest.raises(LLMOutputError, match="malformed twice") as info:
        ask(online(control_plane, api))
    assert info.value.attempts == 2 and info.value.user_id == "pro_user" and info.value.usage.calls == 2
    assert len(api.requests) == 2


def test_truncated_answer_is_retried_with_more_room(control_plane, api) -> None:
    api.enqueue(text('{"label": "urg', stop_reason="max_tokens"), tool_use({"label": "urgent", "confidence": 0.6}))
    ask(online(control_plane, api), max_tokens=100)
    assert api.requests[1].body["max_tokens"] == 200


def test_429_with_retry_after_is_honoured(control_plane, api) -> None:
    api.enqueue(rate_limited(retry_after="1"), tool_use({"label": "ok", "confidence": 0.9}))
    started = time.monotonic()
    result = ask(online(control_plane, api))
    assert result.value.label == "ok"
    assert len(api.requests) == 2
    assert api.requests[1].received_at - api.requests[0].received_at >= 0.9
    assert time.monotonic() - started >= 0.9
    assert len(usage_rows(control_plane)) == 1  # the 429 consumed nothing


def test_529_overloaded_is_retried_then_succeeds(control_plane, api) -> None:
    api.enqueue(overloaded(), tool_use({"label": "ok", "confidence": 0.9}))
    assert ask(online(control_plane, api, max_retries=1)).value.label == "ok"
    assert len(api.requests) == 2


def test_529_persisting_raises_a_transient_call_error(control_plane, api) -> None:
    api.enqueue(*[overloaded(retry_after_ms=10)] * 3)
    offline_called = []
    with pytest.raises(LLMCallError, match="HTTP 529") as info:
        ask(online(control_plane, api, max_retries=2), offline=lambda: offline_called.append(1))
    assert info.value.status_code == 529 and info.value.transient
    assert len(api.requests) == 3
    assert not offline_called, "with a key set the offline rules must never be a fallback"
    assert usage_rows(control_plane) == []


def test_non_retryable_error_is_not_retried(control_plane, api) -> None:
    api.enqueue(error(400, "invalid_request_error", "max_tokens: too large"))
    with pytest.raises(LLMCallError, match="too large") as info:
        ask(online(control_plane, api))
    assert info.value.status_code == 400 and not info.value.transient and len(api.requests) == 1


def test_timeout(control_plane, api) -> None:
    api.enqueue(slow(3.0, tool_use({"label": "late", "confidence": 0.9})))
    started = time.monotonic()
    with pytest.raises(LLMCallError, match="timed out"):
        ask(online(control_plane, api, timeout_seconds=0.3, max_retries=0))
    assert time.monotonic() - started < 2.5


def test_budget_is_enforced_before_the_call(control_plane, api) -> None:
    today = dt.datetime.now(dt.UTC).date().isoformat()
    with control_plane.session() as s:
        for user in ("free_user", "odd_user", "pro_user"):
            s.add(LlmUsage(user_id=user, task="signals", model="m", input_tokens=49_000, output_tokens=900,
                           usage_date=today))
        yesterday = (dt.date.fromisoformat(today) - dt.timedelta(days=1)).isoformat()  # another day's budget
        s.add(LlmUsage(user_id="free_user", task="signals", model="m", input_tokens=10**6, usage_date=yesterday))
        s.add(LlmUsage(user_id="starter_user", task="signals", model="offline-rules", offline=True,
                       input_tokens=10**6, usage_date=today))
    llm = online(control_plane, api)
    for user in ("free_user", "odd_user"):  # an unknown tier is budgeted as free
        with pytest.raises(LLMBudgetExceeded, match="50,000") as info:
            ask(llm, user=user)
        assert info.value.used == 49_900
    assert api.requests == []
    api.enqueue(tool_use({"label": "a", "confidence": 1}), tool_use({"label": "b", "confidence": 1}))
    assert ask(llm, user="pro_user").value.label == "a"  # pro is unlimited
    assert ask(llm, user="starter_user").value.label == "b"  # offline rows and other days don't count
    assert llm.tokens_used_today("free_user") == 49_900


def test_offline_mode_is_labelled_recorded_and_free(control_plane) -> None:
    llm = LLM(control_plane=control_plane, offline=True)
    result = ask(llm, offline=lambda: {"label": "rule", "confidence": 0.65})
    assert result.value == Verdict(label="rule", confidence=0.65)
    assert (result.model, result.offline) == ("offline-rules", True)
    assert result.usage.offline_calls == 1 and result.usage.cost_usd == 0
    (row,) = usage_rows(control_plane)
    assert (row.model, row.offline, row.cost_usd, row.input_tokens) == ("offline-rules", True, 0.0, 0)
    with pytest.raises(LLMOutputError, match="offline rules produced an invalid"):
        ask(llm, offline=lambda: {"label": "x", "confidence": 3})
    text_result = llm.text(task="generation", user_id="pro_user", system="s", prompt="p", offline=lambda: "draft")
    assert text_result.text == "draft" and text_result.model == "offline-rules"


def test_online_without_key_fails_loudly(control_plane) -> None:
    llm = LLM(control_plane=control_plane, offline=False, api_key=None)
    with pytest.raises(LLMConfigError, match="ANTHROPIC_API_KEY"):
        ask(llm)


def test_text_answers_and_empty_text_retry(control_plane, api) -> None:
    api.enqueue(text("   "), text("Here is the brief."))
    result = online(control_plane, api).text(task="generation", user_id="pro_user", system="You write briefs.",
                                             prompt="Write", offline=lambda: "unused", max_tokens=300)
    assert result.text == "Here is the brief." and result.attempts == 2
    assert api.requests[0].body["model"] == "claude-sonnet-4-6"
    assert "tools" not in api.requests[0].body


def test_prices() -> None:
    assert price_for("claude-haiku-4-5-20251001").input == 1.0
    assert price_for("claude-sonnet-4-20250514").output == 15.0
    assert price_for("claude-opus-4-1-20250805").input == 15.0
    assert price_for("claude-opus-4-5-20251101").input == 5.0
    assert price_for("claude-haiku-9").output == 5.0  # family fallback
    assert cost_usd("claude-sonnet-4-20250514", input_tokens=1_000_000, output_tokens=0) == pytest.approx(3.0)
    assert cost_usd("claude-sonnet-4-20250514", input_tokens=1_000_000, output_tokens=0, batch=True) == 1.5
    assert cost_usd("offline-rules", input_tokens=10, output_tokens=10) == 0
    assert cost_usd("house-model", input_tokens=10**6, output_tokens=0,
                    overrides={"house-": {"input": 0.5, "output": 1}}) == pytest.approx(0.5)


def test_registry_builds_the_llm_from_settings(monkeypatch) -> None:
    from resources.registry import build_resources
    from resources.settings import load_settings

    offline = build_resources(load_settings())["llm"]
    assert offline.offline and offline.api_key is None
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-from-env")
    monkeypatch.setenv("YARNNN_LLM_MODEL_SIGNALS", "claude-3-5-haiku-20241022")
    monkeypatch.setenv("YARNNN_LLM_DAILY_TOKEN_BUDGETS", '{"free": 1000, "starter": 2000, "pro": null}')
    llm = build_resources(load_settings())["llm"]
    assert not llm.offline
    assert llm.model_for("signals") == "claude-3-5-haiku-20241022"
    assert llm.daily_token_budgets == {"free": 1000, "starter": 2000, "pro": None}
    # the key is an EnvVar: Dagster shows the variable's name, never the value
    assert isinstance(llm._get_non_default_public_field_values()["api_key"], dg.EnvVar)


def test_resource_works_inside_a_dagster_run(control_plane, api) -> None:
    api.enqueue(tool_use({"label": "from-asset", "confidence": 0.9}))

    @dg.asset(key=["gold", "probe"])
    def probe(context: dg.AssetExecutionContext, llm: LLM) -> dg.MaterializeResult:
        result = llm.structured(task="analysis", user_id="pro_user", system=SYSTEM, prompt="x", output=Verdict,
                                offline=lambda: Verdict(label="o", confidence=0), scope=LLMScope.from_context(context))
        return dg.MaterializeResult(metadata={"label": result.value.label, **result.usage.as_metadata()})

    res = dg.materialize([probe], resources={"llm": online(control_plane, api)})
    assert res.success
    (row,) = usage_rows(control_plane)
    assert row.run_id == res.run_id and row.asset_key == "gold/probe" and row.task == "analysis"
    mat = res.asset_materializations_for_node("gold__probe")[0]
    assert mat.metadata["llm_calls"].value == 1


def test_default_models_are_not_deprecated_by_the_sdk() -> None:
    """A default past its end of life would fail every production call; the SDK knows the dates."""
    from anthropic.resources.messages.messages import DEPRECATED_MODELS

    from resources.search import WebSearch
    from resources.settings import YarnSettings

    fields = YarnSettings.model_fields
    defaults = {n: f.default for n, f in fields.items() if n.startswith("llm_model_") or n == "search_model"}
    defaults["WebSearch.model"] = WebSearch.model_fields["model"].default
    defaults.update({f"LLM.{n}": f.default for n, f in LLM.model_fields.items() if n.startswith("model_")})
    assert len(defaults) >= 9
    assert not {k: v for k, v in defaults.items() if v in DEPRECATED_MODELS}
