"""Functions of the per-project digest recipe (``project_digest``): match a week of Notion and Slack
activity to projects by keyword, then render the digest.

No built-in deliverable type can express this: the material is grouped per *project* (keywords
across platforms), each project gets its own summary, and coverage checks guard the result.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Any
from zoneinfo import ZoneInfo

from yarn_assets.deliverables.prompting import OFFLINE_LABEL
from yarn_assets.recipes.registry import recipe_function
from yarn_assets.recipes.runtime import StepRuntime

MAX_LINES = 12
_SENTENCE = re.compile(r"(?<=[.!?])\s+")


def _first_sentence(text: str, limit: int = 160) -> str:
    text = " ".join((text or "").split())
    first = _SENTENCE.split(text, maxsplit=1)[0] if text else ""
    return first if len(first) <= limit else first[: limit - 1].rstrip() + "…"


def _mentions(row: dict[str, Any], keywords: list[str]) -> bool:
    text = " ".join(str(row.get(k) or "") for k in ("title", "content", "resource_name")).casefold()
    return any(k.casefold() in text for k in keywords if k.strip())


def _line(row: dict[str, Any], platform: str) -> str:
    where = row.get("resource_name") or platform
    head = f"**{row['title']}** — " if row.get("title") and platform == "notion" else ""
    return f"[{platform.capitalize()} · {where}] {head}{row.get('author') or 'someone'}: " \
           f"{_first_sentence(str(row.get('content') or ''))}"


@recipe_function("digest.match_items", outputs=("count", "notion_count", "slack_count", "lines", "people",
                                                 "open_questions"))
def match_items(rt: StepRuntime, *, name: str, keywords: list[str], notion: list[dict[str, Any]],
                slack: list[dict[str, Any]]) -> dict[str, Any]:
    """The week's Notion pages and Slack messages that mention one of the project's keywords."""
    keywords = [k for k in keywords if str(k).strip()] or [name]
    hits = [(r, "notion") for r in notion if _mentions(r, keywords)] + \
        [(r, "slack") for r in slack if _mentions(r, keywords)]
    hits.sort(key=lambda h: (str(h[0].get("occurred_at") or ""), str(h[0].get("title") or "")), reverse=True)
    questions = [_line(r, p) for r, p in hits if str(r.get("content") or "").strip().endswith("?")]
    return {
        "count": len(hits), "notion_count": sum(1 for _, p in hits if p == "notion"),
        "slack_count": sum(1 for _, p in hits if p == "slack"),
        "lines": [_line(r, p) for r, p in hits][:MAX_LINES],
        "people": sorted({str(r.get("author")) for r, _ in hits if r.get("author")}),
        "open_questions": questions[:5],
    }


@recipe_function("digest.render", outputs=("markdown", "data", "week", "projects_with_activity"))
def render(rt: StepRuntime, *, title: str, recipient: str, timezone: str, projects: list[dict[str, Any]],
           results: list[dict[str, Any]]) -> dict[str, Any]:
    """The digest in Markdown: one section per project (summary, highlights, people, open questions)."""
    zone = ZoneInfo(timezone)
    now = rt.now.astimezone(zone)
    year, week, _ = rt.now.isocalendar()
    offline = False
    sections, data = [], []
    for project, result in zip(projects, results, strict=True):
        match = result.get("match") or {}
        summary = result.get("summarize") or {}
        offline = offline or bool((summary.get("llm") or {}).get("offline"))
        name = str(project.get("name"))
        data.append({"project": name, "items": match.get("count", 0), "notion": match.get("notion_count", 0),
                     "slack": match.get("slack_count", 0), "people": match.get("people", [])})
        if not match.get("count"):
            sections.append(f"## {name}\n_No Notion or Slack activity this week._")
            continue
        lines = [f"## {name}", str(summary.get("summary") or "").strip() or "_No summary (the step failed)._"]
        lines += [f"- {h}" for h in (summary.get("highlights") or [])[:6]]
        if match.get("people"):
            lines.append("People involved: " + ", ".join(match["people"][:8]))
        if match.get("open_questions"):
            lines.append("Open questions:\n" + "\n".join(f"- {q}" for q in match["open_questions"]))
        lines.append(f"_{match.get('notion_count', 0)} Notion, {match.get('slack_count', 0)} Slack items._")
        sections.append("\n".join(lines))
    since = (now - dt.timedelta(days=7)).strftime("%d %b")
    parts = [f"# {title}", f"Weekly project digest for {recipient}, {since} – {now:%d %b %Y}.", *sections]
    if offline:
        parts.append(OFFLINE_LABEL)
    return {"markdown": "\n\n".join(parts), "data": data, "week": f"{year}-W{week:02d}",
            "projects_with_activity": sum(1 for d in data if d["items"])}


@recipe_function("samples.workspace", outputs=("user_id", "research_deliverable_id", "digest_deliverable_id"))
def sample_workspace(rt: StepRuntime) -> dict[str, Any]:
    """Dry runs only: a sample user, two file-delivered deliverables and a week of content in the scratch workspace."""
    from yarn_assets.recipes.samples import seed_workspace

    return seed_workspace(rt, user_id="sample-user", now=rt.now)
