"""The consent flow: start (authorize URL), complete (callback), disconnect (revoke), list.

Each step commits in its own transaction: a consumed ``state`` is committed before the code
exchange, so a replayed callback is refused whatever happened to the first one. Refusals are
logged (logger ``yarnnn.connect``, never with the state, code or tokens) and raised as
:class:`~.errors.CallbackRefused`.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass, field
from typing import Any

from authlib.common.security import generate_token
from authlib.integrations.base_client.errors import OAuthError
from sqlalchemy import select
from sqlalchemy.orm import Session

from control_plane.crypto import CredentialError, TokenCipher
from control_plane.models import PlatformConnection, User, utcnow
from yarn_assets.connect import state as states
from yarn_assets.connect.base import TransportError
from yarn_assets.connect.config import ConnectEnv
from yarn_assets.connect.errors import CallbackRefused, ConnectError
from yarn_assets.connect.providers import provider
from yarn_assets.core.activity_log import ActivityEvent, write_events

log = logging.getLogger("yarnnn.connect")

RECONNECT_NEEDED = "reconnect_needed"
DISCONNECTED = "disconnected"
#: token fields one Google grant shares across its platforms' connections
SHARED_FIELDS = ("refresh_token", "access_token", "expires_at", "scope")
MAX_CODE_CHARS = 2_000


@dataclass(frozen=True)
class Started:
    provider: str
    platforms: list[str]
    authorize_url: str
    expires_at: dt.datetime


@dataclass(frozen=True)
class Connected:
    user_id: str
    provider: str
    platforms: list[str]
    connection_ids: list[str]
    account_label: str | None


@dataclass(frozen=True)
class Disconnected:
    user_id: str
    provider: str
    platforms: list[str]
    revoke: str  # revoked | already gone | nothing to revoke | failed: ...

    @property
    def revoked(self) -> bool:
        return self.revoke in ("revoked", "already gone", "nothing to revoke")


@dataclass
class _Pending:
    user_id: str
    platforms: list[str]
    verifier_encrypted: str | None
    redirect_uri: str
    key: str
    extra: dict[str, Any] = field(default_factory=dict)


def _connections(session: Session, user_id: str, platforms: tuple[str, ...] | list[str]) -> list[PlatformConnection]:
    return list(session.scalars(select(PlatformConnection).where(
        PlatformConnection.user_id == user_id, PlatformConnection.platform.in_(list(platforms)))
        .order_by(PlatformConnection.platform)))


def _decrypt(cipher: TokenCipher, conn: PlatformConnection) -> dict[str, Any]:
    if not conn.credentials_encrypted:
        return {}
    try:
        return cipher.decrypt(conn.credentials_encrypted, what=f"{conn.platform} connection {conn.id[:8]}")
    except CredentialError:
        return {}  # stored under a lost key: the new grant replaces it


def start(env: ConnectEnv, *, user_id: str, provider_name: str, platforms: list[str] | None = None,
          now: dt.datetime | None = None) -> Started:
    """A consent URL for ``user_id``; the state behind it lives ``state_ttl_seconds`` and is single use."""
    prov = provider(provider_name)
    cfg = env.config
    prov.client(cfg)  # not configured: say so before anything is stored
    wanted = list(dict.fromkeys(platforms or prov.platforms))
    unknown = [p for p in wanted if p not in prov.platforms]
    if unknown or not wanted:
        raise ConnectError(f"{provider_name} connects {', '.join(prov.platforms)}, not {', '.join(unknown)}",
                           "unknown_platform")
    now = now or utcnow()
    cipher = env.cipher()
    verifier = generate_token(64) if prov.pkce else None
    scopes = prov.scopes(wanted)
    redirect_uri = cfg.redirect_uri(provider_name)
    with env.sessions() as session:
        if session.get(User, user_id) is None:
            raise ConnectError("unknown user", "unknown_user")
        has_refresh = any(_decrypt(cipher, c).get("refresh_token")  # a dead grant's does not count
                          for c in _connections(session, user_id, prov.platforms) if c.status != RECONNECT_NEEDED)
        state = states.create(
            session, user_id=user_id, provider=provider_name, platforms=wanted, scopes=scopes,
            verifier_encrypted=cipher.encrypt({"v": verifier}) if verifier else None, redirect_uri=redirect_uri,
            ttl_seconds=cfg.state_ttl_seconds, now=now,
        )
    with prov.session(cfg, redirect_uri=redirect_uri) as sess:
        url, _ = sess.create_authorization_url(
            prov.authorize_url(cfg), state=state, code_verifier=verifier,
            **prov.scope_param(scopes), **prov.authorize_params(wanted, has_refresh),
        )
    return Started(provider_name, wanted, url, now + dt.timedelta(seconds=cfg.state_ttl_seconds))


def _refuse(provider_name: str, reason: str, message: str, key: str | None = None) -> CallbackRefused:
    log.warning("oauth callback refused: provider=%s reason=%s state=%s… (%s)", provider_name, reason,
                (key or "")[:12], message)
    return CallbackRefused(message, reason)


def complete(env: ConnectEnv, *, provider_name: str, state: str | None, code: str | None,
             error: str | None = None, now: dt.datetime | None = None) -> Connected:
    """The callback: check and consume the state, exchange the code, store the tokens encrypted."""
    prov = provider(provider_name)
    cfg = env.config
    now = now or utcnow()
    try:
        with env.sessions() as session:
            row = states.consume(session, provider=provider_name, state=state, now=now)
            pending = _Pending(row.user_id, list(row.platforms), row.verifier_encrypted, row.redirect_uri,
                               row.state_hash)
    except CallbackRefused as exc:
        raise _refuse(provider_name, exc.reason, str(exc), states.state_hash(state) if state else None) from None
    if error or not code or len(code) > MAX_CODE_CHARS:
        reason = "consent_declined" if error else "missing_code"
        with env.sessions() as session:
            states.finish(session, pending.key, f"refused:{reason}")
        detail = f"the consent was declined ({str(error)[:60]})" if error else "the callback has no valid code"
        raise _refuse(provider_name, reason, detail, pending.key)
    cipher = env.cipher()
    verifier = cipher.decrypt(pending.verifier_encrypted, what="oauth state")["v"] if pending.verifier_encrypted \
        else None
    try:
        with prov.session(cfg, redirect_uri=pending.redirect_uri) as sess:
            token = dict(sess.fetch_token(prov.token_url(cfg), grant_type="authorization_code", code=code,
                                          code_verifier=verifier))
    except (OAuthError, *TransportError) as exc:
        reason = "code_refused" if isinstance(exc, OAuthError) else "provider_unreachable"
        with env.sessions() as session:
            states.finish(session, pending.key, f"refused:{reason}")
        what = getattr(exc, "error", None) or type(exc).__name__
        raise _refuse(provider_name, reason, f"{provider_name} refused the authorization code ({what}); "
                      "start the connection again", pending.key) from None
    return _store_grant(env, cipher, prov, pending, token, now)


def _store_grant(env: ConnectEnv, cipher: TokenCipher, prov: Any, pending: _Pending, token: dict[str, Any],
                 now: dt.datetime) -> Connected:
    client = prov.client(env.config)
    events: list[ActivityEvent] = []
    with env.sessions() as session:
        existing = {c.platform: c for c in _connections(session, pending.user_id, prov.platforms)}
        stored = {p: _decrypt(cipher, c) for p, c in existing.items()}
        alive = [stored[p] for p, c in existing.items() if c.status != RECONNECT_NEEDED]
        any_stored = next((s for s in alive if s.get("refresh_token")), None)  # never revive a dead grant
        try:
            grant = prov.grant(token, client, pending.platforms, any_stored)
        except ConnectError as exc:
            states.finish(session, pending.key, f"refused:{exc.reason}")
            session.commit()  # keep the outcome: the raise below rolls the scope back
            raise _refuse(prov.name, exc.reason, str(exc), pending.key) from None
        shared = next(iter(grant.credentials.values()))
        ids = []
        for platform in prov.platforms:
            conn = existing.get(platform)
            if platform not in grant.credentials:
                if conn is not None and stored[platform] and prov.name == "google":
                    # one Google grant: the other platform's connection follows the new tokens
                    merged = {**stored[platform], **{k: shared[k] for k in SHARED_FIELDS if shared.get(k)}}
                    conn.credentials_encrypted = cipher.encrypt(merged)
                continue
            merged = {**stored.get(platform, {}), **grant.credentials[platform]}
            if conn is None:
                conn = PlatformConnection(user_id=pending.user_id, platform=platform, settings={}, landscape={},
                                          selection_overridden=False)
                session.add(conn)
            conn.credentials_encrypted = cipher.encrypt(merged)
            conn.status, conn.last_error, conn.last_error_at = "active", None, None
            if grant.account_label:
                conn.account_label = grant.account_label[:200]
            session.flush()
            ids.append(conn.id)
            events.append(ActivityEvent(
                user_id=pending.user_id, event_type="integration_connected",
                summary=f"Connected {platform}" + (f" ({grant.account_label})" if grant.account_label else ""),
                idempotency_key=f"{conn.id}:integration_connected:{pending.key[:16]}", event_ref=conn.id,
                created_at=now, metadata={"platform": platform, "connection_id": conn.id, "provider": prov.name,
                                          "scopes": len(grant.scopes)},
            ))
        states.finish(session, pending.key, "connected")
    write_events(env.store, events)
    log.info("oauth connected: provider=%s user=%s platforms=%s", prov.name, pending.user_id,
             ",".join(grant.credentials))
    return Connected(pending.user_id, prov.name, list(grant.credentials), ids, grant.account_label)


def disconnect(env: ConnectEnv, *, user_id: str, provider_name: str, now: dt.datetime | None = None) -> Disconnected:
    """Revoke the grant at the provider, wipe the stored credentials, mark the connections disconnected.

    A revoke that fails (provider unreachable) still disconnects here: the user asked to be out; the
    outcome says the provider was not told, and the event records it.
    """
    prov = provider(provider_name)
    now = now or utcnow()
    cipher = env.cipher()
    with env.sessions() as session:
        conns = [c for c in _connections(session, user_id, prov.platforms) if c.credentials_encrypted]
        if not conns:
            raise ConnectError(f"no {provider_name} connection", "not_connected")
        creds = next((d for d in (_decrypt(cipher, c) for c in conns) if d), {})
    try:
        outcome = prov.revoke(env.config, creds) if creds else "nothing to revoke"
    except OAuthError as exc:
        outcome = f"failed: {exc.error}"
    except TransportError as exc:
        outcome = f"failed: provider unreachable ({type(exc).__name__})"
    if not outcome.startswith("failed"):
        log.info("oauth revoke: provider=%s user=%s outcome=%s", provider_name, user_id, outcome)
    else:
        log.warning("oauth revoke: provider=%s user=%s outcome=%s", provider_name, user_id, outcome)
    events = []
    with env.sessions() as session:
        platforms = []
        for conn in _connections(session, user_id, prov.platforms):
            if not conn.credentials_encrypted:
                continue
            conn.credentials_encrypted = None
            conn.status, conn.last_error, conn.last_error_at = DISCONNECTED, None, None
            platforms.append(conn.platform)
            events.append(ActivityEvent(
                user_id=user_id, event_type="integration_disconnected", summary=f"Disconnected {conn.platform}",
                idempotency_key=f"{conn.id}:integration_disconnected:{now.isoformat()}", event_ref=conn.id,
                created_at=now, metadata={"platform": conn.platform, "connection_id": conn.id,
                                          "provider": provider_name, "revoke": outcome},
            ))
    write_events(env.store, events)
    return Disconnected(user_id, provider_name, platforms, outcome)


def list_connections(env: ConnectEnv, user_id: str) -> list[dict[str, Any]]:
    """The user's connections as shown to the user: status (``reconnect_needed`` says what to do)."""
    with env.sessions() as session:
        rows = session.scalars(select(PlatformConnection).where(PlatformConnection.user_id == user_id)
                               .order_by(PlatformConnection.platform))
        return [{
            "id": c.id, "platform": c.platform, "status": c.status, "account": c.account_label,
            "connected": bool(c.credentials_encrypted),
            "action": "reconnect" if c.status in (RECONNECT_NEEDED, "revoked", "expired") else None,
            "error": c.last_error, "last_synced_at": c.last_synced_at.isoformat() if c.last_synced_at else None,
        } for c in rows]
