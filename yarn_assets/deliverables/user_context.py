"""User memory for deliverable prompts, read through the memory domain's one read path.

:func:`yarn_assets.core.user_memory.for_prompt` returns the user's current facts, preferences
and instructions (source priority already applied: a contradicted or retracted value never shows).
Rendering follows the original's ``[USER CONTEXT]`` block: at most 20 rows, highest confidence first.
"""

from __future__ import annotations

from sqlalchemy.orm import Session

from yarn_assets.core.user_memory import for_prompt

MAX_ROWS = 20


def read_user_context(session: Session, user_id: str) -> str:
    """The user's memory rendered for a prompt, or "" when there is none."""
    return "\n".join(f"- {r.key}: {r.value}" for r in for_prompt(session, user_id, MAX_ROWS))
