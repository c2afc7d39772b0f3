"""Platform context for a deliverable: one user's silver content, capped and rendered as the original did.

Caps (the original's ``deliverable_execution``): at most 100 items fetched, ``100 ÷ sources`` per
source, newest first; at most 20 per source rendered as ``[MM/DD HH:MM] <author> content[:500]``
with UNANSWERED / URGENT / DECISION / HOT tags, grouped under
``## Platform: name (N items, most recent: Xd ago)``. Only the rendered items are returned as
"in the prompt", so only those get retained (the original retained everything fetched).

Every read filters on ``user_id``: one user's content never reaches another's deliverable.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo

import polars as pl

from io_managers.delta_store import DeltaStore
from io_managers.predicates import Eq, In, all_of
from yarn_assets.core.tables import PLATFORM_CONTENT
from yarn_assets.deliverables.sources import SourceRef

MAX_ITEMS = 100
MAX_RENDERED_PER_SOURCE = 20
ITEM_CHARS = 500
MAX_EXPANDED_RESOURCES = 10

_COLUMNS = [
    "user_id", "platform", "created_day", "resource_id", "resource_name", "external_id", "content_type",
    "thread_id", "title", "author", "participants", "content", "occurred_at", "ends_at", "fetched_at",
    "expires_at", "retained",
]

_URGENT = re.compile(r"\b(urgent|asap|blocker|blocking|eod|deadline|immediately)\b", re.I)
_DECISION = re.compile(r"\b(decided|decision|agreed|approved|we will go with|signed off)\b", re.I)


@dataclass
class SourceGroup:
    source: SourceRef
    platform: str
    resource_id: str | None
    resource_name: str
    fetched: pl.DataFrame  # up to the per-source cap, newest first
    rendered: pl.DataFrame  # the <= 20 that go into the prompt

    @property
    def latest(self) -> dt.datetime | None:
        if self.fetched.is_empty():
            return None
        return self.fetched["sort_at"].max()  # type: ignore[return-value]


@dataclass
class PlatformContext:
    groups: list[SourceGroup] = field(default_factory=list)
    text: str = ""

    @property
    def in_prompt(self) -> pl.DataFrame:
        frames = [g.rendered for g in self.groups if not g.rendered.is_empty()]
        if not frames:
            return pl.DataFrame(schema={c: PLATFORM_CONTENT.schema[c] for c in _COLUMNS})
        return pl.concat(frames, how="diagonal_relaxed")

    @property
    def items_in_prompt(self) -> int:
        return sum(g.rendered.height for g in self.groups)

    @property
    def items_fetched(self) -> int:
        return sum(g.fetched.height for g in self.groups)

    def sources_used(self) -> list[dict[str, Any]]:
        return [
            {"platform": g.platform, "resource_id": g.resource_id, "resource_name": g.resource_name,
             "items_fetched": g.fetched.height, "items_in_prompt": g.rendered.height}
            for g in self.groups
        ]


def read_user_content(store: DeltaStore, user_id: str, platforms: list[str], now: dt.datetime) -> pl.DataFrame:
    """Live (unexpired or retained) silver rows of one user on the given platforms."""
    return live_rows(read_users_content(store, [user_id], platforms), now)


def read_users_content(store: DeltaStore, user_ids: list[str], platforms: list[str]) -> pl.DataFrame:
    """Silver rows (the columns a run uses, expired ones too) of these users on these platforms: one scan.

    A round reads its users once with this and hands each run its user's rows; a single run reads one user."""
    if not platforms or not user_ids:
        return pl.DataFrame(schema={c: PLATFORM_CONTENT.schema[c] for c in _COLUMNS})
    pred = all_of(In("platform", sorted(set(platforms))),
                  Eq("user_id", user_ids[0]) if len(user_ids) == 1 else In("user_id", sorted(set(user_ids))))
    return store.read(PLATFORM_CONTENT, pred, columns=_COLUMNS)


def live_rows(df: pl.DataFrame, now: dt.datetime) -> pl.DataFrame:
    """The live rows (retained, no expiry, or not expired at ``now``) with their ``sort_at``."""
    df = df.filter(pl.col("retained").fill_null(False) | pl.col("expires_at").is_null() | (pl.col("expires_at") > now))
    return df.with_columns(pl.coalesce("occurred_at", "fetched_at").alias("sort_at"))


def _matches(df: pl.DataFrame, ref: SourceRef) -> pl.DataFrame:
    out = df.filter(pl.col("platform") == ref.platform)
    ids = ref.silver_resource_ids()
    return out.filter(pl.col("resource_id").is_in(ids)) if ids else out


def _expand(df: pl.DataFrame, sources: list[SourceRef]) -> list[tuple[SourceRef, str, str | None, pl.DataFrame]]:
    """(source, platform, resource_id, rows): whole-platform sources split into their resources."""
    out = []
    for ref in sources:
        rows = _matches(df, ref)
        if ref.resource_id is not None:
            name = ref.resource_name or (rows["resource_name"][0] if rows.height else None) or ref.resource_id
            out.append((ref, ref.platform, ref.resource_id, rows.with_columns(pl.lit(name).alias("_group_name"))))
            continue
        if rows.is_empty():
            out.append((ref, ref.platform, None, rows.with_columns(pl.lit(ref.platform).alias("_group_name"))))
            continue
        order = (rows.group_by("resource_id").agg(pl.col("sort_at").max().alias("latest"),
                                                  pl.col("resource_name").first().alias("name"))
                 .sort("latest", descending=True).head(MAX_EXPANDED_RESOURCES))
        for rid, name in order.select("resource_id", "name").iter_rows():
            sub = rows.filter(pl.col("resource_id") == rid)
            out.append((ref, ref.platform, rid, sub.with_columns(pl.lit(name or rid).alias("_group_name"))))
    return out


def gather_platform_context(
    store: DeltaStore,
    *,
    user_id: str,
    sources: list[SourceRef],
    now: dt.datetime,
    timezone: str = "UTC",
    looks_ahead_days: int | None = None,
    rows: pl.DataFrame | None = None,
) -> PlatformContext:
    """Fetch within the caps, choose what is rendered, and render it.

    ``rows``: the user's silver rows already read (a round's prefetch, :func:`read_users_content`);
    without them the user's rows are read here."""
    ctx = PlatformContext()
    if not sources:
        return ctx
    platforms = [s.platform for s in sources]
    if rows is None:
        df = read_user_content(store, user_id, platforms, now)
    else:
        df = live_rows(rows.filter((pl.col("user_id") == user_id) & pl.col("platform").is_in(platforms)), now)
    expanded = _expand(df, sources)
    per_source = max(1, MAX_ITEMS // max(1, len(expanded)))
    for ref, platform, rid, rows in expanded:
        if looks_ahead_days is not None and platform == "calendar":
            window_end = now + dt.timedelta(days=looks_ahead_days)
            rows = rows.filter((pl.col("occurred_at") >= now - dt.timedelta(hours=1))
                               & (pl.col("occurred_at") < window_end)).sort("occurred_at")
        else:
            rows = rows.sort(["sort_at", "external_id"], descending=[True, False])
        fetched = rows.head(per_source)
        rendered = fetched.head(MAX_RENDERED_PER_SOURCE)
        name = str(rows["_group_name"][0]) if rows.height else (rid or platform)
        ctx.groups.append(SourceGroup(ref, platform, rid, name, fetched, rendered))
    ctx.text = render(ctx, now=now, timezone=timezone)
    return ctx


def _age(now: dt.datetime, when: dt.datetime | None) -> str:
    if when is None:
        return "never"
    seconds = (now - when).total_seconds()
    if seconds < 0:
        hours = -seconds / 3600
        return f"in {hours:.0f}h" if hours < 48 else f"in {hours / 24:.0f}d"
    if seconds < 3600:
        return f"{seconds / 60:.0f}m ago"
    if seconds < 48 * 3600:
        return f"{seconds / 3600:.0f}h ago"
    return f"{seconds / 86400:.0f}d ago"


def item_tags(row: dict[str, Any], replied_threads: set[tuple[str, str]], thread_sizes: dict[str, int]) -> list[str]:
    text = f"{row.get('title') or ''} {row.get('content') or ''}"
    tags = []
    thread = row.get("thread_id") or row.get("external_id")
    if text.strip().endswith("?") and (row["platform"], str(thread)) not in replied_threads:
        tags.append("UNANSWERED")
    if _URGENT.search(text):
        tags.append("URGENT")
    if _DECISION.search(text):
        tags.append("DECISION")
    if thread and thread_sizes.get(str(thread), 0) >= 4:
        tags.append("HOT")
    return tags


def _line(row: dict[str, Any], zone: ZoneInfo, tags: list[str]) -> str:
    when = row.get("sort_at")
    stamp = when.astimezone(zone).strftime("%m/%d %H:%M") if when else "--/-- --:--"
    if row["platform"] == "calendar" and row.get("ends_at") is not None:
        stamp += "–" + row["ends_at"].astimezone(zone).strftime("%H:%M")
    author = row.get("author") or "unknown"
    body = " ".join(str(row.get("content") or "").split())
    title = row.get("title")
    if title and row["platform"] in ("gmail", "notion", "calendar"):
        body = f"\"{title}\": {body}" if body and body != title else f"\"{title}\""
    if row["platform"] == "calendar" and row.get("participants"):
        body += f" (attendees: {', '.join(row['participants'][:8])})"
    body = body[:ITEM_CHARS]
    tag_text = "".join(f" [{t}]" for t in tags)
    return f"[{stamp}] <{author}> {body}{tag_text}"


def render(ctx: PlatformContext, *, now: dt.datetime, timezone: str) -> str:
    zone = ZoneInfo(timezone)
    blocks = []
    for g in ctx.groups:
        if g.fetched.is_empty():
            continue
        threads = g.fetched.with_columns(pl.coalesce("thread_id", "external_id").alias("_t"))
        sizes = dict(threads.group_by("_t").len().iter_rows())
        # a question counts as answered when a later message in its thread exists
        replied: set[tuple[str, str]] = set()
        for (t,), frame in threads.group_by(["_t"]):
            if frame.height > 1:
                replied.add((g.platform, str(t)))
        header = (f"## {g.platform.capitalize()}: {g.resource_name} ({g.fetched.height} items, "
                  f"most recent: {_age(now, g.latest)})")
        lines = [header]
        for row in g.rendered.iter_rows(named=True):
            lines.append(_line(row, zone, item_tags(row, replied, sizes)))
        if g.fetched.height > g.rendered.height:
            lines.append(f"(+{g.fetched.height - g.rendered.height} older items not shown)")
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks)
