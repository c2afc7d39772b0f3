"""``bronze/platform_items/syncs``: live API syncs of one (UTC day, platform) partition.

The partition records WHEN content was fetched, not when it was written at the source: APIs
only serve the present, so "re-syncing 2025-03-02" cannot reproduce what was fetched that day.
A materialization of a past day is therefore a no-op with a note (pass ``force: true`` to sync
now into that day's partition anyway); silver can always be rebuilt from the bronze a past
partition already holds.

A run syncs the connections named in its config or tags (``yarnnn/connections``,
``yarnnn/users``), or every due connection of the platform when none are named. The sensor and
the CLI launch one run per connection tagged ``yarnnn/connection=<id>``, and the instance's run
queue allows one such run in progress per connection (:mod:`yarn_assets.ingest.sync.requests`). A
connection whose credentials are missing, undecryptable, revoked or expired fails the run with
its name in the message, after the other connections' data has landed (and been recorded as a
materialization, so silver still picks it up).
"""

import datetime as dt

import dagster as dg
from dagster import AssetExecutionContext
from pydantic import Field
from sqlalchemy import or_, select

from control_plane.models import PlatformConnection, User, utcnow
from resources.control_plane import ControlPlane
from resources.credentials import CredentialVault
from resources.platform_clients import PlatformClients
from resources.warehouse import Warehouse
from yarn_assets.core.activity_log import write_events
from yarn_assets.core.partitions import ingest_partitions
from yarn_assets.core.tables import BRONZE_ITEMS
from yarn_assets.ingest.api_calls import RetrySettings
from yarn_assets.ingest.api_clients import ClientConfig
from yarn_assets.ingest.sources import BRONZE_SYNCS, BRONZE_SYNCS_VERSION, partition_parts, table_metadata
from yarn_assets.ingest.sync import schedule
from yarn_assets.ingest.sync.requests import TAG_CONNECTION, TAG_CONNECTIONS, TAG_PLATFORM, TAG_USERS
from yarn_assets.ingest.sync.runner import ConnectionOutcome, SyncEnv, sync_connection

__all__ = ["TAG_CONNECTION", "TAG_CONNECTIONS", "TAG_PLATFORM", "TAG_USERS", "bronze_synced_items"]

SYNC_POOL = "platform_api"


class SyncConfig(dg.Config):
    """Which connections to sync (none named = every due connection of the partition's platform)."""

    connection_ids: list[str] = Field(default_factory=list, description="Connection ids (or unique prefixes).")
    user_ids: list[str] = Field(default_factory=list, description="Sync these users' connections of the platform.")
    force: bool = Field(default=False, description="Sync even though the partition is not today (UTC).")
    full_resync: bool = Field(default=False, description="Ignore stored cursors: first-sync windows again.")


def build_env(*, warehouse: Warehouse, control_plane: ControlPlane, credentials: CredentialVault,
              platform_clients: PlatformClients, run_id: str, ingest_date: dt.date, log: object,
              full_resync: bool = False) -> SyncEnv:
    pc = platform_clients
    return SyncEnv(
        store=warehouse.store,
        session=control_plane.session,
        engine=control_plane.engine,
        cipher=credentials.cipher,
        client_config=ClientConfig(
            slack_base_url=pc.slack_base_url, google_api_base_url=pc.google_api_base_url,
            google_token_uri=pc.google_token_uri, notion_base_url=pc.notion_base_url,
            timeout_seconds=pc.timeout_seconds,
        ),
        retry=RetrySettings(max_attempts=pc.max_attempts, backoff_seconds=pc.backoff_seconds,
                            max_retry_after_seconds=pc.max_retry_after_seconds),
        rate_overrides=dict(pc.rate_limits),
        run_id=run_id,
        ingest_date=ingest_date,
        log=log,
        full_resync=full_resync,
        shared_budget=pc.shared_budget,
    )


def _split(value: str | None) -> list[str]:
    return [v.strip() for v in (value or "").split(",") if v.strip()]


def select_connections(control_plane: ControlPlane, platform: str, connection_ids: list[str],
                       user_ids: list[str], now: dt.datetime) -> tuple[list[str], dict[str, str]]:
    """(connection ids to sync, id -> why another was left out)."""
    skipped: dict[str, str] = {}
    with control_plane.session() as s:
        q = select(PlatformConnection).where(PlatformConnection.platform == platform)
        if connection_ids or user_ids:
            conds = [PlatformConnection.id.startswith(c) for c in connection_ids]
            if user_ids:
                conds.append(PlatformConnection.user_id.in_(user_ids))
            return [c.id for c in s.scalars(q.where(or_(*conds)).order_by(PlatformConnection.user_id))], skipped
        chosen = []
        for conn in s.scalars(q.order_by(PlatformConnection.user_id)):
            user = s.get(User, conn.user_id)
            due = schedule.is_due(now=now, tier=user.tier if user else "free",
                                  timezone=user.timezone if user else "UTC",
                                  status=conn.status, last_attempt_at=conn.last_attempt_at,
                                  last_synced_at=conn.last_synced_at)
            if due.due:
                chosen.append(conn.id)
            else:
                skipped[conn.id] = due.reason
        return chosen, skipped


def _table(outcomes: list[ConnectionOutcome]) -> dg.MetadataValue:
    if not outcomes:
        return dg.MetadataValue.md("_no connections synced_")
    lines = ["| connection | user | status | items | deletions | failed sources | requests |",
             "|---|---|---|---|---|---|---|"]
    for o in outcomes:
        lines.append(f"| {o.connection_id[:8]} | {o.user_id} | {o.status} | {o.objects} | {o.tombstones} | "
                     f"{len(o.failed_resources)} | {sum(o.requests.values())} |")
    return dg.MetadataValue.md("\n".join(lines))


@dg.asset(
    key=BRONZE_SYNCS,
    partitions_def=ingest_partitions,
    group_name="ingest",
    kinds={"deltalake", "polars"},
    owners=["team:data-platform"],
    pool=SYNC_POOL,
    code_version=BRONZE_SYNCS_VERSION,
    retry_policy=dg.RetryPolicy(max_retries=1, delay=30, backoff=dg.Backoff.EXPONENTIAL, jitter=dg.Jitter.PLUS_MINUS),
    description=(
        "Raw objects fetched from the Slack, Gmail, Notion and Google Calendar APIs, as received, in "
        "bronze/platform_items (source_kind=sync). The partition is the UTC day the content was FETCHED; "
        "past days are not re-fetchable (no-op unless forced)."
    ),
    check_specs=[
        dg.AssetCheckSpec("sources_synced", asset=BRONZE_SYNCS, blocking=False,
                          description="Every selected source of every synced connection synced without error."),
    ],
)
def bronze_synced_items(
    context: AssetExecutionContext,
    config: SyncConfig,
    warehouse: Warehouse,
    control_plane: ControlPlane,
    credentials: CredentialVault,
    platform_clients: PlatformClients,
) -> dg.MaterializeResult:
    day, platform = partition_parts(context)
    now = utcnow()
    today = now.date().isoformat()
    if day != today and not config.force:
        note = (f"partition {day} is not today ({today} UTC): a sync records when content was fetched, and "
                "APIs cannot serve the past, so nothing was fetched. Set force: true to sync now into this "
                "partition; silver for this day can be rebuilt from the bronze it already holds.")
        context.log.info(note)
        return dg.MaterializeResult(
            metadata={"mode": "noop_past_day", "note": note, "connections": 0, "objects": 0,
                      **table_metadata(warehouse.store, BRONZE_ITEMS, platform=platform, ingest_date=day)},
            check_results=[dg.AssetCheckResult(check_name="sources_synced", passed=True,
                                               metadata={"note": "no sync (past partition)"})],
        )
    tags = context.run.tags
    connection_ids = list(config.connection_ids) + _split(tags.get(TAG_CONNECTIONS))
    user_ids = list(config.user_ids) + _split(tags.get(TAG_USERS))
    chosen, skipped = select_connections(control_plane, platform, connection_ids, user_ids, now)
    env = build_env(warehouse=warehouse, control_plane=control_plane, credentials=credentials,
                    platform_clients=platform_clients, run_id=context.run.run_id,
                    ingest_date=dt.date.fromisoformat(day), log=context.log, full_resync=config.full_resync)
    outcomes: list[ConnectionOutcome] = []
    for conn_id in chosen:
        outcome = sync_connection(env, conn_id, now=now)
        outcomes.append(outcome)
        level = context.log.error if outcome.failed else context.log.info
        level(f"{outcome.label}: {outcome.status}, {outcome.objects} objects, "
              f"{sum(outcome.requests.values())} requests" + (f" ({outcome.error})" if outcome.error else ""))
    events = [o.event for o in outcomes if o.event is not None]
    written = write_events(warehouse.store, events, run_id=context.run.run_id)

    requests: dict[str, int] = {}
    for o in outcomes:
        for method, n in o.requests.items():
            requests[method] = requests.get(method, 0) + n
    failed_sources = {f"{o.connection_id[:8]}:{rid}": msg for o in outcomes for rid, msg in o.failed_resources.items()}
    failed = [o for o in outcomes if o.failed]
    metadata = {
        "mode": "sync",
        "connections": len(outcomes),
        "connections_failed": len(failed),
        "connections_not_due": len(skipped),
        "objects": sum(o.objects for o in outcomes),
        "tombstones": sum(o.tombstones for o in outcomes),
        "rejected": sum(o.rejects for o in outcomes),
        "requests": sum(requests.values()),
        "requests_by_method": dg.MetadataValue.json(requests),
        "retries": sum(o.retries for o in outcomes),
        "rate_limited": sum(o.rate_limited for o in outcomes),
        "budget_wait_seconds": round(sum(o.budget_wait_seconds for o in outcomes), 3),
        "batch_ids": dg.MetadataValue.json([o.batch_id for o in outcomes if o.batch_id]),
        "events_written": written,
        "by_connection": _table(outcomes),
        "resources": dg.MetadataValue.json({o.connection_id: o.resources for o in outcomes}),
        **table_metadata(warehouse.store, BRONZE_ITEMS, platform=platform, ingest_date=day),
    }
    if skipped:
        metadata["not_due"] = dg.MetadataValue.json(skipped)
    check = dg.AssetCheckResult(
        check_name="sources_synced", passed=not failed_sources and not failed,
        severity=dg.AssetCheckSeverity.WARN,
        metadata={"failed_sources": dg.MetadataValue.json(failed_sources),
                  "failed_connections": dg.MetadataValue.json({o.connection_id: o.error for o in failed})},
    )
    if failed:
        landed = [o for o in outcomes if o.batch_id and o.objects]
        if landed:  # their data is in bronze: record it so silver picks it up despite the failure
            context.log_event(dg.AssetMaterialization(asset_key=BRONZE_SYNCS, partition=context.partition_key,
                                                      metadata={**metadata, "partial": True}))
        raise dg.Failure(
            description="sync failed for " + "; ".join(o.error or o.label for o in failed),
            metadata={"connections_failed": len(failed), "objects_landed": sum(o.objects for o in landed)},
            allow_retries=False,
        )
    return dg.MaterializeResult(metadata=metadata, check_results=[check])

