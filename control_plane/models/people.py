"""People decisions (the user's merges, splits and exclusions of contacts)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import (
    JSON,
    ForeignKey,
    Index,
    String,
    Text,
)
from sqlalchemy.orm import Mapped, mapped_column

from control_plane.models.base import Base, UTCDateTime, new_id, utcnow


class PeopleDecision(Base):
    """A user's own merge or split of contacts; the identity pass applies the active ones.

    ``merge``: identifiers ``identifier`` and ``others[0]`` are one person (a manual link, confidence 1).
    ``split``: ``identifier`` is never the same person as any of ``others`` (a cannot-link constraint
    that vetoes whatever links would join them). Revoking a decision (``revoked_at``) undoes it; the
    evidence links stay in gold/identity_links either way.
    """

    __tablename__ = "people_decisions"
    __table_args__ = (Index("ix_people_decisions_user_id", "user_id"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(8))  # merge | split
    identifier: Mapped[str] = mapped_column(String(400))
    others: Mapped[list[Any]] = mapped_column(JSON, default=list)
    note: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    revoked_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
