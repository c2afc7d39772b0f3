"""Deterministic signal rules (the original's ADR-074 proposal), the offline decision engine.

They are worth having in production as well: cheap, explainable and easy to test.

1. **Fresh content** on an event-triggered deliverable's sources since its last run (and at least
   its freshness interval after that run) -> ``trigger_existing``. Scheduled deliverables keep
   their schedule; only the model may pull them forward.
2. **Meeting prep**: a calendar event starting within 24 h of ``as_of`` with at least two external
   attendees (addresses outside the user's domains) -> ``create_signal_emergent`` ``meeting_prep``
   (signal type ``meeting_prep``, ref ``event:<id>``).
3. **Unanswered thread**: the latest message of an email thread is from someone else (not an
   automated sender), addressed to the user, and older than N days -> a follow-up
   (``create_signal_emergent``, type ``custom``, signal type ``silence_alert``, ref ``thread:<id>``).

The candidates of rules 2 and 3 are also *time-sensitive refs*: they appear as time passes,
without new content, so the wake gate includes them in its fingerprint.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import polars as pl

from yarn_assets.signals.context import DeliverableView, UserProfile, is_automated
from yarn_assets.signals.extraction import FETCH_WINDOWS, LIMITS, SignalSummary, normalize_resource
from yarn_assets.signals.prompt import MAX_ACTIONS, SignalAction, SignalDecision, SignalSource

MEETING_HORIZON = dt.timedelta(hours=24)
MIN_EXTERNAL_ATTENDEES = 2

#: Minimum hours between runs per type (the original's freshness_requirement_hours, finally read).
FRESHNESS_HOURS = {
    "slack_channel_digest": 1, "gmail_inbox_brief": 1, "meeting_prep": 1, "notion_page_summary": 4,
    "weekly_calendar_preview": 4, "status_report": 4, "research_brief": 24, "deep_research": 24,
}
DEFAULT_FRESHNESS_HOURS = 4

#: Provider names deliverable sources use -> silver platforms.
PROVIDER_PLATFORMS = {
    "slack": ("slack",), "gmail": ("gmail",), "calendar": ("calendar",), "google_calendar": ("calendar",),
    "google": ("gmail", "calendar"), "notion": ("notion",),
}

#: Resource names that are rooms or groups, not people.
_NOT_PEOPLE = ("resource.calendar.google.com", "group.calendar.google.com", "@group.", "calendar-server")


@dataclass(frozen=True)
class Meeting:
    ref: str
    event_id: str
    resource_id: str
    title: str
    start: dt.datetime
    external: tuple[str, ...]


@dataclass(frozen=True)
class QuietThread:
    ref: str
    thread_id: str
    resource_id: str
    subject: str
    last_from: str
    last_at: dt.datetime
    days_quiet: float


def _external(addresses: Sequence[str], profile: UserProfile) -> list[str]:
    out = []
    for raw in addresses or []:
        addr = str(raw).strip().lower()
        if "@" not in addr or addr in profile.addresses or any(m in addr for m in _NOT_PEOPLE):
            continue
        if addr.rsplit("@", 1)[1] in profile.domains:
            continue
        out.append(addr)
    return sorted(set(out))


def _cancelled(metadata: str | None) -> bool:
    try:
        meta = json.loads(metadata or "{}")
    except ValueError:
        return False
    return str(meta.get("status", "")).lower() == "cancelled" if isinstance(meta, dict) else False


def upcoming_meetings(summary: SignalSummary, profile: UserProfile) -> list[Meeting]:
    """Events starting in (as_of, as_of + 24 h] with >= 2 external attendees, soonest first."""
    content = summary.platforms.get("calendar")
    if content is None or not content.items_count:
        return []
    as_of = summary.as_of
    frame = content.items.filter(
        (pl.col("occurred_at") > pl.lit(as_of)) & (pl.col("occurred_at") <= pl.lit(as_of + MEETING_HORIZON))
    )
    meetings = []
    for row in frame.iter_rows(named=True):
        if _cancelled(row["metadata"]):
            continue
        external = _external(row["participants"] or [], profile)
        if len(external) >= MIN_EXTERNAL_ATTENDEES:
            meetings.append(Meeting(ref=row["ref"], event_id=row["external_id"], resource_id=row["resource_id"],
                                    title=row["title"] or "(untitled meeting)", start=row["occurred_at"],
                                    external=tuple(external)))
    return sorted(meetings, key=lambda m: (m.start, m.event_id))


def quiet_threads(summary: SignalSummary, profile: UserProfile, days: int) -> list[QuietThread]:
    """Threads whose latest message is someone else's, to the user, older than ``days``; oldest first."""
    content = summary.platforms.get("gmail")
    if content is None or not content.items_count:
        return []
    as_of = summary.as_of
    items = content.items.filter(pl.col("occurred_at").is_not_null() & (pl.col("occurred_at") <= pl.lit(as_of)))
    out = []
    # each thread's latest message, in one sort (a group_by + sort per thread cost ~8 ms per pass)
    lasts = items.sort(["occurred_at", "external_id"], maintain_order=True).unique(subset=["ref"], keep="last",
                                                                                   maintain_order=True)
    for last in lasts.iter_rows(named=True):
        sender = (last["author_id"] or "").lower()
        if not sender or sender in profile.addresses or is_automated(sender):
            continue
        recipients = {str(p).lower() for p in last["participants"] or []} - {sender}
        if profile.addresses and not recipients & profile.addresses:
            continue  # the user was not addressed (e.g. a list they are bcc'd on)
        quiet = (as_of - last["occurred_at"]).total_seconds() / 86400
        if quiet < days:
            continue
        out.append(QuietThread(ref=last["ref"], thread_id=last["thread_id"] or last["external_id"],
                               resource_id=last["resource_id"], subject=last["title"] or "(no subject)",
                               last_from=last["author"] or sender, last_at=last["occurred_at"], days_quiet=quiet))
    return sorted(out, key=lambda t: (t.last_at, t.thread_id))


def _source_matches(source: dict[str, Any], platform: str, resource_id: str) -> bool:
    provider = str(source.get("provider") or source.get("platform") or "").lower()
    if platform not in PROVIDER_PLATFORMS.get(provider, (provider,)):
        return False
    wanted = source.get("resource_id") or source.get("source")
    if not wanted:
        return True  # a platform-wide source (the original never matched these: "skipped forever")
    return normalize_resource(platform, str(wanted)) == normalize_resource(platform, resource_id)


def fresh_items_for(d: DeliverableView, items: pl.DataFrame) -> pl.DataFrame:
    """Items on the deliverable's integration sources fetched after its last run."""
    sources = [s for s in d.sources if isinstance(s, dict) and s.get("type", "integration_import") ==
               "integration_import"]
    if not sources or not items.height:
        return items.head(0)
    mask = [
        any(_source_matches(s, r["platform"], r["resource_id"]) for s in sources)
        and (d.last_run_at is None or r["fetched_at"] > d.last_run_at)
        for r in items.select(["platform", "resource_id", "fetched_at"]).iter_rows(named=True)
    ]
    return items.filter(pl.Series(mask, dtype=pl.Boolean))


def time_sensitive_refs(summary: SignalSummary, profile: UserProfile, followup_days: int) -> list[str]:
    return [m.ref for m in upcoming_meetings(summary, profile)] + [
        t.ref for t in quiet_threads(summary, profile, followup_days)
    ]


def hidden_platforms(rows: pl.DataFrame, summary: SignalSummary) -> list[str]:
    """Platforms with more visible rows than the pass shows (selections aside: an over-estimate)."""
    full = [p for p, c in summary.platforms.items() if c.items_count >= LIMITS[p]]
    if not full:
        return []
    counts = dict(rows.filter(pl.col("platform").is_in(full)).group_by("platform").len().iter_rows())
    return [p for p in full if counts.get(p, 0) > LIMITS[p]]


def next_wake(summary: SignalSummary, profile: UserProfile, followup_days: int,
              hidden: Iterable[str] = ()) -> dt.datetime | None:
    """The earliest time after ``as_of`` at which, without new content, the pass could see a
    candidate it does not see now: a meeting entering the 24 h horizon, a thread crossing the
    follow-up threshold, or (on a platform in ``hidden``: more visible items than its limit shows) a
    shown item expiring or leaving its fetch window so that an unseen one moves up. ``None``:
    nothing can appear by time alone.

    Items only *leaving* (ageing out, a meeting starting) never wake a pass: they cannot create a
    signal. The wake gate compares this with the next hour's ``as_of`` before loading anything.
    """
    as_of = summary.as_of
    times: list[dt.datetime] = []
    calendar = summary.platforms.get("calendar")
    if calendar is not None and calendar.items_count:
        for row in calendar.items.filter(pl.col("occurred_at") > pl.lit(as_of + MEETING_HORIZON)).iter_rows(
                named=True):
            if not _cancelled(row["metadata"]) and len(_external(row["participants"] or [], profile)) >= \
                    MIN_EXTERNAL_ATTENDEES:
                times.append(row["occurred_at"] - MEETING_HORIZON)
    gmail = summary.platforms.get("gmail")
    if gmail is not None and gmail.items_count:
        threshold = dt.timedelta(days=followup_days)
        lasts = gmail.items.filter(pl.col("occurred_at").is_not_null() & (pl.col("occurred_at") <= pl.lit(as_of)))
        lasts = lasts.sort(["occurred_at", "external_id"], maintain_order=True).unique(
            subset=["ref"], keep="last", maintain_order=True)
        for last in lasts.iter_rows(named=True):
            sender = (last["author_id"] or "").lower()
            if not sender or sender in profile.addresses or is_automated(sender):
                continue
            recipients = {str(p).lower() for p in last["participants"] or []} - {sender}
            if (not profile.addresses or recipients & profile.addresses) and last["occurred_at"] + threshold > as_of:
                times.append(last["occurred_at"] + threshold)
    for platform in set(hidden) & set(summary.platforms):
        items = summary.platforms[platform].items
        times += [t for t in items["expires_at"].drop_nulls().to_list() if t > as_of]
        if platform in FETCH_WINDOWS:
            times += [t + FETCH_WINDOWS[platform] for t in items["fetched_at"].drop_nulls().to_list()]
    later = [t for t in times if t > as_of]
    return min(later) if later else None


ContactLookup = Callable[[Iterable[str]], dict[str, dict[str, Any]]]


def _named(addresses: Sequence[str], contacts: dict[str, dict[str, Any]]) -> list[str]:
    """``Dana Lee (Partnerco)`` for known contacts, the address otherwise."""
    out = []
    for a in addresses:
        c = contacts.get(a)
        out.append(f"{c['name']} ({c['organisation']})" if c and c.get("organisation") else c["name"] if c else a)
    return out


def offline_decision(
    summary: SignalSummary,
    *,
    profile: UserProfile,
    deliverables: Sequence[DeliverableView],
    followup_days: int,
    contacts: ContactLookup | None = None,
) -> SignalDecision:
    """The deterministic answer for one pass (the same shape the model returns). ``contacts`` (the
    people domain's lookup) lets an action name the people involved rather than their addresses."""
    as_of = summary.as_of
    items = summary.items()
    actions: list[SignalAction] = []
    for d in deliverables:
        if d.status != "active" or d.trigger_type != "event":
            continue
        if d.next_run_at is not None and d.next_run_at <= as_of:
            continue  # already due
        gap = dt.timedelta(hours=FRESHNESS_HOURS.get(d.deliverable_type, DEFAULT_FRESHNESS_HOURS))
        if d.last_run_at is not None and as_of - d.last_run_at < gap:
            continue
        fresh = fresh_items_for(d, items)
        if not fresh.height:
            continue
        resources = sorted(set(fresh["resource_id"].to_list()))
        actions.append(SignalAction(
            action_type="trigger_existing", deliverable_type=d.deliverable_type, signal_type="fresh_content",
            trigger_deliverable_id=d.id, title=d.title,
            description=f"{fresh.height} new item(s) on its sources since its last run",
            confidence=0.75, signal_context={"fresh_items": fresh.height, "resources": resources},
            reasoning=f"fresh content on {', '.join(resources)[:200]} since "
                      f"{d.last_run_at.isoformat() if d.last_run_at else 'creation'}",
        ))
    meetings = upcoming_meetings(summary, profile)
    threads = quiet_threads(summary, profile, followup_days)
    known = contacts([a for m in meetings for a in m.external]) if contacts is not None and meetings else {}
    for m in meetings:
        hours = (m.start - as_of).total_seconds() / 3600
        named = [known[a] | {"address": a} for a in m.external if a in known]
        actions.append(SignalAction(
            action_type="create_signal_emergent", deliverable_type="meeting_prep", signal_type="meeting_prep",
            signal_ref=m.ref, title=f"Prep: {m.title}"[:120],
            description=f"Briefing for '{m.title}' at {m.start:%Y-%m-%d %H:%M} UTC with "
                        f"{', '.join(_named(m.external[:5], known))}",
            confidence=0.85, sources=[SignalSource(provider="calendar", source=m.resource_id)],
            signal_context={"event_id": m.event_id, "start": m.start.isoformat(), "external_attendees":
                            list(m.external), **({"contacts": named} if named else {})},
            reasoning=f"meeting in {hours:.1f} h with {len(m.external)} external attendees",
        ))
    for t in threads:
        actions.append(SignalAction(
            action_type="create_signal_emergent", deliverable_type="custom", signal_type="silence_alert",
            signal_ref=t.ref, title=f"Follow up: {t.subject}"[:120],
            description=f"Draft a short follow-up to '{t.subject}' from {t.last_from}, unanswered for "
                        f"{t.days_quiet:.0f} days",
            confidence=0.7, sources=[SignalSource(provider="gmail", source=t.resource_id)],
            signal_context={"thread_id": t.thread_id, "last_message_at": t.last_at.isoformat(),
                            "last_from": t.last_from, "custom_kind": "follow_up"},
            reasoning=f"thread unanswered for {t.days_quiet:.1f} days (threshold {followup_days})",
        ))
    if not actions:
        return SignalDecision(
            actions=[SignalAction(action_type="no_action", confidence=1.0, reasoning="no deterministic rule fired")],
            reasoning=f"{summary.total_items} items; no fresh event-triggered sources, meetings or quiet threads",
        )
    kinds = sorted({a.signal_type or a.action_type for a in actions})
    return SignalDecision(actions=actions[:MAX_ACTIONS], reasoning=f"offline rules fired: {', '.join(kinds)}")
