"""The junk filter: what must never become a memory (mem0's audit found 97.8 % junk).

Reasons, checked in this order (the first that applies is recorded):

* ``invalid``: a key outside the namespaces, an empty or over-long value;
* ``system_prompt``: the value restates a system prompt ("You are a helpful assistant…") or
  echoes a system message of the session (pasted prompts, recalled memories re-extracted);
* ``transient``: true only for now ("today", "this week", "at 3pm", "is tired");
* ``duplicate``: the same key and value as the current memory (and no stronger source), or as
  an earlier candidate of the same night;
* ``near_duplicate``: a rephrasing of an existing value (same meaning under different wording or
  another key), measured by content-word overlap and string similarity.

A candidate that passes goes to the upsert rule, where a contradiction of a stronger value is
kept in history as ``outranked`` (that is not junk: it is evidence).
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from yarn_assets.memory.user_context import KEY_RE, MAX_VALUE_CHARS, PRIORITY, normalize_value

REASONS = ("invalid", "system_prompt", "transient", "duplicate", "near_duplicate")

_SYSTEM_MARKERS = re.compile(
    r"\b(?:you are (?:an?|the|my) (?:[\w-]+ ){0,3}(?:assistant|ai|bot|model|agent|partner)"
    r"|helpful assistant|as an? (?:ai|assistant|language model)|large language model|language model"
    r"|system prompt|(?:the )?assistant (?:should|must|will|is)|your (?:role|job|task) is to"
    r"|do not reveal|ignore (?:all |any )?previous instructions|respond (?:only )?in json)\b",
    re.IGNORECASE,
)

_TRANSIENT = re.compile(
    r"\b(?:today|today's|tonight|tomorrow|yesterday|this (?:morning|afternoon|evening|week|weekend|month)"
    r"|next (?:week|month|monday|tuesday|wednesday|thursday|friday|saturday|sunday)"
    r"|right now|at the moment|for now|later today|in an hour|in \d+ (?:minutes|hours|days)"
    r"|(?:is|am|feels?|feeling) (?:tired|sick|busy|hungry|stressed|late|running late|out of office)"
    r"|this (?:monday|tuesday|wednesday|thursday|friday|saturday|sunday)"
    r"|at \d{1,2}(?::\d{2})?\s?(?:am|pm))\b",
    re.IGNORECASE,
)

_STOP = frozenset((
    "a", "an", "the", "and", "or", "of", "to", "in", "on", "for", "with", "at", "by", "from", "is", "are", "was",
    "were", "be", "been", "being", "it", "its", "this", "that", "these", "those", "i", "me", "my", "mine", "we",
    "our", "you", "your", "user", "user's", "they", "them", "their", "he", "she", "his", "her", "prefers",
    "prefer", "likes", "like", "wants", "want", "always", "never", "please", "should", "would"
))


def content_words(text: str) -> frozenset[str]:
    words = re.findall(r"[a-z0-9]+", text.lower())
    return frozenset(_stem(w) for w in words if w not in _STOP)


def _stem(word: str) -> str:
    for suffix in ("ies", "es", "s", "ing", "ed"):
        if len(word) > len(suffix) + 3 and word.endswith(suffix):
            return word[: -len(suffix)] + ("y" if suffix == "ies" else "")
    return word


def similar(a: str, b: str) -> bool:
    """Same meaning, different wording: content-word Jaccard >= 0.75 or string ratio >= 0.92."""
    na, nb = normalize_value(a), normalize_value(b)
    if na == nb:
        return True
    wa, wb = content_words(na), content_words(nb)
    if len(wa) >= 2 and len(wb) >= 2 and len(wa & wb) / len(wa | wb) >= 0.75:
        return True
    return difflib.SequenceMatcher(None, na, nb).ratio() >= 0.92


def echoes(value: str, texts: Iterable[str]) -> bool:
    """The value repeats a sentence of some other text (assistant/system turns)."""
    words = content_words(value)
    if len(words) < 4:
        return False
    for text in texts:
        for sentence in re.split(r"(?<=[.!?])\s+|\n+", text):
            other = content_words(sentence)
            if other and len(words & other) / len(words) >= 0.8:
                return True
    return False


@dataclass(frozen=True)
class Existing:
    key: str
    value: str
    source: str
    confidence: float


@dataclass(frozen=True)
class Screened:
    key: str
    value: str
    source: str
    confidence: float
    reason: str | None  # None = keep

    @property
    def kept(self) -> bool:
        return self.reason is None


def screen(
    candidates: Sequence[tuple[str, str, str, float]],
    existing: Sequence[Existing],
    other_turns: Sequence[str] = (),
    replayed: Sequence[bool] | None = None,
) -> list[Screened]:
    """Screen ``(key, value, source, confidence)`` candidates of one user and night, in order.

    ``replayed[i]`` marks a candidate already applied by an earlier run of the same night: it is
    kept as is (and still shadows its rephrasings), so a replay reaches the same decisions.
    """
    current = {e.key: e for e in existing}
    accepted: list[tuple[str, str]] = []
    out: list[Screened] = []
    for i, (key, value, source, confidence) in enumerate(candidates):
        if replayed is not None and replayed[i]:
            reason = None
        else:
            reason = _reason(key, value, source, confidence, current, existing, accepted, other_turns)
        out.append(Screened(key, value, source, confidence, reason))
        if reason is None:
            accepted.append((key, value))
    return out


def _reason(key: str, value: str, source: str, confidence: float, current: dict[str, Existing],
            existing: Sequence[Existing], accepted: list[tuple[str, str]], other_turns: Sequence[str]) -> str | None:
    if not KEY_RE.match(key) or not value.strip() or len(value) > MAX_VALUE_CHARS or source not in PRIORITY:
        return "invalid"
    if _SYSTEM_MARKERS.search(value) or echoes(value, other_turns):
        return "system_prompt"
    if _TRANSIENT.search(value) or _TRANSIENT.search(key.replace("_", " ")):
        return "transient"
    norm = normalize_value(value)
    cur = current.get(key)
    stronger = cur is not None and (PRIORITY[source], confidence) > (PRIORITY.get(cur.source, 0), cur.confidence)
    if cur is not None and normalize_value(cur.value) == norm and not stronger:
        return "duplicate"
    if any(k == key and normalize_value(v) == norm for k, v in accepted):
        return "duplicate"
    if any(similar(v, value) for _, v in accepted):
        return "near_duplicate"
    for e in existing:
        if (e.key != key or normalize_value(e.value) != norm) and similar(e.value, value):
            if e.key == key and stronger:
                continue  # a stronger source restating the current value in other words: let the rule decide
            return "near_duplicate"
    return None
