"""Whole-table checks: pass on clean data, fail on each kind of violation, through the real checks job."""

import datetime as dt
from pathlib import Path

import dagster as dg
import polars as pl
import pytest
from deltalake import write_deltalake

from control_plane import db
from control_plane.models import PlatformConnection, SyncRegistry, User
from io_managers.delta_store import DeltaStore
from resources.settings import load_settings
from yarn_assets.core.tables import BRONZE_ITEMS, PLATFORM_CONTENT
from yarn_assets.definitions import build_definitions
from yarn_assets.ingest import bronze, silver
from yarn_assets.ingest.objects import RawObject
from yarn_assets.ingest.platforms.gmail.export import read_eml
from yarn_assets.ops.checks import zero_item_syncs_report

NOW = dt.datetime.now(dt.UTC).replace(microsecond=0)


def _run_checks() -> dict[tuple[str, str], dg.AssetCheckEvaluation]:
    defs = build_definitions(load_settings())
    result = defs.resolve_job_def("warehouse_checks_job").execute_in_process(raise_on_error=False)
    return {(e.asset_key.to_user_string(), e.check_name): e for e in result.get_asset_check_evaluations()}


def _land(store: DeltaStore, user: str, batch_id: str, path: Path, *, source_kind: str = "import",
          connection_id: str | None = None, resource_id: str | None = None, fetched_at: dt.datetime = NOW) -> None:
    objs = [o for o in read_eml(path) if isinstance(o, RawObject)]
    if resource_id:
        objs = [RawObject(o.object_type, o.external_id, o.raw, resource_id, resource_id) for o in objs]
    batch = bronze.BatchInfo(user, "gmail", fetched_at.date(), source_kind, "eml", batch_id, fetched_at,
                             connection_id=connection_id)
    bronze.write_batch(store, bronze.bronze_frame(objs, batch), batch)
    norm = silver.normalize_partition(bronze.read_partition(store, "gmail", fetched_at.date()))
    silver.merge_platform_content(store, norm.rows, now=fetched_at)


@pytest.fixture
def cp(settings):  # type: ignore[no-untyped-def]
    url = settings.resolved_control_plane_url
    db.upgrade(url)
    with db.session_scope(url) as s:
        s.add_all([User(id=u, email=f"{u}@example.com") for u in ("alice", "bob")])
        s.flush()
        s.add_all([PlatformConnection(id="conn-alice", user_id="alice", platform="gmail"),
                   PlatformConnection(id="conn-bob", user_id="bob", platform="gmail")])
    return url


def test_checks_pass_on_clean_data(cp, store, corpus) -> None:  # type: ignore[no-untyped-def]
    _land(store, "alice", "a1", corpus / "mbox_eml" / "flanker__iphone.eml")
    _land(store, "bob", "b1", corpus / "mbox_eml" / "flanker__enclosed.eml", source_kind="sync",
          connection_id="conn-bob", resource_id="label:INBOX")
    checks = _run_checks()
    assert {k: e.passed for k, e in checks.items()} == {
        ("silver/platform_content", "unique_keys_whole_table"): True,
        ("silver/platform_content", "non_retained_rows_expire"): True,
        ("silver/platform_content", "timestamps_utc"): True,
        ("silver/platform_content", "users_match_batches"): True,
        ("bronze/platform_items/imports", "timestamps_utc"): True,
        ("bronze/platform_items/syncs", "no_silent_zero_item_syncs"): True,
    }
    assert checks[("silver/platform_content", "unique_keys_whole_table")].metadata["rows_checked"].value == 2


def test_checks_catch_duplicates_missing_ttl_and_foreign_rows(cp, store, corpus) -> None:  # type: ignore[no-untyped-def]
    _land(store, "alice", "a1", corpus / "mbox_eml" / "flanker__iphone.eml")
    _land(store, "bob", "b1", corpus / "mbox_eml" / "flanker__enclosed.eml", source_kind="sync",
          connection_id="conn-bob", resource_id="label:INBOX")
    rows = store.read(PLATFORM_CONTENT)
    alice = rows.filter(pl.col("user_id") == "alice")
    # the same key again in another created_day partition (per-partition checks cannot see it)
    store.append(PLATFORM_CONTENT, alice.with_columns(pl.lit("2001-01-01").alias("created_day")))
    # a non-retained row that would never expire; a bob row claiming alice's batch and connection
    bob = rows.filter(pl.col("user_id") == "bob")
    no_expiry = pl.lit(None, PLATFORM_CONTENT.schema["expires_at"]).alias("expires_at")
    store.append(PLATFORM_CONTENT, bob.with_columns(pl.lit("x-1").alias("external_id"), no_expiry))
    store.append(PLATFORM_CONTENT, bob.with_columns(pl.lit("x-2").alias("external_id"), pl.lit("a1").alias("batch_id"),
                                                    pl.lit("conn-alice").alias("connection_id")))
    checks = _run_checks()
    dupes = checks[("silver/platform_content", "unique_keys_whole_table")]
    assert not dupes.passed and dupes.metadata["duplicate_keys"].value == 1
    ttl = checks[("silver/platform_content", "non_retained_rows_expire")]
    assert not ttl.passed and ttl.metadata["non_retained_without_expiry"].value == 1
    users = checks[("silver/platform_content", "users_match_batches")]
    assert not users.passed
    assert users.metadata["rows_with_other_batch_user"].value == 1
    assert users.metadata["rows_with_other_connection_user"].value == 1


def test_timestamp_check_flags_naive_columns(cp, store, corpus) -> None:  # type: ignore[no-untyped-def]
    _land(store, "alice", "a1", corpus / "mbox_eml" / "flanker__iphone.eml")
    naive = BRONZE_ITEMS.empty().with_columns(pl.col("fetched_at").dt.replace_time_zone(None)).to_arrow()
    write_deltalake(store.uri("bronze/rejects"), naive.select(["user_id", "platform", "fetched_at"]), mode="overwrite")
    checks = _run_checks()
    assert checks[("silver/platform_content", "timestamps_utc")].passed
    bronze_check = checks[("bronze/platform_items/imports", "timestamps_utc")]
    assert not bronze_check.passed
    assert list(bronze_check.metadata["problems"].value) == ["bronze/rejects.fetched_at"]


def test_zero_item_sync_is_flagged_per_connection(cp, store, corpus) -> None:  # type: ignore[no-untyped-def]
    old = NOW - dt.timedelta(days=2)
    mail = corpus / "mbox_eml" / "flanker__iphone.eml"
    for user, conn, res, when in (("alice", "conn-alice", "label:INBOX", old),
                                  ("alice", "conn-alice", "label:SENT", old),
                                  ("bob", "conn-bob", "label:INBOX", old), ("bob", "conn-bob", "label:SENT", NOW)):
        _land(store, user, f"{conn}-{res}-{when.date()}", mail, source_kind="sync", connection_id=conn,
              resource_id=res, fetched_at=when)
    with db.session_scope(cp) as s:
        for user, res, count in (("alice", "label:INBOX", 10), ("alice", "label:SENT", 3), ("bob", "label:INBOX", 4),
                                 ("bob", "label:SENT", 5)):
            s.add(SyncRegistry(user_id=user, platform="gmail", resource_id=res, item_count=count, last_synced_at=NOW))
        s.add(SyncRegistry(user_id="alice", platform="gmail", resource_id="label:NEW", item_count=0,
                           last_synced_at=NOW))  # never had items: not a regression
        s.add(SyncRegistry(user_id="bob", platform="gmail", resource_id="label:BROKEN", item_count=7,
                           last_synced_at=NOW, last_error="403"))  # failed: the sync's own check reports it
    check = _run_checks()[("bronze/platform_items/syncs", "no_silent_zero_item_syncs")]
    assert not check.passed and check.severity == dg.AssetCheckSeverity.WARN
    assert check.metadata["connections_flagged"].value == 1
    assert [c["user_id"] for c in check.metadata["flagged_connections"].value] == ["alice"]
    assert {(s["user_id"], s["resource_id"]) for s in check.metadata["empty_sources"].value} == {
        ("alice", "label:INBOX"), ("alice", "label:SENT"), ("bob", "label:INBOX")}


def test_zero_item_rule_counts_rows_stamped_just_before_the_registry(store, corpus) -> None:  # type: ignore[no-untyped-def]
    _land(store, "alice", "s1", corpus / "mbox_eml" / "flanker__iphone.eml", source_kind="sync",
          connection_id="c", resource_id="C1", fetched_at=NOW - dt.timedelta(minutes=3))
    registry = pl.DataFrame([{"user_id": "alice", "platform": "gmail", "resource_id": "C1", "item_count": 1,
                              "last_synced_at": NOW, "last_error": None}],
                            schema_overrides={"last_synced_at": pl.Datetime("us", "UTC"), "last_error": pl.Utf8})
    sources, connections = zero_item_syncs_report(store, registry)
    assert sources.is_empty() and connections.is_empty()
    later = registry.with_columns(pl.lit(NOW + dt.timedelta(hours=1)).cast(pl.Datetime("us", "UTC"))
                                  .alias("last_synced_at"))
    sources, connections = zero_item_syncs_report(store, later)
    assert sources["resource_id"].to_list() == ["C1"] and connections.height == 1
