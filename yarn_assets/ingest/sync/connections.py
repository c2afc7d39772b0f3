"""Connections: add (encrypted), test, remove, select sources, refresh the landscape.

Credentials are a JSON payload encrypted with :class:`control_plane.crypto.TokenCipher`:

* slack: ``{"bot_token"}``
* gmail / calendar: ``{"refresh_token", "client_id", "client_secret"}`` (one Google consent
  gives both; each platform gets its own connection, cursors and errors)
* notion: ``{"token"}`` (an internal integration token)

Re-adding a connection merges the new values over the stored ones, so a Google re-consent that
omits the refresh token keeps the stored one (the original overwrote it with None).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from control_plane.crypto import CredentialError, TokenCipher
from control_plane.models import PlatformConnection, SyncRegistry, User, utcnow
from yarn_assets.ingest.api_calls import ApiCaller, RetrySettings
from yarn_assets.ingest.api_clients import ClientConfig
from yarn_assets.ingest.api_errors import CredentialProblem, SyncError
from yarn_assets.ingest.platforms import api_of, live
from yarn_assets.ingest.sync import landscape
from yarn_assets.ingest.sync.redact import redact, redacting, secret_values
from yarn_assets.ingest.sync.runner import connection_label, make_fetcher, open_api


class ConnectionError_(ValueError):
    """A connection command cannot be carried out (unknown user, missing secret...)."""


def find(session: Session, ref: str, platform: str | None = None) -> PlatformConnection:
    """By id, id prefix, or ``user:platform``."""
    if ":" in ref and platform is None:
        user_id, platform = ref.split(":", 1)
        conn = session.scalars(select(PlatformConnection).where(
            PlatformConnection.user_id == user_id, PlatformConnection.platform == platform)).first()
    else:
        q = select(PlatformConnection).where(PlatformConnection.id.startswith(ref))
        if platform:
            q = q.where(PlatformConnection.platform == platform)
        matches = list(session.scalars(q))
        if len(matches) > 1:
            raise ConnectionError_(f"{ref!r} matches {len(matches)} connections; give more of the id")
        conn = matches[0] if matches else None
    if conn is None:
        raise ConnectionError_(f"no connection {ref!r}")
    return conn


def add(session: Session, cipher: TokenCipher, *, user_id: str, platform: str, credentials: dict[str, Any],
        account_label: str | None = None) -> tuple[PlatformConnection, bool]:
    known = [p.name for p in live()]
    if platform not in known:
        raise ConnectionError_(f"unknown platform {platform!r}; known: {', '.join(known)}")
    if session.get(User, user_id) is None:
        raise ConnectionError_(f"unknown user {user_id!r}; add it first (yarnnn users add)")
    conn = session.scalars(select(PlatformConnection).where(
        PlatformConnection.user_id == user_id, PlatformConnection.platform == platform)).first()
    created = conn is None
    merged: dict[str, Any] = {}
    if conn is not None and conn.credentials_encrypted:
        try:
            merged = cipher.decrypt(conn.credentials_encrypted, what=connection_label(conn))
        except CredentialError:
            merged = {}  # stored with a lost key: replaced wholesale below
    merged.update({k: v for k, v in credentials.items() if v})
    missing = [k for k in api_of(platform).credentials if not merged.get(k)]
    if missing:
        raise ConnectionError_(f"{platform} connection for {user_id} needs {', '.join(missing)}")
    if conn is None:
        conn = PlatformConnection(user_id=user_id, platform=platform, settings={}, landscape={},
                                  selection_overridden=False)
        session.add(conn)
    conn.credentials_encrypted = cipher.encrypt(merged)
    conn.status = "active"
    conn.last_error = None
    conn.last_error_at = None
    if account_label:
        conn.account_label = account_label
    session.flush()
    return conn, created


def remove(session: Session, conn: PlatformConnection) -> int:
    """Delete the connection and its cursors; returns the number of registry rows removed."""
    rows = session.execute(delete(SyncRegistry).where(SyncRegistry.user_id == conn.user_id,
                                                      SyncRegistry.platform == conn.platform))
    session.delete(conn)
    return int(rows.rowcount or 0)  # type: ignore[attr-defined]


@dataclass
class Probe:
    ok: bool
    detail: str
    requests: int = 0


def _open(conn: PlatformConnection, cipher: TokenCipher, config: ClientConfig,
          retry: RetrySettings) -> tuple[Any, ApiCaller, list[str]]:
    label = connection_label(conn)
    try:
        creds = cipher.decrypt(conn.credentials_encrypted, what=label)
    except CredentialError as exc:
        raise CredentialProblem(str(exc)) from None
    caller = ApiCaller(conn.platform, label, None, retry)
    return open_api(conn.platform, caller, creds, config, label), caller, secret_values(creds)


def probe(session: Session, conn: PlatformConnection, cipher_factory: Any, config: ClientConfig,
          retry: RetrySettings, now: dt.datetime | None = None) -> Probe:
    """One cheap authenticated call; updates the connection's status and error."""
    now = now or utcnow()
    secrets: list[str] = []
    try:
        api, caller, secrets = _open(conn, cipher_factory(), config, retry)
        with redacting(secrets):
            detail, account = api_of(conn.platform).probe(api)
            conn.account_label = conn.account_label or account
        conn.status = "active"
        conn.last_error = conn.last_error_at = None
        return Probe(True, detail, caller.stats.total())
    except CredentialProblem as exc:
        message = redact(str(exc), secrets)
        if exc.status in ("revoked", "expired"):
            conn.status = exc.status
        conn.last_error, conn.last_error_at = message, now
        return Probe(False, message)
    except SyncError as exc:
        return Probe(False, redact(f"{connection_label(conn)}: {exc}", secrets))


def refresh_landscape(session: Session, conn: PlatformConnection, cipher_factory: Any, config: ClientConfig,
                      retry: RetrySettings, now: dt.datetime | None = None) -> list[landscape.Resource]:
    now = now or utcnow()
    api, _, secrets = _open(conn, cipher_factory(), config, retry)
    with redacting(secrets):
        resources = make_fetcher(conn.platform, api).landscape()
    user = session.get(User, conn.user_id)
    conn.landscape = {"resources": [r.as_json() for r in resources]}
    conn.landscape_discovered_at = now
    if not conn.selection_overridden:
        conn.selected_sources = landscape.auto_select(conn.platform, resources, user.tier if user else "free")
    return resources


def select_sources(session: Session, conn: PlatformConnection, *, set_ids: list[str] | None = None,
                   add_ids: list[str] | None = None, remove_ids: list[str] | None = None, auto: bool = False,
                   force: bool = False) -> list[str]:
    """Operator override of the auto-selection; ``auto`` goes back to it."""
    user = session.get(User, conn.user_id)
    tier = user.tier if user else "free"
    if auto:
        conn.selection_overridden = False
        conn.selected_sources = landscape.auto_select(conn.platform, landscape.landscape_resources(conn.landscape),
                                                      tier)
        return list(conn.selected_sources)
    current = landscape.selection_ids(conn.selected_sources)
    norm = [landscape.normalize_id(conn.platform, i) for i in (set_ids or [])]
    ids = norm if set_ids is not None else list(current)
    for i in add_ids or []:
        i = landscape.normalize_id(conn.platform, i)
        if i not in ids:
            ids.append(i)
    drop = {landscape.normalize_id(conn.platform, i) for i in remove_ids or []}
    ids = [i for i in ids if i not in drop]
    problems = landscape.validate_selection(conn.platform, tier, conn.landscape, ids, force=force)
    if problems:
        raise ConnectionError_("; ".join(problems) + " (use --force to override)")
    conn.selected_sources = ids
    conn.selection_overridden = True
    return ids
