"""Deterministic extraction: one user's silver content -> the summary a signal pass works from.

Windows and limits are the original's (yarnnn-original.md §3), evaluated at the pass's ``as_of``
rather than the wall clock, so re-running an hour sees the same content:

============  ==========================================================  ===============  =====
platform      filter                                                      order            limit
============  ==========================================================  ===============  =====
calendar      events, not expired or retained                             start ascending  50
gmail         fetched in the last 7 days                                  newest first     30
slack         fetched in the last 2 days                                  newest first     100
notion        pages, not expired or retained                              fetched, newest  20
============  ==========================================================  ===============  =====

Every platform also requires ``fetched_at <= as_of`` (content known at that time) and drops rows
that expired before ``as_of``. When the user's connection has ``selected_sources``, only those
resources count (Gmail ids compare with or without the ``label:`` prefix).

Each item gets a **signal ref** (``event:<id>``, ``thread:<id>``, ``slack:<channel>:<thread>``,
``page:<id>``). Refs are shown to the model and must come back on every create, so the history
de-duplication always has a key.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import polars as pl

from yarn_assets.core.tables import PLATFORM_CONTENT

PASS_PLATFORMS: dict[str, tuple[str, ...]] = {
    "calendar_only": ("calendar",),
    "non_calendar": ("gmail", "slack", "notion"),
}

LIMITS = {"calendar": 50, "gmail": 30, "slack": 100, "notion": 20}
FETCH_WINDOWS = {"gmail": dt.timedelta(days=7), "slack": dt.timedelta(days=2)}
#: The range each section claims to cover (for the summary's time_range fields and headings).
RANGES = {
    "calendar": (dt.timedelta(0), dt.timedelta(days=7)),
    "gmail": (-dt.timedelta(days=7), dt.timedelta(0)),
    "slack": (-dt.timedelta(days=2), dt.timedelta(0)),
    "notion": (None, None),
}
SUMMARY_ITEMS = 10

#: Columns of silver the passes need (the rest is never read).
COLUMNS = [
    "user_id", "platform", "resource_id", "resource_name", "external_id", "content_type", "thread_id", "title",
    "author", "author_id", "participants", "content", "content_hash", "occurred_at", "ends_at", "fetched_at",
    "expires_at", "retained", "metadata",
]


def normalize_resource(platform: str, resource_id: str | None) -> str:
    """Gmail labels are stored as ``label:INBOX`` by sync and ``INBOX`` in selections; compare bare."""
    rid = resource_id or ""
    if platform == "gmail" and rid.startswith("label:"):
        return rid[len("label:"):]
    return rid


def ref_expr() -> pl.Expr:
    thread_or_id = pl.coalesce(pl.col("thread_id"), pl.col("external_id"))
    return (
        pl.when(pl.col("platform") == "calendar").then(pl.lit("event:") + pl.col("external_id"))
        .when(pl.col("platform") == "gmail").then(pl.lit("thread:") + thread_or_id)
        .when(pl.col("platform") == "slack")
        .then(pl.lit("slack:") + pl.col("resource_id") + pl.lit(":") + thread_or_id)
        .otherwise(pl.lit("page:") + pl.col("external_id"))
        .alias("ref")
    )


@dataclass
class PlatformContent:
    platform: str
    items: pl.DataFrame
    time_range_start: dt.datetime | None
    time_range_end: dt.datetime | None
    content_summary: str

    @property
    def items_count(self) -> int:
        return self.items.height


@dataclass
class SignalSummary:
    user_id: str
    pass_name: str
    as_of: dt.datetime
    platforms: dict[str, PlatformContent] = field(default_factory=dict)

    @property
    def total_items(self) -> int:
        return sum(p.items_count for p in self.platforms.values())

    @property
    def has_signals(self) -> bool:
        return self.total_items > 0

    @property
    def platforms_queried(self) -> list[str]:
        return list(self.platforms)

    def count(self, platform: str) -> int:
        content = self.platforms.get(platform)
        return content.items_count if content else 0

    def items(self) -> pl.DataFrame:
        frames = [p.items for p in self.platforms.values() if p.items.height]
        return pl.concat(frames, how="vertical_relaxed") if frames else empty_items()

    @property
    def refs(self) -> list[str]:
        items = self.items()
        return sorted(set(items["ref"].to_list())) if items.height else []

    @property
    def content_summary(self) -> str:
        return "\n\n".join(p.content_summary for p in self.platforms.values())

    def fingerprint(self, time_sensitive: Iterable[str] = ()) -> str:
        """Identity of what the pass would see: item versions plus time-sensitive candidates."""
        items = self.items()
        keys = sorted(
            f"{r['platform']}|{r['resource_id']}|{r['external_id']}|{r['content_hash']}"
            for r in items.select(["platform", "resource_id", "external_id", "content_hash"]).iter_rows(named=True)
        )
        digest = hashlib.sha256()
        for part in [self.pass_name, *keys, "|time|", *sorted(set(time_sensitive))]:
            digest.update(part.encode("utf-8"))
            digest.update(b"\n")
        return digest.hexdigest()

    def new_items_since(self, when: dt.datetime | None) -> int:
        items = self.items()
        if when is None:
            return items.height
        return items.filter(pl.col("fetched_at") > pl.lit(when)).height


def empty_items() -> pl.DataFrame:
    schema = {c: PLATFORM_CONTENT.schema[c] for c in COLUMNS}
    return pl.DataFrame(schema=schema).with_columns(pl.lit(None, pl.Utf8).alias("ref"))


def select_platform(
    rows: pl.DataFrame, platform: str, as_of: dt.datetime, selected: set[str] | None = None
) -> pl.DataFrame:
    """The original's filter, order and limit for one platform (rows are one user's silver rows)."""
    live = pl.col("retained").fill_null(False) | pl.col("expires_at").is_null() | (pl.col("expires_at") > pl.lit(as_of))
    frame = rows.filter((pl.col("platform") == platform) & (pl.col("fetched_at") <= pl.lit(as_of)) & live)
    if selected:
        wanted = {normalize_resource(platform, s) for s in selected}
        frame = frame.filter(
            pl.col("resource_id").map_elements(lambda r: normalize_resource(platform, r) in wanted,
                                               return_dtype=pl.Boolean)
        )
    window = FETCH_WINDOWS.get(platform)
    if window is not None:
        frame = frame.filter(pl.col("fetched_at") > pl.lit(as_of - window))
    if platform == "calendar":
        frame = frame.filter(pl.col("content_type") == "event").sort(
            ["occurred_at", "external_id"], nulls_last=True
        )
    elif platform == "notion":
        frame = frame.sort(["fetched_at", "external_id"], descending=[True, False])
    else:
        frame = frame.sort(["occurred_at", "fetched_at", "external_id"], descending=[True, True, False],
                           nulls_last=True)
    return frame.head(LIMITS[platform]).with_columns(ref_expr())


def _clip(text: str | None, n: int) -> str:
    return " ".join((text or "").split())[:n]


def _when(value: dt.datetime | None) -> str:
    return value.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M UTC") if value else "undated"


def item_line(platform: str, row: Mapping[str, Any]) -> str:
    """One summary line, as the original rendered it, prefixed with the item's signal ref."""
    ref = row["ref"]
    if platform == "calendar":
        attendees = len(row.get("participants") or [])
        what = _clip(row.get("title") or row.get("content"), 100)
        return f"[{ref}] {what} ({_when(row.get('occurred_at'))}) - {attendees} attendees"
    if platform == "gmail":
        subject = _clip(row.get("title") or "(no subject)", 150)
        return f"[{ref}] {subject} (from: {row.get('author') or '?'}, {_when(row.get('occurred_at'))})"
    if platform == "slack":
        channel = row.get("resource_name") or row.get("resource_id")
        return f"[{ref}] #{channel} {row.get('author') or '?'}: {_clip(row.get('content'), 100)}"
    return f"[{ref}] {_clip(row.get('title') or '(untitled)', 100)}: {_clip(row.get('content'), 100)}"


HEADINGS = {
    "calendar": "CALENDAR (upcoming 7 days, {n} events)",
    "gmail": "GMAIL (last 7 days, {n} emails)",
    "slack": "SLACK (last 2 days, {n} messages)",
    "notion": "NOTION ({n} pages)",
}


def render_section(platform: str, items: pl.DataFrame, as_of: dt.datetime) -> str:
    """Heading plus the first 10 items, then "... and N more" (calendar: upcoming events first)."""
    rows = list(items.iter_rows(named=True))
    omitted_past = 0
    if platform == "calendar":
        upcoming = [r for r in rows if (r.get("ends_at") or r.get("occurred_at") or as_of) >= as_of]
        omitted_past = len(rows) - len(upcoming)
        rows = upcoming
    lines = [HEADINGS[platform].format(n=items.height)]
    lines += [f"- {item_line(platform, r)}" for r in rows[:SUMMARY_ITEMS]]
    if len(rows) > SUMMARY_ITEMS:
        lines.append(f"... and {len(rows) - SUMMARY_ITEMS} more")
    if omitted_past:
        lines.append(f"({omitted_past} past events not shown)")
    if not items.height:
        lines.append("(nothing)")
    return "\n".join(lines)


def extract(
    rows: pl.DataFrame,
    *,
    user_id: str,
    pass_name: str,
    as_of: dt.datetime,
    selected_sources: Mapping[str, set[str] | None] | None = None,
) -> SignalSummary:
    """The summary of one user's pass. ``rows`` must hold only that user's silver rows."""
    if rows.height and rows.filter(pl.col("user_id") != user_id).height:
        raise ValueError(f"extraction for {user_id} was handed another user's rows")
    summary = SignalSummary(user_id=user_id, pass_name=pass_name, as_of=as_of)
    for platform in PASS_PLATFORMS[pass_name]:
        selected = (selected_sources or {}).get(platform)
        items = select_platform(rows, platform, as_of, selected) if rows.height else empty_items()
        lo, hi = RANGES[platform]
        summary.platforms[platform] = PlatformContent(
            platform=platform,
            items=items,
            time_range_start=as_of + lo if lo is not None else None,
            time_range_end=as_of + hi if hi is not None else None,
            content_summary=render_section(platform, items, as_of),
        )
    return summary
