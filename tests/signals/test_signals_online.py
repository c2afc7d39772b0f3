"""Signal passes with the real ``anthropic`` client against the loopback Messages API.

Covers per-user isolation (canary markers), the model's refs driving history dedup, screening of
untrusted answers, and failure isolation between users.
"""

import datetime as dt
import json
import re

import dagster as dg
import polars as pl
import pytest
from sqlalchemy import select

from control_plane import db
from control_plane.models import Deliverable, LlmUsage
from resources.llm import LLM, opaque_user_id
from tests.fakes.anthropic_server import FakeAnthropic, RecordedRequest, respond, text
from tests.signals.seed import add_deliverable, add_users, email, event, hour, land, page, slack
from yarn_assets.core.activity_log import ActivityEvent, write_events
from yarn_assets.core.tables import ACTIVITY_LOG
from yarn_assets.memory import user_context as user_memory
from yarn_assets.signals.assets import hour_key, signal_passes
from yarn_assets.signals.tables import SIGNAL_ACTIONS, SIGNAL_SUMMARIES

NOW = dt.datetime.now(dt.UTC)
H = hour(NOW) - dt.timedelta(hours=10)
AS_OF = H + dt.timedelta(hours=1)
MARKERS = {"alice": "CANARY-ALPHA-7731", "bob": "CANARY-BRAVO-2208"}
EMAILS = {"alice": "alice@northwind.example", "bob": "bob@contoso.example"}


def seed_user(store, url, user):  # type: ignore[no-untyped-def]
    m, me = MARKERS[user], EMAILS[user]
    fetched = AS_OF - dt.timedelta(hours=2)
    land(store, user, "calendar", [
        event(f"{user}-ev{i}", f"{m} planning {i}", AS_OF + dt.timedelta(hours=2 + i),
              [me, f"p{i}@partner.example", f"q{i}@partner.example"]) for i in range(3)
    ], fetched)
    land(store, user, "gmail", [
        email(f"{user}-m{i}", f"{user}-t{i}", f"{m} subject {i}", "dana@partner.example", [me],
              AS_OF - dt.timedelta(hours=5 + i)) for i in range(2)
    ], fetched)
    land(store, user, "slack", [slack(f"17000000{i}.0001", f"C-{user}", f"{m} message {i}", "Dana",
                                      AS_OF - dt.timedelta(hours=1)) for i in range(2)], fetched)
    land(store, user, "notion", [page(f"{user}-page", f"{m} wiki", f"{m} body", AS_OF - dt.timedelta(days=1))], fetched)
    write_events(store, [ActivityEvent(user_id=user, event_type="deliverable_run", summary=f"Ran {m} digest",
                                       idempotency_key=f"seed-{user}", created_at=AS_OF - dt.timedelta(days=1))])
    return add_deliverable(url, user, title=f"{m} weekly status", deliverable_type="status_report",
                           trigger_type="schedule", next_run_at=NOW + dt.timedelta(days=2))


@pytest.fixture
def workspace(settings, store):  # type: ignore[no-untyped-def]
    url = settings.resolved_control_plane_url
    add_users(url, ("alice", EMAILS["alice"], "pro"), ("bob", EMAILS["bob"], "pro"))
    ids = {u: seed_user(store, url, u) for u in MARKERS}
    with db.session_scope(url) as s:  # the users' memory, written as the nightly memory run does
        for u in MARKERS:
            user_memory.upsert(s, user_memory.Assertion(u, f"fact:codename_{u}", f"{MARKERS[u]} is the codename",
                                                        "user_stated", 0.9, AS_OF - dt.timedelta(days=2)))
    return ids


def online_resources(resources, api, **kw):  # type: ignore[no-untyped-def]
    out = dict(resources)
    out["llm"] = LLM(control_plane=resources["control_plane"], offline=False, api_key="sk-test-signals",
                     base_url=api.base_url, max_retries=1, timeout_seconds=10, **kw)
    return out


def user_of(req: RecordedRequest) -> str:
    hashed = req.body["metadata"]["user_id"]
    return next(u for u in MARKERS if opaque_user_id(u) == hashed)


def no_action(req: RecordedRequest) -> dict:
    return {"actions": [{"action_type": "no_action", "confidence": 1.0}], "reasoning": "quiet"}


def run(resources, **config):  # type: ignore[no-untyped-def]
    run_config = {"ops": {"signal_passes": {"config": config}}} if config else None
    return dg.materialize([signal_passes], partition_key=hour_key(H), resources=resources, run_config=run_config)


def test_canary_prompts_never_mix_users(settings, store, resources, workspace) -> None:
    with FakeAnthropic(default=respond(no_action)) as api:
        result = run(online_resources(resources, api))
    assert result.success
    requests = api.requests_to("/v1/messages")
    assert len(requests) == 4  # two users x two passes
    seen = set()
    for req in requests:
        user = user_of(req)
        other = next(u for u in MARKERS if u != user)
        prompt = req.prompt_text
        assert MARKERS[user] in prompt, "the user's own content, memory and deliverables are in the prompt"
        assert MARKERS[other] not in prompt, f"{other}'s content leaked into {user}'s prompt"
        assert user not in req.body["metadata"]["user_id"]  # an opaque id, never the user id
        seen.add((user, "Pass: calendar_only" in prompt))
    assert seen == {("alice", True), ("alice", False), ("bob", True), ("bob", False)}
    alice_nc = next(r for r in requests if user_of(r) == "alice" and "Pass: non_calendar" in r.prompt_text)
    assert f"fact:codename_alice: {MARKERS['alice']} is the codename" in alice_nc.prompt_text  # user memory
    assert f"Ran {MARKERS['alice']} digest" in alice_nc.prompt_text  # recent activity
    assert f"[{workspace['alice']}] {MARKERS['alice']} weekly status" in alice_nc.prompt_text  # no versions, listed
    assert "no output yet" in alice_nc.prompt_text
    assert alice_nc.body["system"][0]["cache_control"] == {"type": "ephemeral"}
    assert MARKERS["alice"] not in alice_nc.system_text  # the cached prefix holds nothing user-specific


def decide(req: RecordedRequest) -> dict:
    """A model that cites refs it was shown, plus answers the screening must reject."""
    prompt = req.prompt_text
    if "Pass: calendar_only" not in prompt:
        return no_action(req)
    refs = re.findall(r"\[(event:[^\]]+)\]", prompt)
    bob_deliverable = re.search(r"FOREIGN=(\S+)", prompt)
    actions = [
        {"action_type": "create_signal_emergent", "deliverable_type": "meeting_prep", "signal_type": "meeting_prep",
         "signal_ref": refs[0], "title": "Prep", "confidence": 0.9,
         "sources": [{"provider": "calendar", "source": "primary"}, {"provider": "slack", "source": "C-bob"}]},
        {"action_type": "create_signal_emergent", "deliverable_type": "meeting_prep", "signal_ref": refs[1],
         "title": "Second prep", "confidence": 0.9},
        {"action_type": "create_signal_emergent", "deliverable_type": "research_brief", "signal_ref": "event:made-up",
         "confidence": 0.95},
        {"action_type": "create_signal_emergent", "deliverable_type": "deep_research", "signal_ref": refs[2],
         "confidence": 0.4},
        {"action_type": "create_signal_emergent", "deliverable_type": "status_report", "signal_ref": refs[2],
         "confidence": 0.9},
        {"action_type": "trigger_existing", "trigger_deliverable_id": "Launch channel digest", "confidence": 0.9},
    ]
    if bob_deliverable:
        actions.append({"action_type": "trigger_existing", "trigger_deliverable_id": bob_deliverable.group(1),
                        "confidence": 0.9})
    return {"actions": actions, "reasoning": "meetings ahead"}


def test_model_actions_are_screened_executed_and_deduplicated(settings, store, resources, workspace,
                                                              monkeypatch) -> None:
    # let alice's prompt carry bob's deliverable id as if the model had learned it somewhere
    import yarn_assets.signals.processing as processing

    original = processing.render_prompt
    monkeypatch.setattr(processing, "render_prompt",
                        lambda summary, **kw: original(summary, **kw) + f"\nFOREIGN={workspace['bob']}")
    with FakeAnthropic(default=respond(decide)) as api:
        res = online_resources(resources, api, model_signals="claude-haiku-4-5-20251001")
        result = run(res, user_ids=["alice"])
        assert result.success
        actions = store.read(SIGNAL_ACTIONS).sort("seq")
        cal = actions.filter(pl.col("pass") == "calendar_only")
        reasons = [r.split(":")[0] for r in cal["reason"]]
        assert reasons == ["created; generation requested", "duplicate_in_pass", "unknown_ref", "low_confidence",
                           "type_exists", "unknown_deliverable", "unknown_deliverable"]
        with db.session_scope(settings.resolved_control_plane_url) as s:
            created = s.scalars(select(Deliverable).where(Deliverable.origin == "signal_emergent")).all()
            bob_deliverable = s.get(Deliverable, workspace["bob"])
            usage = s.scalars(select(LlmUsage)).all()
        assert [d.user_id for d in created] == ["alice"] and created[0].signal_ref.startswith("event:alice-ev")
        # sources the model named are kept only when the user has them (bob's channel is dropped)
        assert [s_["provider"] for s_ in created[0].sources] == ["calendar"]
        assert bob_deliverable.next_run_at > NOW  # another user's deliverable was never touched
        assert len(usage) == 2 and all(u.model == "claude-haiku-4-5-20251001" and u.cost_usd > 0 for u in usage)
        summaries = store.read(SIGNAL_SUMMARIES)
        assert summaries["llm_calls"].sum() == 2 and summaries["cost_usd"].sum() == pytest.approx(
            sum(u.cost_usd for u in usage))
        meta = {m.asset_key.to_user_string(): m.metadata for m in result.asset_materializations_for_node(
            "signal_passes")}
        total_cost = sum(u.cost_usd for u in usage)
        assert meta["gold/signal_actions"]["llm_cost_usd"].value == pytest.approx(total_cost, abs=1e-6)
        assert json.loads(json.dumps(meta["gold/signal_actions"]["dropped_by_reason"].value))["unknown_ref"] == 1

        # the next hour (nothing new): the deferred second meeting goes, executed from the decision
        # that deferred it, without asking the model again
        calls = len(api.requests)
        later = dg.materialize([signal_passes], partition_key=hour_key(H + dt.timedelta(hours=1)), resources=res,
                               run_config={"ops": {"signal_passes": {"config": {"user_ids": ["alice"]}}}})
        assert later.success
        assert len(api.requests) == calls
    nxt = store.read(SIGNAL_ACTIONS).filter(
        (pl.col("partition_hour") == H + dt.timedelta(hours=1)) & (pl.col("pass") == "calendar_only")).sort("seq")
    assert nxt["reason"].to_list() == ["created; generation requested"] and set(nxt["engine"]) == {"deferred"}
    assert nxt["signal_ref"][0] != cal["signal_ref"][0] and nxt["signal_ref"][0] == cal["signal_ref"][1]
    with db.session_scope(settings.resolved_control_plane_url) as s:
        assert len(s.scalars(select(Deliverable).where(Deliverable.origin == "signal_emergent")).all()) == 2


def test_one_users_failure_does_not_fail_the_others(settings, store, resources, workspace) -> None:
    def by_user(req: RecordedRequest):  # type: ignore[no-untyped-def]
        if user_of(req) == "bob":
            return text("I cannot answer in JSON today.")(req)
        return respond(no_action)(req)

    with FakeAnthropic(default=by_user) as api:
        result = dg.materialize([signal_passes], partition_key=hour_key(H),
                                resources=online_resources(resources, api))
    assert result.success
    summaries = store.read(SIGNAL_SUMMARIES)
    status = dict(zip(summaries["user_id"] + "/" + summaries["pass"], summaries["status"], strict=True))
    assert status == {"alice/calendar_only": "evaluated", "alice/non_calendar": "evaluated",
                      "bob/calendar_only": "failed", "bob/non_calendar": "failed"}
    bob = summaries.filter(pl.col("user_id") == "bob").row(0, named=True)
    assert "malformed twice" in bob["error"] and bob["llm_calls"] == 2
    checks = {c.check_name: c for c in result.get_asset_check_evaluations()}
    assert not checks["no_failed_passes"].passed
    assert checks["no_failed_passes"].severity == dg.AssetCheckSeverity.WARN
    events = store.read(ACTIVITY_LOG)
    processed = events.filter(pl.col("event_type") == "signal_processed")
    assert sorted(processed["user_id"].to_list()) == ["alice", "alice"]  # a failed pass writes no event


def test_budget_exhaustion_skips_the_pass_without_calling(settings, store, resources, workspace) -> None:
    with FakeAnthropic(default=respond(no_action)) as api:
        result = run(online_resources(resources, api, daily_token_budgets={"free": 10, "starter": 10, "pro": 10}))
    assert result.success and api.requests == []
    summaries = store.read(SIGNAL_SUMMARIES)
    assert set(summaries["skip_reason"]) == {"budget_exhausted"} and set(summaries["status"]) == {"skipped"}
    assert all("daily LLM token budget" in e for e in summaries["error"])
