"""The default executor (multiprocess, spawn) runs a real ingest partition: every step in a fresh
process, so deltalake's runtime never crosses a fork."""

import datetime as dt
import os

import dagster as dg
import pytest

from control_plane import db
from control_plane.models import User
from io_managers.delta_store import DeltaStore
from resources.settings import load_settings
from yarn_assets.core.partitions import ingest_key
from yarn_assets.core.tables import PLATFORM_CONTENT
from yarn_assets.ingest import import_jobs

pytestmark = pytest.mark.slow


def ingest_job_from_settings() -> dg.JobDefinition:
    from yarn_assets.definitions import build_definitions

    return build_definitions(load_settings()).resolve_job_def("ingest_job")


def test_ingest_partition_runs_on_the_multiprocess_spawn_executor(settings, corpus, tmp_path) -> None:  # type: ignore[no-untyped-def]
    assert load_settings().executor == "multiprocess"
    url = settings.resolved_control_plane_url
    db.upgrade(url)
    day = dt.datetime.now(dt.UTC).date()
    with db.session_scope(url) as s:
        s.add(User(id="alice", email="alice@example.com"))
        s.flush()
        import_jobs.register_import(s, user_id="alice", path=corpus / "mbox_eml" / "flanker__iphone.eml",
                                    archive_root=settings.resolved_home / "imports", partition_date=day)
    (tmp_path / "dh").mkdir()
    with dg.instance_for_test(temp_dir=str(tmp_path / "dh")) as instance:
        key = ingest_key(day.isoformat(), "gmail")
        result = dg.execute_job(dg.reconstructable(ingest_job_from_settings), instance=instance,
                                tags={"dagster/partition": key})
        assert result.success
        starts = {e.step_key: e.pid for e in result.all_events if e.event_type == dg.DagsterEventType.STEP_START}
        # each step in a process of its own; the cross-cutting checks ride along as ONE step
        assert set(starts) == {"bronze__platform_items__imports", "silver__platform_content", "warehouse_integrity"}
        assert len(set(starts.values())) == 3 and os.getpid() not in starts.values()
        scopes = {(e.asset_key.to_user_string(), e.check_name): e.metadata["scope"].value
                  for e in result.get_asset_check_evaluations() if "scope" in e.metadata}
        assert set(scopes.values()) == {f"platform gmail (run of partition {key})"}
        assert len(scopes) == 5
    assert DeltaStore(settings.resolved_warehouse_root).read(PLATFORM_CONTENT).height == 1
