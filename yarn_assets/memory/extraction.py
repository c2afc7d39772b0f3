"""Fact extraction and session summaries: prompts, validated output models and offline rules.

The prompts follow the original (``services/memory.py``): stable preferences, work facts,
standing instructions and style; no transient facts or opinions; keys namespaced ``fact:``,
``preference:``, ``instruction:``; values of at most two sentences. Two deliberate changes:

* the model is shown **user turns only** (numbered), never the assistant's or system's: those
  repeat recalled memories and system prompts, which mem0's audit found re-extracted as junk;
* a fact the user explicitly asked to be remembered is flagged ``explicit`` and stored as
  ``user_stated`` (the highest priority), everything else as ``conversation``.

The offline rules (labelled ``offline-rules`` in usage and metadata) are deterministic regular
expressions over the same user turns: "my role is…", "I work at…", "I'm based in…", "I prefer…",
"always/never…", "remember that…".
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Sequence
from dataclasses import dataclass

from pydantic import BaseModel, Field

from yarn_assets.memory.user_context import slug

DEFAULT_CONFIDENCE = 0.8

FACTS_SYSTEM = """You maintain the long-term memory of a proactive work assistant.
From the user's own chat messages you extract what stays true about them and is useful later:
- fact:<topic>         stable facts about their work (role, company, team, location, projects, tools)
- preference:<topic>   how they like output (format, length, tone, timing, channel)
- instruction:<topic>  standing instructions ("always…", "never…")
Rules:
- Use only the numbered user messages. Never extract what an assistant or a system prompt said.
- Skip transient things (today's mood, this week's plans, one-off requests, dates and times) and opinions.
- Skip anything that describes the assistant itself or how an AI should behave in general.
- Keys are lowercase snake_case after the prefix, stable across sessions (fact:role, fact:company,
  preference:format, preference:length, instruction:<short_topic>).
- Values: third person, at most two sentences, no quotes of the chat.
- confidence 0..1: how sure you are this is a lasting truth about the user.
- explicit=true only when the user asked you to remember it ("remember that…", "note that…").
- evidence: the number of the user message it comes from.
Return an empty list when nothing qualifies."""

SUMMARY_SYSTEM = """You summarise a chat session between a user and their work assistant for the
assistant's memory. Write 2 to 4 sentences, past tense, third person ("The user asked…"). Say what
the user wanted, what was decided or produced, and any open follow-up. No greetings, no quotes,
no speculation."""


class ExtractedFact(BaseModel):
    key: str = Field(description="fact:<topic> | preference:<topic> | instruction:<topic>", max_length=90)
    value: str = Field(description="At most two sentences, third person.", max_length=500)
    confidence: float = Field(default=DEFAULT_CONFIDENCE, ge=0.0, le=1.0)
    explicit: bool = Field(default=False, description="The user explicitly asked to remember this.")
    evidence: int | None = Field(default=None, description="Number of the user message it comes from (1-based).")


class FactExtraction(BaseModel):
    """Durable facts, preferences and instructions about the user, from their own messages."""

    facts: list[ExtractedFact] = Field(default_factory=list, max_length=30)


class SessionSummary(BaseModel):
    """A 2-4 sentence, past-tense, third-person summary of the session."""

    summary: str = Field(min_length=10, max_length=1200)


@dataclass(frozen=True)
class Turn:
    sequence: int
    role: str
    content: str
    created_at: dt.datetime | None = None


def user_turns(turns: Sequence[Turn]) -> list[Turn]:
    return [t for t in turns if t.role == "user"]


def facts_prompt(turns: Sequence[Turn], max_chars_per_turn: int = 2000) -> str:
    lines = [f"[{i}] {t.content.strip()[:max_chars_per_turn]}" for i, t in enumerate(user_turns(turns), start=1)]
    return "User messages of one chat session:\n" + "\n".join(lines)


def summary_prompt(turns: Sequence[Turn], session_day: str, max_chars_per_turn: int = 1500) -> str:
    lines = [f"{t.role.upper()}: {t.content.strip()[:max_chars_per_turn]}" for t in turns if t.role != "system"]
    return f"Session of {session_day}:\n" + "\n".join(lines)


# --------------------------------------------------------------------------- offline rules
_END = r"(?=[.!?;\n]|,| and | but |$)"
_ROLE_WORDS = (
    r"(?:head|vp|vice president|director|manager|lead|chief|founder|co-founder|engineer|designer|analyst|"
    r"consultant|ceo|cto|coo|cfo|product manager|pm|researcher|recruiter|partner|owner)"
)

_FACT_RULES: list[tuple[re.Pattern[str], str, float]] = [
    (re.compile(r"\bmy (?:job title|title|role|position) is (?:now )?(?P<v>[^.!?;\n]{2,80}?)" + _END, re.I),
     "fact:role", 0.9),
    (re.compile(r"\bI(?:'m| am) (?:now )?(?:the |a |an )(?P<v>" + _ROLE_WORDS + r"\b[^.!?;,\n]{0,60}?)"
                r"(?= at | for |[.!?;,\n]|$)", re.I), "fact:role", 0.75),
    (re.compile(r"\bI (?:now )?work (?:at|for) (?P<v>[A-Z][\w&.\-]*(?: [A-Z][\w&.\-]*){0,4})", 0), "fact:company",
     0.8),
    (re.compile(r"\bI(?:'m| am) based in (?P<v>[A-Z][\w.\-]*(?:,? [A-Z][\w.\-]*){0,3})", 0), "fact:location", 0.8),
    (re.compile(r"\bmy team (?:is|handles|owns|runs) (?P<v>[^.!?;\n]{3,100}?)" + _END, re.I), "fact:team", 0.7),
    (re.compile(r"\bmy manager is (?P<v>[A-Z][\w.\-]*(?: [A-Z][\w.\-]*){0,3})", 0), "fact:manager", 0.8),
]
_PREFER = re.compile(r"\bI (?:really |usually |generally |strongly )?prefer (?P<v>[^.!?;\n]{3,140}?)" + _END, re.I)
_INSTRUCT = re.compile(
    r"(?:^|[.!?]\s+|\bplease\s+|,\s+(?:and\s+)?)(?P<v>(?:always|never) [^.!?;\n]{3,140}?)(?=[.!?;\n]|$)", re.I
)
_I_ALWAYS = re.compile(r"\bI (?P<adv>always|never) (?P<v>[^.!?;\n]{3,140}?)(?=[.!?;\n]|$)", re.I)
_REMEMBER = re.compile(r"(?:^|(?<=[.!?])\s+)(?:please\s+)?(?:remember|note|keep in mind)(?: that)?[:,]?\s+"
                       r"(?P<v>[^.!?\n]+[.!?]?)", re.I)

_PREF_TOPICS: list[tuple[str, re.Pattern[str]]] = [
    ("format", re.compile(r"\b(?:bullet|bullets|table|tables|markdown|list|lists|headings?|format)\b", re.I)),
    ("length", re.compile(r"\b(?:short|shorter|brief|concise|detailed|long|longer|length|words?|one-page)\b", re.I)),
    ("tone", re.compile(r"\b(?:formal|casual|tone|friendly|direct|blunt)\b", re.I)),
    ("channel", re.compile(r"\b(?:email|slack|dm|notion)\b", re.I)),
    ("timing", re.compile(r"\b(?:morning|mornings|evening|afternoon|monday|friday|weekly|daily|before \d)\b", re.I)),
]


@dataclass(frozen=True)
class OfflineFact:
    key: str
    value: str
    confidence: float
    explicit: bool
    evidence: int  # 1-based index among user turns


def _clean(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip().strip("\"'").rstrip(".,;:")


def _sentence(text: str) -> str:
    text = _clean(text)
    return text[:1].upper() + text[1:] + ("" if text.endswith((".", "!", "?")) else ".")


def _preference_key(phrase: str) -> str:
    for topic, pattern in _PREF_TOPICS:
        if pattern.search(phrase):
            return f"preference:{topic}"
    return f"preference:{slug(phrase, 3)}"


def _instruction_key(phrase: str) -> str:
    words = [w for w in re.findall(r"[a-z0-9]+", phrase.lower()) if w not in {"always", "never", "please", "my",
                                                                                "the", "a", "an", "to", "me", "i"}]
    return f"instruction:{slug(' '.join(words), 3)}"


def _rules_on(text: str, index: int, explicit: bool) -> list[OfflineFact]:
    found: list[OfflineFact] = []
    conf_bump = 1.0 if explicit else None
    for pattern, key, confidence in _FACT_RULES:
        for m in pattern.finditer(text):
            value = _clean(m.group("v"))
            if value:
                found.append(OfflineFact(key, value, conf_bump or confidence, explicit, index))
    for m in _PREFER.finditer(text):
        phrase = _clean(m.group("v"))
        found.append(OfflineFact(_preference_key(phrase), _sentence(f"prefers {phrase}"), conf_bump or 0.7, explicit,
                                 index))
    for m in _INSTRUCT.finditer(text):
        phrase = _clean(m.group("v"))
        found.append(OfflineFact(_instruction_key(phrase), _sentence(phrase), conf_bump or 0.7, explicit, index))
    for m in _I_ALWAYS.finditer(text):
        phrase = f"{m.group('adv').lower()} {_clean(m.group('v'))}"
        found.append(OfflineFact(_instruction_key(phrase), _sentence(phrase), conf_bump or 0.7, explicit, index))
    return found


def offline_facts(turns: Sequence[Turn]) -> FactExtraction:
    """Deterministic extraction from user turns (the labelled offline mode)."""
    facts: list[ExtractedFact] = []
    seen: set[tuple[str, str]] = set()
    for index, turn in enumerate(user_turns(turns), start=1):
        text = turn.content.strip()
        found: list[OfflineFact] = []
        for remembered in _REMEMBER.finditer(text):  # "remember that …": explicit, stored as user_stated
            body = remembered.group("v")
            stated = _rules_on(body, index, explicit=True)
            found.extend(stated or [OfflineFact(f"fact:{slug(body, 4)}", _sentence(body), 1.0, True, index)])
        found.extend(_rules_on(_REMEMBER.sub(" ", text), index, explicit=False))
        for f in found:
            if (f.key, f.value.lower()) in seen:
                continue
            seen.add((f.key, f.value.lower()))
            facts.append(ExtractedFact(key=f.key, value=f.value, confidence=f.confidence, explicit=f.explicit,
                                       evidence=f.evidence))
    return FactExtraction(facts=facts)


_WORD = re.compile(r"[A-Za-z][A-Za-z\-]{3,}")
_SUMMARY_STOP = frozenset((
    "this", "that", "with", "from", "have", "what", "when", "where", "which", "would", "could", "should", "about",
    "there", "their", "them", "they", "your", "yours", "just", "like", "make", "need", "want", "into", "over",
    "more", "some", "than", "then", "also", "been", "will", "shall", "does", "did", "done", "can't", "don't",
    "please", "thanks", "thank", "help", "okay", "sure", "really", "much", "many", "very", "week", "today",
    "tomorrow", "prefer", "prefers", "always", "never", "remember", "note", "keep", "include", "based", "also",
    "morning", "anything", "something", "great", "perfect", "honestly", "again", "yes"
))


def _topics(texts: Sequence[str], n: int = 3) -> list[str]:
    counts: dict[str, int] = {}
    for text in texts:
        for word in _WORD.findall(text):
            w = word.lower()
            if w not in _SUMMARY_STOP:
                counts[w] = counts.get(w, 0) + 1
    ranked = sorted(counts.items(), key=lambda kv: (-kv[1], list(counts).index(kv[0])))
    return [w for w, _ in ranked[:n]]


def _clip(text: str, limit: int) -> str:
    text = _clean(text)
    return text if len(text) <= limit else text[: limit - 1].rsplit(" ", 1)[0] + "…"


def offline_summary(turns: Sequence[Turn]) -> SessionSummary:
    """A deterministic 3-4 sentence, past-tense, third-person summary (the labelled offline mode)."""
    users = user_turns(turns)
    replies = [t for t in turns if t.role == "assistant"]
    topics = _topics([t.content for t in users])
    about = ", ".join(topics[:-1]) + f" and {topics[-1]}" if len(topics) > 1 else (topics[0] if topics else "work")
    sentences = [
        f"The user held a {len(users)}-message session about {about}.",
        f"They opened with: {_clip(users[0].content, 110)}" if users else "",
        f"The assistant replied {len(replies)} time{'s' if len(replies) != 1 else ''}." if replies else "",
        f"The user closed with: {_clip(users[-1].content, 110)}" if len(users) > 1 else "",
    ]
    text = " ".join(s if s.endswith((".", "…", "?", "!")) else s + "." for s in sentences if s)
    return SessionSummary(summary=text)
