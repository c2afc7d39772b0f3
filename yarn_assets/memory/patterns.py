"""Rule-based activity patterns and edit feedback (no LLM), with the original's thresholds.

Input per user: the last 30 days of their ``activity_log``, noise excluded, at most 100 rows
(newest first). Only ``deliverable_run`` rows feed rules 1–3; edit rules read
``deliverable_edited`` rows and ``deliverable_approved`` rows that say ``had_edits``.

Rules (confidence 0.6, source ``pattern``):

1. ``pattern:deliverable_day``   one weekday has > 50 % of runs and >= 3 runs;
2. ``pattern:deliverable_time``  >= 5 runs and one block (night 0–6, morning 6–12, afternoon
   12–18, evening 18–24) has > 50 % and >= 3;
3. ``pattern:deliverable_type_preference``  >= 5 runs and one type has > 60 %;
4. ``pattern:edit_location``     one location (intro / body / conclusion) > 60 % of edits and >= 3;
5. ``pattern:formatting_length`` final vs draft length < 0.7× or > 1.3×, >= 3 edits the same way.

Weekdays and blocks are taken in the user's own timezone (the original used UTC, which put a
Paris user's Monday 00:30 run on Sunday).

Edit feedback (confidence 0.7, source ``feedback``), per edit: final < 0.7× draft ->
``preference:length`` "shortens"; > 1.3× -> "expands"; more than 3 bullets added ->
``preference:format`` "bullets".

Edit events are read from their metadata: ``draft_length``/``final_length`` (or
``draft_chars``/``final_chars``), ``draft_bullets``/``final_bullets`` or ``draft_content``/
``final_content`` (bullets are counted), ``edit_location`` (else keywords of the summary), and
``had_edits`` on approvals.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections import Counter
from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo

import polars as pl

PATTERN_CONFIDENCE = 0.6
FEEDBACK_CONFIDENCE = 0.7
WINDOW_DAYS = 30
MAX_ROWS = 100
EDIT_EVENT_TYPES = ("deliverable_edited", "deliverable_approved")

WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
BLOCKS = (("night", 0, 6), ("morning", 6, 12), ("afternoon", 12, 18), ("evening", 18, 24))
_BULLET = re.compile(r"^\s*(?:[-*•]|\d+[.)])\s+", re.M)
_LOCATION_WORDS = {
    "intro": re.compile(r"\b(?:intro|introduction|opening|first paragraph|summary at the top|tl;?dr)\b", re.I),
    "conclusion": re.compile(r"\b(?:conclusion|closing|last paragraph|next steps|sign-?off|outro)\b", re.I),
    "body": re.compile(r"\b(?:body|middle|details|section|sections)\b", re.I),
}


@dataclass(frozen=True)
class Detected:
    key: str
    value: str
    confidence: float
    source: str
    evidence: dict[str, Any]
    observed_at: dt.datetime


@dataclass
class UserPatterns:
    user_id: str
    rows_read: int = 0
    runs: int = 0
    edits: int = 0
    detected: list[Detected] = field(default_factory=list)

    def counts(self) -> dict[str, Any]:
        return {"rows_read": self.rows_read, "deliverable_runs": self.runs, "edits": self.edits,
                "patterns": [d.key for d in self.detected if d.source == "pattern"],
                "feedback": [d.key for d in self.detected if d.source == "feedback"]}


def _meta(raw: str | None) -> dict[str, Any]:
    try:
        value = json.loads(raw or "{}")
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def _share(counter: Counter[str], total: int) -> tuple[str, int, float] | None:
    if not counter or total == 0:
        return None
    (top, n), *rest = counter.most_common()
    if rest and rest[0][1] == n:  # a tie has no majority anyway, but keep the choice deterministic
        top = min(k for k, v in counter.items() if v == n)
    return top, n, n / total


def _block(hour: int) -> str:
    for name, lo, hi in BLOCKS:
        if lo <= hour < hi:
            return name
    raise AssertionError(hour)


def _lengths(meta: dict[str, Any]) -> tuple[float, float] | None:
    for d, f in (("draft_length", "final_length"), ("draft_chars", "final_chars")):
        if isinstance(meta.get(d), int | float) and isinstance(meta.get(f), int | float) and meta[d] > 0:
            return float(meta[d]), float(meta[f])
    draft, final = meta.get("draft_content"), meta.get("final_content")
    if isinstance(draft, str) and isinstance(final, str) and draft:
        return float(len(draft)), float(len(final))
    return None


def _bullets(meta: dict[str, Any]) -> tuple[int, int] | None:
    if isinstance(meta.get("draft_bullets"), int) and isinstance(meta.get("final_bullets"), int):
        return meta["draft_bullets"], meta["final_bullets"]
    if isinstance(meta.get("draft_content"), str) and isinstance(meta.get("final_content"), str):
        return len(_BULLET.findall(meta["draft_content"])), len(_BULLET.findall(meta["final_content"]))
    return None


def _location(meta: dict[str, Any], summary: str) -> str | None:
    loc = meta.get("edit_location")
    if isinstance(loc, str) and loc in _LOCATION_WORDS:
        return loc
    for name in ("intro", "conclusion", "body"):
        if _LOCATION_WORDS[name].search(summary or ""):
            return name
    return None


def is_edit(event_type: str, meta: dict[str, Any]) -> bool:
    return event_type == "deliverable_edited" or (event_type == "deliverable_approved" and bool(meta.get("had_edits")))


def detect(user_id: str, events: pl.DataFrame, tz: str = "UTC", as_of: dt.datetime | None = None) -> UserPatterns:
    """Patterns of one user from their events (already windowed and noise-free); newest 100 rows used."""
    result = UserPatterns(user_id)
    rows = events.sort(["created_at", "event_id"], descending=True).head(MAX_ROWS)
    result.rows_read = rows.height
    zone = ZoneInfo(tz or "UTC")
    observed = as_of or (rows["created_at"].max() if rows.height else dt.datetime.now(dt.UTC))

    runs = rows.filter(pl.col("event_type") == "deliverable_run")
    result.runs = runs.height
    days: Counter[str] = Counter()
    blocks: Counter[str] = Counter()
    types: Counter[str] = Counter()
    for row in runs.iter_rows(named=True):
        local = row["created_at"].astimezone(zone)
        days[WEEKDAYS[local.weekday()]] += 1
        blocks[_block(local.hour)] += 1
        dtype = _meta(row["metadata"]).get("deliverable_type")
        if isinstance(dtype, str) and dtype:
            types[dtype] += 1

    def add(key: str, value: str, evidence: dict[str, Any], source: str = "pattern",
            confidence: float = PATTERN_CONFIDENCE) -> None:
        result.detected.append(Detected(key, value, confidence, source, evidence, observed))

    top = _share(days, result.runs)
    if top and top[2] > 0.5 and top[1] >= 3:
        add("pattern:deliverable_day", f"Usually runs deliverables on {top[0]}s.",
            {"weekday": top[0], "count": top[1], "runs": result.runs})
    top = _share(blocks, result.runs)
    if result.runs >= 5 and top and top[2] > 0.5 and top[1] >= 3:
        when = "at night" if top[0] == "night" else f"in the {top[0]}"
        add("pattern:deliverable_time", f"Usually runs deliverables {when}.",
            {"block": top[0], "count": top[1], "runs": result.runs, "timezone": tz})
    top = _share(types, result.runs)
    if result.runs >= 5 and top and top[2] > 0.6:
        add("pattern:deliverable_type_preference",
            f"Most deliverable runs are {top[0]}.",
            {"deliverable_type": top[0], "count": top[1], "runs": result.runs})

    locations: Counter[str] = Counter()
    directions: Counter[str] = Counter()
    edits = 0
    for row in rows.sort(["created_at", "event_id"]).iter_rows(named=True):
        meta = _meta(row["metadata"])
        if not is_edit(row["event_type"], meta):
            continue
        edits += 1
        loc = _location(meta, row["summary"])
        if loc:
            locations[loc] += 1
        lengths = _lengths(meta)
        if lengths:
            ratio = lengths[1] / lengths[0]
            if ratio < 0.7:
                directions["shortens"] += 1
            elif ratio > 1.3:
                directions["expands"] += 1
    result.edits = edits
    top = _share(locations, edits)
    if top and top[2] > 0.6 and top[1] >= 3:
        add("pattern:edit_location", f"Usually edits the {top[0]} of deliverables.",
            {"location": top[0], "count": top[1], "edits": edits})
    top = _share(directions, sum(directions.values()))
    if top and top[1] >= 3:
        verb = "shortens" if top[0] == "shortens" else "expands"
        add("pattern:formatting_length", f"Usually {verb} drafts when editing.",
            {"direction": top[0], "count": top[1], "edits": edits})
    return result


def edit_feedback(user_id: str, events: pl.DataFrame) -> list[Detected]:
    """Per-edit feedback (the original's ``process_feedback``) from the edit events given."""
    out: list[Detected] = []
    for row in events.sort(["created_at", "event_id"]).iter_rows(named=True):
        meta = _meta(row["metadata"])
        if not is_edit(row["event_type"], meta):
            continue
        ref = {"event_id": row["event_id"], "deliverable_id": meta.get("deliverable_id")}
        lengths = _lengths(meta)
        if lengths:
            ratio = lengths[1] / lengths[0]
            if ratio < 0.7:
                out.append(Detected("preference:length", "Shortens drafts: prefers shorter deliverables.",
                                    FEEDBACK_CONFIDENCE, "feedback", {**ref, "ratio": round(ratio, 2)},
                                    row["created_at"]))
            elif ratio > 1.3:
                out.append(Detected("preference:length", "Expands drafts: prefers more detailed deliverables.",
                                    FEEDBACK_CONFIDENCE, "feedback", {**ref, "ratio": round(ratio, 2)},
                                    row["created_at"]))
        bullets = _bullets(meta)
        if bullets and bullets[1] - bullets[0] > 3:
            out.append(Detected("preference:format", "Adds bullet points: prefers bulleted deliverables.",
                                FEEDBACK_CONFIDENCE, "feedback", {**ref, "bullets_added": bullets[1] - bullets[0]},
                                row["created_at"]))
    return out
