"""Offline composer: a readable, deterministic deliverable of every type from the user's content.

Used when the LLM resource is offline (no key): the same material that would go into the prompt
is arranged under the type's sections by simple rules (questions, urgency and decision cues,
day-by-day calendars, numbered research sources). Output is labelled as offline by the caller.
"""

from __future__ import annotations

import re
from collections import defaultdict
from typing import Any
from zoneinfo import ZoneInfo

from yarn_assets.deliverables.content import SourceGroup, item_tags
from yarn_assets.deliverables.prompting import ComposeInput

_SENTENCE = re.compile(r"(?<=[.!?])\s+")


def _first_sentence(text: str, limit: int = 160) -> str:
    text = " ".join((text or "").split())
    first = _SENTENCE.split(text, maxsplit=1)[0] if text else ""
    return first if len(first) <= limit else first[: limit - 1].rstrip() + "…"


def _rows(groups: list[SourceGroup]) -> list[dict[str, Any]]:
    out = []
    for g in groups:
        for row in g.rendered.iter_rows(named=True):
            out.append({**row, "_group": g.resource_name})
    return out


def _tagged(inp: ComposeInput) -> list[tuple[dict[str, Any], list[str]]]:
    rows = _rows(inp.platform.groups)
    threads: dict[str, int] = defaultdict(int)
    for r in rows:
        threads[str(r.get("thread_id") or r.get("external_id"))] += 1
    replied = {(r["platform"], t) for r in rows for t in [str(r.get("thread_id") or r.get("external_id"))]
               if threads[t] > 1}
    return [(r, item_tags(r, replied, threads)) for r in rows]


def _when(row: dict[str, Any], zone: ZoneInfo, fmt: str = "%a %d %b %H:%M") -> str:
    t = row.get("sort_at") or row.get("occurred_at")
    return t.astimezone(zone).strftime(fmt) if t else "undated"


def _who(row: dict[str, Any]) -> str:
    return str(row.get("author") or "someone")


def _bullet(row: dict[str, Any], zone: ZoneInfo, with_group: bool = True) -> str:
    title = row.get("title")
    text = _first_sentence(str(row.get("content") or ""))
    where = f" in {row['_group']}" if with_group and row.get("_group") else ""
    head = f"**{title}** — " if title and row["platform"] != "slack" else ""
    return f"- {head}{_who(row)}{where} ({_when(row, zone)}): {text}"


def _section(name: str, lines: list[str], empty: str = "Nothing in this period.") -> str:
    return f"## {name}\n" + ("\n".join(lines) if lines else f"_{empty}_")


def _slack_digest(inp: ComposeInput, zone: ZoneInfo) -> list[str]:
    tagged = _tagged(inp)
    decisions = [_bullet(r, zone) for r, t in tagged if "DECISION" in t]
    questions = [_bullet(r, zone) for r, t in tagged if "UNANSWERED" in t]
    urgent = [_bullet(r, zone) for r, t in tagged if "URGENT" in t or "HOT" in t]
    highlights = ([_bullet(r, zone) for r, t in tagged if not t] or [_bullet(r, zone) for r, _ in tagged])[:5]
    return [_section("Highlights", highlights), _section("Decisions", decisions[:5]),
            _section("Open questions", questions[:5]), _section("Worth a reply", urgent[:5])]


def _inbox_brief(inp: ComposeInput, zone: ZoneInfo) -> list[str]:
    action, fyi, later = [], [], []
    for r, tags in _tagged(inp):
        line = f"- **{r.get('title') or '(no subject)'}** — {_who(r)}: {_first_sentence(str(r.get('content') or ''))}"
        text = f"{r.get('title') or ''} {r.get('content') or ''}".lower()
        if "URGENT" in tags or "?" in text or any(w in text for w in ("please", "can you", "could you", "review")):
            action.append(line)
        elif any(w in text for w in ("newsletter", "unsubscribe", "digest", "receipt")):
            later.append(line)
        else:
            fyi.append(line)
    return [_section("Needs action", action), _section("FYI", fyi), _section("Can wait", later)]


def _notion_summary(inp: ComposeInput, zone: ZoneInfo) -> list[str]:
    changed = [f"- **{r.get('title') or r['_group']}** (edited {_when(r, zone)})" for r, _ in _tagged(inp)][:8]
    points = [f"- **{r.get('title') or r['_group']}**: {_first_sentence(str(r.get('content') or ''), 240)}"
              for r, _ in _tagged(inp)][:8]
    open_items = [_bullet(r, zone) for r, t in _tagged(inp) if t][:5]
    return [_section("What changed", changed), _section("Key points", points), _section("Open items", open_items)]


def _calendar(inp: ComposeInput, zone: ZoneInfo) -> list[str]:
    events = [r for r, _ in _tagged(inp) if r["platform"] == "calendar"]
    by_day: dict[str, list[str]] = defaultdict(list)
    for e in sorted(events, key=lambda r: r.get("occurred_at") or inp.now):
        start = e.get("occurred_at")
        end = e.get("ends_at")
        span = start.astimezone(zone).strftime("%H:%M") if start else "all day"
        if end is not None and start is not None:
            span += "–" + end.astimezone(zone).strftime("%H:%M")
        people = e.get("participants") or []
        who = f" with {', '.join(people[:5])}" if people else ""
        day = start.astimezone(zone).strftime("%A %d %B") if start else "Undated"
        by_day[day].append(f"- {span} **{e.get('title') or '(untitled)'}**{who}")
    week = [f"**{day}**\n" + "\n".join(lines) for day, lines in by_day.items()]
    busiest = sorted(by_day.items(), key=lambda kv: -len(kv[1]))[:3]
    busy = [f"- {day}: {len(lines)} meeting{'s' if len(lines) != 1 else ''}" for day, lines in busiest]
    prep = [f"- **{e.get('title') or '(untitled)'}** ({_when(e, zone)}), {len(e.get('participants') or [])} attendees"
            for e in events if len(e.get("participants") or []) >= 2][:5]
    if inp.dtype.name == "meeting_prep":
        context = _related(inp, events, zone)
        points = [f"- Confirm the goal of **{e.get('title') or 'the meeting'}** and the decision needed."
                  for e in events[:3]]
        attendees = [f"- **{e.get('title') or '(untitled)'}**: {', '.join(e.get('participants') or ['not listed'])}"
                     for e in events[:5]]
        return [_section("Upcoming meetings", week and ["\n\n".join(week)]), _section("Attendees", attendees),
                _section("Context", context), _section("Suggested talking points", points)]
    return [_section("This week", week and ["\n\n".join(week)], "No meetings in the next 7 days."),
            _section("Busiest days", busy), _section("Prepare for", prep)]


def _related(inp: ComposeInput, events: list[dict[str, Any]], zone: ZoneInfo) -> list[str]:
    words = {w.lower() for e in events for w in re.findall(r"[A-Za-z]{5,}", str(e.get("title") or ""))}
    out = []
    for r, _ in _tagged(inp):
        if r["platform"] == "calendar":
            continue
        text = f"{r.get('title') or ''} {r.get('content') or ''}".lower()
        if any(w in text for w in words):
            out.append(_bullet(r, zone))
    return out[:5]


def _status(inp: ComposeInput, zone: ZoneInfo) -> list[str]:
    tagged = _tagged(inp)
    counts: dict[str, int] = defaultdict(int)
    for r, _ in tagged:
        counts[r["platform"]] += 1
    summary = [f"- {n} recent {p} items reviewed" for p, n in sorted(counts.items())]
    progress = [_bullet(r, zone) for r, t in tagged if "DECISION" in t or not t][:6]
    risks = [_bullet(r, zone) for r, t in tagged if "URGENT" in t or "UNANSWERED" in t][:5]
    nxt = [_bullet(r, zone) for r, t in tagged if "UNANSWERED" in t][:3]
    return [_section("Summary", summary), _section("Progress", progress), _section("Risks and blockers", risks),
            _section("Next steps", nxt, "No open follow-ups found.")]


def _research(inp: ComposeInput, zone: ZoneInfo) -> list[str]:
    r = inp.research
    findings = [f"- {w.title}: {_first_sentence(w.snippet, 220) or 'see source'} [{i}]"
                for i, w in enumerate(r.web_results, 1)]
    sources = [f"{i}. [{w.title}]({w.url})" for i, w in enumerate(r.web_results, 1)]
    offset = len(r.web_results)
    papers = [f"{i}. [{p.title}]({p.url}) — {', '.join(p.authors[:3])}: {_first_sentence(p.summary, 200)}"
              for i, p in enumerate(r.papers, offset + 1)]
    grounding = [_bullet(row, zone) for row, _ in _tagged(inp)][:5]
    terms = ", ".join(r.search_terms) or inp.focus
    notes = [f"- {n}" for n in r.notes]
    return [_section("Key findings", findings + notes, f"No web results for: {terms}."),
            _section("Sources", sources, "No web sources."),
            _section("Relevant papers", papers, "No papers found."),
            _section("Implications", grounding, "No related platform activity.")]


def _custom(inp: ComposeInput, zone: ZoneInfo) -> list[str]:
    blocks = []
    if not inp.research.empty or inp.research.notes:
        blocks.extend(_research(inp, zone)[:2])
    tagged = _tagged(inp)
    by_group: dict[str, list[str]] = defaultdict(list)
    for r, _ in tagged:
        by_group[f"{r['platform'].capitalize()}: {r['_group']}"].append(_bullet(r, zone, with_group=False))
    for name, lines in by_group.items():
        blocks.append(_section(name, lines[:5]))
    return blocks or [_section("Material", [], "No material found for this deliverable.")]


_COMPOSERS = {
    "slack_channel_digest": _slack_digest,
    "gmail_inbox_brief": _inbox_brief,
    "notion_page_summary": _notion_summary,
    "weekly_calendar_preview": _calendar,
    "meeting_prep": _calendar,
    "status_report": _status,
    "research_brief": _research,
    "custom": _custom,
}


def compose_offline(inp: ComposeInput) -> str:
    """Deterministic Markdown for ``inp`` (same input, same text)."""
    zone = ZoneInfo(inp.timezone)
    composer = _COMPOSERS[inp.dtype.name]
    intro = (f"{inp.dtype.label} for {inp.recipient_label}, "
             f"{inp.now.astimezone(zone):%A %d %B %Y %H:%M} ({inp.timezone}).")
    blocks = composer(inp, zone)
    if inp.people:  # who the people in the material are, and the items closest in meaning (people domain)
        blocks.append(inp.people)
    text = intro + "\n\n" + "\n\n".join(blocks)
    if inp.dtype.max_chars and len(text) > inp.dtype.max_chars:
        text = text[: inp.dtype.max_chars - 2].rsplit("\n", 1)[0] + "\n…"
    return text


def offline_plan_terms(inp: ComposeInput, n: int = 3) -> list[str]:
    """Search terms without a model: the focus, then any configured ``search_terms``.

    Deliberately independent of the platform material, which a hybrid run gathers in parallel.
    """
    focus = " ".join(inp.focus.split())[:120]
    extra = [str(t) for t in inp.type_config.get("search_terms") or [] if str(t).strip()]
    return list(dict.fromkeys([focus, *extra]))[:n]
