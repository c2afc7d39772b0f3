"""Slack Web API messages (``conversations.history`` / ``.replies`` objects) -> message items.

A message from the API and the same message from a workspace export are the same silver row
(same key), so they must normalize to the same text: both go through the export normalizer's
:func:`~yarn_assets.ingest.normalizers.slack.message_item` (subtype filter, author names from the
batch's ``slack_users`` — which the sync fills from its users.info cache —, mrkdwn resolution,
attachments and files). Otherwise a user who imports an export and also syncs would see every
message flip between two texts, each flip counted as an edit. The API adds only what the export
does not have: tombstones for vanished messages, and the thread of a reply fetched through
``conversations.replies`` when the reply itself omits ``thread_ts``.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from yarn_assets.ingest.normalizers import BatchContext
from yarn_assets.ingest.normalizers.slack import message_item, ts_to_datetime
from yarn_assets.ingest.objects import BronzeObject, ContentItem, Reject


def normalize_api_message(obj: BronzeObject, ctx: BatchContext) -> Iterator[ContentItem | Reject]:
    if obj.is_tombstone:
        when = ts_to_datetime(obj.external_id)
        yield ContentItem(resource_id=obj.resource_id, resource_name=obj.resource_name, external_id=obj.external_id,
                          content_type="message", content="", is_deleted=True,
                          occurred_at=when, source_created_at=when)
        return
    try:
        msg: Any = json.loads(obj.raw)
    except ValueError as exc:
        yield Reject(reason=f"slack message is not valid JSON: {exc}", raw=obj.raw,
                     object_type=obj.object_type, external_id=obj.external_id)
        return
    if not isinstance(msg, dict) or not msg.get("ts"):
        yield Reject(reason="slack message without ts", raw=obj.raw, object_type=obj.object_type,
                     external_id=obj.external_id)
        return
    if not msg.get("thread_ts") and obj.context.get("thread_ts"):
        msg = {**msg, "thread_ts": obj.context["thread_ts"]}
    item = message_item(msg, obj, ctx)
    if isinstance(item, ContentItem):
        item.metadata.update({"edited": (msg.get("edited") or {}).get("ts"),
                              "channel": obj.context.get("channel_name")})
    if item is not None:
        yield item


NORMALIZERS = {"slack_api_message": normalize_api_message}
