"""Auto-selection (ADR-078) and tier limits, and the operator's override."""

from __future__ import annotations

from yarn_assets.ingest.fetch import Resource
from yarn_assets.ingest.sync.landscape import auto_select, selected_resources, validate_selection


def channels(n: int) -> list[Resource]:
    return [Resource(f"C{i}", f"chan{i}", "channel", {"num_members": (i * 7) % 23}) for i in range(n)]


def test_slack_by_member_count_with_tier_limits():
    res = channels(20)
    ranked = sorted(res, key=lambda r: -r.metadata["num_members"])
    assert auto_select("slack", res, "free") == [r.id for r in ranked[:5]]
    assert len(auto_select("slack", res, "starter")) == 15
    assert len(auto_select("slack", res, "pro")) == 20
    assert auto_select("slack", res, "mystery") == auto_select("slack", res, "free")  # unknown tier = free


def test_gmail_order_and_exclusions():
    labels = [Resource(f"label:{x}", x, "system", {"label_id": x}) for x in
              ("SPAM", "TRASH", "DRAFT", "UNREAD", "CATEGORY_SOCIAL", "IMPORTANT", "CHAT", "SENT", "INBOX", "STARRED")]
    labels += [Resource("label:Label_9", "zeta", "user", {"label_id": "Label_9"}),
               Resource("label:Label_2", "Alpha", "user", {"label_id": "Label_2"})]
    assert auto_select("gmail", labels, "pro") == ["label:INBOX", "label:SENT", "label:STARRED", "label:IMPORTANT",
                                                  "label:Label_2", "label:Label_9"]
    assert auto_select("gmail", labels, "free") == ["label:INBOX", "label:SENT", "label:STARRED", "label:IMPORTANT",
                                                   "label:Label_2"]


def test_notion_recent_first_and_calendar_all():
    pages = [Resource(f"p{i}", f"page {i}", "page", {"last_edited_time": f"2026-01-{i + 1:02d}T00:00:00.000Z"})
             for i in range(30)]
    assert auto_select("notion", pages, "free") == [f"p{i}" for i in range(29, 19, -1)]
    assert len(auto_select("notion", pages, "starter")) == 25
    cals = [Resource(f"cal{i}", f"c{i}", "calendar") for i in range(12)]
    assert auto_select("calendar", cals, "free") == [c.id for c in cals]


def test_override_validation_and_id_normalization():
    land = {"resources": [r.as_json() for r in channels(8)]}
    assert validate_selection("slack", "free", land, [f"C{i}" for i in range(5)]) == []
    problems = validate_selection("slack", "free", land, [f"C{i}" for i in range(6)])
    assert "exceed the free tier's slack limit of 5" in problems[0]
    assert validate_selection("slack", "free", land, [f"C{i}" for i in range(6)], force=True) == []
    assert "not in the landscape" in validate_selection("slack", "pro", land, ["C99"])[0]
    assert "never synced" in validate_selection("gmail", "pro", {}, ["label:SPAM"])[0]
    # "INBOX" and "label:INBOX" are the same source (the original's mismatch bug)
    got = selected_resources("gmail", {"resources": [{"id": "label:INBOX", "name": "Inbox", "type": "system"}]},
                             ["INBOX", {"id": "label:SENT"}])
    assert [(r.id, r.name) for r in got] == [("label:INBOX", "Inbox"), ("label:SENT", "label:SENT")]
