"""Vectorized Slack message normalization: the same rules as :mod:`.normalize`, in polars.

Every large export and sync takes this path; rows it does not handle (edit/delete events,
non-objects, undecodable JSON) go through the per-object reference, so both give the same output
(a test asserts they agree on the corpus).
"""

from __future__ import annotations

from typing import Any

import polars as pl

from yarn_assets.ingest.bronze import to_objects
from yarn_assets.ingest.normalize import ITEM_SCHEMA, items_frame, normalize_objects, row_wise
from yarn_assets.ingest.objects import ContentItem, Reject
from yarn_assets.ingest.platforms.slack.normalize import (
    _CHANNEL_BARE,
    _CHANNEL_LABELLED,
    _ENTITIES,
    _SPECIALS,
    _TS,
    _USER_BARE,
    _USER_LABELLED,
    EDIT_SUBTYPES,
    FILTERED_SUBTYPES,
    NORMALIZERS,
    _count_filtered,
    _pl_repl,
    channel_names,
    user_names,
)

_TEXT_FIELDS = {"pretext": pl.Utf8, "title": pl.Utf8, "text": pl.Utf8, "fallback": pl.Utf8}
_FILE = pl.Struct({"name": pl.Utf8, "title": pl.Utf8})
#: What every message is decoded into (the fields the rules read).
MESSAGE_DTYPE = pl.Struct({
    "type": pl.Utf8,
    "subtype": pl.Utf8,
    "ts": pl.Utf8,
    "user": pl.Utf8,
    "bot_id": pl.Utf8,
    "username": pl.Utf8,
    "text": pl.Utf8,
    "thread_ts": pl.Utf8,
    "reply_count": pl.Int64,
    "edited": pl.Struct({"ts": pl.Utf8}),
    "reactions": pl.List(pl.Struct({"name": pl.Utf8, "count": pl.Int64})),
})
#: Decoded only for the few messages with blank text (forwards, bot posts, uploads): ~30 % of the
#: decode cost is saved on the rest.
FALLBACK_DTYPE = pl.Struct({
    "attachments": pl.List(pl.Struct(_TEXT_FIELDS)),
    "files": pl.List(_FILE),
    "file": _FILE,
})


def _nonblank_expr(expr: pl.Expr) -> pl.Expr:
    return pl.when(expr.str.strip_chars().str.len_chars() > 0).then(expr)


def _ts_expr(expr: pl.Expr) -> pl.Expr:
    """ts string -> Datetime(us, UTC) with the same rule as :func:`ts_to_datetime` (null otherwise).

    The pattern is only matched (a DFA scan, no captures); valid strings are then split on ".".
    """
    valid = expr.str.contains(_TS.pattern).fill_null(False)
    parts = pl.when(valid).then(expr).str.strip_chars().str.split_exact(".", 1)
    seconds = parts.struct.field("field_0").str.to_integer(strict=False)
    fraction = parts.struct.field("field_1").fill_null("0").str.slice(0, 6).str.pad_end(6, "0").str.to_integer(
        strict=False)
    return pl.from_epoch(seconds * 1_000_000 + fraction, time_unit="us").dt.replace_time_zone("UTC")


def _attachments_expr() -> pl.Expr:
    el = pl.element()
    block = pl.concat_str(
        [_nonblank_expr(el.struct.field(k)) for k in ("pretext", "title", "text")], separator="\n", ignore_nulls=True
    )
    block = pl.when(block != "").then(block).otherwise(_nonblank_expr(el.struct.field("fallback")).fill_null(""))
    blocks = pl.col("attachments").list.eval(block).list.eval(pl.element().filter(pl.element() != ""))
    return blocks.list.join("\n").fill_null("")


def _files_expr() -> pl.Expr:
    def label(el: pl.Expr) -> pl.Expr:
        name = pl.coalesce(_nonblank_expr(el.struct.field("title")), _nonblank_expr(el.struct.field("name")))
        return pl.lit("[file] ") + name

    many = pl.col("files").list.eval(label(pl.element())).list.drop_nulls()
    single = pl.concat_list([label(pl.col("file"))]).list.drop_nulls()
    return pl.concat_list([many.fill_null([]), single]).list.join("\n").fill_null("")


def _clean_rows(s: pl.Series, users: dict[str, str], channels: dict[str, str]) -> pl.Series:
    def has(marker: str) -> bool:  # a memchr scan: passes whose marker no row holds are skipped
        return bool(s.str.contains(marker, literal=True).any())

    if has("<@"):
        # Known ids first (one Aho-Corasick pass); the literal patterns never overlap a labelled
        # mention, so this order gives the same text as the per-object path.
        if users:
            ids = list(users)
            s = s.str.replace_many([f"<@{u}>" for u in ids] + [f"<@{u}|>" for u in ids],
                                   [f"@{users[u]}" for u in ids] * 2)
        if has("<@"):
            s = s.str.replace_all(_USER_LABELLED[0], _pl_repl(_USER_LABELLED[1]))
            s = s.str.replace_all(_USER_BARE, "@${1}")
    if has("<#"):
        if channels:
            ids = list(channels)
            s = s.str.replace_many([f"<#{c}>" for c in ids] + [f"<#{c}|>" for c in ids],
                                   [f"#{channels[c]}" for c in ids] * 2)
        if has("<#"):
            s = s.str.replace_all(_CHANNEL_LABELLED[0], _pl_repl(_CHANNEL_LABELLED[1]))
            s = s.str.replace_all(_CHANNEL_BARE, "#${1}")
    specials, (mailto, labelled_link, bare_link) = _SPECIALS[:4], _SPECIALS[4:]
    if has("<!"):
        for pattern, template in specials:
            s = s.str.replace_all(pattern, _pl_repl(template))
    if s.str.contains(r"<(?:mailto|tel|sms):").any():
        s = s.str.replace_all(mailto[0], _pl_repl(mailto[1]))
    if has("<"):
        s = s.str.replace_all(labelled_link[0], _pl_repl(labelled_link[1]))
        if has("<"):
            s = s.str.replace_all(bare_link[0], _pl_repl(bare_link[1]))
    if has("&"):
        s = s.str.replace_many(list(_ENTITIES), list(_ENTITIES.values()))
    return s


def clean_mrkdwn_series(s: pl.Series, users: dict[str, str], channels: dict[str, str]) -> pl.Series:
    """Vectorized :func:`clean_mrkdwn`: only rows holding ``<`` or ``&`` go through the regex passes."""
    needs = s.str.contains(r"[<&]").fill_null(False)
    if not needs.any():
        return s
    rows = needs.arg_true()
    return s.scatter(rows, _clean_rows(s.gather(rows), users, channels))


@row_wise
def normalize_slack_frame(frame: pl.DataFrame, ctx: Any) -> tuple[pl.DataFrame, list[Reject]]:
    """Vectorized :func:`normalize_slack_message` over the bronze rows of one batch.

    Row-wise (each row's items depend on that row and the batch context only: an edit event
    yields the edited message's new version, a delete event its tombstone), so a large batch is
    normalized in chunks on every core.

    One ``json_decode`` of the raw column into the fields the rules read, a join for author names
    and a few regex passes for mrkdwn. Rows it does not handle (edit/delete events, non-objects,
    undecodable JSON) go through the per-object reference, so both paths give the same output.
    """

    rejects: list[Reject] = []
    parts: list[pl.DataFrame] = []
    decoded, undecodable = _decode(frame)
    slow_seqs = undecodable["seq"]
    fast = None
    if decoded is not None:
        subtype = pl.col("m").struct.field("subtype")
        decoded = decoded.with_columns(
            (pl.col("m").is_null() | subtype.is_in(list(EDIT_SUBTYPES)).fill_null(False)).alias("_slow"),
            subtype.is_in(list(FILTERED_SUBTYPES)).fill_null(False).alias("_filtered"),
        )
        slow_seqs = pl.concat([slow_seqs, decoded.filter("_slow")["seq"]])
        counts = decoded.filter(pl.col("_filtered") & ~pl.col("_slow")).group_by(subtype.alias("s")).len()
        for name, n in counts.iter_rows():
            _count_filtered(ctx, name, n)
        fast = decoded.filter(~pl.col("_slow") & ~pl.col("_filtered")).drop("_slow", "_filtered").unnest("m")

    if slow_seqs.len():
        slow_items: list[ContentItem] = []
        for out in normalize_objects(to_objects(frame.filter(pl.col("seq").is_in(slow_seqs.implode()))), ctx,
                                     NORMALIZERS):
            (rejects if isinstance(out, Reject) else slow_items).append(out)  # type: ignore[arg-type]
        parts.append(items_frame(slow_items))
    if fast is not None and fast.height:
        fast = fast.with_columns(_ts_expr(pl.col("ts")).alias("occurred_at"))
        bad = fast.filter(pl.col("occurred_at").is_null())
        if bad.height:
            reasons = dict(zip(bad["seq"].to_list(), [
                f"slack message without a valid ts ({'None' if ts is None else repr(ts)})" for ts in bad["ts"]
            ], strict=True))
            for row in frame.filter(pl.col("seq").is_in(bad["seq"].implode())).iter_rows(named=True):
                rejects.append(Reject(reason=reasons[row["seq"]], raw=row["raw"] or b"",
                                      object_type=row["object_type"], external_id=row["external_id"]))
            fast = fast.filter(pl.col("occurred_at").is_not_null())
        parts.append(_fast_items(fast, frame, user_names(ctx), channel_names(ctx)))
    if not parts:
        return pl.DataFrame(schema=ITEM_SCHEMA), rejects
    return pl.concat([p.select(list(ITEM_SCHEMA)).cast(ITEM_SCHEMA) for p in parts]), rejects  # type: ignore[arg-type]


def _decode(frame: pl.DataFrame, min_chunk: int = 1024) -> tuple[pl.DataFrame | None, pl.DataFrame]:
    """(decoded rows, rows json_decode cannot take). One odd message (a field of an unexpected
    type, bytes that are not UTF-8) fails the whole column, so halve until the culprits are
    isolated: they, and only they, take the per-object path."""
    try:
        return frame.select(
            "seq", "raw_sha256", "resource_id", "resource_name",
            pl.col("raw").cast(pl.Utf8).str.json_decode(MESSAGE_DTYPE).alias("m"),
        ), frame.clear()
    except pl.exceptions.PolarsError:
        if frame.height <= min_chunk:
            return None, frame
    half = frame.height // 2
    parts = [_decode(frame.slice(0, half), min_chunk), _decode(frame.slice(half), min_chunk)]
    decoded = [d for d, _ in parts if d is not None]
    return (pl.concat(decoded) if decoded else None), pl.concat([u for _, u in parts])


def _fast_items(fast: pl.DataFrame, frame: pl.DataFrame, users: dict[str, str], channels: dict[str, str]
                ) -> pl.DataFrame:
    def present(c: str) -> pl.Expr:  # "" counts as missing, as in the per-object path
        return pl.when(pl.col(c) != "").then(pl.col(c))

    user, bot_id, ts, thread_ts = present("user"), present("bot_id"), present("ts"), present("thread_ts")
    author_id = pl.coalesce(user, bot_id)
    names = pl.DataFrame({"user": list(users), "user_name": list(users.values())},
                         schema={"user": pl.Utf8, "user_name": pl.Utf8})
    out = fast.join(names, on="user", how="left", maintain_order="left").select(
        "seq", "raw_sha256", "resource_id", "resource_name", "occurred_at",
        ts.alias("external_id"),
        pl.when(thread_ts.is_not_null() & (thread_ts != ts))
        .then(pl.lit("thread_reply")).otherwise(pl.lit("message")).alias("content_type"),
        _nonblank_expr(pl.col("text")).alias("content"),
        pl.lit(None, pl.Utf8).alias("title"),
        pl.coalesce(pl.col("user_name"), _nonblank_expr(pl.col("username")), author_id).alias("author"),
        author_id.alias("author_id"),
        pl.when(author_id.is_not_null()).then(pl.concat_list([author_id]))
        .otherwise(pl.lit([], dtype=pl.List(pl.Utf8))).alias("participants"),
        thread_ts.alias("thread_id"),
        pl.lit(None, pl.Datetime("us", "UTC")).alias("ends_at"),
        pl.col("occurred_at").alias("source_created_at"),
        _ts_expr(pl.col("edited").struct.field("ts")).alias("source_updated_at"),
        pl.struct(
            bot_id.alias("bot_id"), pl.col("reactions"), pl.col("reply_count"), present("subtype").alias("subtype"),
            thread_ts.alias("thread_ts"), ts.alias("ts"), user.alias("user"),
        ).struct.json_encode().alias("metadata"),
        pl.lit(False).alias("is_deleted"),
    )
    content = out["content"]
    blank = content.is_null()
    if blank.any():  # forwards, bot posts, uploads: text from attachments, then files (few rows)
        rows = blank.arg_true()
        raws = out.select("seq")[rows].join(frame.select("seq", "raw"), on="seq", how="left", maintain_order="left")
        fallback = raws.select(
            pl.col("raw").cast(pl.Utf8).str.json_decode(FALLBACK_DTYPE).alias("m")
        ).unnest("m").select(pl.coalesce(_nonblank_expr(_attachments_expr()), _files_expr()).alias("content"))
        content = content.scatter(rows, fallback["content"])
    return out.with_columns(clean_mrkdwn_series(content, users, channels).alias("content"))


FRAME_NORMALIZERS = {"slack_message": normalize_slack_frame}
