"""Small pure helpers of the LLM resource: fence stripping, token estimates, error texts."""

from __future__ import annotations

import hashlib
import re
from typing import Any

import anthropic
from pydantic import ValidationError

_FENCE = re.compile(r"^\s*```(?:json|JSON)?\s*\n?(.*?)\n?\s*```\s*$", re.DOTALL)


def opaque_user_id(user_id: str) -> str:
    return hashlib.sha256(f"yarnnn-user:{user_id}".encode()).hexdigest()[:32]


def _estimate_tokens(*texts: str | None) -> int:
    """About four characters per token; used only for the pre-call budget check."""
    return sum(len(t) for t in texts if t) // 4 + 1


def _strip_fences(text: str) -> str:
    match = _FENCE.match(text)
    if match:
        return match.group(1).strip()
    start, end = text.find("{"), text.rfind("}")
    if start != -1 and end > start and (start > 0 or end < len(text) - 1):
        return text[start : end + 1]
    return text


def _text_of(message: Any) -> str:
    return "".join(getattr(b, "text", "") for b in (message.content or []) if getattr(b, "type", None) == "text")


def _short(exc: ValidationError, limit: int = 3) -> str:
    parts = []
    for err in exc.errors()[:limit]:
        loc = ".".join(str(x) for x in err.get("loc", ())) or "(root)"
        parts.append(f"{loc}: {err.get('msg')}")
    more = len(exc.errors()) - limit
    return "; ".join(parts) + (f"; and {more} more" if more > 0 else "")


def _api_message(exc: anthropic.APIStatusError) -> str:
    body = exc.body if isinstance(exc.body, dict) else {}
    err = body.get("error") if isinstance(body.get("error"), dict) else {}
    return str(err.get("message") or exc.message)[:300]
