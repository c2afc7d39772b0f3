"""Conversation analysis (daily, 06:00 UTC): suggest deliverables from what users talk about.

Stages and thresholds are the original's:

=============  ==========================================  ==========
stage          condition                                   threshold
=============  ==========================================  ==========
onboarding     account < 7 days old or < 3 sessions        skipped
power_user     >= 5 deliverables                           0.50
active         >= 1 deliverable or >= 10 sessions          0.50
exploring      otherwise                                   0.70
=============  ==========================================  ==========

The model reads at most 50 of the user's sessions of the last 7 days (user turns only, clipped),
suggestions under 0.40 are dropped, then those under the stage threshold; a suggestion with the
same type and platform as any deliverable the user already has (any status) is a duplicate.
Kept suggestions become ``analyst_suggested`` deliverables with status ``paused`` (nothing runs
until the user turns them on), a deterministic id, and the analysis in ``type_config.suggestion``,
created by the deliverables domain (:func:`yarn_assets.deliverables.service.create_suggested`).
Offline, deterministic keyword rules stand in for the model (labelled ``offline-rules``).
"""

from __future__ import annotations

import datetime as dt
import re
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from pydantic import BaseModel, Field
from sqlalchemy.orm import Session

from control_plane.models import Deliverable, User
from yarn_assets.deliverables import service as deliverables
from yarn_assets.deliverables.types import TYPES, primary_platforms

LOOKBACK_DAYS = 7
MAX_SESSIONS = 50
MIN_CONFIDENCE = 0.40
STAGE_THRESHOLDS = {"exploring": 0.70, "active": 0.50, "power_user": 0.50}
ANALYSIS_MAX_TOKENS = 1500

#: ADR-082's kept types and their primary platform ("" = cross-platform), from the deliverables domain.
DELIVERABLE_TYPES: dict[str, str] = primary_platforms()

_NS = uuid.UUID("3f6b2e90-1c4d-4a7e-9b58-6d0e2c1a7f44")

_TYPE_LIST = ", ".join(f"{n} ({p})" if p else n for n, p in DELIVERABLE_TYPES.items())
ANALYSIS_SYSTEM = f"""You are the analyst of a proactive work assistant. From a user's recent chat
sessions, find recurring needs that a scheduled deliverable would serve. Deliverable types:
{_TYPE_LIST}.
Suggest only what the user asked for repeatedly or would clearly use every week; never suggest a
type they already have. confidence 0..1 is how sure you are they would keep it. Return an empty
list when nothing is clear."""


class Suggestion(BaseModel):
    deliverable_type: Literal[tuple(TYPES)]  # type: ignore[valid-type]
    title: str = Field(min_length=3, max_length=120)
    description: str = Field(default="", max_length=600)
    confidence: float = Field(ge=0.0, le=1.0)
    reason: str = Field(default="", max_length=400)


class AnalysisResult(BaseModel):
    """Deliverables worth suggesting to the user, from their conversations."""

    suggestions: list[Suggestion] = Field(default_factory=list, max_length=10)


@dataclass(frozen=True)
class UserStage:
    stage: str
    threshold: float | None  # None = skipped (onboarding)
    sessions: int
    deliverables: int
    account_age_days: float


def stage_for(account_age_days: float, sessions: int, deliverables: int) -> UserStage:
    if account_age_days < 7 or sessions < 3:
        return UserStage("onboarding", None, sessions, deliverables, account_age_days)
    if deliverables >= 5:
        stage = "power_user"
    elif deliverables >= 1 or sessions >= 10:
        stage = "active"
    else:
        stage = "exploring"
    return UserStage(stage, STAGE_THRESHOLDS[stage], sessions, deliverables, account_age_days)


def counted_deliverables(session: Session, user_id: str) -> list[Deliverable]:
    """What the user has: not archived, and not an untouched (paused) suggestion of ours."""
    return [d for d in deliverables.list_for_user(session, user_id)
            if d.status != "archived" and not (d.origin == "analyst_suggested" and d.status == "paused")]


def suggestion_id(user_id: str, deliverable_type: str, platform: str) -> str:
    return str(uuid.uuid5(_NS, f"{user_id}|{deliverable_type}|{platform}"))


def analysis_prompt(sessions: Sequence[tuple[str, list[str]]], existing: Sequence[Deliverable],
                    max_chars_per_session: int = 1500) -> str:
    have = ", ".join(sorted({f"{d.deliverable_type}/{platform_of(d) or '-'}" for d in existing})) or "none"
    blocks = []
    for day, turns in sessions[:MAX_SESSIONS]:
        text = " | ".join(t.strip() for t in turns)[:max_chars_per_session]
        blocks.append(f"[{day}] {text}")
    return f"Existing deliverables: {have}\nUser messages by session (newest first):\n" + "\n".join(blocks)


def platform_of(d: Deliverable) -> str:
    for src in d.sources or []:
        if isinstance(src, dict) and src.get("provider"):
            return str(src["provider"])
    return DELIVERABLE_TYPES.get(d.deliverable_type, "")


_KEYWORDS: list[tuple[str, str, re.Pattern[str]]] = [
    ("slack_channel_digest", "Slack channel digest", re.compile(r"\bslack\b|#[a-z][\w-]+|\bchannels?\b", re.I)),
    ("gmail_inbox_brief", "Inbox brief", re.compile(r"\binbox\b|\bemails?\b|\bgmail\b", re.I)),
    ("meeting_prep", "Meeting prep", re.compile(r"\bprep(?:are)?(?: me)? for (?:my |the |a )?(?:[\w-]+ ){0,2}"
                                                r"(?:meetings?|calls?)\b|\bmeeting prep\b", re.I)),
    ("weekly_calendar_preview", "Week ahead", re.compile(r"\bcalendar\b|\bmy week\b|\bweek ahead\b", re.I)),
    ("notion_page_summary", "Notion page summary", re.compile(r"\bnotion\b|\bwiki\b", re.I)),
    ("status_report", "Weekly status report", re.compile(r"\bstatus (?:report|update)s?\b|\bweekly update\b"
                                                         r"|\bstakeholders?\b", re.I)),
    ("research_brief", "Research brief", re.compile(r"\bresearch\b|\bcompetitors?\b|\bmarket\b", re.I)),
]


def offline_analysis(sessions: Sequence[tuple[str, list[str]]]) -> AnalysisResult:
    """Keyword rules over user turns: confidence grows with the number of sessions mentioning a need."""
    out: list[Suggestion] = []
    for dtype, title, pattern in _KEYWORDS:
        hits = sum(1 for _, turns in sessions[:MAX_SESSIONS] if any(pattern.search(t) for t in turns))
        if not hits:
            continue
        confidence = round(min(0.95, 0.35 + 0.15 * hits), 2)
        out.append(Suggestion(deliverable_type=dtype, title=title, confidence=confidence,  # type: ignore[arg-type]
                              description=f"Suggested because it came up in {hits} recent conversation(s).",
                              reason=f"mentioned in {hits} session(s)"))
    return AnalysisResult(suggestions=out)


@dataclass(frozen=True)
class Decision:
    suggestion: Suggestion
    platform: str
    decision: str  # created | below_threshold | duplicate
    deliverable_id: str | None


def decide(
    session: Session, user: User, analysis_day: str, stage: UserStage, result: AnalysisResult, *,
    model: str, offline: bool, now: dt.datetime,
) -> list[Decision]:
    """Threshold, de-duplicate and create the kept suggestions (idempotent per user and day)."""
    existing = deliverables.list_for_user(session, user.id)
    taken = {(d.deliverable_type, platform_of(d)): d for d in existing}
    decisions: list[Decision] = []
    seen: set[tuple[str, str]] = set()
    for s in sorted(result.suggestions, key=lambda x: (-x.confidence, x.deliverable_type)):
        platform = DELIVERABLE_TYPES[s.deliverable_type]
        pair = (s.deliverable_type, platform)
        if pair in seen:
            continue
        seen.add(pair)
        if s.confidence < MIN_CONFIDENCE or stage.threshold is None or s.confidence < stage.threshold:
            decisions.append(Decision(s, platform, "below_threshold", None))
            continue
        sid = suggestion_id(user.id, s.deliverable_type, platform)
        prior = taken.get(pair)
        if prior is not None:
            made_on = (prior.type_config or {}).get("suggestion", {}).get("analysis_day")
            ours = prior.id == sid and made_on == analysis_day
            decisions.append(Decision(s, platform, "created" if ours else "duplicate", prior.id))
            continue
        taken[pair] = deliverables.create_suggested(
            session, deliverable_id=sid, user_id=user.id, deliverable_type=s.deliverable_type, title=s.title,
            description=s.description or s.reason, platform=platform, now=now,
            suggestion={"analysis_day": analysis_day, "confidence": s.confidence, "stage": stage.stage,
                        "reason": s.reason, "model": model, "offline": offline})
        decisions.append(Decision(s, platform, "created", sid))
    return decisions


def suggestion_email(user: User, created: Sequence[Decision]) -> tuple[str, str]:
    n = len(created)
    subject = f"yarnnn suggests {n} new deliverable{'s' if n != 1 else ''} for you"
    lines = [f"Hi {user.name or user.email},", "",
             "Based on your recent conversations, these might save you time (paused until you turn them on):", ""]
    for d in created:
        lines.append(f"- {d.suggestion.title} ({d.suggestion.deliverable_type}"
                     f"{', ' + d.platform if d.platform else ''}): {d.suggestion.description or d.suggestion.reason}")
    lines += ["", "Turn one on from your deliverables list, or ignore this email to leave them paused."]
    return subject, "\n".join(lines)


def cold_start_email(user: User) -> tuple[str, str]:
    return (
        "Get your first deliverable from yarnnn",
        "\n".join([
            f"Hi {user.name or user.email},", "",
            "You haven't set up a deliverable yet. Tell yarnnn what you want each week — a Slack digest, an inbox",
            "brief, prep for your meetings — and it will write it from your connected tools.",
        ]),
    )
