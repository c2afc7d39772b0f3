"""Hourly TTL cleanup: expired rows and every copy of their bodies go, retained and live ones stay,
each user's event carries that user's counts, only the affected files are rewritten, and a rerun
of the hour changes nothing."""

import datetime as dt
import json
from pathlib import Path

import dagster as dg
import polars as pl
import pytest

from control_plane import db
from control_plane.models import ImportJob, User
from io_managers.delta_store import DeltaStore
from io_managers.predicates import Eq
from yarn_assets.core.activity_log import read_events
from yarn_assets.core.tables import ACTIVITY_LOG, BRONZE_ITEMS, PLATFORM_CONTENT, REJECTS
from yarn_assets.deliverables.retention import mark_retained
from yarn_assets.ingest import bronze, import_jobs, silver
from yarn_assets.ingest.objects import RawObject, Reject
from yarn_assets.ingest.platforms.gmail.export import read_eml, read_mbox
from yarn_assets.ops import cleanup
from yarn_assets.ops.assets import content_cleanup

# Relative to the clock (the suite's shifted runs move them): the cleanup hour is long past.
T0 = (dt.datetime.now(dt.UTC) - dt.timedelta(days=90)).replace(hour=10, minute=0, second=0, microsecond=0)
T1 = T0 + dt.timedelta(days=19)  # gmail TTL 30 d: T0's mails expire at T0 + 30 d, T1's are live at the cutoff
CUTOFF = T0 + dt.timedelta(days=30, hours=15)  # the end of the cleanup hour, 15 h after T0's mails expired
HOUR = (CUTOFF - dt.timedelta(hours=1)).strftime("%Y-%m-%d-%H:00")


def _objects(corpus: Path, names: list[str]) -> list[RawObject]:
    out: list[RawObject] = []
    for name in names:
        reader = read_mbox if name.endswith(".mbox") else read_eml
        out += [o for o in reader(corpus / "mbox_eml" / name) if isinstance(o, RawObject)]
    return out


def _land(store: DeltaStore, user: str, batch_id: str, objects: list[RawObject], fetched_at: dt.datetime,
          rejects: list[Reject] = ()) -> int:  # type: ignore[assignment]
    batch = bronze.BatchInfo(user_id=user, platform="gmail", ingest_date=fetched_at.date(), source_kind="import",
                             provider="eml", batch_id=batch_id, fetched_at=fetched_at)
    frame = bronze.bronze_frame(objects, batch)
    bronze.write_batch(store, frame, batch)
    bronze.write_rejects(store, bronze.reject_frame(rejects, stage="bronze", batch=batch, rejected_at=fetched_at),
                         stage="bronze", platform="gmail", ingest_date=batch.ingest_date, batch_ids=[batch_id])
    norm = silver.normalize_partition(bronze.read_partition(store, "gmail", batch.ingest_date))
    silver.merge_platform_content(store, norm.rows, now=fetched_at)
    return norm.rows.filter(pl.col("batch_id") == batch_id).height


@pytest.fixture
def warehouse(store: DeltaStore, corpus: Path) -> dict[str, object]:
    """alice: 4 mails at T0 (one retained later) + a users.json-like context object + a reject;
    bob: 2 mails at T0 and 2 at T1 (live at the cutoff); carol: 1 mail at T1 only."""
    users_json = RawObject(object_type="slack_users", external_id="users.json", raw=b'[{"id": "U1"}]')
    n_alice = _land(store, "alice", "a1",
                    [*_objects(corpus, ["flanker__iphone.eml", "flanker__bilingual-simple.eml",
                                        "cpython__mailbox_01.mbox"]), users_json],
                    T0, [Reject(reason="broken", raw=b"\x00garbage\xff", location="broken.mbox")])
    n_bob_old = _land(store, "bob", "b1", _objects(corpus, ["flanker__relative.eml", "flanker__enclosed.eml"]), T0)
    n_bob_new = _land(store, "bob", "b2", _objects(corpus, ["flanker__torture-part.eml",
                                                            "flanker__attached-pdf.eml"]), T1,
                      [Reject(reason="broken", raw=b"\x01later", location="late.mbox")])
    n_carol = _land(store, "carol", "c1", _objects(corpus, ["flanker__iphone.eml"]), T1)
    # a deliverable consumed one of alice's mails: a mark in gold/retained_items (silver is not touched;
    # the cleanup applies the mark instead of deleting the row)
    alice_rows = store.read(PLATFORM_CONTENT, Eq("user_id", "alice")).sort("external_id")
    kept = alice_rows.row(0, named=True)
    assert mark_retained(store, alice_rows.head(1), ref="version-kept", now=T0) == 1
    assert not store.read(PLATFORM_CONTENT, Eq("user_id", "alice"))["retained"].any()
    return {"alice": n_alice, "bob_old": n_bob_old, "bob_new": n_bob_new, "carol": n_carol, "kept": kept}


def _run(resources: dict) -> dg.ExecuteInProcessResult:  # type: ignore[type-arg]
    return dg.materialize([content_cleanup], partition_key=HOUR, resources=resources)


def test_cleanup_removes_expired_rows_and_every_copy_of_their_bodies(warehouse, store, resources) -> None:  # type: ignore[no-untyped-def]
    assert warehouse["alice"] >= 3 and warehouse["bob_old"] == 2 and warehouse["bob_new"] >= 1
    silver_files_before = set(store.files(PLATFORM_CONTENT)["path"])
    result = _run(resources)
    assert result.success

    rows = store.read(PLATFORM_CONTENT)
    by_user = dict(rows.group_by("user_id").len().iter_rows())
    assert by_user == {"alice": 1, "bob": warehouse["bob_new"], "carol": warehouse["carol"]}
    alice_row = rows.filter(pl.col("user_id") == "alice").row(0, named=True)
    assert alice_row["external_id"] == warehouse["kept"]["external_id"] and alice_row["retained"]
    assert (alice_row["retained_reason"], alice_row["retained_ref"], alice_row["expires_at"]) == (
        "deliverable_execution", "version-kept", None)
    assert alice_row["retained_at"] is not None
    assert rows.filter(~pl.col("retained"))["expires_at"].min() > CUTOFF

    items = store.read(BRONZE_ITEMS)
    expired = items.filter(pl.col("body_expired_at").is_not_null())
    # raw cleared, metadata and audit columns kept
    assert expired["raw"].null_count() == expired.height
    assert expired["raw_sha256"].null_count() == 0 and expired["raw_size"].null_count() == 0
    assert expired["raw_size"].max() > 0
    assert set(expired["body_expired_at"].to_list()) == {CUTOFF}
    alive = items.filter(pl.col("body_expired_at").is_null())
    # alice: only the retained mail's body and the batch's context object survive; bob's new batch is intact
    alice_alive = alive.filter(pl.col("user_id") == "alice")
    assert set(alice_alive["raw_sha256"]) == {warehouse["kept"]["raw_sha256"]} | set(
        alice_alive.filter(pl.col("object_type") == "slack_users")["raw_sha256"])
    assert alice_alive.filter(pl.col("object_type") == "slack_users").height == 1
    assert set(alive.filter(pl.col("user_id") == "bob")["batch_id"]) == {"b2"}
    assert alive.filter(pl.col("user_id") == "bob").height == items.filter(pl.col("batch_id") == "b2").height

    rejects = store.read(REJECTS)
    assert rejects.filter(pl.col("batch_id") == "a1")["raw"].to_list() == [None]
    assert rejects.filter(pl.col("batch_id") == "a1")["reason"].to_list() == ["broken"]  # audit trail stays
    assert rejects.filter(pl.col("batch_id") == "b2")["raw"].to_list() == [b"\x01later"]

    # one event per affected user with that user's own counts (never the global total)
    events = read_events(store, event_types=["content_cleanup"])
    meta = {r["user_id"]: json.loads(r["metadata"]) for r in events.iter_rows(named=True)}
    assert set(meta) == {"alice", "bob"}
    alice_bodies = items.filter((pl.col("user_id") == "alice") & pl.col("body_expired_at").is_not_null()).height
    assert meta["alice"]["silver_rows_deleted"] == warehouse["alice"] - 1
    assert meta["alice"]["silver_rows_by_platform"] == {"gmail": warehouse["alice"] - 1}
    assert meta["alice"]["bronze_bodies_expired"] == alice_bodies
    assert meta["alice"]["reject_bodies_cleared"] == 1
    assert meta["bob"]["silver_rows_deleted"] == 2 and meta["bob"]["bronze_bodies_expired"] == 2
    assert meta["bob"]["reject_bodies_cleared"] == 0
    assert events.filter(pl.col("user_id") == "alice")["created_at"].to_list() == [CUTOFF]

    md = result.asset_materializations_for_node("ops__content_cleanup")[0].metadata
    assert md["silver_rows_deleted"].value == warehouse["alice"] - 1 + 2
    assert md["silver_rows_retained_by_marks"].value == 1
    assert md["bronze_bodies_expired"].value == alice_bodies + 2
    assert md["bronze_bodies_kept_for_live_rows"].value == 2  # the retained mail + alice's context object
    assert md["users"].value == 2
    # only files of the partitions holding expired rows were rewritten
    assert 0 < md["silver_files_in_scope"].value <= md["silver_files_total"].value
    assert md["silver_files_removed"].value <= md["silver_files_in_scope"].value
    after = set(store.files(PLATFORM_CONTENT)["path"])
    assert len(silver_files_before - after) == md["silver_files_removed"].value
    checks = {c.check_name: c.passed for c in result.get_asset_check_evaluations()}
    assert checks == {"nothing_expired_left": True}


def test_rerunning_the_hour_changes_nothing(warehouse, store, resources) -> None:  # type: ignore[no-untyped-def]
    assert _run(resources).success
    snapshot = {spec.name: store.read(spec).sort(list(spec.schema)[:6]) for spec in (PLATFORM_CONTENT, BRONZE_ITEMS)}
    versions = {spec.name: store.version(spec) for spec in (PLATFORM_CONTENT, BRONZE_ITEMS, REJECTS)}
    events = store.read(ACTIVITY_LOG).height
    again = _run(resources)
    md = again.asset_materializations_for_node("ops__content_cleanup")[0].metadata
    assert (md["silver_rows_deleted"].value, md["bronze_bodies_expired"].value, md["reject_bodies_cleared"].value,
            md["events_written"].value) == (0, 0, 0, 0)
    assert {spec.name: store.version(spec) for spec in (PLATFORM_CONTENT, BRONZE_ITEMS, REJECTS)} == versions
    for spec in (PLATFORM_CONTENT, BRONZE_ITEMS):
        assert store.read(spec).sort(list(spec.schema)[:6]).equals(snapshot[spec.name])
    assert store.read(ACTIVITY_LOG).height == events


def test_silver_renormalization_skips_expired_bodies(warehouse, store, resources) -> None:  # type: ignore[no-untyped-def]
    """A backfill of the old ingest partition after cleanup does not resurrect deleted content."""
    assert _run(resources).success
    before = store.read(PLATFORM_CONTENT).sort("user_id", "external_id")
    norm = silver.normalize_partition(bronze.read_partition(store, "gmail", T0.date()))
    assert norm.skipped_expired_bodies > 0
    silver.merge_platform_content(store, norm.rows, now=CUTOFF)
    assert store.read(PLATFORM_CONTENT).sort("user_id", "external_id").equals(before)


def test_archived_export_is_deleted_once_every_body_from_it_expired(settings, store, corpus, tmp_path) -> None:  # type: ignore[no-untyped-def]
    url = settings.resolved_control_plane_url
    db.upgrade(url)
    archive = settings.resolved_home / "imports"
    src = corpus / "mbox_eml" / "flanker__iphone.eml"
    with db.session_scope(url) as s:
        s.add_all([User(id="alice", email="a@example.com"), User(id="bob", email="b@example.com")])
        s.flush()
        old, _ = import_jobs.register_import(s, user_id="alice", path=src, archive_root=archive)
        shared, _ = import_jobs.register_import(s, user_id="bob", path=src, archive_root=archive)
        other = tmp_path / "other.eml"
        other.write_bytes((corpus / "mbox_eml" / "flanker__enclosed.eml").read_bytes())
        recent, _ = import_jobs.register_import(s, user_id="alice", path=other, archive_root=archive)
        chat_file = tmp_path / "chats.jsonl"
        chat_file.write_text('{"session": "s1", "role": "user", "content": "hi"}\n')
        chat = ImportJob(user_id="alice", platform="chat", provider="chat_jsonl", original_name="chats.jsonl",
                         stored_path=str(archive / "c" / "chats.jsonl"), file_sha256="c" * 64,
                         partition_date=T0.date().isoformat(), status="completed")
        Path(chat.stored_path).parent.mkdir(parents=True)
        Path(chat.stored_path).write_text(chat_file.read_text())
        s.add(chat)
        for job, landed in ((old, T0), (shared, T0), (recent, T0), (chat, T0)):
            job.status, job.result = "completed", {"fetched_at": landed.isoformat()}
        ids = {"old": old.id, "shared": shared.id, "recent": recent.id}
        paths = {"shared_file": Path(old.stored_path), "other_file": Path(recent.stored_path),
                 "chat_file": Path(chat.stored_path)}
    assert paths["shared_file"].exists() and paths["other_file"].exists()
    # alice's and bob's copies of the same file were landed; the recent one still has a live body
    for user, job_id, fetched in (("alice", ids["old"], T0), ("bob", ids["shared"], T0), ("alice", ids["recent"], T0)):
        batch = bronze.BatchInfo(user, "gmail", fetched.date(), "import", "eml", job_id, fetched)
        objs = [o for o in read_eml(src if job_id != ids["recent"] else other) if isinstance(o, RawObject)]
        bronze.write_batch(store, bronze.bronze_frame(objs, batch), batch)
    report = cleanup.CleanupReport(cutoff=CUTOFF)
    # nothing expired in bronze yet (the rule runs first in the asset): the archive must stay
    with db.session_scope(url) as s:
        cleanup.delete_expired_archives(store, s, archive, CUTOFF, report)
    assert report.archives.rows == 0 and paths["shared_file"].exists()
    cleanup.expire_bronze_bodies(store, CUTOFF, report)
    store.update(BRONZE_ITEMS, Eq("batch_id", ids["recent"]), {"body_expired_at": "NULL"})  # pretend still live
    with db.session_scope(url) as s:
        cleanup.delete_expired_archives(store, s, archive, CUTOFF, report)
    assert not paths["shared_file"].exists() and not paths["shared_file"].parent.exists()
    assert paths["other_file"].exists()
    assert paths["chat_file"].exists()  # chat exports (memory's input) have no content TTL
    assert report.archives.by_user == {"alice": 1, "bob": 1}
    with db.session_scope(url) as s:  # the job rows (audit trail) are untouched
        assert s.get(ImportJob, ids["old"]).status == "completed"


def test_housekeeping_on_a_fresh_warehouse_succeeds_and_creates_nothing(settings) -> None:  # type: ignore[no-untyped-def]
    from yarn_assets.definitions import build_definitions

    defs = build_definitions(settings)
    for job, key in (("content_cleanup_job", HOUR), ("table_maintenance_job", CUTOFF.date().isoformat()),
                     ("warehouse_checks_job", None)):
        result = defs.resolve_job_def(job).execute_in_process(partition_key=key)
        assert result.success and all(e.passed for e in result.get_asset_check_evaluations())
    assert not Path(settings.resolved_warehouse_root).exists()
