"""Freshness skip, stale sources, the source snapshot, retention of prompt items only, per-user
isolation, user memory and the previous version in the prompt."""

from __future__ import annotations

import datetime as dt
import json

from sqlalchemy import select

from control_plane import db
from control_plane.models import Deliverable, DeliverableVersion, SyncRegistry
from io_managers.predicates import Eq
from tests.deliverables.helpers import NOW, create, item, run_resources, sample_content, seed_silver
from tests.fakes.anthropic_server import FakeAnthropic, text
from yarn_assets.core.activity_log import read_events
from yarn_assets.core.tables import PLATFORM_CONTENT
from yarn_assets.deliverables.run import run_deliverable
from yarn_assets.deliverables.tables import RETAINED_ITEMS
from yarn_assets.memory import user_context as user_memory

H = dt.timedelta(hours=1)


def _make_due(url: str, did: str, when: dt.datetime) -> None:
    with db.session_scope(url) as s:
        s.get(Deliverable, did).next_run_at = when


def _deliverable(url: str, did: str) -> Deliverable:
    with db.session_scope(url) as s:
        d = s.get(Deliverable, did)
        s.expunge(d)
        return d


def test_scheduled_run_skips_without_new_content_and_still_advances(workspace, store) -> None:
    seed_silver(store, sample_content("alice"))
    did = create(workspace, "alice", "status_report", schedule={"frequency": "daily", "time": "09:00"})
    res = run_resources()
    assert run_deliverable(res, deliverable_id=did, run_id="r1", now=NOW).status == "delivered"
    _make_due(workspace, did, NOW + H)
    out = run_deliverable(res, deliverable_id=did, run_id="r2", trigger="schedule", now=NOW + 2 * H)
    assert out.status == "skipped" and out.version_id is None
    d = _deliverable(workspace, did)
    assert d.next_run_at is not None and d.next_run_at > NOW + 2 * H
    assert d.last_run_at == NOW
    ev = read_events(store, user_ids=["alice"], event_types=["deliverable_run"])
    assert sorted(json.loads(m)["final_status"] for m in ev["metadata"]) == ["delivered", "skipped"]
    # new content on a platform-wide source (no resource id) is seen: the original skipped these forever
    seed_silver(store, [item("alice", "notion", "page-new", "n-new", "New spec page", at=NOW + 2 * H,
                             title="Spec")])
    _make_due(workspace, did, NOW + 3 * H)
    out = run_deliverable(res, deliverable_id=did, run_id="r3", trigger="schedule", now=NOW + 3 * H)
    assert out.status == "delivered" and out.version_number == 2
    # a manual run is never skipped
    assert run_deliverable(res, deliverable_id=did, run_id="r4", now=NOW + 4 * H).status == "delivered"


def test_resource_sources_and_gmail_label_ids(workspace, store) -> None:
    seed_silver(store, sample_content("alice"))
    res = run_resources()
    eng = create(workspace, "alice", "slack_channel_digest", sources=["slack:C02ENG"])
    assert run_deliverable(res, deliverable_id=eng, run_id="r1", now=NOW).status == "delivered"
    seed_silver(store, [item("alice", "slack", "C01GENERAL", "late-general", "lunch?", at=NOW + H,
                             resource_name="#general")])
    _make_due(workspace, eng, NOW + H)
    assert run_deliverable(res, deliverable_id=eng, run_id="r2", trigger="schedule", now=NOW + 2 * H).status \
        == "skipped"
    # "INBOX" (as the API's DataSource stores it) matches silver's "label:INBOX"
    inbox = create(workspace, "alice", "gmail_inbox_brief", sources=[{"provider": "gmail", "resource_id": "INBOX"}])
    out = run_deliverable(res, deliverable_id=inbox, run_id="r3", now=NOW)
    assert out.row["items_in_prompt"] == 2
    assert json.loads(out.row["sources_used"])[0]["resource_id"] == "INBOX"


def test_stale_sources_named_in_metadata_and_output(workspace, store) -> None:
    seed_silver(store, sample_content("alice"))
    with db.session_scope(workspace) as s:
        s.add(SyncRegistry(user_id="alice", platform="slack", resource_id="C01GENERAL", resource_name="#general",
                           last_synced_at=NOW - dt.timedelta(minutes=10), item_count=2, platform_cursor="cur-1"))
    did = create(workspace, "alice", "slack_channel_digest", sources=["slack:C01GENERAL", "slack:C02ENG"])
    out = run_deliverable(run_resources(), deliverable_id=did, run_id="r1", now=NOW)
    stale = json.loads(out.row["stale_sources"])
    assert [(s["resource_id"], s["required_hours"]) for s in stale] == [("C02ENG", 1)]
    assert stale[0]["age_hours"] == 3.0
    assert "_Stale sources (this deliverable expects data under 1 h old): slack:C02ENG (last synced 3 h ago)._" \
        in out.row["final_content"]
    snap = {s["resource_id"]: s for s in json.loads(out.row["source_snapshot"])}
    assert snap["C01GENERAL"]["synced_at"] == (NOW - dt.timedelta(minutes=10)).isoformat()
    assert snap["C01GENERAL"]["platform_cursor_set"] is True and snap["C01GENERAL"]["silver_items"] == 2
    assert snap["C02ENG"]["synced_at"] is None and snap["C02ENG"]["silver_items"] == 1


def test_only_prompt_items_are_retained_and_other_users_are_untouched(workspace, store) -> None:
    rows = [item("alice", "slack", "C01GENERAL", f"a{i:02d}", f"alice message {i}", at=NOW - i * H,
                 resource_name="#general") for i in range(30)]
    rows += [item("alice", "slack", "C02ENG", f"e{i}", f"eng {i}", at=NOW - i * H) for i in range(5)]
    rows += [item("bob", "slack", "C01GENERAL", f"b{i}", f"BOBSECRET {i}", at=NOW - i * H) for i in range(5)]
    seed_silver(store, rows)
    did = create(workspace, "alice", "slack_channel_digest", sources=["slack:C01GENERAL"])
    out = run_deliverable(run_resources(), deliverable_id=did, run_id="r1", now=NOW)
    assert out.row["items_in_prompt"] == 20 and out.retained == 20
    kept = store.read(RETAINED_ITEMS)  # the marks; silver itself is not rewritten by a run
    assert sorted(kept["external_id"].to_list()) == [f"a{i:02d}" for i in range(20)]  # the 20 newest
    assert set(kept["user_id"]) == {"alice"} and set(kept["retained_reason"]) == {"deliverable_execution"}
    assert set(kept["retained_ref"]) == {out.version_id} and kept["retained_at"].null_count() == 0
    silver = store.read(PLATFORM_CONTENT, Eq("platform", "slack"))
    assert not silver["retained"].any() and silver["expires_at"].null_count() == 0
    # a second version using the same items keeps the first reference
    again = run_deliverable(run_resources(), deliverable_id=did, run_id="r2", now=NOW)
    assert again.status == "delivered" and again.retained == 0
    assert set(store.read(RETAINED_ITEMS)["retained_ref"]) == {out.version_id}
    assert "BOBSECRET" not in out.row["final_content"]
    used = json.loads(out.row["sources_used"])
    assert used == [{"platform": "slack", "resource_id": "C01GENERAL", "resource_name": "#general",
                     "items_fetched": 30, "items_in_prompt": 20}]


def test_memory_and_previous_version_reach_the_prompt_of_that_user_only(workspace, store, monkeypatch) -> None:
    seed_silver(store, sample_content("alice") + sample_content("bob"))
    said = NOW - dt.timedelta(days=3)
    with db.session_scope(workspace) as s:  # through the memory domain, as the nightly run writes it
        for user, key, value, source, conf, at in [
            ("alice", "preference:format", "Bullet points, no fluff", "user_stated", 0.9, said),
            ("alice", "preference:format", "Long flowing prose", "conversation", 0.8, said + H),  # outranked
            ("alice", "fact:team", "Leads search at Northwind", "conversation", 1.0, said),
            ("alice", "pattern:active_day", "PATTERN-NOT-FOR-PROMPTS", "pattern", 0.6, said),
            ("bob", "fact:team", "BOB-ONLY-FACT", "user_stated", 1.0, said),
        ]:
            user_memory.upsert(s, user_memory.Assertion(user, key, value, source, conf, at))
    did = create(workspace, "alice", "status_report")
    with FakeAnthropic() as api:
        api.enqueue(text("## Summary\n- FIRST-VERSION-MARKER"), text("## Summary\n- second"))
        monkeypatch.setenv("ANTHROPIC_API_KEY", "test-key")
        monkeypatch.setenv("YARNNN_ANTHROPIC_BASE_URL", api.base_url)
        res = run_resources()
        run_deliverable(res, deliverable_id=did, run_id="r1", now=NOW)
        run_deliverable(res, deliverable_id=did, run_id="r2", now=NOW + H)
        first, second = (r.prompt_text for r in api.requests_to())
    assert "preference:format: Bullet points, no fluff" in first and "Leads search at Northwind" in first
    assert "BOB-ONLY-FACT" not in first and "FIRST-VERSION-MARKER" not in first
    assert "Long flowing prose" not in first and "PATTERN-NOT-FOR-PROMPTS" not in first
    assert "Previous version" in second and "FIRST-VERSION-MARKER" in second
    assert "alice-s1" not in first  # ids never reach the model; content does
    assert "billing revamp" in first
    with db.session_scope(workspace) as s:
        versions = s.scalars(select(DeliverableVersion).order_by(DeliverableVersion.version_number)).all()
        assert [v.version_number for v in versions] == [1, 2]
