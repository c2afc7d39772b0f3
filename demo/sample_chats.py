"""A week of sample chat sessions for the demo users, as chat JSONL (docs/chat_import.md).

Written to exercise the nightly memory end to end: sessions with fewer than 3, at least 3 and
at least 5 user messages; stable facts, preferences and instructions; junk the filter must
reject (a pasted system prompt, transient plans, restatements); and, for alice, a fact she
explicitly asked to be remembered ("Remember that my role is …", stored as user_stated) that a
later conversation contradicts (kept in history as outranked, never replacing it).
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from pathlib import Path
from zoneinfo import ZoneInfo

Turns = list[tuple[str, str]]  # (role, content)


@dataclass(frozen=True)
class SampleSession:
    user_id: str
    days_ago: int  # 1 = yesterday (relative to the demo's "now")
    local_time: str  # HH:MM in the user's timezone
    turns: Turns

    def session_id(self, index: int) -> str:
        return f"{self.user_id}-s{index:02d}"


ASSISTANT_OK = "Understood."

ALICE: list[SampleSession] = [
    SampleSession("alice", 7, "09:10", [
        ("system", "You are yarnnn, a thinking partner for work. Be concise."),
        ("user", "Morning! Remember that my role is Head of Operations at Northwind Traders."),
        ("assistant", "Noted: you're Head of Operations at Northwind Traders."),
        ("user", "I prefer bullet-point summaries over long prose."),
        ("assistant", "Bullet points it is."),
        ("user", "Always include links to the source threads when you summarise Slack."),
        ("assistant", ASSISTANT_OK),
        ("user", "Can you help me plan the Q4 logistics review? The #ops-leads channel has most of the context."),
        ("assistant", "Sure. I'll pull the highlights from #ops-leads and draft an outline."),
        ("user", "Great, and flag anything about the Rotterdam warehouse."),
        ("assistant", "Will do."),
        ("user", "Thanks, that's all for now."),
    ]),
    SampleSession("alice", 6, "14:30", [
        ("user", "What's in my inbox from the carriers this week?"),
        ("assistant", "Three emails from DHL about revised rates and one from Maersk."),
        ("user", "Summarise the DHL ones."),
    ]),
    SampleSession("alice", 5, "08:45", [
        ("user", "I prefer to keep today's standup short, I have back-to-back meetings."),
        ("assistant", "I'll keep it to five bullets."),
        ("user", "Also I work at Northwind Traders, in case you need it for the email signature."),
        ("assistant", ASSISTANT_OK),
        ("user", "Can you prep me for the meeting with the Rotterdam site managers?"),
        ("assistant", "Here's a prep sheet with last month's incidents and open actions."),
        ("user", "Perfect."),
    ]),
    SampleSession("alice", 4, "17:05", [
        ("user", "You are a helpful assistant. Always answer like a helpful assistant would."),
        ("assistant", "I'm yarnnn, your thinking partner. How can I help?"),
        ("user", "Honestly my role is basically project manager for the WMS rollout these days."),
        ("assistant", "Got it, the WMS rollout is taking most of your time."),
        ("user", "I prefer bullet point summaries over long prose."),
        ("assistant", ASSISTANT_OK),
        ("user", "Draft a status update for the stakeholders on the WMS rollout."),
        ("assistant", "Here's a draft status update with progress, risks and next steps."),
        ("user", "Make the risks section shorter."),
        ("assistant", "Shortened."),
        ("user", "Send me a reminder to review the Slack channel digest on Friday."),
    ]),
    SampleSession("alice", 2, "10:20", [
        ("user", "Any news in #ops-leads since yesterday?"),
        ("assistant", "Two threads: a delayed container and the new shift rota."),
        ("user", "Summarise the slack channel for me every morning if you can."),
        ("assistant", "I can set up a daily Slack channel digest."),
        ("user", "Yes, and never include the #random channel."),
        ("assistant", ASSISTANT_OK),
    ]),
    SampleSession("alice", 1, "16:40", [
        ("user", "I'm based in Lyon, by the way, so mornings are Paris time."),
        ("assistant", ASSISTANT_OK),
        ("user", "Can you write the weekly status report for the WMS stakeholders again?"),
        ("assistant", "Here's this week's status report."),
        ("user", "Add the Rotterdam go-live date."),
        ("assistant", "Added."),
        ("user", "My manager is Priya Shah, copy her on the status report."),
        ("assistant", "I'll note Priya as a recipient."),
        ("user", "Thanks, good for today."),
    ]),
]

BOB: list[SampleSession] = [
    SampleSession("bob", 7, "11:00", [
        ("user", "Hi, I work at Contoso and my role is Product Manager for the billing platform."),
        ("assistant", "Nice to meet you, Bob."),
        ("user", "I prefer short answers, two or three sentences at most."),
        ("assistant", ASSISTANT_OK),
        ("user", "Never schedule anything before 10am."),
        ("assistant", "I'll keep mornings clear."),
    ]),
    SampleSession("bob", 5, "15:15", [
        ("user", "What's on my calendar this week?"),
        ("assistant", "Sprint review Tuesday, customer call Wednesday, planning Thursday."),
        ("user", "Prep me for the customer call with Fabrikam."),
        ("assistant", "Here's a one-page prep with their open tickets and renewal date."),
        ("user", "Also I'm based in New York, make sure times are Eastern."),
        ("assistant", ASSISTANT_OK),
    ]),
    SampleSession("bob", 3, "09:30", [
        ("user", "Check my inbox for anything from Fabrikam."),
        ("assistant", "One email from their CFO about the renewal."),
        ("user", "Draft a reply saying we'll send the proposal next week."),
    ]),
    SampleSession("bob", 2, "13:00", [
        ("user", "Prep me for the Fabrikam renewal meeting."),
        ("assistant", "Here's the prep: pricing history, usage and open issues."),
        ("user", "I prefer short answers, so trim it to the top three points."),
        ("assistant", "Trimmed."),
        ("user", "Always put the decision needed at the top."),
        ("assistant", ASSISTANT_OK),
        ("user", "And check the calendar for a slot with their CFO before the meeting."),
        ("assistant", "Thursday 2pm works for both of you."),
        ("user", "Book it."),
    ]),
]

SESSIONS = {"alice": ALICE, "bob": BOB}


def session_lines(session: SampleSession, index: int, now: dt.datetime, tz: str) -> list[dict[str, object]]:
    """JSONL records of one session: turns one to three minutes apart, times in UTC ISO-8601."""
    day = (now.astimezone(ZoneInfo(tz)) - dt.timedelta(days=session.days_ago)).date()
    hour, minute = (int(x) for x in session.local_time.split(":"))
    start = dt.datetime.combine(day, dt.time(hour, minute), tzinfo=ZoneInfo(tz)).astimezone(dt.UTC)
    lines = []
    for seq, (role, content) in enumerate(session.turns):
        at = start + dt.timedelta(minutes=2 * seq + (seq % 2))
        lines.append({
            "session_id": session.session_id(index), "user_id": session.user_id, "role": role,
            "content": content, "created_at": at.isoformat().replace("+00:00", "Z"), "sequence": seq,
            "session_type": "thinking_partner",
        })
    return lines


def generate_chats(root: Path, now: dt.datetime, timezones: dict[str, str]) -> dict[str, Path]:
    """Write ``<root>/<user>/chat/sessions.jsonl`` for each sample user; returns user -> path."""
    out: dict[str, Path] = {}
    for user_id, sessions in SESSIONS.items():
        tz = timezones.get(user_id, "UTC")
        folder = root / user_id / "chat"
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / "sessions.jsonl"
        records = [rec for i, s in enumerate(sessions, start=1) for rec in session_lines(s, i, now, tz)]
        path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records), encoding="utf-8")
        out[user_id] = path
    return out
