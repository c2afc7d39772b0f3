"""Import jobs through Dagster: bronze + silver land, replays are identical, the sensor launches runs."""

import datetime as dt
import shutil
from pathlib import Path

import dagster as dg
import polars as pl

from control_plane import db
from control_plane.models import ImportJob, User
from io_managers.delta_store import DeltaStore
from sensors.ingest import import_jobs_sensor
from yarn_assets.core.activity_log import read_events
from yarn_assets.core.tables import BRONZE_ITEMS, PLATFORM_CONTENT, REJECTS
from yarn_assets.ingest import import_jobs
from yarn_assets.ingest.assets import bronze_imported_items, silver_platform_content

DAY = dt.date.today().isoformat()


def _user(settings, user_id: str = "alice") -> None:  # type: ignore[no-untyped-def]
    url = settings.resolved_control_plane_url
    db.upgrade(url)
    with db.session_scope(url) as s:
        s.add(User(id=user_id, email=f"{user_id}@example.com", tier="pro"))


def _register(settings, path: Path, user_id: str = "alice") -> str:  # type: ignore[no-untyped-def]
    with db.session_scope(settings.resolved_control_plane_url) as s:
        job, _ = import_jobs.register_import(s, user_id=user_id, path=path,
                                             archive_root=settings.resolved_home / "imports")
        return job.id


def _materialize(resources, key: str, tags: dict[str, str] | None = None) -> dg.ExecuteInProcessResult:  # type: ignore[no-untyped-def]
    return dg.materialize([bronze_imported_items, silver_platform_content], partition_key=key, resources=resources,
                          tags=tags)


def _silver(store: DeltaStore) -> pl.DataFrame:
    return store.read(PLATFORM_CONTENT).sort("user_id", "resource_id", "external_id")


def test_mail_import_lands_and_replays_identically(settings, resources, store, corpus) -> None:  # type: ignore[no-untyped-def]
    _user(settings)
    for name in ("flanker__bilingual-simple.eml", "cpython__mailbox_01.mbox", "flanker__iphone.eml"):
        _register(settings, corpus / "mbox_eml" / name)
    key = f"{DAY}|gmail"
    result = _materialize(resources, key)
    assert result.success
    first = _silver(store)
    assert first.height >= 3
    assert set(first["user_id"]) == {"alice"}
    assert first["occurred_at"].dtype == pl.Datetime("us", "UTC")
    bronze_rows = store.read(BRONZE_ITEMS).height
    events = read_events(store, user_ids=["alice"]).height

    with db.session_scope(settings.resolved_control_plane_url) as s:
        assert {j.status for j in s.query(ImportJob)} == {"completed"}  # silver merged every landing
    versions = (store.version(BRONZE_ITEMS), store.version(PLATFORM_CONTENT))

    again = _materialize(resources, key)  # nothing pending: nothing re-read, nothing re-normalized
    meta = again.asset_materializations_for_node("bronze__imported_items")[0].metadata
    assert meta["mode"].value == "nothing_pending" and meta["import_jobs"].value == 0
    smeta = again.asset_materializations_for_node("silver__platform_content")[0].metadata
    assert smeta["batches_merged"].value == 0 and smeta["batches_in_partition"].value == 3
    assert (store.version(BRONZE_ITEMS), store.version(PLATFORM_CONTENT)) == versions

    replay = _materialize(resources, key, tags={"yarnnn/replay": "full"})  # a parser fix: re-land, merge again
    meta = replay.asset_materializations_for_node("bronze__imported_items")[0].metadata
    assert meta["mode"].value == "replay" and meta["import_jobs"].value == 3
    smeta = replay.asset_materializations_for_node("silver__platform_content")[0].metadata
    assert smeta["mode"].value == "replay" and smeta["batches_merged"].value == 3
    assert _silver(store).equals(first)
    assert store.read(BRONZE_ITEMS).height == bronze_rows
    assert read_events(store, user_ids=["alice"]).height == events
    checks = {c.check_name: c.passed for c in replay.get_asset_check_evaluations()}
    assert checks == {"import_jobs_settled": True, "no_duplicate_keys": True, "users_match_bronze": True}
    with db.session_scope(settings.resolved_control_plane_url) as s:
        assert {j.status for j in s.query(ImportJob)} == {"completed"}


def test_unreadable_file_is_kept_as_a_reject_and_the_rest_lands(settings, resources, store, corpus, tmp_path) -> None:  # type: ignore[no-untyped-def]
    _user(settings)
    good = _register(settings, corpus / "mbox_eml" / "flanker__iphone.eml")
    broken = tmp_path / "broken.mbox"
    broken.write_bytes(b"\x00\x01 this is not an mbox \xff")
    bad = _register(settings, broken)
    result = _materialize(resources, f"{DAY}|gmail")
    assert result.success
    with db.session_scope(settings.resolved_control_plane_url) as s:
        statuses = {j.id: (j.status, j.error) for j in s.query(ImportJob)}
    assert statuses[good][0] == "completed"
    rejects = store.read(REJECTS)
    assert statuses[bad][0] in ("completed", "failed")
    assert rejects.height >= 1 and rejects["reason"].str.len_chars().min() > 0
    assert _silver(store).height >= 1


def test_sensor_registers_inbox_files_and_requests_one_run_per_partition(settings, corpus) -> None:  # type: ignore[no-untyped-def]
    _user(settings)
    inbox = settings.resolved_inbox_dir / "alice"
    inbox.mkdir(parents=True)
    shutil.copy(corpus / "mbox_eml" / "flanker__iphone.eml", inbox)
    shutil.copy(corpus / "ics" / "icaljs__google_birthday.ics", inbox)
    (settings.resolved_inbox_dir / "nobody").mkdir()
    shutil.copy(corpus / "mbox_eml" / "flanker__relative.eml", settings.resolved_inbox_dir / "nobody")
    from resources.registry import build_resources

    res = build_resources(settings)
    with dg.instance_for_test() as instance:
        ctx = dg.build_sensor_context(instance=instance, resources={"control_plane": res["control_plane"],
                                                                    "runtime": res["runtime"],
                                                                    "input_limits": res["input_limits"]})
        result = import_jobs_sensor(ctx)
    keys = sorted(r.partition_key for r in result.run_requests)
    assert keys == [f"{DAY}|calendar", f"{DAY}|gmail"]
    assert not list(inbox.iterdir())  # files left the inbox once registered
    rejected = settings.resolved_inbox_dir / "nobody" / "_rejected"
    assert "unknown user 'nobody'" in (rejected / "flanker__relative.eml.error.txt").read_text()
