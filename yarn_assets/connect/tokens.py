"""Credentials for use: refreshed when they expire, loud when the grant is dead.

:func:`fresh_credentials` is the one read path for a connection's tokens (sync, Slack delivery as
the user). A token expiring within ``refresh_margin_seconds`` is refreshed at the provider (Authlib)
under a row lock (PostgreSQL), so two runs do not both spend a rotating refresh token. When the
provider refuses the refresh token (``invalid_grant`` and kin) the connection becomes
``reconnect_needed`` with a message saying so, committed before :class:`ReconnectNeeded` is raised;
schedules skip such a connection (it is not a syncable status), so a dead grant is one loud error,
not a crash loop. Connections added by hand (``yarnnn connections add``, no ``oauth`` marker) are
returned as stored.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any

from authlib.integrations.base_client.errors import OAuthError
from sqlalchemy import select
from sqlalchemy.orm import Session

from control_plane.crypto import TokenCipher
from control_plane.models import PlatformConnection, utcnow
from yarn_assets.connect.base import DEAD_GRANT_ERRORS, TransportError, expires_at
from yarn_assets.connect.config import ConnectConfig, ConnectEnv
from yarn_assets.connect.errors import NotConfigured, ReconnectNeeded, RefreshFailed
from yarn_assets.connect.flow import RECONNECT_NEEDED, SHARED_FIELDS
from yarn_assets.connect.providers import for_platform

log = logging.getLogger("yarnnn.connect")

PROVIDER_LABEL = {"slack": "Slack", "google": "Google", "notion": "Notion"}


def reconnect_message(provider_name: str, code: str) -> str:
    return (f"{PROVIDER_LABEL.get(provider_name, provider_name)} refused the stored authorization ({code}): "
            "the user must reconnect this account")


def fresh_credentials(sessions: Callable[[], AbstractContextManager[Session]], cipher: TokenCipher,
                      config: ConnectConfig, connection_id: str, *, now: dt.datetime | None = None) -> dict[str, Any]:
    """The connection's credential payload with every expiring token refreshed.

    Raises :class:`ReconnectNeeded` (the user must act; the status says so), :class:`RefreshFailed`
    (passing: network or provider 5xx; nothing changes) or ``CredentialError`` (nothing stored, or
    the encryption key cannot read it).
    """
    now = now or utcnow()
    with sessions() as session:
        conn = session.scalars(select(PlatformConnection).where(PlatformConnection.id == connection_id)
                               .with_for_update()).first()
        if conn is None:
            raise ReconnectNeeded(f"no connection {connection_id}", connection_id)
        label = f"{conn.platform} connection {conn.id[:8]} of {conn.user_id}"
        if conn.status == RECONNECT_NEEDED:
            raise ReconnectNeeded(f"{label}: {conn.last_error or 'reconnect needed'}", conn.id, conn.platform)
        creds = cipher.decrypt(conn.credentials_encrypted, what=label)  # none stored: CredentialError
        if not creds.get("oauth"):
            return creds
        prov = for_platform(conn.platform)
        changed = []
        for slot in prov.slots:
            exp, refresh = creds.get(slot.expires), creds.get(slot.refresh)
            if not refresh or exp is None or float(exp) - config.refresh_margin_seconds > now.timestamp():
                continue
            try:
                token = prov.refresh(config, refresh, creds)
            except OAuthError as exc:
                code = str(exc.error or "error")
                if code not in DEAD_GRANT_ERRORS:
                    raise RefreshFailed(f"{label}: token refresh refused ({code})") from None
                message = reconnect_message(prov.name, code)
                _mark_reconnect_needed(session, conn, prov.platforms, message, now)
                session.commit()  # the state must survive the exception below
                log.error("%s: %s", label, message)
                raise ReconnectNeeded(f"{label}: {message}", conn.id, conn.platform) from None
            except TransportError as exc:
                raise RefreshFailed(f"{label}: token refresh failed ({type(exc).__name__}); will retry") from None
            except NotConfigured as exc:
                raise RefreshFailed(f"{label}: cannot refresh: {exc}") from None
            creds[slot.access] = token["access_token"]
            creds[slot.refresh] = token.get("refresh_token") or refresh  # Google keeps the old one
            creds[slot.expires] = expires_at(token, now.timestamp())
            changed.append(slot.access)
        if changed:
            conn.credentials_encrypted = cipher.encrypt(creds)
            if prov.name == "google":  # one grant behind gmail and calendar: both follow
                for other in _siblings(session, conn, prov.platforms):
                    theirs = cipher.decrypt(other.credentials_encrypted, what=label)
                    theirs.update({k: creds[k] for k in SHARED_FIELDS if creds.get(k)})
                    other.credentials_encrypted = cipher.encrypt(theirs)
            log.info("%s: refreshed %s", label, ", ".join(changed))
        return creds


def _siblings(session: Session, conn: PlatformConnection, platforms: tuple[str, ...]) -> list[PlatformConnection]:
    return [c for c in session.scalars(select(PlatformConnection).where(
        PlatformConnection.user_id == conn.user_id, PlatformConnection.platform.in_(platforms),
        PlatformConnection.id != conn.id)) if c.credentials_encrypted]


def _mark_reconnect_needed(session: Session, conn: PlatformConnection, platforms: tuple[str, ...], message: str,
                           now: dt.datetime) -> None:
    for c in [conn, *_siblings(session, conn, platforms)]:
        c.status, c.last_error, c.last_error_at = RECONNECT_NEEDED, message, now


def credentials_for(env: ConnectEnv, connection_id: str, *, now: dt.datetime | None = None) -> dict[str, Any]:
    """:func:`fresh_credentials` with a :class:`ConnectEnv`."""
    return fresh_credentials(env.sessions, env.cipher(), env.config, connection_id, now=now)
