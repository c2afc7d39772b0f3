"""The one read path into a user's memory from other domains: what a prompt may show about a user.

Memory (``yarn_assets.memory.user_context``) owns and writes the ``user_context`` control-plane table;
signals and deliverables only read it, through :func:`for_prompt`. It lives here, below the domains,
because memory itself depends on the deliverables domain (it suggests deliverables of known types):
a read from deliverables into the memory package would close a package cycle.
"""

from __future__ import annotations

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from control_plane.models import UserContext

#: Key families other domains put into prompts (patterns stay inside the memory domain).
PROMPT_PREFIXES = ("fact:", "preference:", "instruction:")


def for_prompt(session: Session, user_id: str, limit: int) -> list[UserContext]:
    """What signals and deliverables may show a model about a user: that user's current facts,
    preferences and instructions (the winners of source priority, never superseded, outranked or
    retracted values), highest confidence first."""
    family = or_(*(UserContext.key.startswith(p) for p in PROMPT_PREFIXES))
    return list(session.scalars(
        select(UserContext).where(UserContext.user_id == user_id, family)
        .order_by(UserContext.confidence.desc(), UserContext.key).limit(limit)
    ))
