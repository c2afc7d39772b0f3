"""Syncs one connection: credentials -> landscape -> each selected resource -> bronze -> cursor.

Order per resource (the crash-safety contract): fetch, append the objects to bronze (one Delta
commit), then advance that resource's cursor in sync_registry. One batch id per (run,
connection); its chunks are appends with increasing ``seq``. What differs per platform (client,
fetcher, error classification, rate limits) comes from its ``LiveApi`` in the platform registry.

No two runs sync one connection at once: sync runs carry the tag ``yarnnn/connection=<id>`` and
the instance's run queue allows one run per value (``tag_concurrency_limits``, see
:mod:`yarn_assets.ingest.sync.asset`), so nothing here needs a lease.
"""

from __future__ import annotations

import datetime as dt
import logging
import traceback
import uuid
from collections import Counter
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from control_plane.crypto import CredentialError, TokenCipher
from control_plane.models import PlatformConnection, SyncRegistry, User, utcnow
from io_managers.delta_store import DeltaStore
from yarn_assets.core.activity_log import ActivityEvent
from yarn_assets.core.tables import BRONZE_ITEMS, REJECTS
from yarn_assets.ingest import batches, bronze
from yarn_assets.ingest.api_calls import ApiCaller, RetrySettings
from yarn_assets.ingest.api_clients import ClientConfig
from yarn_assets.ingest.api_errors import CredentialProblem, SyncError
from yarn_assets.ingest.budget import RateBudget
from yarn_assets.ingest.fetch import Fetcher, Prior, Resource, ResourceResult
from yarn_assets.ingest.normalize import context_only
from yarn_assets.ingest.platforms import api_of, get
from yarn_assets.ingest.sync import cursors, landscape
from yarn_assets.ingest.sync.redact import redact, redacting, secret_values


def open_api(platform: str, caller: ApiCaller, creds: dict[str, Any], config: ClientConfig, label: str) -> Any:
    """The platform's API client over its official SDK (credentials checked, never logged)."""
    return api_of(platform).client(caller, creds, config, label)


def make_fetcher(platform: str, api: Any, limits: dict[str, Any] | None = None) -> Fetcher:
    return api_of(platform).fetcher(api, limits)


def connection_label(conn: PlatformConnection) -> str:
    return f"{conn.platform} connection {conn.id[:8]} of user {conn.user_id}"


@dataclass
class SyncEnv:
    """Everything a connection sync needs from the run (resources, run facts, knobs)."""

    store: DeltaStore
    session: Callable[[], AbstractContextManager[Session]]
    engine: Engine | None
    cipher: Callable[[], TokenCipher]
    client_config: ClientConfig
    retry: RetrySettings
    rate_overrides: dict[str, float]
    run_id: str
    ingest_date: dt.date
    log: Any = field(default_factory=lambda: logging.getLogger("yarnnn.sync"))
    limits: dict[str, dict[str, Any]] = field(default_factory=dict)
    full_resync: bool = False
    shared_budget: bool = True


@dataclass
class ConnectionOutcome:
    connection_id: str
    user_id: str
    platform: str
    label: str
    status: str = "synced"  # synced | partial | failed | no_sources
    error: str | None = None
    batch_id: str | None = None
    objects: int = 0
    tombstones: int = 0
    rejects: int = 0
    resources: dict[str, dict[str, Any]] = field(default_factory=dict)
    failed_resources: dict[str, str] = field(default_factory=dict)
    requests: Counter[str] = field(default_factory=Counter)
    retries: int = 0
    rate_limited: int = 0
    budget_wait_seconds: float = 0.0
    notes: list[str] = field(default_factory=list)
    event: ActivityEvent | None = None

    @property
    def failed(self) -> bool:
        return self.status == "failed"


def content_objects(result: ResourceResult) -> int:
    """Objects that become items (context objects such as a channel's user list do not count)."""
    context = context_only()
    return sum(1 for o in result.objects if o.object_type not in context)


def _counts(result: ResourceResult) -> dict[str, Any]:
    out: dict[str, Any] = dict(result.counts)
    out["objects"] = content_objects(result)
    if result.capped:
        out["capped"] = True
    if result.notes:
        out["notes"] = result.notes
    if result.errors:
        out["errors"] = result.errors
    return out


def sync_connection(env: SyncEnv, connection_id: str, now: dt.datetime | None = None) -> ConnectionOutcome:
    now = now or utcnow()
    with env.session() as s:
        conn = s.get(PlatformConnection, connection_id)
        if conn is None:
            return ConnectionOutcome(connection_id, "", "", connection_id, status="failed",
                                     error=f"no connection {connection_id}")
        user = s.get(User, conn.user_id)
        tier = landscape.tier_of(user.tier if user else None)
        label = connection_label(conn)
        outcome = ConnectionOutcome(conn.id, conn.user_id, conn.platform, label)
        conn.last_attempt_at = now
    secrets: list[str] = []
    try:
        try:
            creds = _credentials(env, env.cipher(), connection_id, now)
        except CredentialError as exc:
            raise CredentialProblem(f"{label}: {exc}") from None
        secrets = secret_values(creds)
        with redacting(secrets):
            _sync(env, outcome, creds, tier, now)
    except CredentialProblem as exc:
        message = redact(str(exc), secrets)
        outcome.status, outcome.error = "failed", message
        _record_connection_failure(env, outcome, message, exc.status, now)
    except SyncError as exc:  # the provider was unreachable for the landscape itself, etc.
        message = redact(f"{label}: {exc}", secrets)
        outcome.status, outcome.error = "failed", message
        _record_connection_failure(env, outcome, message, "error", now)
    outcome.event = _event(env, outcome, now)
    return outcome


def _sync(env: SyncEnv, outcome: ConnectionOutcome, creds: dict[str, Any], tier: str, now: dt.datetime) -> None:
    platform = outcome.platform
    budget = RateBudget(env.engine if env.shared_budget else None, platform, outcome.connection_id,
                        env.rate_overrides)
    caller = ApiCaller(platform, outcome.label, budget, env.retry)
    landing: bronze.BatchInfo | None = None
    seq = 0
    try:
        api = open_api(platform, caller, creds, env.client_config, outcome.label)
        fetcher = make_fetcher(platform, api, env.limits.get(platform))
        selected = _refresh_landscape(env, outcome, fetcher, tier, now)
        if not selected:
            outcome.status = "no_sources"
            outcome.notes.append("no sources selected (landscape empty or selection cleared)")
            return
        with env.session() as s:
            priors = {} if env.full_resync else cursors.load_priors(s, outcome.user_id, platform)
        fetcher.prepare(selected, priors, now)
        batch = bronze.BatchInfo(
            user_id=outcome.user_id, platform=platform, ingest_date=env.ingest_date, source_kind="sync",
            provider=api_of(platform).provider,
            batch_id=f"sync-{platform}-{outcome.connection_id[:8]}-{uuid.uuid4().hex[:12]}",
            fetched_at=now, run_id=env.run_id, connection_id=outcome.connection_id,
        )
        outcome.batch_id = batch.batch_id
        with env.session() as s:  # silver's ledger: this batch is landing (rows appear resource by resource)
            batches.record_landing(s, batch)
        landing = batch
        seq = 0
        for resource in selected:
            try:
                result = fetcher.fetch(resource, priors.get(resource.id, Prior()), now)
            except CredentialProblem:
                raise
            except SyncError as exc:
                _resource_failed(env, outcome, resource, str(exc), now)
                continue
            except Exception as exc:  # an unexpected response shape must not hide the other resources
                tail = traceback.format_exception_only(type(exc), exc)[-1].strip()
                _resource_failed(env, outcome, resource, f"unexpected error: {tail}", now)
                env.log.error(f"{outcome.label}: {resource.id}: {traceback.format_exc()}")
                continue
            frame = bronze.bronze_frame(result.objects, batch, seq_start=seq)
            env.store.append(BRONZE_ITEMS, frame)  # the commit the cursor below depends on
            if result.rejects:
                env.store.append(REJECTS, bronze.reject_frame(result.rejects, stage="bronze", batch=batch,
                                                              rejected_at=now))
            seq += frame.height
            with env.session() as s:
                cursors.commit_resource(s, outcome.user_id, platform, result, now)
            outcome.objects += content_objects(result)
            outcome.tombstones += sum(1 for o in result.objects if o.is_tombstone)
            outcome.rejects += len(result.rejects)
            outcome.resources[resource.id] = {"name": resource.name, **_counts(result)}
            if result.errors:
                outcome.failed_resources[resource.id] = "; ".join(result.errors)
        extra = fetcher.finish()
        with env.session() as s:
            for rid, (cursor, state) in extra.items():
                cursors.save_row(s, outcome.user_id, platform, rid, cursor, state, now)
        ok = len(outcome.resources)
        if ok == 0:
            outcome.status = "failed"
            outcome.error = f"{outcome.label}: every selected source failed: " + "; ".join(
                f"{k}: {v}" for k, v in outcome.failed_resources.items())
        elif outcome.failed_resources:
            outcome.status = "partial"
        with env.session() as s:
            conn = s.get(PlatformConnection, outcome.connection_id)
            assert conn is not None
            if outcome.status in ("synced", "partial"):
                conn.last_synced_at = now
                conn.status = "active"
                cursors.clear_connection_error(s, outcome.user_id, platform)
            conn.last_error = (outcome.error or (
                "; ".join(f"{k}: {v}" for k, v in outcome.failed_resources.items()) or None))
            conn.last_error_at = now if conn.last_error else None
    finally:
        if landing is not None:  # what it appended is what the batch holds (a killed process stays "landing")
            with env.session() as s:
                batches.record_landed(s, landing, rows=seq)
        outcome.requests = caller.stats.requests
        outcome.retries = caller.stats.retries
        outcome.rate_limited = caller.stats.rate_limited
        outcome.budget_wait_seconds = round(budget.waited_seconds, 3)


def _resource_failed(env: SyncEnv, outcome: ConnectionOutcome, resource: Resource, message: str,
                     now: dt.datetime) -> None:
    outcome.failed_resources[resource.id] = message
    env.log.warning(f"{outcome.label}: {resource.name} ({resource.id}) failed: {message}")
    with env.session() as s:
        cursors.record_error(s, outcome.user_id, outcome.platform, resource, message, now)


def _refresh_landscape(env: SyncEnv, outcome: ConnectionOutcome, fetcher: Fetcher, tier: str,
                       now: dt.datetime) -> list[Resource]:
    with env.session() as s:
        conn = s.get(PlatformConnection, outcome.connection_id)
        assert conn is not None
        discovered = conn.landscape_discovered_at
        stale = discovered is None or now - discovered >= landscape.LANDSCAPE_MAX_AGE
        current, selected, overridden = dict(conn.landscape or {}), conn.selected_sources, conn.selection_overridden
    if stale:
        resources = fetcher.landscape()
        current = {"resources": [r.as_json() for r in resources]}
        if not overridden:
            selected = landscape.auto_select(outcome.platform, resources, tier)
        with env.session() as s:
            conn = s.get(PlatformConnection, outcome.connection_id)
            assert conn is not None
            conn.landscape = current
            conn.landscape_discovered_at = now
            conn.selected_sources = selected
        outcome.notes.append(f"landscape refreshed: {len(resources)} sources, {len(selected or [])} selected")
    elif selected is None and not overridden:
        selected = landscape.auto_select(outcome.platform, landscape.landscape_resources(current), tier)
    return landscape.selected_resources(outcome.platform, current, selected)


def _credentials(env: SyncEnv, cipher: TokenCipher, connection_id: str, now: dt.datetime) -> dict[str, Any]:
    """The stored credentials, OAuth tokens refreshed when due (:mod:`yarn_assets.connect.tokens`).

    A grant the provider refused (or a connection already waiting for its user) is a
    ``reconnect_needed`` credential problem: one clear failure, and schedules skip it after that.
    """
    from yarn_assets.connect.config import ConnectConfig
    from yarn_assets.connect.errors import ReconnectNeeded, RefreshFailed
    from yarn_assets.connect.tokens import fresh_credentials

    c = env.client_config
    config = ConnectConfig(slack_api_base_url=c.slack_base_url, google_token_url=c.google_token_uri,
                           notion_base_url=c.notion_base_url, timeout_seconds=c.timeout_seconds)
    try:
        return fresh_credentials(env.session, cipher, config, connection_id, now=now)
    except ReconnectNeeded as exc:
        raise CredentialProblem(str(exc), status="reconnect_needed") from None
    except RefreshFailed as exc:
        raise SyncError(str(exc)) from None


def _record_connection_failure(env: SyncEnv, outcome: ConnectionOutcome, message: str, status: str,
                               now: dt.datetime) -> None:
    env.log.error(message)
    with env.session() as s:
        conn = s.get(PlatformConnection, outcome.connection_id)
        if conn is None:
            return
        if status in ("revoked", "expired", "reconnect_needed"):
            conn.status = status
        conn.last_error, conn.last_error_at = message, now
        cursors.record_error(s, outcome.user_id, outcome.platform, cursors.CONNECTION_ROW, message, now)
        rows = s.scalars(select(SyncRegistry).where(SyncRegistry.user_id == outcome.user_id,
                                                    SyncRegistry.platform == outcome.platform))
        for row in rows:
            if not row.resource_id.startswith("__"):
                row.last_error, row.last_error_at = message, now
        for resource in landscape.selected_resources(outcome.platform, conn.landscape, conn.selected_sources):
            cursors.record_error(s, outcome.user_id, outcome.platform, resource, message, now)


def _event(env: SyncEnv, outcome: ConnectionOutcome, now: dt.datetime) -> ActivityEvent:
    name = get(outcome.platform).label
    if outcome.status == "failed":
        summary = f"{name} sync failed: {outcome.error}"
    elif outcome.status == "no_sources":
        summary = f"{name} sync: no sources selected"
    else:
        summary = f"Synced {outcome.objects} {name} items from {len(outcome.resources)} sources"
        if outcome.tombstones:
            summary += f" ({outcome.tombstones} deletions)"
        if outcome.failed_resources:
            summary += f"; {len(outcome.failed_resources)} failed"
    key = outcome.batch_id or f"sync-{outcome.platform}-{outcome.connection_id[:8]}-{env.run_id}"
    return ActivityEvent(
        user_id=outcome.user_id, event_type="platform_synced", summary=summary, idempotency_key=key,
        event_ref=outcome.connection_id, created_at=now, event_date=env.ingest_date,
        metadata={
            "platform": outcome.platform, "connection_id": outcome.connection_id, "status": outcome.status,
            "items_synced": outcome.objects, "tombstones": outcome.tombstones, "batch_id": outcome.batch_id,
            "resources": {k: {kk: vv for kk, vv in v.items() if kk != "notes"} for k, v in outcome.resources.items()},
            "failed_resources": outcome.failed_resources, "requests": sum(outcome.requests.values()),
            **({"error": outcome.error} if outcome.error else {}),
        },
    )
