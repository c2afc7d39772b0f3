"""The API normalizers against the corpus's real objects (Slack events, Calendar events, Notion blocks)."""

from __future__ import annotations

import datetime as dt
import json

from tests.fakes import corpus
from yarn_assets.ingest.normalizers import BatchContext
from yarn_assets.ingest.normalizers.gcal_api import normalize_event
from yarn_assets.ingest.normalizers.notion_api import normalize_page
from yarn_assets.ingest.normalizers.slack_api import clean_mrkdwn, normalize_api_message
from yarn_assets.ingest.objects import BronzeObject


def obj(object_type: str, raw: object, *, context: dict | None = None, tombstone: bool = False,
        external_id: str = "x") -> BronzeObject:
    data = raw if isinstance(raw, bytes) else json.dumps(raw).encode()
    return BronzeObject(object_type, external_id, data, "R1", "res", context or {}, tombstone, 0, "b1",
                        "test", "sha", dt.datetime(2026, 1, 1, tzinfo=dt.UTC))


def users_ctx() -> BatchContext:
    members = corpus.slack_users()
    return BatchContext([obj("slack_users", {"members": members})])


def test_slack_mrkdwn_and_corpus_messages():
    users = {"U043H11ES4V": {"id": "U043H11ES4V", "profile": {"display_name": "", "real_name": "Jade"}}}
    event = corpus.load("slack_api/slackweb__SlackWebhookEvent_message_rich_text.json")["event"]
    assert clean_mrkdwn(event["text"], users) == "#general :cat: @Jade https://google.com text text text"
    assert clean_mrkdwn("<!here> &lt;b&gt; <https://x.io|docs> <mailto:a@b.c|a@b.c> <!subteam^S1|@eng>", {}) == \
        "@here <b> docs (https://x.io) a@b.c @eng"
    share = corpus.load("slack_api/slackweb__SlackWebhookEvent_message_file_share.json")["event"]
    [item] = list(normalize_api_message(obj("slack_api_message", share, context={"channel_name": "general"}),
                                        users_ctx()))
    assert item.content == "message message message\n[file: namenamename.txt]"
    assert item.occurred_at == dt.datetime.fromtimestamp(float(share["ts"]), tz=dt.UTC)
    reply = {"type": "message", "user": "U023BECGF", "text": "ok", "ts": "1700000001.000100",
             "thread_ts": "1700000000.000100", "edited": {"ts": "1700000500.000000"}}
    [item] = list(normalize_api_message(obj("slack_api_message", reply, context={"is_reply": True}), users_ctx()))
    assert (item.content_type, item.author, item.thread_id) == ("thread_reply", "alice", "1700000000.000100")
    assert item.source_updated_at == dt.datetime.fromtimestamp(1700000500, tz=dt.UTC)
    [gone] = list(normalize_api_message(obj("slack_api_message", {"ts": "1.0"}, tombstone=True,
                                            external_id="1700000000.000100"), users_ctx()))
    assert gone.is_deleted and gone.external_id == "1700000000.000100"


def test_calendar_corpus_events():
    events = corpus.gcal_events()
    [simple] = list(normalize_event(obj("gcal_api_event", events["simple_event"]), None))
    # a dateTime without offset takes the event's time zone: 18:00 Berlin (CEST) = 16:00 UTC
    assert simple.occurred_at == dt.datetime(2006, 6, 10, 16, 0, tzinfo=dt.UTC)
    assert simple.ends_at == dt.datetime(2006, 6, 10, 18, 0, tzinfo=dt.UTC)
    lines = simple.content.splitlines()
    assert lines[0] == "New Event" and lines[1].startswith("When: 2006-06-10T16:00:00+00:00 — ")
    assert "Location: Hard Drive" in lines and any(x.startswith("Attendees: ") for x in lines)
    [allday] = list(normalize_event(obj("gcal_api_event", events["valarm_no_default_override"],
                                        context={"calendar_time_zone": "America/New_York"}), None))
    assert allday.occurred_at == dt.datetime(2006, 6, 10, 4, 0, tzinfo=dt.UTC) and "(all day)" in allday.content
    [html] = list(normalize_event(obj("gcal_api_event", events["html_descr"]), None))
    assert "<b>" not in html.content and "Bold" in html.content
    cancelled = dict(events["utc_event"], status="cancelled")
    [gone] = list(normalize_event(obj("gcal_api_event", cancelled, tombstone=True), None))
    assert gone.is_deleted


def test_notion_corpus_blocks_and_row_properties():
    page = corpus.notion_page()
    blocks = corpus.notion_blocks()
    doc = {"page": page, "blocks": blocks, "content_type": "database_row"}
    [item] = list(normalize_page(obj("notion_api_page", doc, context={"source_type": "data_source"}), None))
    assert item.title == "Hello" and item.content_type == "database_row"
    lines = item.content.splitlines()
    assert lines[0] == "Hello"
    assert "Tags: tag" in lines and "SomeColumn: some text" in lines and "Some another column: some name" in lines
    assert "RollupArray: 42.2, 56" in lines
    assert "# Heading1" in lines  # old-API "text" rich text is read too
    assert any(line.startswith("[ ] todo") or line.startswith("[x] todo") for line in lines)
    [gone] = list(normalize_page(obj("notion_api_page", {"page": page, "deleted": True}, tombstone=True), None))
    assert gone.is_deleted
