"""Email (mbox, .eml, Gmail API): address headers, bulk headers and the Sent label -> interactions."""

from __future__ import annotations

import json
from email import policy as email_policy
from email.parser import BytesHeaderParser
from typing import Any

import polars as pl

from yarn_assets.ingest.mime import decode_header_value, split_labels
from yarn_assets.people import addresses as addr
from yarn_assets.people.bulk import bulk_reason
from yarn_assets.people.extract.batch import MAX_PARTICIPANTS_PER_ITEM, _Batch, _day, _items

_HEADER_PARSER = BytesHeaderParser(policy=email_policy.compat32)
_BULK_HEADERS = ("list-unsubscribe", "list-id", "precedence", "auto-submitted")


def _header(msg: Any, name: str) -> str | None:
    values = msg.get_all(name) or []
    return " ".join(filter(None, (decode_header_value(v) for v in values))) or None


def _addresses(msg: Any, name: str) -> list[tuple[str, str]]:
    values = [decode_header_value(v) for v in msg.get_all(name) or []]
    return addr.parse_addresses(values)


def _emails(batch: _Batch, frame: pl.DataFrame) -> None:
    items = _items(frame)
    if items.is_empty():
        return
    raws = dict(zip(frame["seq"].to_list(), frame["raw"].to_list(), strict=True))
    contexts = dict(zip(frame["seq"].to_list(), frame["context"].to_list(), strict=True))
    parsed = []
    for it in items.iter_rows(named=True):
        try:
            msg = _HEADER_PARSER.parsebytes(raws.get(it["seq"]) or b"")
        except Exception:  # a header block the parser rejects: the item keeps its normalized participants
            msg = None
        batch.out.stats["emails"] += 1
        parsed.append(_headers(batch, it, msg, json.loads(contexts.get(it["seq"]) or "{}")))
    for it, facts in parsed:  # every self address of the batch is known before directions are decided
        _email(batch, it, facts)


def _headers(batch: _Batch, it: dict[str, Any], msg: Any, context: dict[str, Any]) -> tuple[dict[str, Any], Any]:
    seq = int(it["seq"])
    if msg is not None:
        senders = _addresses(msg, "From") or _addresses(msg, "Sender")
        list_sender = next((a for _, a in _addresses(msg, "Sender")), None)
        to, cc, bcc = _addresses(msg, "To"), _addresses(msg, "Cc"), _addresses(msg, "Bcc")
        delivered = _addresses(msg, "Delivered-To") + _addresses(msg, "X-Original-To")
        headers = {h: _header(msg, h) for h in _BULK_HEADERS}
        labels = split_labels(decode_header_value(msg.get("X-Gmail-Labels")))
    else:
        senders = [("", it["author_id"])] if it["author_id"] else []
        to, cc, bcc, delivered, headers, labels = [("", p) for p in it["participants"] or []], [], [], [], {}, []
        list_sender = None
    labels = labels + [str(x) for x in (context.get("labels") or []) + (context.get("label_ids") or [])]
    sender_name, sender_raw = senders[0] if senders else ("", "")
    sender = addr.email_key(sender_raw)
    for _, d in delivered:
        if (k := addr.email_key(d)) is not None:
            batch.self_evidence(k, "self_delivered_to", "Delivered-To header of the user's mailbox", seq)
    if sender and any(label.lower() in ("sent", "sent mail") for label in labels):
        batch.self_evidence(sender, "self_sent_label", "From address of a message in the user's Sent folder", seq)
    recipients = [(n, a, role) for role, group in (("to", to), ("cc", cc), ("bcc", bcc)) for n, a in group]
    return it, (sender_name, sender_raw, sender, recipients, headers, list_sender)


def _email(batch: _Batch, it: dict[str, Any], facts: Any) -> None:
    seq = int(it["seq"])
    sender_name, sender_raw, sender, recipients, headers, list_sender = facts
    reason = bulk_reason(headers, addr.normalize_email(sender_raw), len(recipients), batch.limits.max_recipients,
                         addr.normalize_email(list_sender))
    if reason:
        batch.out.stats["bulk_emails"] += 1
    item = batch.item(channel="email", resource_id=it["resource_id"], resource_name=it["resource_name"],
                      external_id=it["external_id"], created_day=_day(it["source_created_at"]),
                      thread_id=it["thread_id"], occurred_at=it["occurred_at"], subject=it["title"], sender=sender,
                      seq=seq, is_bulk=reason is not None, bulk=reason)
    if it["is_deleted"]:
        batch.tombstone(item)
        return
    sent = sender is not None and sender in batch.own
    if sent and (own_name := addr.clean_name(sender_name, sender_raw)):
        batch.evidence(sender, sender, "self_name", 1.0, "the name the user sends mail with", seq, own_name)
    for name, raw_addr, _ in recipients:
        key = addr.email_key(raw_addr)
        if key is not None and key in batch.own and (own_name := addr.clean_name(name, raw_addr)):
            batch.evidence(key, key, "self_name", 1.0, "the name the user's mail is addressed to", seq, own_name)
    seen: set[str] = set()
    if sender and not sent:
        seen.add(sender)
        batch.row(item, participant=sender, address=sender_raw, name=addr.clean_name(sender_name, sender_raw),
                  name_source="from_header", role="from", direction="received")
    for name, raw_addr, role in recipients[:MAX_PARTICIPANTS_PER_ITEM]:
        key = addr.email_key(raw_addr)
        if key is None or key in seen or key == sender or key in batch.own:
            continue
        seen.add(key)
        batch.row(item, participant=key, address=raw_addr, name=addr.clean_name(name, raw_addr),
                  name_source="recipient_header", role=role, direction="sent" if sent else "received")


