"""How runs find their connections (config, tags, due ones), definitions wiring, PostgreSQL, and the CLI sync."""

from __future__ import annotations

import datetime as dt

import dagster as dg
import polars as pl
import pytest
from click.testing import CliRunner

from tests.fakes.slack_api import BOT_TOKEN
from tests.sync.conftest import metadata
from yarn_assets.ingest.sync.asset import TAG_CONNECTIONS
from yarn_assets.ingest.sync.runner import sync_connection


def test_definitions_wire_asset_sensor_job_and_resources(api_env):
    from sensors.ingest import platform_sync_sensor
    from yarn_assets.definitions import defs
    from yarn_assets.ingest.sources import BRONZE_SYNCS

    d = defs()
    dg.Definitions.validate_loadable(d)
    asset = d.resolve_assets_def(BRONZE_SYNCS)
    assert asset.partitions_def is not None and asset.node_def.pool == "platform_api"
    assert d.resolve_job_def("platform_sync_job") is not None
    assert platform_sync_sensor.minimum_interval_seconds == 300
    assert "platform_clients" in d.resources


def test_runs_pick_connections_from_tags_or_due(world):
    world.slack.add_channel("C1", "general", 3)
    world.slack.fill("C1", 2)
    md = metadata(world.sync("slack", tags={TAG_CONNECTIONS: world.connections["slack"][:8]}))
    assert md["connections"] == 1 and md["objects"] == 2
    # nothing named: every due connection of the platform (ana just synced: not due for 45 minutes)
    md = metadata(world.sync("slack", connection_ids=[]))
    assert md["connections"] == 0 and world.connections["slack"] in md["not_due"]


def test_full_sync_path_on_postgres(world_pg):
    w = world_pg
    assert w.settings.resolved_control_plane_url.startswith("postgresql")
    w.slack.add_channel("C1", "general", 3)
    w.slack.fill("C1", 30)
    md = metadata(w.sync("slack"))
    assert md["objects"] == 30 and w.silver("slack").height == 30
    w.slack.fill("C1", 2)
    out = sync_connection(w.env(run_id="pg-2"), w.connections["slack"])
    assert out.status == "synced" and out.resources["C1"]["new"] == 2
    assert w.registry("slack")["C1"]["cursor"] == max(w.slack.channels["C1"].messages)


def test_calendar_window_slides_daily(world):
    g = world.google
    now = dt.datetime.now(dt.UTC)
    g.add_event(now + dt.timedelta(days=3))
    sync_connection(world.env(), world.connections["calendar"], now=now)
    g.reset_log()
    sync_connection(world.env(run_id="r2"), world.connections["calendar"], now=now + dt.timedelta(hours=2))
    assert g.matching("GET", r"/events$")[0].param("syncToken")
    g.reset_log()
    later = now + dt.timedelta(days=1, minutes=1)
    sync_connection(world.env(run_id="r3"), world.connections["calendar"], now=later)
    call = g.matching("GET", r"/events$")[0]
    assert call.param("syncToken") is None and call.param("timeMax").startswith(
        (later + dt.timedelta(days=14)).strftime("%Y-%m-%dT%H:%M"))


@pytest.fixture
def runner_env(world, monkeypatch):
    monkeypatch.delenv("DAGSTER_HOME", raising=False)
    return CliRunner()


def test_cli_sync_reports_and_fails_loudly(world, runner_env):
    from yarn_assets.cli import main

    world.slack.add_channel("C1", "general", 3)
    world.slack.fill("C1", 4)
    result = runner_env.invoke(main, ["connections", "sync", "--user", "ana", "--platform", "slack"])
    assert result.exit_code == 0, result.output
    assert "4 objects (0 deletions)" in result.output and "silver updated" in result.output
    assert world.silver("slack").filter(pl.col("resource_id") == "C1").height == 4
    world.slack.tokens[BOT_TOKEN] = "account_inactive"
    result = runner_env.invoke(main, ["connections", "sync", world.connections["slack"][:8]])
    assert result.exit_code == 1
    assert "Slack rejected the bot token (account_inactive)" in result.output
    assert BOT_TOKEN not in result.output
