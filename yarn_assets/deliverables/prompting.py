"""Everything a version's text is made from, and the prompt built out of it.

The system prompt is stable per type (so the LLM resource can cache it); the user prompt carries
the type prompt filled from type_config and recipient context, the sections, the length preset,
the platform material, research results, user memory and the previous version's output.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from resources.search import Paper, WebResult
from yarn_assets.deliverables.content import PlatformContext
from yarn_assets.deliverables.freshness import stale_note
from yarn_assets.deliverables.types import DeliverableType, length_instruction, system_prompt

PREVIOUS_CHARS = 3000
MAX_TOKENS = 4000
OFFLINE_LABEL = "_Generated offline by deterministic rules (no LLM): a summary of your content, not a model's writing._"
EMPTY_RULE = "nothing to deliver: no platform content or research results for this deliverable"


@dataclass
class Research:
    search_terms: list[str] = field(default_factory=list)
    web_results: list[WebResult] = field(default_factory=list)
    papers: list[Paper] = field(default_factory=list)
    provider: str = "none"
    notes: list[str] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        return not self.web_results and not self.papers

    def as_dict(self) -> dict[str, Any]:
        return {
            "search_terms": self.search_terms,
            "provider": self.provider,
            "web_results": [r.as_dict() for r in self.web_results],
            "papers": [p.as_dict() for p in self.papers],
            "notes": self.notes,
        }


@dataclass
class ComposeInput:
    dtype: DeliverableType
    title: str
    description: str | None
    type_config: dict[str, Any]
    recipient: dict[str, Any]
    user_name: str | None
    timezone: str
    now: dt.datetime
    platform: PlatformContext
    research: Research
    memory: str
    previous: str | None
    binding: str
    people: str = ""  # who is in the material and the items closest in meaning (yarn_assets.people)

    @property
    def focus(self) -> str:
        return str(self.type_config.get("focus") or self.type_config.get("topic") or self.description or self.title)

    @property
    def recipient_label(self) -> str:
        name = self.recipient.get("name") or self.user_name or "the reader"
        role = self.recipient.get("role")
        return f"{name} ({role})" if role else str(name)

    @property
    def length(self) -> str:
        preset = str(self.type_config.get("length") or self.dtype.length)
        return preset if preset in _valid_presets() else self.dtype.length

    @property
    def sections(self) -> tuple[str, ...]:
        chosen = self.type_config.get("sections")
        if isinstance(chosen, list) and chosen:
            return tuple(str(s) for s in chosen)
        return self.dtype.sections

    @property
    def has_material(self) -> bool:
        return self.platform.items_in_prompt > 0 or not self.research.empty


def _valid_presets() -> set[str]:
    from yarn_assets.deliverables.types import LENGTH_PRESETS

    return set(LENGTH_PRESETS)


def render_research(research: Research) -> str:
    lines: list[str] = []
    if research.web_results:
        lines.append("## Web results")
        for i, r in enumerate(research.web_results, 1):
            date = f" ({r.published})" if r.published else ""
            lines.append(f"[{i}] {r.title}{date} — {r.url}\n    {r.snippet[:600]}")
    if research.papers:
        lines.append("## arXiv papers")
        offset = len(research.web_results)
        for i, p in enumerate(research.papers, offset + 1):
            authors = ", ".join(p.authors[:4]) + (" et al." if len(p.authors) > 4 else "")
            lines.append(f"[{i}] {p.title} — {authors} ({(p.published or '')[:10]}) — {p.url}\n    {p.summary[:600]}")
    return "\n".join(lines)


def build_prompt(inp: ComposeInput) -> tuple[str, str]:
    """(system, user prompt)."""
    dtype = inp.dtype
    fill = {
        "recipient": inp.recipient_label,
        "timezone": inp.timezone,
        "focus": inp.focus,
        "title": inp.title,
    }
    body = dtype.prompt.format(**fill)
    parts = [f"# Task\n{body}"]
    if inp.description and inp.description != inp.focus:
        parts.append(f"Deliverable description: {inp.description}")
    if inp.sections:
        parts.append("Sections, in this order: " + ", ".join(inp.sections) + ".")
    limit = f" and at most {dtype.max_chars} characters" if dtype.max_chars else ""
    parts.append(f"Length: {length_instruction(inp.length)}{limit}.")
    priorities = inp.recipient.get("priorities")
    if priorities:
        parts.append("Recipient priorities: " + "; ".join(str(p) for p in priorities))
    parts.append(f"Current time: {inp.now.astimezone(dt.UTC):%Y-%m-%d %H:%M} UTC; recipient timezone {inp.timezone}.")
    if inp.platform.text:
        parts.append(f"# Platform material (newest first)\n{inp.platform.text}")
    if inp.people:
        parts.append(f"# People and related items\n{inp.people}")
    research_text = render_research(inp.research)
    if research_text:
        parts.append(f"# Research\nSearch terms: {', '.join(inp.research.search_terms)}\n{research_text}")
    if inp.memory:
        parts.append(f"# [USER CONTEXT]\n{inp.memory}")
    if inp.previous:
        parts.append("# Previous version (do not repeat what has not changed)\n" + inp.previous[:PREVIOUS_CHARS])
    return system_prompt(dtype), "\n\n".join(parts)


def people_queries(inp: ComposeInput, n_titles: int = 3) -> list[str]:
    """What the related items should be close to: the deliverable's focus and its material's titles."""
    titles = []
    rows = inp.platform.in_prompt
    if rows.height and "title" in rows.columns:
        titles = [t for t in rows["title"].drop_nulls().unique(maintain_order=True).to_list() if t.strip()]
    return list(dict.fromkeys([inp.focus, *titles[:n_titles]]))


def finalize(draft: str, dtype: Any, *, stale: list[dict[str, Any]], offline: bool) -> str:
    """The delivered text: the draft plus the stale-source line and the offline label, within limits."""
    parts = [draft.strip()]
    note = stale_note(stale)
    if note:
        parts.append(note)
    if offline:
        parts.append(OFFLINE_LABEL)
    text = "\n\n".join(parts)
    if dtype.max_chars and len(text) > dtype.max_chars:
        tail = "\n\n".join(parts[1:])
        room = max(200, dtype.max_chars - len(tail) - 4)
        text = parts[0][:room].rsplit("\n", 1)[0] + "\n…" + ("\n\n" + tail if tail else "")
    return text
