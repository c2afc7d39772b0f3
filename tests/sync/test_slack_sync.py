"""Slack sync end to end: loopback Slack API -> bronze -> silver, with the original's limits."""

from __future__ import annotations

import json

import polars as pl

from tests.sync.conftest import metadata


def _history_calls(world, channel: str) -> int:
    return sum(1 for r in world.slack.matching("POST", r"conversations\.history") if r.param("channel") == channel)


def test_first_sync_caps_filters_threads_and_names(world):
    s = world.slack
    s.add_channel("C1", "general", 40)
    s.add_channel("C2", "random", 12)
    s.add_channel("C3", "threads", 5)
    s.fill("C1", 1200)
    corpus_ts = s.fill("C2", 57, template=True)  # real corpus messages: bot_message, channel_join, file_share...
    big = s.post("C2", "plan for the offsite", user="U023BECGF")["ts"]
    for i in range(3):
        s.post("C2", f"reply {i} <@U023BECGF>", user="W012A3CDE", thread_ts=big)
    small = s.post("C2", "quick question")["ts"]
    s.post("C2", "single answer", thread_ts=small)
    parents = s.fill("C3", 25)
    for p in parents:
        s.post("C3", "a", thread_ts=p)
        s.post("C3", "b", thread_ts=p)

    md = metadata(world.sync("slack"))
    res = md["resources"][world.connections["slack"]]

    # 1000 messages on a first sync, 200 per page
    assert res["C1"]["fetched"] == 1000 and res["C1"]["capped"] is True
    assert _history_calls(world, "C1") == 5
    assert all(int(r.param("limit")) <= 200 for r in s.matching("POST", r"conversations\.history"))
    silver = world.silver("slack")
    c1 = silver.filter(pl.col("resource_id") == "C1")
    assert c1.height == 1000
    assert c1["external_id"].min() == sorted(s.channels["C1"].messages)[200]  # the newest 1000

    # system subtypes never reach silver
    filtered_ts = {m["ts"] for m in s.channels["C2"].messages.values()
                   if m.get("subtype") in ("bot_message", "channel_join")}
    assert filtered_ts, "the corpus carries bot_message/channel_join messages"
    c2 = silver.filter(pl.col("resource_id") == "C2")
    assert not filtered_ts & set(c2["external_id"])
    assert res["C2"]["filtered"] == len(filtered_ts)
    assert set(corpus_ts) - filtered_ts <= set(c2["external_id"])

    # threads with >= 2 replies are expanded (parent skipped); 1 reply is not
    replies = c2.filter(pl.col("content_type") == "thread_reply")
    assert sorted(replies["content"]) == ["reply 0 @alice", "reply 1 @alice", "reply 2 @alice"]
    assert set(replies["thread_id"]) == {big}
    # at most 20 threads per channel per sync
    assert res["C3"]["threads_expanded"] == 20
    assert silver.filter((pl.col("resource_id") == "C3") & (pl.col("content_type") == "thread_reply")).height == 40

    # author names from users.info: display_name, else real_name, else the id
    row = c2.filter(pl.col("external_id") == big).row(0, named=True)
    assert row["author"] == "alice" and row["author_id"] == "U023BECGF" and row["title"] is None
    assert row["resource_name"] == "random"
    assert json.loads(row["metadata"])["reply_count"] == 3
    lookups = [r.param("user") for r in s.matching("POST", r"users\.info")]
    assert len(lookups) == len(set(lookups)), "each user is looked up once"


def test_incremental_sync_fetches_only_new_and_caps_at_500(world):
    s = world.slack
    s.add_channel("C1", "general", 40)
    s.add_channel("C2", "small", 4)
    s.fill("C1", 50)
    s.fill("C2", 10)
    world.sync("slack")

    s.fill("C1", 600)
    new_small = s.fill("C2", 3)
    s.reset_log()
    md = metadata(world.sync("slack"))
    res = md["resources"][world.connections["slack"]]
    assert res["C1"]["new"] == 500 and res["C1"]["capped"] is True
    assert res["C2"] == {"name": "small", "fetched": 13, "new": 3, "unchanged": 10, "threads_expanded": 0, "objects": 3}
    assert _history_calls(world, "C1") == 3  # 200 + 200 + 100
    added = world.bronze("slack").filter(pl.col("batch_id").is_in(md["batch_ids"])
                                         & (pl.col("object_type") == "slack_api_message"))
    assert sorted(added.filter(pl.col("resource_id") == "C2")["external_id"]) == sorted(new_small)
    assert added.filter(pl.col("resource_id") == "C1").height == 500
    assert world.silver("slack").filter(pl.col("resource_id") == "C1").height == 550
    assert "users.info" not in {r.path.rsplit("/", 1)[1] for r in s.requests}, "names come from the cache"

    # the 100 messages the cap skipped are still inside the 24 h lookback: the next sync fills the gap
    md = metadata(world.sync("slack"))
    res = md["resources"][world.connections["slack"]]
    assert res["C1"]["backfilled"] == 100 and md["objects"] == 100
    assert world.silver("slack").filter(pl.col("resource_id") == "C1").height == 650

    # nothing new: nothing lands (the lookback re-read costs pages, not bronze rows)
    s.reset_log()
    before = world.bronze("slack").height
    md = metadata(world.sync("slack"))
    assert md["objects"] == 0 and world.bronze("slack").height == before
    assert s.count(path="history") == 4 + 1 and s.count() == 5


def test_late_replies_edits_deletions_and_join(world):
    s = world.slack
    s.add_channel("C1", "general", 9)
    s.add_channel("C9", "private-ish", 3, is_member=False)
    old_parent = s.post("C1", "old thread", user="U023BECGF")["ts"]
    s.post("C1", "first answer", thread_ts=old_parent)
    s.advance(3 * 86400)  # the rest happens three days later: old_parent leaves the lookback window
    parent = s.post("C1", "recent thread")["ts"]
    s.post("C1", "r1", thread_ts=parent)
    s.post("C1", "r2", thread_ts=parent)
    doomed = s.post("C1", "this will be deleted")["ts"]
    edited = s.post("C1", "tpyo here")["ts"]
    deleted_parent = s.post("C1", "parent that gets deleted")["ts"]
    s.post("C1", "x1", thread_ts=deleted_parent)
    s.post("C1", "x2", thread_ts=deleted_parent)
    s.fill("C9", 4)

    md = metadata(world.sync("slack"))
    assert md["objects"] > 0
    assert s.count(path=r"conversations\.join") == 1
    silver = world.silver("slack")
    assert silver.filter(pl.col("resource_id") == "C9").height == 4
    assert old_parent in set(silver["external_id"])
    assert silver.filter(pl.col("thread_id") == old_parent).height == 1  # 1 reply: not expanded yet

    # later: replies arrive on both threads, one message is edited, two are deleted
    s.post("C1", "second answer", thread_ts=old_parent)
    s.post("C1", "r3", thread_ts=parent)
    s.edit("C1", edited, "typo fixed")
    s.delete("C1", doomed)
    s.delete("C1", deleted_parent)
    s.reset_log()
    md = metadata(world.sync("slack"))
    res = md["resources"][world.connections["slack"]]
    silver = world.silver("slack")
    c1 = silver.filter(pl.col("resource_id") == "C1")
    by_id = {r["external_id"]: r for r in c1.iter_rows(named=True)}
    # replies to a thread whose parent was synced before, inside and outside the lookback window
    assert sorted(c1.filter(pl.col("thread_id") == parent)["content"].to_list()) == ["r1", "r2", "r3", "recent thread"]
    old = sorted(c1.filter((pl.col("thread_id") == old_parent) & (pl.col("content_type") == "thread_reply"))
                 ["content"].to_list())
    assert old == ["first answer", "second answer"]
    assert res["C1"]["thread_rechecks"] >= 1
    # edits and deletions are reflected in silver
    assert by_id[edited]["content"] == "typo fixed"
    assert doomed not in by_id and deleted_parent not in by_id
    assert res["C1"]["tombstones"] == 2 and res["C1"]["edited"] == 1
    assert {r["content"] for r in by_id.values() if r["thread_id"] == deleted_parent} == {"x1", "x2"}
    assert s.count(path=r"conversations\.join") == 0, "joined once, not every sync"
