"""`yarnnn status`: per-user sync freshness, signals, deliverables, memory, imports, run failures; read-only."""

import datetime as dt
import json
import os
from pathlib import Path

import dagster as dg
from click.testing import CliRunner

from control_plane import db
from control_plane.models import (
    Deliverable,
    DeliverableVersion,
    ImportJob,
    PlatformConnection,
    SyncRegistry,
    User,
)
from yarn_assets.cli import main
from yarn_assets.core.activity_log import ActivityEvent, write_events

NOW = dt.datetime.now(dt.UTC).replace(microsecond=0)


@dg.asset(group_name="ops", description="Fails (test).")
def broken_asset() -> None:
    raise RuntimeError("boom")


def _seed(settings, store) -> None:  # type: ignore[no-untyped-def]
    url = settings.resolved_control_plane_url
    db.upgrade(url)
    with db.session_scope(url) as s:
        s.add_all([User(id="alice", email="a@example.com", tier="pro", timezone="Europe/Paris"),
                   User(id="bob", email="b@example.com")])
        s.flush()
        s.add(PlatformConnection(user_id="alice", platform="slack", status="active",
                                 last_synced_at=NOW - dt.timedelta(minutes=30)))
        s.add_all([
            SyncRegistry(user_id="alice", platform="slack", resource_id="C1", resource_name="#general",
                         item_count=120, last_synced_at=NOW - dt.timedelta(minutes=30)),
            SyncRegistry(user_id="alice", platform="slack", resource_id="C2", resource_name="#random",
                         item_count=5, last_synced_at=NOW - dt.timedelta(hours=5), last_error="not_in_channel"),
        ])
        due = Deliverable(user_id="alice", title="Weekly status", deliverable_type="status_report",
                          next_run_at=NOW - dt.timedelta(minutes=10))
        broken = Deliverable(user_id="alice", title="Client brief", deliverable_type="research_brief",
                             next_run_at=NOW + dt.timedelta(days=1))
        s.add_all([due, broken])
        s.flush()
        s.add(DeliverableVersion(deliverable_id=broken.id, version_number=1, status="failed",
                                 delivery_status="failed", delivery_error="SMTP 550 mailbox unavailable"))
        s.add(ImportJob(user_id="bob", platform="gmail", provider="mbox", original_name="takeout.mbox",
                        stored_path="/x", file_sha256="0" * 64, partition_date=NOW.date().isoformat(),
                        status="failed", error="mbox unreadable: bad From line", completed_at=NOW))
    write_events(store, [
        ActivityEvent("alice", "signal_processed", "2 signals, 1 action", "sig1",
                      created_at=NOW - dt.timedelta(hours=1)),
        ActivityEvent("alice", "memory_written", "3 facts", "mem1", created_at=NOW - dt.timedelta(hours=20)),
    ])


def test_status_reports_per_user_and_writes_nothing(settings, store, tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    _seed(settings, store)
    dagster_home = tmp_path / "dagster_home"
    dagster_home.mkdir()
    (dagster_home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    monkeypatch.setenv("DAGSTER_HOME", str(dagster_home))
    defs = dg.Definitions(assets=[broken_asset])
    job = defs.resolve_implicit_global_asset_job_def()
    with dg.DagsterInstance.get() as instance:
        alice_run = job.execute_in_process(instance=instance, raise_on_error=False, tags={"yarnnn/user_id": "alice"})
        op_run = job.execute_in_process(instance=instance, raise_on_error=False)

    def snapshot() -> dict[str, float]:
        files = [p for p in settings.resolved_home.rglob("*") if p.is_file()]
        files += [p for p in dagster_home.rglob("*") if p.is_file() and "logs" not in p.parts]
        return {str(p): os.stat(p).st_mtime_ns for p in files}

    before = snapshot()
    out = CliRunner().invoke(main, ["status"], catch_exceptions=False)
    assert out.exit_code == 0, out.output
    text = out.output
    assert "user alice (pro, Europe/Paris)" in text and "user bob (free, UTC)" in text
    assert "#random: not_in_channel" in text
    assert "last signal pass:" in text and "2 signals, 1 action" in text
    assert "deliverables: 2 active, 0 paused, 1 due now, 1 failed" in text
    assert "failed: Client brief v1: SMTP 550 mailbox unavailable" in text
    assert "[memory_written] 3 facts" in text
    assert "import jobs: failed 1" in text and "takeout.mbox: mbox unreadable" in text
    assert f"{alice_run.run_id[:8]} __ASSET_JOB" in text.split("user alice")[1]
    assert f"operator run failures (1):\n  {op_run.run_id[:8]}" in text
    assert snapshot() == before  # read-only: no file of the home or the instance changed

    as_json = CliRunner().invoke(main, ["status", "--user", "bob", "--json"], catch_exceptions=False)
    data = json.loads(as_json.output)
    assert list(data["users"]) == ["bob"]
    assert data["users"]["bob"]["imports"]["by_status"] == {"failed": 1}
    assert data["users"]["bob"]["run_failures"] == [] and data["operator_failures"] == []


def test_status_on_a_fresh_home_creates_nothing(settings) -> None:  # type: ignore[no-untyped-def]
    out = CliRunner().invoke(main, ["status"], catch_exceptions=False)
    assert out.exit_code == 0
    assert "control plane: database not created yet" in out.output
    assert not Path(settings.resolved_home).exists()
