"""Manual signal triggers for one user, with the original's 5-minute cooldown.

The cooldown is claimed with one conditional UPDATE, so two operators (or a double click) cannot
both start a pass inside the window.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable

from sqlalchemy import or_, update
from sqlalchemy.orm import Session

from control_plane.models import User


class ManualTriggerRefused(RuntimeError):
    def __init__(self, message: str, retry_after_seconds: int | None = None) -> None:
        super().__init__(message)
        self.retry_after_seconds = retry_after_seconds


def claim_manual_trigger(session: Session, user_id: str, *, now: dt.datetime, cooldown_seconds: int,
                         excluded_tiers: Iterable[str]) -> None:
    """Record the trigger time or raise :class:`ManualTriggerRefused` (unknown, excluded, cooling down)."""
    user = session.get(User, user_id)
    if user is None:
        raise ManualTriggerRefused(f"unknown user {user_id!r}")
    if user.status != "active":
        raise ManualTriggerRefused(f"user {user_id} is {user.status}")
    if user.tier in set(excluded_tiers):
        raise ManualTriggerRefused(f"user {user_id} is on the {user.tier} tier, which has no signal processing")
    threshold = now - dt.timedelta(seconds=cooldown_seconds)
    claimed = session.execute(
        update(User)
        .where(User.id == user_id, or_(User.signal_last_manual_trigger_at.is_(None),
                                       User.signal_last_manual_trigger_at <= threshold))
        .values(signal_last_manual_trigger_at=now)
        .execution_options(synchronize_session=False)
    ).rowcount
    if not claimed:
        session.refresh(user)
        last = user.signal_last_manual_trigger_at or now
        wait = max(1, int(cooldown_seconds - (now - last).total_seconds()))
        raise ManualTriggerRefused(
            f"user {user_id} was triggered at {last:%H:%M:%S} UTC; try again in {wait}s "
            f"(cooldown {cooldown_seconds}s)", retry_after_seconds=wait)
