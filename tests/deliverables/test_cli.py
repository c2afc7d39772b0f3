"""``yarnnn deliverables``: create, list, edit, pause/resume, run (request and inline), resend."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner
from sqlalchemy import select

from control_plane import db
from control_plane.models import Deliverable, DeliverableRunRequest
from tests.deliverables.helpers import sample_content, seed_silver
from yarn_assets.cli import main


def _run(*args: str) -> str:
    result = CliRunner().invoke(main, list(args), catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.output


def test_cli_lifecycle(workspace, store, tmp_path: Path, monkeypatch) -> None:
    seed_silver(store, sample_content("alice"))
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "dagster_home"))
    (tmp_path / "dagster_home").mkdir()
    out = _run("deliverables", "create", "--user", "alice", "--type", "slack_channel_digest", "--title", "Eng digest",
               "--source", "slack:C02ENG", "--frequency", "daily", "--time", "08:30")
    assert "daily at 08:30 (Europe/Paris)" in out
    with db.session_scope(workspace) as s:
        d = s.scalars(select(Deliverable)).one()
        did = d.id
        assert d.sources == [{"platform": "slack", "resource_id": "C02ENG", "resource_name": None}]
    assert "Eng digest" in _run("deliverables", "list", "--user", "alice")
    assert "paused" in _run("deliverables", "pause", did[:8])
    assert "active" in _run("deliverables", "resume", did[:8])
    out = _run("deliverables", "edit", did[:8], "--email", "alice@northwind.example", "--recipient-role", "CTO",
               "--frequency", "weekly", "--day", "tuesday")
    assert "destination" in out and "schedule" in out
    bad = CliRunner().invoke(main, ["deliverables", "edit", did[:8], "--email", "x@y.z, attacker@example.com"])
    assert bad.exit_code != 0 and "email destination" in bad.output
    _run("deliverables", "edit", did[:8], "--file")
    assert "requested generation" in _run("deliverables", "run", did[:8])
    with db.session_scope(workspace) as s:
        assert s.scalars(select(DeliverableRunRequest)).one().status == "pending"
    out = _run("deliverables", "run", did[:8], "--inline")
    assert "success; v1 delivered, delivery delivered" in out
    with db.session_scope(workspace) as s:
        assert s.scalars(select(DeliverableRunRequest)).one().status == "completed"  # the run took the request
    show = _run("deliverables", "show", did[:8])
    assert "gather_platform:ok" in show and "deliver:ok" in show
    assert "delivered to file:outbox" in _run("deliverables", "resend", did[:8], "1")
