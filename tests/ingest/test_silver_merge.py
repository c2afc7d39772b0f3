"""The silver merge rules, each one failing if the rule is broken."""

from __future__ import annotations

import datetime as dt

import polars as pl
import pytest

from io_managers.delta_store import DeltaStore
from yarn_assets.core.tables import BRONZE_ITEMS, PLATFORM_CONTENT
from yarn_assets.ingest import bronze
from yarn_assets.ingest.normalize import ITEM_SCHEMA
from yarn_assets.ingest.objects import RawObject
from yarn_assets.ingest.silver import merge_platform_content, silver_rows

U = dt.UTC
NOW = dt.datetime(2026, 11, 23, 12, tzinfo=U)


def rows(*items: dict, fetched_at: dt.datetime = NOW, platform: str = "slack", user: str = "alice",
         batch: str = "b1") -> pl.DataFrame:
    base = {k: None for k in ITEM_SCHEMA}
    filled = []
    for i, it in enumerate(items):
        row = {**base, "resource_id": "C1", "resource_name": "general", "content_type": "message",
               "participants": [], "metadata": "{}", "is_deleted": False, "seq": i, "raw_sha256": "x",
               "source_created_at": dt.datetime(2026, 11, 20, tzinfo=U), **it}
        filled.append(row)
    items_df = pl.DataFrame(filled, schema=ITEM_SCHEMA)
    meta = {"user_id": user, "platform": platform, "source_kind": "import", "connection_id": None,
            "ingest_date": fetched_at.date(), "fetched_at": fetched_at, "batch_id": batch}
    return silver_rows(items_df, meta)


def table(store: DeltaStore) -> pl.DataFrame:
    return store.read(PLATFORM_CONTENT).sort("external_id")


def test_new_rows_get_hash_ttl_and_partition(store: DeltaStore) -> None:
    r = merge_platform_content(store, rows({"external_id": "1", "content": "hello"}), now=NOW)
    assert r.new == 1
    row = table(store).row(0, named=True)
    assert row["content_hash"] == "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824"
    assert row["expires_at"] == NOW + dt.timedelta(days=14)
    assert row["created_day"] == "2026-11-20"
    assert row["retained"] is False


def test_exact_duplicate_changes_nothing_not_even_fetched_at(store: DeltaStore) -> None:
    merge_platform_content(store, rows({"external_id": "1", "content": "hello"}), now=NOW)
    version = store.version(PLATFORM_CONTENT)
    later = NOW + dt.timedelta(hours=5)
    r = merge_platform_content(store, rows({"external_id": "1", "content": "hello"}, fetched_at=later, batch="b2"),
                               now=later)
    assert (r.new, r.updated, r.unchanged) == (0, 0, 1)
    assert table(store)["fetched_at"].item() == NOW
    assert store.version(PLATFORM_CONTENT) - version <= 1  # at most an empty commit


def test_edit_updates_the_row_in_place(store: DeltaStore) -> None:
    merge_platform_content(store, rows({"external_id": "1", "content": "v1"}), now=NOW)
    later = NOW + dt.timedelta(hours=1)
    r = merge_platform_content(store, rows({"external_id": "1", "content": "v2"}, fetched_at=later, batch="b2"),
                               now=later)
    assert r.updated == 1
    got = table(store)
    assert got.height == 1 and got["content"].item() == "v2" and got["fetched_at"].item() == later


def test_replaying_an_older_version_never_regresses(store: DeltaStore) -> None:
    later = NOW + dt.timedelta(hours=1)
    merge_platform_content(store, rows({"external_id": "1", "content": "v2"}, fetched_at=later, batch="b2"), now=later)
    r = merge_platform_content(store, rows({"external_id": "1", "content": "v1"}), now=later)
    assert r.updated == 0
    assert table(store)["content"].item() == "v2"


def test_retained_survives_an_edit(store: DeltaStore) -> None:
    merge_platform_content(store, rows({"external_id": "1", "content": "v1"}), now=NOW)
    uri = store.uri(PLATFORM_CONTENT)
    from deltalake import DeltaTable

    DeltaTable(uri).update(
        updates={"retained": "true", "retained_reason": "'deliverable_execution'", "expires_at": "NULL"},
        predicate="external_id = '1'",
    )
    later = NOW + dt.timedelta(days=1)
    merge_platform_content(store, rows({"external_id": "1", "content": "v2"}, fetched_at=later, batch="b2"), now=later)
    row = table(store).row(0, named=True)
    assert (row["content"], row["retained"], row["retained_reason"], row["expires_at"]) == \
        ("v2", True, "deliverable_execution", None)


def test_tombstone_deletes_and_an_older_partition_cannot_resurrect(store: DeltaStore) -> None:
    merge_platform_content(store, rows({"external_id": "1", "content": "v1"}), now=NOW)
    later = NOW + dt.timedelta(hours=2)
    # the tombstone is in bronze (what the silver step of its own partition reads)
    batch = bronze.BatchInfo("alice", "slack", later.date(), "sync", "slack_api", "b2", later)
    bronze.write_batch(store, bronze.bronze_frame([RawObject("slack_message", "1", b"{}", resource_id="C1",
                                                             is_tombstone=True)], batch), batch)
    r = merge_platform_content(store, rows({"external_id": "1", "content": "", "is_deleted": True},
                                           fetched_at=later, batch="b2"), now=later)
    assert r.deleted == 1 and table(store).is_empty()
    replay = merge_platform_content(store, rows({"external_id": "1", "content": "v1"}), now=later)
    assert replay.skipped_tombstoned == 1 and table(store).is_empty()
    assert store.read(BRONZE_ITEMS).height == 1


def test_already_expired_rows_are_not_inserted(store: DeltaStore) -> None:
    old = NOW - dt.timedelta(days=20)
    r = merge_platform_content(store, rows({"external_id": "1", "content": "x"}, fetched_at=old), now=NOW)
    assert (r.new, r.skipped_expired) == (0, 1)


def test_latest_version_in_one_batch_wins(store: DeltaStore) -> None:
    merge_platform_content(store, rows({"external_id": "1", "content": "first", "seq": 0},
                                       {"external_id": "1", "content": "second", "seq": 1}), now=NOW)
    assert table(store)["content"].to_list() == ["second"]


def test_users_are_separate_keys(store: DeltaStore) -> None:
    merge_platform_content(store, rows({"external_id": "1", "content": "a"}, user="alice"), now=NOW)
    merge_platform_content(store, rows({"external_id": "1", "content": "b"}, user="bob", batch="b9"), now=NOW)
    assert sorted(table(store)["user_id"].to_list()) == ["alice", "bob"]


@pytest.mark.parametrize("platform,days", [("slack", 14), ("gmail", 30), ("notion", 90), ("calendar", 2)])
def test_ttl_by_platform(store: DeltaStore, platform: str, days: int) -> None:
    merge_platform_content(store, rows({"external_id": "1", "content": "x"}, platform=platform), now=NOW)
    assert table(store)["expires_at"].item() == NOW + dt.timedelta(days=days)
