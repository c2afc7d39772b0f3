"""The generated sample workspace: real export formats, every platform per user, markers, determinism."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import polars as pl

from demo.sample_workspace import USERS, generate_workspace
from tests.ingest.helpers import IngestHarness, meta, read_and_normalize
from yarn_assets.ingest.readers import PROVIDER_PLATFORM, detect_provider

NOW = dt.datetime(2026, 3, 4, 15, 20, tzinfo=dt.UTC)


def test_deterministic_and_in_detectable_formats(tmp_path: Path) -> None:
    first = generate_workspace(tmp_path / "a", NOW)
    second = generate_workspace(tmp_path / "b", NOW)
    assert [e.path.read_bytes() for e in first.exports] == [e.path.read_bytes() for e in second.exports]
    later = generate_workspace(tmp_path / "c", NOW + dt.timedelta(days=1))
    assert first.exports[0].path.read_bytes() != later.exports[0].path.read_bytes()  # dates follow `now`
    for export in first.exports:
        assert detect_provider(export.path) == export.provider
    assert {u.id for u in first.users} >= {"alice", "bob"}
    for user in first.users:
        assert {PROVIDER_PLATFORM[e.provider] for e in first.exports_of(user.id)} == set(user.platforms)
    assert {"slack", "gmail", "calendar", "notion"} <= set(next(u for u in USERS if u.id == "alice").platforms)
    assert {"slack", "gmail", "calendar", "notion"} <= set(next(u for u in USERS if u.id == "bob").platforms)


def test_scenarios_are_present(tmp_path: Path) -> None:
    ws = generate_workspace(tmp_path, NOW)
    for user in (u for u in ws.users if u.id in ("alice", "bob")):
        items: dict[str, pl.DataFrame] = {}
        for export in ws.exports_of(user.id):
            got, read_rejects, rejects, filtered = read_and_normalize(export.path, export.provider, fetched_at=NOW)
            assert not read_rejects and not rejects, export.path
            items[PROVIDER_PLATFORM[export.provider]] = got
            if export.provider == "slack_export":
                assert filtered == {"slack:channel_join": 1, "slack:bot_message": 1}
        facts = ws.facts[user.id]
        slack = items["slack"]
        replies = slack.filter(pl.col("content_type") == "thread_reply")
        assert replies.height == 2 and set(replies["thread_id"]) == {facts["slack"]["thread_ts"]}
        edited = slack.filter(pl.col("source_updated_at").is_not_null())
        assert edited["content"].to_list() == [facts["slack"]["edited_text"]]
        mail = items["gmail"]
        unanswered = mail.filter(pl.col("external_id") == facts["gmail"]["unanswered_message_id"]).row(0, named=True)
        assert unanswered["occurred_at"] < NOW - dt.timedelta(days=3)
        assert mail.filter(pl.col("thread_id") == unanswered["thread_id"]).height == 1  # nobody replied
        assert mail.filter(pl.col("content_type") == "email")["resource_id"].is_in(
            ["label:INBOX", "label:SENT"]).sum() >= 4
        cal = items["calendar"]
        soon = cal.filter((pl.col("occurred_at") > NOW) & (pl.col("occurred_at") < NOW + dt.timedelta(hours=24))
                          & ~pl.col("is_deleted"))
        own_domain = user.email.split("@")[1]
        assert any(sum(not p.endswith(own_domain) for p in row["participants"]) >= 2
                   for row in soon.iter_rows(named=True))
        weekly = cal.filter(pl.col("thread_id") == facts["calendar"]["series_uid"])
        assert weekly.height >= 3 and all(meta(r)["rrule"].startswith("FREQ=WEEKLY")
                                          for r in weekly.iter_rows(named=True))
        zones = {meta(r)["timezone"] for r in cal.iter_rows(named=True)} - {None}
        assert len(zones) >= 3  # several time zones, all converted to UTC
        assert cal.filter(pl.col("is_deleted")).height == 1
        notion = items["notion"]
        assert notion.filter(pl.col("content_type") == "database_row").height == facts["notion"]["rows"]
        for platform, frame in items.items():
            hits = frame.filter(pl.col("content").str.contains(user.marker, literal=True)).height
            assert hits >= 2, (user.id, platform)


def test_demo_import_lands_every_platform_with_isolated_markers(ingest: IngestHarness, tmp_path: Path) -> None:
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    ws = generate_workspace(tmp_path / "ws", now)
    for export in ws.exports:
        ingest.register(export.user_id, export.path, export.provider, fetched_at=now)
    silver = []
    for platform in ("slack", "gmail", "calendar", "notion"):
        ingest.run(platform)
        silver.append(ingest.silver(platform))
        assert ingest.rejects(platform).is_empty(), platform
    table = pl.concat(silver)
    markers = {u.id: u.marker for u in ws.users}
    for user in ws.users:
        mine = table.filter(pl.col("user_id") == user.id)
        assert set(mine["platform"]) == set(user.platforms), user.id
        for platform in user.platforms:
            rows = mine.filter(pl.col("platform") == platform)
            assert rows.filter(pl.col("content").str.contains(user.marker, literal=True)).height >= 1, platform
        for other, marker in markers.items():
            if other != user.id:
                assert not mine["content"].str.contains(marker, literal=True).any(), (user.id, other)
