"""Feedback closes the loop, through the API: edits keep their diff and become the version's text, their
events feed the next night's patterns (edit location, length preference), and a rejected signal-created
deliverable's signal is not proposed again for the configured period."""

from __future__ import annotations

import datetime as dt
import json

import dagster as dg
import pytest
from sqlalchemy import select

from control_plane import db
from control_plane.models import DeliverableReview, SignalHistory
from tests.api.conftest import NOW
from tests.deliverables.helpers import create, run_resources
from yarn_assets.core.activity_log import read_events
from yarn_assets.memory import user_context

BLOCK_DAYS = 3


@pytest.fixture(autouse=True)
def _block_days(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("YARNNN_DELIVERABLES_REJECTION_BLOCK_DAYS", str(BLOCK_DAYS))


def _nightly_patterns(day: dt.date) -> dg.MaterializeResult:
    from resources.registry import build_resources
    from resources.settings import load_settings
    from yarn_assets.memory.assets import activity_patterns, day_key

    r = build_resources(load_settings())
    result = dg.materialize([activity_patterns], partition_key=day_key(day.isoformat()),
                            resources={"warehouse": r["warehouse"], "control_plane": r["control_plane"]})
    assert result.success
    return result


def test_edits_keep_the_diff_and_teach_the_next_nights_patterns(server, world, _clock_at_now) -> None:
    vid = world.versions["alice"]
    with server.client("alice") as c:
        original = c.get(f"/versions/{vid}").json()["final_content"]
        n = len(original)
        # one edit appends a long closing paragraph, three then cut it down: all in the conclusion, 3 shorten
        texts = [original + "\n" + "Closing notes. " * (20 * n // 15)]
        for factor in (3, 9, 27):
            texts.append(original + "\n" + "Closing notes. " * (20 * n // 15 // factor))
        reviews = [c.post(f"/versions/{vid}/edit", json={"content": t}).json() for t in texts]
        approved = c.post(f"/versions/{vid}/approve").json()
        again = c.post(f"/versions/{vid}/approve").json()
        shown = c.get(f"/versions/{vid}").json()
    assert [r["edit_location"] for r in reviews] == ["conclusion"] * 4
    assert reviews[0]["diff"].startswith("--- alice's weekly status v1 (delivered)\n+++ alice's weekly status v1 "
                                         "(edited)") and "+Closing notes." in reviews[0]["diff"]
    assert (approved["action"], approved["repeated"], again["repeated"]) == ("approved", False, True)
    assert shown["final_content"] == texts[-1] and shown["draft_content"] != texts[-1]  # the draft stays
    assert shown["review"] == "approved"
    assert [f["action"] for f in shown["feedback"]] == ["edited"] * 4 + ["approved"]
    assert shown["feedback"][1]["diff"].count("-Closing notes.") == 1

    events = read_events(world.store, user_ids=["alice"],
                         event_types=["deliverable_edited", "deliverable_approved", "deliverable_rejected"])
    assert events["event_type"].to_list() == ["deliverable_edited"] * 4 + ["deliverable_approved"]
    meta = json.loads(events["metadata"][1])
    assert meta["final_length"] < 0.7 * meta["draft_length"] and meta["edit_location"] == "conclusion"
    assert not any("Closing" in m for m in events["metadata"].to_list())  # counts and ids only, never the text

    _clock_at_now.move_to(NOW + dt.timedelta(days=1, hours=-11))  # 01:00 the next night
    _nightly_patterns(NOW.date())
    with db.session_scope(world.url) as s:
        memory = {r.key: (r.value, r.source) for r in user_context.current(s, "alice")}
    assert memory["pattern:edit_location"] == ("Usually edits the conclusion of deliverables.", "pattern")
    assert memory["pattern:formatting_length"] == ("Usually shortens drafts when editing.", "pattern")
    assert memory["preference:length"] == ("Shortens drafts: prefers shorter deliverables.", "feedback")
    with server.client("alice") as c:  # and the user sees what was learned
        keys = {f["key"] for f in c.get("/memory").json()["facts"]}
    assert {"pattern:edit_location", "pattern:formatting_length", "preference:length"} <= keys


def _signal_deliverable(world, ref: str) -> tuple[str, str]:
    from yarn_assets.deliverables.run import run_deliverable

    did = create(world.url, "alice", "meeting_prep", title="Prep: partner review", origin="signal_emergent",
                 trigger_type="manual", signal_ref=ref,
                 type_config={"signal": {"signal_type": "meeting_prep", "signal_ref": ref}})
    with db.session_scope(world.url) as s:
        s.add(SignalHistory(user_id="alice", signal_type="meeting_prep", signal_ref=ref, last_triggered_at=NOW,
                            deliverable_id=did))
    out = run_deliverable(run_resources(), deliverable_id=did, run_id=f"sig-{ref}", trigger="signal", now=NOW)
    assert out.version_id is not None
    return did, out.version_id


def test_a_rejected_signal_deliverable_is_not_proposed_again_for_the_period(server, world) -> None:
    from yarn_assets.signals.actions import load_history, screen
    from yarn_assets.signals.prompt import SignalDecision

    _did, vid = _signal_deliverable(world, "event:partner-review")
    with server.client("alice") as c:
        r = c.post(f"/versions/{vid}/reject", json={"reason": "I prepare partner reviews myself"}).json()
    assert r["action"] == "rejected"
    until = dt.datetime.fromisoformat(r["blocked_until"])
    assert abs(until - (NOW + dt.timedelta(days=BLOCK_DAYS))) < dt.timedelta(minutes=5)
    with db.session_scope(world.url) as s:
        review = s.scalars(select(DeliverableReview)).one()
        assert (review.signal_type, review.signal_ref) == ("meeting_prep", "event:partner-review")
        history = load_history(s, "alice")
    events = read_events(world.store, user_ids=["alice"], event_types=["deliverable_rejected"])
    assert events.height == 1 and "partner reviews myself" not in events["metadata"][0]

    decision = SignalDecision.model_validate({"actions": [
        {"action_type": "create_signal_emergent", "deliverable_type": "meeting_prep", "signal_type": "meeting_prep",
         "signal_ref": ref, "confidence": 0.9} for ref in ("event:partner-review", "event:other")]})

    def dispositions(as_of: dt.datetime) -> list[tuple[str, str]]:
        out = screen(decision.model_copy(deep=True), user_id="alice", refs={"event:partner-review", "event:other"},
                     resources={}, deliverables=[], history=history, as_of=as_of,
                     partition_hour=as_of.replace(minute=0, second=0, microsecond=0), pass_name="calendar_only")
        return [(p.disposition, p.reason.split(":")[0]) for p in out]

    # past the 24 h meeting_prep window the history alone would allow it again; the rejection does not
    assert dispositions(NOW + dt.timedelta(days=2)) == [("dropped", "rejected_by_user"), ("kept", "")]
    assert dispositions(NOW + dt.timedelta(days=BLOCK_DAYS, hours=1))[0] == ("kept", "")


def test_rejecting_a_configured_deliverable_blocks_nothing(server, world) -> None:
    with server.client("alice") as c:
        r = c.post(f"/versions/{world.versions['alice']}/reject").json()
    assert r["action"] == "rejected" and r["blocked_until"] is None
