"""Corpus conformance through the real path: import jobs -> Dagster (bronze + silver) -> Delta tables.

For every corpus export folder, every file lands in silver, in bronze as a context object the
normalizers join against (users.json, channels.json…), as a deliberately filtered Slack system
message (counted), or in ``bronze/rejects`` with a reason and its bytes. Nothing vanishes.
"""

from __future__ import annotations

import datetime as dt
import json
import shutil
import zipfile
from pathlib import Path
from zoneinfo import ZoneInfo

import polars as pl

from tests.ingest.helpers import IngestHarness, meta
from yarn_assets.ingest.platforms.slack.normalize import FILTERED_SUBTYPES

UTC = dt.UTC


def _accounted_per_job(h: IngestHarness, platform: str, jobs: dict[str, str],
                       filtered_only: set[str] = frozenset()) -> None:  # type: ignore[assignment]
    """Every file is in silver or in rejects, or (``filtered_only``) in bronze and filtered on purpose."""
    silver, rejects, bronze_rows = h.silver(platform), h.rejects(platform), h.bronze(platform)
    for name, job_id in jobs.items():
        job = h.job(job_id)
        landed = silver.filter(pl.col("batch_id") == job_id).height
        rejected = rejects.filter(pl.col("batch_id") == job_id)
        if name in filtered_only:
            assert not landed and not rejected.height and bronze_rows.filter(pl.col("batch_id") == job_id).height
            continue
        assert landed or rejected.height, f"{name} is neither in silver nor in rejects"
        assert all(r.strip() for r in rejected["reason"]), name
        # the status tells the truth: a file whose every object was rejected has failed, and says why
        assert job.status == ("completed" if landed else "failed"), (name, job.status, job.error)
        if not landed:
            assert job.error and rejected["reason"][0][:40] in job.error, (name, job.error)


def test_slack_export_corpus(ingest: IngestHarness, corpus: Path, tmp_path: Path) -> None:
    se = corpus / "slack_export"
    # Variants built from the loose zulip files (recorded in PROVENANCE.md): their users/channels/dms/
    # mpims files as an export's workspace files, their message lists as day files.
    threads = tmp_path / "zulip_threads"
    for src, dst in [("zulip__exported_messages_users.json", "users.json"), ("zulip__channels.json", "channels.json"),
                     ("zulip__dms.json", "dms.json"), ("zulip__mpims.json", "mpims.json"),
                     ("zulip__exported_messages_normal_thread.json", "random/2015-06-12.json")]:
        (threads / dst).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(se / src, threads / dst)
    threads_zip = tmp_path / "zulip threads export.zip"
    with zipfile.ZipFile(threads_zip, "w") as zf:
        for p in sorted(threads.rglob("*")):
            if p.is_file():
                zf.write(p, p.relative_to(threads).as_posix())
    broadcast = tmp_path / "zulip_broadcast"
    (broadcast / "general").mkdir(parents=True)
    shutil.copy(se / "zulip__channels.json", broadcast / "channels.json")
    shutil.copy(se / "zulip__exported_messages_thread_with_broadcast_reply.json",
                broadcast / "general" / "2015-06-12.json")
    broken = tmp_path / "broken_day_file"
    shutil.copytree(se / "zulip__test_slack_importer", broken)
    truncated = (broken / "random" / "2018-01-20.json").read_bytes()[:500]
    (broken / "random" / "2018-01-20.json").write_bytes(truncated)

    jobs = {
        "hfaran_testarchive": ingest.register("u_hfaran", se / "hfaran_testarchive"),
        "zulip__test_slack_importer": ingest.register("u_zulip", se / "zulip__test_slack_importer"),
        "zulip threads": ingest.register("u_threads", threads_zip),
        "zulip broadcast": ingest.register("u_broadcast", broadcast, provider="slack_export"),
        "truncated day file": ingest.register("u_broken", broken),
    }
    result = ingest.run("slack")
    silver, bronze_rows, rejects = ingest.silver("slack"), ingest.bronze("slack"), ingest.rejects("slack")
    _accounted_per_job(ingest, "slack", jobs)

    # every message of every day file: in silver, filtered, or rejected
    keys = set(zip(silver["user_id"], silver["resource_id"], silver["external_id"], strict=True))
    rejected = set(zip(rejects["batch_id"], rejects["external_id"], strict=True))
    filtered = 0
    for row in bronze_rows.filter(pl.col("object_type") == "slack_message").iter_rows(named=True):
        subtype = json.loads(row["raw"]).get("subtype")
        if subtype in FILTERED_SUBTYPES:
            filtered += 1
            assert (row["user_id"], row["resource_id"], row["external_id"]) not in keys
        else:
            assert (row["user_id"], row["resource_id"], row["external_id"]) in keys or (
                row["batch_id"], row["external_id"]) in rejected, row
    silver_meta = result.asset_materializations_for_node("silver__platform_content")[0].metadata
    # hfaran 24 bots + 4 joins, zulip importer 4 joins, the truncated copy 1 join (its other file is a reject)
    assert silver_meta["filtered"].value == {"slack:bot_message": 24, "slack:channel_join": 9}
    assert filtered == 33
    # workspace files are context objects in bronze
    context = {(r["batch_id"], r["external_id"].rsplit("/", 1)[-1]): r["object_type"]
               for r in bronze_rows.filter(pl.col("object_type") != "slack_message").iter_rows(named=True)}
    assert context[(jobs["hfaran_testarchive"], "channels.json")] == "slack_channels"
    assert context[(jobs["hfaran_testarchive"], "integration_logs.json")] == "slack_export_meta"
    assert context[(jobs["zulip__test_slack_importer"], "users.json")] == "slack_users"
    for name in ("users.json", "channels.json", "dms.json", "mpims.json"):
        assert (jobs["zulip threads"], name) in context
    # the truncated day file: rejected whole, bytes kept, the other day file still lands
    bad = rejects.filter(pl.col("batch_id") == jobs["truncated day file"])
    assert bad["reason"].to_list()[0].startswith("day file is not valid JSON")
    assert bad["raw"].to_list() == [truncated] and bad["stage"].to_list() == ["bronze"]
    assert silver.filter(pl.col("user_id") == "u_broken")["external_id"].to_list() == ["1498401071.279035"]

    def row(user: str, ts: str) -> dict:
        found = silver.filter((pl.col("user_id") == user) & (pl.col("external_id") == ts))
        assert found.height == 1, (user, ts)
        return found.row(0, named=True)

    reply = row("u_threads", "1439868294.000007")
    assert reply["content_type"] == "thread_reply" and reply["thread_id"] == "1434139102.000002"
    assert reply["resource_id"] == "C061A0WJG" and reply["author"] == "Jane"
    assert meta(reply)["thread_ts"] == "1434139102.000002"
    early = row("u_threads", "1449868294.000007")  # ts earlier than its parent's
    assert early["content_type"] == "thread_reply" and early["thread_id"] == "1539868294.000007"
    broadcast_reply = row("u_broadcast", "1434139104.000002")
    assert broadcast_reply["content_type"] == "thread_reply"
    assert broadcast_reply["content"] == "everyone should see this"
    edited = row("u_hfaran", "1458972985.000010")  # the edit is applied: source_updated_at = edited.ts
    assert edited["source_updated_at"] == dt.datetime(2016, 3, 26, 8, 32, 14, tzinfo=UTC)
    assert edited["occurred_at"] == dt.datetime(2016, 3, 26, 6, 16, 25, 10, tzinfo=UTC)
    assert edited["created_day"] == "2016-03-26"
    assert row("u_zulip", "1516457078.000065")["author"] == "k._"
    assert row("u_hfaran", "1458972992.000011")["content"] == "@U0BMS113R: ^"  # unresolved ids stay ids
    assert set(silver.filter(pl.col("user_id") == "u_zulip")["expires_at"] - silver.filter(
        pl.col("user_id") == "u_zulip")["fetched_at"]) == {dt.timedelta(days=14)}


def test_slack_edit_and_delete_events_and_duplicates(ingest: IngestHarness, corpus: Path, tmp_path: Path) -> None:
    """A second export holding the same messages changes nothing; message_changed/deleted apply."""
    api = corpus / "slack_api"
    change = json.loads((api / "slackweb__SlackWebhookEvent_messageChange.json").read_text())["event"]
    delete = json.loads((api / "slackweb__SlackWebhookEvent_message_deleted.json").read_text())["event"]
    first = tmp_path / "first"
    (first / "general").mkdir(parents=True)
    (first / "channels.json").write_text(json.dumps([{"id": "C043YJGBY49", "name": "general"}]))
    day = [delete["previous_message"], dict(change["previous_message"], text="first draft")]
    (first / "general" / "2022-09-23.json").write_text(json.dumps(day))
    t0 = dt.datetime.now(UTC).replace(microsecond=0) - dt.timedelta(hours=3)
    job1 = ingest.register("u1", first, provider="slack_export", fetched_at=t0)
    ingest.run("slack")
    before = ingest.silver("slack").sort("external_id")
    assert before["content"].to_list() == ["This message will be deleted", "first draft"]

    second = tmp_path / "second"
    shutil.copytree(first, second)
    (second / "general" / "2022-09-24.json").write_text(json.dumps([change, delete]))
    job2 = ingest.register("u1", second, provider="slack_export", fetched_at=t0 + dt.timedelta(hours=1))
    ingest.run("slack")
    after = ingest.silver("slack")
    assert after.height == 1  # deleted by the message_deleted event
    edited = after.row(0, named=True)
    assert edited["external_id"] == "1663969333.524439" and edited["batch_id"] == job2
    assert edited["content"] == "https://jadeapptesting.slack.com/archives/C043YJGBY49/p1663966292304369"
    assert edited["source_updated_at"] == dt.datetime(2022, 9, 23, 21, 42, 14, 1500, tzinfo=UTC)
    assert job1 != job2


def test_duplicate_export_changes_nothing(ingest: IngestHarness, corpus: Path, tmp_path: Path) -> None:
    src = corpus / "slack_export" / "zulip__test_slack_importer"
    t0 = dt.datetime.now(UTC).replace(microsecond=0) - dt.timedelta(hours=2)
    job1 = ingest.register("u1", src, fetched_at=t0)
    ingest.run("slack")
    before = ingest.silver("slack").sort("external_id")
    bigger = tmp_path / "bigger"
    shutil.copytree(src, bigger)
    (bigger / "random" / "2018-01-21.json").write_text(json.dumps(
        [{"type": "message", "user": "U8VAHEVUY", "text": "one more", "ts": "1516540000.000100"}]))
    ingest.register("u1", bigger, provider="slack_export", fetched_at=t0 + dt.timedelta(hours=1))
    ingest.run("slack")
    after = ingest.silver("slack").sort("external_id")
    assert after.height == before.height + 1
    unchanged = after.filter(pl.col("external_id") != "1516540000.000100")
    assert unchanged.equals(before)  # same hashes: not even fetched_at or batch_id moved
    assert set(unchanged["batch_id"]) == {job1}


def test_mbox_eml_corpus_and_exact_reimport(ingest: IngestHarness, corpus: Path) -> None:
    files = sorted((corpus / "mbox_eml").iterdir())
    jobs = {p.name: ingest.register("u_mail", p) for p in files}
    ingest.run("gmail")
    _accounted_per_job(ingest, "gmail", jobs)
    silver, rejects = ingest.silver("gmail"), ingest.rejects("gmail")
    assert silver.height == 14 and rejects.height == 4
    assert set(rejects["reason"]) == {"not an RFC 5322 message: no header block"}

    def by_file(name: str) -> dict:
        found = silver.filter(pl.col("batch_id") == jobs[name])
        assert found.height == 1
        return found.row(0, named=True)

    spam = by_file("flanker__spam_broken-headers.eml")  # iso-8859-1 declared, Windows-1252 bytes
    assert spam["title"] == "Forget Asking For A Link Exchange…" and "secrets*:\xa0" in spam["content"]
    assert spam["occurred_at"] == dt.datetime(2012, 7, 13, 14, 6, 52, tzinfo=UTC)
    assert spam["resource_id"] == "file:flanker__spam_broken-headers.eml"
    assert by_file("flanker__mailformed-headers.eml")["author"] == "Юникод запрещенñ"
    assert by_file("flanker__bilingual-simple.eml")["title"] == "Simple text. How are you? Как ты поживаешь?"
    pdf = by_file("flanker__attached-pdf.eml")
    assert meta(pdf)["attachments"] == ["test.pdf"] and pdf["content"] == "Test - body content"
    assert set(silver["expires_at"] - silver["fetched_at"]) == {dt.timedelta(days=30)}

    # an exact re-import (the partition materialized again) changes nothing anywhere
    bronze_before, silver_before = ingest.bronze("gmail"), silver.sort("external_id")
    ingest.run("gmail")
    assert ingest.silver("gmail").sort("external_id").equals(silver_before)
    same = lambda df: df.drop("run_id").sort("batch_id", "seq")  # noqa: E731  (run_id names the replaying run)
    assert same(ingest.bronze("gmail")).equals(same(bronze_before))
    assert ingest.rejects("gmail").height == 4


def _zurich_weekdays_at_14(start: dt.datetime, end: dt.datetime) -> list[dt.datetime]:
    zurich = ZoneInfo("Europe/Zurich")
    day, out = start.astimezone(zurich).date() - dt.timedelta(days=1), []
    while day <= end.date() + dt.timedelta(days=1):
        local = dt.datetime.combine(day, dt.time(14), zurich)
        if local.weekday() < 5 and start < local.astimezone(UTC) + dt.timedelta(minutes=30) and local < end:
            out.append(local.astimezone(UTC))
        day += dt.timedelta(days=1)
    return out


def test_ics_corpus_with_recurrences_in_the_window(ingest: IngestHarness, corpus: Path) -> None:
    fetched = (dt.datetime.now(UTC) - dt.timedelta(hours=1)).replace(minute=7, second=0, microsecond=0)
    files = sorted((corpus / "ics").iterdir())
    jobs = {p.name: ingest.register("u_cal", p, fetched_at=fetched) for p in files}
    result = ingest.run("calendar")
    # files whose events all lie outside the window around the landing time: bronze only, counted
    landed = set(ingest.silver("calendar")["batch_id"]) | set(ingest.rejects("calendar")["batch_id"])
    outside = {name for name, job in jobs.items() if job not in landed}
    assert "icalendar__calendars_alarm_thunderbird_future.ics" in outside  # its one event is in 2024
    _accounted_per_job(ingest, "calendar", jobs, filtered_only=outside)
    mat = result.asset_materializations_for_node("silver__platform_content")[0]
    filtered = mat.metadata["filtered"].value
    assert filtered["calendar_outside_window"] + filtered["calendar_series_outside_window"] >= len(outside)
    silver, rejects = ingest.silver("calendar"), ingest.rejects("calendar")
    reasons = {name: rejects.filter(pl.col("batch_id") == job)["reason"].to_list() for name, job in jobs.items()}
    assert reasons["icalendar__calendars_bom_calendar.ics"] == ["calendar has no events (no VEVENT component)"]
    assert reasons["icalendar__calendars_broken_ical.ics"][0].startswith("event has no usable DTSTART")

    daily = silver.filter(pl.col("batch_id") == jobs["icalendar__calendars_x_location.ics"]).sort("occurred_at")
    window = (fetched - dt.timedelta(days=7), fetched + dt.timedelta(days=14))
    expected = _zurich_weekdays_at_14(*window)
    assert 14 <= len(expected) <= 16
    assert daily["occurred_at"].to_list() == expected
    assert daily["ends_at"].to_list() == [e + dt.timedelta(minutes=30) for e in expected]
    uid = "BFE33ADD-5553-48B5-B5A5-F9DA5CA4C393"
    assert daily["external_id"].to_list() == [f"{uid}/{e:%Y%m%dT%H%M%SZ}" for e in expected]
    assert set(daily["created_day"]) == {"2016-10-29"}  # CREATED: instances share the series' partition
    first = daily.row(0, named=True)
    assert first["content"].startswith(f"Daily Sync\nWhen: {expected[0].isoformat()} — ")
    assert "Location: Roadstar 16\n12764 Happyville\nDenmark" in first["content"]
    # its event (2024-10-23) is outside today's window: bronze keeps it, silver does not
    assert silver.filter(pl.col("batch_id") == jobs["icalendar__calendars_alarm_thunderbird_future.ics"]).is_empty()
    assert set(silver["expires_at"] - silver["fetched_at"]) == {dt.timedelta(days=2)}
    assert set(silver["fetched_at"]) == {fetched}


def test_notion_export_corpus(ingest: IngestHarness, corpus: Path) -> None:
    ne = corpus / "notion_export"
    jobs = {
        "Notion.Test.Export.zip": ingest.register("u_md", ne / "obsidianimporter__Notion.Test.Export.zip"),
        "notion-testspace.zip": ingest.register("u_html", ne / "obsidianimporter__notion-testspace.zip"),
        "extracted folder": ingest.register("u_dir", ne / "extracted_from_Notion.Test.Export",
                                            provider="notion_export"),
    }
    ingest.run("notion")
    _accounted_per_job(ingest, "notion", jobs)
    silver, bronze_rows = ingest.silver("notion"), ingest.bronze("notion")
    rows = silver.filter((pl.col("user_id") == "u_md") & (pl.col("content_type") == "database_row"))
    assert rows.height == 269
    habit = rows.filter(pl.col("external_id") == "152bb52e-e2b5-804d-a922-efa8c3194444:@November 19, 2024")
    assert habit["content"].to_list() == [
        "Date: @November 19, 2024\nRan today: No\nMeditated: No\nPracticed guitar: No\n"
        "Full date: December 4, 2024 8:45 AM"]
    assert habit["resource_name"].to_list() == ["Habit Tracker"]
    # every member of every export is in the manifest, attachments included
    manifests = bronze_rows.filter(pl.col("object_type") == "notion_export_meta")
    members = {r["batch_id"]: json.loads(r["raw"])["members"] for r in manifests.iter_rows(named=True)}
    assert len(members[jobs["Notion.Test.Export.zip"]]) == 281
    assert {m["role"] for m in members[jobs["notion-testspace.zip"]]} == {"page", "attachment", "index"}
    html = silver.filter(pl.col("user_id") == "u_html")
    assert sorted(html["title"]) == ["Attachment Tests", "Block Reference", "Formatting Tests", "Notion-Testspace"]
    folder = silver.filter(pl.col("user_id") == "u_dir")
    assert folder.filter(pl.col("content_type") == "database_row").height == 269
    assert set(silver["expires_at"] - silver["fetched_at"]) == {dt.timedelta(days=90)}
