"""Slack (export, API): authors, DM members, mentions, thread parents and profiles -> interactions."""

from __future__ import annotations

import json
from typing import Any

import polars as pl

from yarn_assets.ingest.normalizers import CONTEXT_ONLY, BatchContext
from yarn_assets.people import addresses as addr
from yarn_assets.people.extract.batch import _MENTION, _PARENT, _Batch, _day, _items


def _slack_profiles(batch: _Batch, ctx: BatchContext, seq_of: dict[str, int]) -> dict[str, dict[str, Any]]:
    """users.json / users.info profiles -> evidence (Slack id <-> email, phone) and the user's own ids."""
    profiles = {}
    for uid, user in ctx.slack_users.items():
        profile = user.get("profile") if isinstance(user.get("profile"), dict) else {}
        key = f"slack:{uid}"
        name = addr.clean_name(user.get("real_name") or profile.get("real_name") or profile.get("display_name"))
        bot = bool(user.get("is_bot")) or uid == "USLACKBOT"
        profiles[uid] = {"name": name, "bot": bot}
        if bot:
            continue
        seq = seq_of.get(uid, 0)
        email = addr.email_key(profile.get("email"))
        if email:
            batch.evidence(key, email, "slack_profile_email", 1.0, "the Slack profile lists this email", seq, name)
            if email in batch.own:
                batch.self_evidence(key, "self_slack_profile", "the user's own Slack profile (its email is theirs)",
                                    seq)
        phone = addr.phone_e164(profile.get("phone"), batch.limits.phone_region)
        if phone:
            batch.evidence(key, f"phone:{phone}", "slack_profile_phone", 0.9, "the Slack profile lists this phone", seq,
                           name)
        elif name:
            batch.evidence(key, key, "slack_profile_name", 1.0, "the Slack profile's name", seq, name)
    return profiles


def _dm_members(ctx: BatchContext) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for obj in ctx.of_type("slack_channels"):
        if obj.context.get("kind") not in ("dm", "mpim", "group"):
            continue
        try:
            data = json.loads(obj.raw)
        except ValueError:
            continue
        convs = data.get("channels", data) if isinstance(data, dict) else data
        for conv in convs if isinstance(convs, list) else []:
            if isinstance(conv, dict) and conv.get("id") and isinstance(conv.get("members"), list) \
                    and obj.context.get("kind") in ("dm", "mpim"):
                out[str(conv["id"])] = list(dict.fromkeys(str(m) for m in conv["members"]))
    return out


def _slack(batch: _Batch, frame: pl.DataFrame) -> None:
    from yarn_assets.ingest.bronze import to_objects

    ctx = BatchContext(to_objects(frame.filter(pl.col("object_type").is_in(list(CONTEXT_ONLY)))))
    seq_of: dict[str, int] = {}
    for obj in ctx.of_type("slack_users"):
        for uid in _user_ids(obj.raw):
            seq_of.setdefault(uid, obj.seq)
    profiles = _slack_profiles(batch, ctx, seq_of)
    members = _dm_members(ctx)
    items = _items(frame)
    if items.is_empty():
        return
    raw_text = frame.select("seq", pl.col("raw").cast(pl.Utf8, strict=False).alias("text"))
    extras = raw_text.select(
        "seq",
        pl.col("text").str.extract_all(_MENTION.pattern).alias("mentions"),
        pl.col("text").str.extract(_PARENT.pattern, 1).alias("parent"),
    )
    joined = items.join(extras, on="seq", how="left")
    for it in joined.iter_rows(named=True):
        batch.out.stats["slack_messages"] += 1
        author_id = it["author_id"]
        sender = f"slack:{author_id}" if author_id else None
        item = batch.item(channel="slack", resource_id=it["resource_id"], resource_name=it["resource_name"],
                          external_id=it["external_id"], created_day=_day(it["source_created_at"]),
                          thread_id=it["thread_id"], occurred_at=it["occurred_at"], subject=None, sender=sender,
                          seq=int(it["seq"]), is_bulk=bool(author_id and author_id.startswith("B")),
                          bulk="bot" if author_id and author_id.startswith("B") else None)
        if it["is_deleted"]:
            batch.tombstone(item)
            continue
        if not author_id or profiles.get(author_id, {}).get("bot") or author_id.startswith("B"):
            continue
        if sender not in batch.own:
            batch.row(item, participant=sender, address=author_id, name=profiles.get(author_id, {}).get("name")
                      or it["author"], name_source="slack_profile" if author_id in profiles else "slack_author",
                      role="author", direction="received")
            continue
        targets: list[tuple[str, str]] = [(m, "member") for m in members.get(it["resource_id"], [])]
        targets += [(m.split("|")[0][2:].rstrip(">"), "mention") for m in it["mentions"] or []]
        if it["parent"]:
            targets.append((it["parent"], "parent"))
        seen: set[str] = set()
        for uid, role in targets:
            key = f"slack:{uid}"
            if key in batch.own or key in seen or profiles.get(uid, {}).get("bot"):
                continue
            seen.add(key)
            batch.row(item, participant=key, address=uid, name=profiles.get(uid, {}).get("name"),
                      name_source="slack_profile", role=role, direction="sent")


def _user_ids(raw: bytes) -> list[str]:
    try:
        data = json.loads(raw)
    except ValueError:
        return []
    members = data.get("members", data) if isinstance(data, dict) else data
    return [str(u["id"]) for u in members if isinstance(u, dict) and u.get("id")] if isinstance(members, list) else []
