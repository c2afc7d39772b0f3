"""Gmail sync end to end: format=raw messages -> bronze email_message -> the importer's MIME path -> silver."""

from __future__ import annotations

import datetime as dt
import json

import polars as pl

from tests.sync.conftest import metadata
from yarn_assets.ingest.mime import parse_message
from yarn_assets.ingest.platforms.gmail.export import message_external_id


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def test_first_sync_window_caps_and_mime(world):
    g = world.google
    g.max_page = 50  # multi-page listings
    now = _now()
    old = [g.add_mail(["INBOX"], now - dt.timedelta(days=40)) for _ in range(3)]
    inbox = [g.add_mail(["INBOX", "IMPORTANT"] if i % 10 == 0 else ["INBOX"], now - dt.timedelta(hours=i + 1))
             for i in range(230)]
    sent = [g.add_mail(["SENT", "STARRED"], now - dt.timedelta(days=2)) for _ in range(3)]
    spam = g.add_mail(["SPAM"], now - dt.timedelta(days=1))
    g.add_mail(["Label_1"], now - dt.timedelta(days=3))

    md = metadata(world.sync("gmail"))
    conn = world.connection("gmail")
    # auto-selection: INBOX, SENT, STARRED, IMPORTANT, then user labels; never SPAM/DRAFT/CATEGORY_*
    assert conn.selected_sources == ["label:INBOX", "label:SENT", "label:STARRED", "label:IMPORTANT",
                                     "label:Label_1", "label:Label_2"]
    res = md["resources"][world.connections["gmail"]]
    assert res["label:INBOX"]["listed"] == 200 and res["label:INBOX"]["capped"] is True
    lists = [r for r in g.matching("GET", r"/messages$") if r.param("labelIds") == "INBOX"]
    assert len(lists) == 4 and all(int(r.param("maxResults")) <= 100 for r in lists)
    since = (now - dt.timedelta(days=30)).strftime("%Y/%m/%d")
    assert {r.param("q") for r in g.matching("GET", r"/messages$")} == {f"after:{since}"}

    silver = world.silver("gmail")
    inbox_rows = silver.filter(pl.col("resource_id") == "label:INBOX")
    assert inbox_rows.height == 200
    ids = {message_external_id(m.raw) for m in inbox[:200]}
    assert set(inbox_rows["external_id"]) == ids
    assert not {message_external_id(m.raw) for m in old} & set(silver["external_id"])
    assert message_external_id(spam.raw) not in set(silver["external_id"])
    # a message under two selected labels is fetched once, stored per label (deliverables filter by label)
    gets = [r.path.rsplit("/", 1)[1] for r in g.matching("GET", r"/messages/m\d+$")]
    assert len(gets) == len(set(gets))
    sent_ids = {message_external_id(m.raw) for m in sent}
    starred = silver.filter(pl.col("resource_id") == "label:STARRED")
    assert set(starred["external_id"]) == sent_ids and starred["resource_name"].unique().to_list() == ["STARRED"]

    # the importer's MIME code, byte for byte
    row = inbox_rows.filter(pl.col("external_id") == message_external_id(inbox[0].raw)).row(0, named=True)
    parsed = parse_message(inbox[0].raw)
    assert row["content"] == (parsed.body_text or parsed.subject or "")[:10_000]
    assert row["title"] == parsed.subject and row["content_type"] == "email"
    meta = json.loads(row["metadata"])
    assert meta["gmail_id"] == inbox[0].id and "INBOX" in meta["label_ids"]


def test_history_incremental_and_expired_history_id(world):
    g = world.google
    now = _now()
    for i in range(5):
        g.add_mail(["INBOX"], now - dt.timedelta(hours=i + 2))
    world.sync("gmail")
    cursor = world.registry("gmail")["label:INBOX"]["cursor"]
    assert cursor == str(g.history_id)

    new = [g.add_mail(["INBOX"], now - dt.timedelta(minutes=5)) for _ in range(2)]
    g.reset_log()
    md = metadata(world.sync("gmail"))
    assert md["objects"] == 2
    history = g.matching("GET", r"/history$")
    assert {r.param("startHistoryId") for r in history} == {cursor}
    assert g.count(path=r"/messages$") == 0, "no listing: history only"
    assert sorted(r.path.rsplit("/", 1)[1] for r in g.matching("GET", r"/messages/")) == sorted(m.id for m in new)
    assert world.silver("gmail").filter(pl.col("resource_id") == "label:INBOX").height == 7

    # Gmail forgot our history id: fall back to a dated query; silver gets no duplicates
    newest = g.add_mail(["INBOX"], now)
    g.min_history_id = 10**9
    g.reset_log()
    md = metadata(world.sync("gmail"))
    res = md["resources"][world.connections["gmail"]]["label:INBOX"]
    assert res["cursor_resets"] == 1 and "history id expired" in " ".join(res["notes"])
    assert g.count(path=r"/messages$") >= 1
    inbox = world.silver("gmail").filter(pl.col("resource_id") == "label:INBOX")
    assert inbox.height == 8 and message_external_id(newest.raw) in set(inbox["external_id"])
    assert world.registry("gmail")["label:INBOX"]["cursor"] == str(g.history_id)
