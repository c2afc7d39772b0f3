"""Server-side OAuth ``state``: random, stored as its SHA-256, bound to a user and provider, single use.

Consumption is one conditional UPDATE (``used_at IS NULL AND expires_at > now``), so two callbacks
racing with the same state cannot both pass; a consumed state stays consumed whatever happens to
the code exchange after it (the row is committed first).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets

from sqlalchemy import delete, update
from sqlalchemy.orm import Session

from control_plane.models import OAuthState
from yarn_assets.connect.errors import CallbackRefused

MAX_STATE_CHARS = 200
#: states kept after expiry (for the refusal reason in logs), then purged
KEEP_EXPIRED = dt.timedelta(days=1)


def state_hash(state: str) -> str:
    return hashlib.sha256(state.encode("utf-8")).hexdigest()


def create(session: Session, *, user_id: str, provider: str, platforms: list[str], scopes: list[str],
           verifier_encrypted: str | None, redirect_uri: str, ttl_seconds: int, now: dt.datetime) -> str:
    """A new state for ``user_id``; returns the state string (only its hash is stored)."""
    state = secrets.token_urlsafe(32)
    session.add(OAuthState(
        state_hash=state_hash(state), user_id=user_id, provider=provider, platforms=list(platforms),
        scopes=list(scopes), verifier_encrypted=verifier_encrypted, redirect_uri=redirect_uri, created_at=now,
        expires_at=now + dt.timedelta(seconds=ttl_seconds),
    ))
    session.execute(delete(OAuthState).where(OAuthState.expires_at < now - KEEP_EXPIRED))
    session.flush()
    return state


def consume(session: Session, *, provider: str, state: str | None, now: dt.datetime) -> OAuthState:
    """Mark the state used and return it, or raise :class:`CallbackRefused` saying why."""
    if not state or len(state) > MAX_STATE_CHARS:
        raise CallbackRefused("the callback has no valid state", "missing_state")
    key = state_hash(state)
    taken = session.execute(
        update(OAuthState)
        .where(OAuthState.state_hash == key, OAuthState.used_at.is_(None), OAuthState.expires_at > now,
               OAuthState.provider == provider)
        .values(used_at=now)
    )
    row = session.get(OAuthState, key, populate_existing=True)
    if taken.rowcount == 1 and row is not None:  # type: ignore[attr-defined]
        return row
    if row is None:
        raise CallbackRefused("unknown state (not issued here, or purged)", "unknown_state")
    if row.provider != provider:
        raise CallbackRefused(f"state was issued for {row.provider}, not {provider}", "provider_mismatch")
    if row.used_at is not None:
        raise CallbackRefused("state already used (replayed callback)", "replayed_state")
    raise CallbackRefused("state expired; start the connection again", "expired_state")


def finish(session: Session, state_key: str, outcome: str) -> None:
    row = session.get(OAuthState, state_key)
    if row is not None:
        row.outcome = outcome[:32]
