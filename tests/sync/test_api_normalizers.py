"""The API normalizers against the corpus's real objects (Slack events, Calendar events, Notion blocks)."""

from __future__ import annotations

import datetime as dt
import json

from tests.fakes import corpus
from yarn_assets.ingest.normalize import BatchContext
from yarn_assets.ingest.objects import BronzeObject
from yarn_assets.ingest.platforms.calendar.normalize_api import normalize_event
from yarn_assets.ingest.platforms.notion.normalize_api import normalize_page
from yarn_assets.ingest.platforms.slack.normalize import normalize_api_message, normalize_slack_message


def obj(object_type: str, raw: object, *, context: dict | None = None, tombstone: bool = False,
        external_id: str = "x") -> BronzeObject:
    data = raw if isinstance(raw, bytes) else json.dumps(raw).encode()
    return BronzeObject(object_type, external_id, data, "R1", "res", context or {}, tombstone, 0, "b1",
                        "test", "sha", dt.datetime(2026, 1, 1, tzinfo=dt.UTC))


def _via_export(raw: dict, ctx: BatchContext) -> list:
    return list(normalize_slack_message(obj("slack_message", raw), ctx))


def test_slack_api_messages_normalize_exactly_like_the_export():
    """The same message from the API and from an export is one silver row: same text, author, thread."""
    jade = {"id": "U043H11ES4V", "profile": {"display_name": "", "real_name": "Jade"}}
    ctx = BatchContext([obj("slack_users", {"members": [*corpus.slack_users(), jade]})])
    event = corpus.load("slack_api/slackweb__SlackWebhookEvent_message_rich_text.json")["event"]
    [api] = list(normalize_api_message(obj("slack_api_message", event, context={"channel_name": "general"}), ctx))
    [export] = _via_export(event, ctx)
    assert api.content == export.content == "#general :cat: @Jade https://google.com text text text"
    assert (api.author, api.external_id, api.content_type) == (export.author, export.external_id, export.content_type)
    assert api.metadata["channel"] == "general"

    share = corpus.load("slack_api/slackweb__SlackWebhookEvent_message_file_share.json")["event"]
    [item] = list(normalize_api_message(obj("slack_api_message", share), ctx))
    assert item.content == _via_export(share, ctx)[0].content == "message message message"
    assert item.occurred_at == dt.datetime.fromtimestamp(float(share["ts"]), tz=dt.UTC)
    only_file = {k: v for k, v in share.items() if k != "text"}
    [item] = list(normalize_api_message(obj("slack_api_message", only_file), ctx))
    assert item.content == "[file] namenamename.txt"

    # a reply fetched through conversations.replies without its own thread_ts keeps the thread
    reply = {"type": "message", "user": "U023BECGF", "text": "ok", "ts": "1700000001.000100",
             "edited": {"ts": "1700000500.000000"}}
    [item] = list(normalize_api_message(
        obj("slack_api_message", reply, context={"is_reply": True, "thread_ts": "1700000000.000100"}), ctx))
    assert (item.content_type, item.author, item.thread_id) == ("thread_reply", "alice", "1700000000.000100")
    assert item.source_updated_at == dt.datetime.fromtimestamp(1700000500, tz=dt.UTC)
    assert item.metadata["edited"] == "1700000500.000000"

    joined = {"type": "message", "subtype": "channel_join", "user": "U023BECGF", "text": "joined", "ts": "1.5"}
    assert list(normalize_api_message(obj("slack_api_message", joined), ctx)) == []
    [bad] = list(normalize_api_message(obj("slack_api_message", b"{not json"), ctx))
    assert bad.reason.startswith("slack message is not valid JSON")
    [gone] = list(normalize_api_message(obj("slack_api_message", {"ts": "1.0"}, tombstone=True,
                                            external_id="1700000000.000100"), ctx))
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
