"""Slack export reader and message normalizer (per-object reference and vectorized path)."""

from __future__ import annotations

import datetime as dt
import json
import shutil
import sys
import zipfile
from collections import Counter
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from tests.ingest.helpers import meta, read_and_normalize
from yarn_assets.ingest import bronze
from yarn_assets.ingest.normalize import BatchContext, items_frame, normalize_objects
from yarn_assets.ingest.objects import RawObject, Reject
from yarn_assets.ingest.platforms.slack.export import read_slack_export
from yarn_assets.ingest.platforms.slack.normalize import (
    FILTERED_SUBTYPES,
    clean_mrkdwn,
    ts_to_datetime,
    user_display_name,
)
from yarn_assets.ingest.platforms.slack.normalize_frame import clean_mrkdwn_series, normalize_slack_frame

REPO = Path(__file__).resolve().parents[2]


def _event(corpus: Path, name: str) -> dict[str, Any]:
    data = json.loads((corpus / "slack_api" / name).read_text())
    return data.get("event", data)


def _export(root: Path, users: Any, channels: Any, days: dict[str, list[Any]]) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    if users is not None:
        (root / "users.json").write_text(json.dumps(users))
    if channels is not None:
        (root / "channels.json").write_text(json.dumps(channels))
    for rel, messages in days.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(json.dumps(messages) if not isinstance(messages, str) else messages)
    return root


def _vectorized_vs_reference(path: Path) -> tuple[pl.DataFrame, pl.DataFrame, Counter, Counter, list, list]:
    objects = [o for o in read_slack_export(path) if isinstance(o, RawObject)]
    batch = bronze.BatchInfo("u", "slack", dt.date(2026, 1, 1), "import", "slack_export", "b",
                             dt.datetime(2026, 1, 1, tzinfo=dt.UTC))
    frame = bronze.bronze_frame(objects, batch)
    context = bronze.to_objects(frame.filter(pl.col("object_type") != "slack_message"))
    messages = frame.filter(pl.col("object_type") == "slack_message")
    fast_ctx, slow_ctx = BatchContext(context), BatchContext(context)
    fast, fast_rejects = normalize_slack_frame(messages, fast_ctx)
    out = list(normalize_objects(bronze.to_objects(messages), slow_ctx))
    slow = items_frame([o for o in out if not isinstance(o, Reject)])
    slow_rejects = [o for o in out if isinstance(o, Reject)]

    def canon(df: pl.DataFrame) -> pl.DataFrame:
        return df.with_columns(
            pl.col("metadata").map_elements(lambda s: json.dumps(json.loads(s), sort_keys=True), pl.Utf8)
        ).sort("seq")

    return canon(fast), canon(slow), fast_ctx.filtered, slow_ctx.filtered, fast_rejects, slow_rejects


# --------------------------------------------------------------------------- pure functions


def test_ts_is_exact_utc_microseconds() -> None:
    assert ts_to_datetime("1458972985.000010") == dt.datetime(2016, 3, 26, 6, 16, 25, 10, tzinfo=dt.UTC)
    assert ts_to_datetime("1498401071.279035").microsecond == 279035  # no float rounding
    assert ts_to_datetime("1234") == dt.datetime.fromtimestamp(1234, dt.UTC)
    assert ts_to_datetime("") is None and ts_to_datetime("abc") is None and ts_to_datetime(None) is None


def test_mrkdwn_cleaning() -> None:
    users = {"U1": "Alice", "U2": "Bob"}
    channels = {"C9": "launch"}
    text = ("<@U1> and <@U2|bobby> and <@U404>: see <#C1|general>, <#C9> & <!channel> <!here|here> "
            "<!subteam^S1|@design> <https://x.example/a|the doc> <https://x.example/b> "
            "<mailto:a@b.example|a@b.example> 1 &lt; 2 &amp;&amp; 3 &gt; 2 &amp;lt;")
    expected = ("@Alice and @bobby and @U404: see #general, #launch & @channel @here "
                "@design the doc (https://x.example/a) https://x.example/b a@b.example 1 < 2 && 3 > 2 &lt;")
    assert clean_mrkdwn(text, users, channels) == expected
    series = pl.Series([text, "plain", None, "<@U2|> <#C9|> <!date^1392734382^{date}|Feb 18> <sms:+1|text me>"])
    assert clean_mrkdwn_series(series, users, channels).to_list() == [
        expected, "plain", None, "@Bob #launch Feb 18 text me"]


def test_user_display_name_order() -> None:
    assert user_display_name({"name": "n", "real_name": "R", "profile": {"display_name": "D"}}) == "D"
    assert user_display_name({"name": "n", "real_name": "R", "profile": {"display_name": ""}}) == "R"
    assert user_display_name({"name": "n", "profile": {"real_name": "P"}}) == "P"
    assert user_display_name({"name": "n"}) == "n"
    assert user_display_name({"id": "U1"}) is None


# --------------------------------------------------------------------------- corpus exports


def test_corpus_export_with_users_resolves_names_and_filters_joins(corpus: Path) -> None:
    items, read_rejects, rejects, filtered = read_and_normalize(
        corpus / "slack_export" / "zulip__test_slack_importer", "slack_export")
    assert not read_rejects and not rejects
    assert filtered == {"slack:channel_join": 4}  # 13 messages, 4 joins
    assert items.height == 9
    rows = {r["external_id"]: r for r in items.iter_rows(named=True)}
    upload = rows["1516457078.000065"]
    assert upload["author"] == "k._"  # profile.display_name
    assert upload["content"].startswith("@k._ uploaded a file: dirac72.md (https://plan8team.slack.com/files/")
    assert rows["1516468529.000046"]["content"] == "@channel"
    assert rows["1516468219.000018"]["author"] == "Rhea"
    assert upload["resource_id"] == upload["resource_name"] == "random"  # no channels.json: the folder name
    assert rows["1498401071.279035"]["occurred_at"] == dt.datetime(2017, 6, 25, 14, 31, 11, 279035, tzinfo=dt.UTC)


def test_corpus_export_unresolved_users_stay_ids_edit_applied(corpus: Path) -> None:
    items, _, rejects, filtered = read_and_normalize(corpus / "slack_export" / "hfaran_testarchive", "slack_export")
    assert not rejects
    assert filtered == {"slack:bot_message": 24, "slack:channel_join": 4}
    rows = {r["external_id"]: r for r in items.iter_rows(named=True)}
    edited = rows["1458972985.000010"]
    assert edited["source_updated_at"] == dt.datetime(2016, 3, 26, 8, 32, 14, tzinfo=dt.UTC)
    assert edited["content"].startswith('```{"cities": {')  # \/ unescaped by JSON, code kept
    assert rows["1458972992.000011"]["content"] == "@U0BMS113R: ^"  # users.json left out on purpose
    assert rows["1458972992.000011"]["author"] == "U0BMQB6JE"
    assert rows["1452988746.000017"]["content"] == (  # bot_add is not in the filtered list
        "added an integration to this channel: github (https://mesos-magellan.slack.com/services/B0JL6RASU)")
    assert {r["resource_id"] for r in items.iter_rows(named=True)} == {"C0JGLMMNX", "C0JL6CGQ2"}
    assert rows["1459113341.000019"]["content"].count("28919.8689279") == 8  # <tel:…|label> -> label


def _zulip_thread_export(corpus: Path, root: Path) -> Path:
    """Variant built from zulip fixtures: their users/channels files plus the thread files as day files."""
    se = corpus / "slack_export"
    root.mkdir(parents=True)
    shutil.copy(se / "zulip__exported_messages_users.json", root / "users.json")
    shutil.copy(se / "zulip__channels.json", root / "channels.json")
    shutil.copy(se / "zulip__dms.json", root / "dms.json")
    shutil.copy(se / "zulip__mpims.json", root / "mpims.json")
    (root / "random").mkdir()
    shutil.copy(se / "zulip__exported_messages_normal_thread.json", root / "random" / "2015-06-12.json")
    return root


def test_thread_replies_keep_thread_ts(corpus: Path, tmp_path: Path) -> None:
    items, _, rejects, _ = read_and_normalize(_zulip_thread_export(corpus, tmp_path / "exp"), "slack_export")
    assert not rejects
    rows = {r["external_id"]: r for r in items.iter_rows(named=True)}
    assert rows["1434139102.000002"]["content_type"] == "message"
    assert rows["1434139102.000002"]["thread_id"] == "1434139102.000002"
    assert rows["1439868294.000007"]["content_type"] == "thread_reply"
    assert rows["1439868294.000007"]["thread_id"] == "1434139102.000002"
    # a reply whose ts is earlier than its parent's is still a reply of that parent
    assert rows["1449868294.000007"]["content_type"] == "thread_reply"
    assert rows["1449868294.000007"]["thread_id"] == "1539868294.000007"
    assert rows["1439868294.000007"]["resource_id"] == "C061A0WJG"  # folder name resolved via channels.json
    assert rows["1439868294.000007"]["author"] == "Jane"  # real_name when there is no display name
    assert meta(rows["1439868294.000007"])["thread_ts"] == "1434139102.000002"


def test_api_event_payloads(corpus: Path, tmp_path: Path) -> None:
    """Events API message shapes (same objects as history/replies) as an export day file."""
    names = ["slackweb__SlackWebhookEvent_forwarded_message.json", "slackweb__SlackWebhookEvent_message_rich_text.json",
             "slackweb__SlackWebhookEvent_message_subtype_bot_message.json",
             "slackweb__SlackWebhookEvent_joinChannel.json", "slackweb__SlackWebhookEvent_email_message.json",
             "slackweb__SlackWebhookEvent_message_file_share.json",
             "javaslacksdk__events_MessageThreadBroadcastPayload.json"]
    events = [_event(corpus, n) for n in names]
    root = _export(tmp_path / "exp", json.loads((corpus / "slack_api" / "slackweb__ListRsp_with_bots.json")
                                                .read_text())["members"],
                   [{"id": "C043YJGBY49", "name": "general"}], {"general/2024-08-29.json": events})
    items, _, rejects, filtered = read_and_normalize(root, "slack_export")
    rows = {r["external_id"]: r for r in items.iter_rows(named=True)}
    assert rows["1724952300.110719"]["content"] == "123"  # forwarded: empty text, content from the attachment
    assert rows["1670625739.704049"]["content"] == "#general :cat: @U043H11ES4V https://google.com text text text"
    assert rows["1671217113.292829"]["content"]  # email forwarded into Slack: text from the file
    assert filtered == {"slack:bot_message": 1, "slack:channel_join": 1}
    # the schema-superset sample has ts "" -> a reject with the reason, not a crash
    assert [r.reason for r in rejects] == ["slack message without a valid ts ('')"]


def test_message_changed_and_deleted_events(corpus: Path, tmp_path: Path) -> None:
    change = _event(corpus, "slackweb__SlackWebhookEvent_messageChange.json")
    delete = _event(corpus, "slackweb__SlackWebhookEvent_message_deleted.json")
    original = dict(change["previous_message"], text="first draft")  # variant: the pre-edit text differs
    doomed = delete["previous_message"]
    root = _export(tmp_path / "exp", [], [{"id": "C043YJGBY49", "name": "general"}],
                   {"general/2022-09-23.json": [doomed, original, change, delete]})
    objects = [o for o in read_slack_export(root) if isinstance(o, RawObject)]
    assert [o.external_id for o in objects if o.object_type == "slack_message"] == [
        "1663966382.046509", "1663969333.524439", "1663969333.524439", "1663966382.046509"]
    assert [o.is_tombstone for o in objects if o.object_type == "slack_message"] == [False, False, False, True]
    items, _, rejects, _ = read_and_normalize(root, "slack_export")
    assert not rejects
    versions = items.filter(pl.col("external_id") == "1663969333.524439").sort("seq")
    assert versions["content"].to_list() == [
        "first draft", "https://jadeapptesting.slack.com/archives/C043YJGBY49/p1663966292304369"]
    assert versions["source_updated_at"][1] == dt.datetime(2022, 9, 23, 21, 42, 14, 1500, tzinfo=dt.UTC)
    deleted = items.filter(pl.col("external_id") == "1663966382.046509").sort("seq")
    assert deleted["is_deleted"].to_list() == [False, True]
    assert deleted["source_created_at"][1] == ts_to_datetime("1663966382.046509")  # same silver partition


def test_filtered_subtypes_are_exactly_the_originals() -> None:
    assert frozenset({
        "bot_message", "channel_join", "channel_leave", "channel_purpose", "channel_topic", "channel_rename",
        "channel_archive", "channel_unarchive", "group_join", "group_leave", "group_purpose", "group_topic",
    }) == FILTERED_SUBTYPES


def test_reader_rejects_bad_day_files_and_reads_zip_like_folder(corpus: Path, tmp_path: Path) -> None:
    root = _export(tmp_path / "exp", [], [{"id": "C1", "name": "general"}], {
        "general/2024-01-01.json": [{"type": "message", "user": "U1", "text": "hi", "ts": "1704067200.000100"}, 5],
        "general/2024-01-02.json": "[{not json",
        "general/2024-01-03.json": '{"ts": "1"}',
    })
    (root / "notes.txt").write_text("stray file")
    out = list(read_slack_export(root))
    rejects = {r.location: r.reason for r in out if isinstance(r, Reject)}
    assert rejects["general/2024-01-02.json"].startswith("day file is not valid JSON")
    assert rejects["general/2024-01-03.json"] == "day file is a JSON dict, expected an array of messages"
    assert rejects["general/2024-01-01.json#1"] == "message #1 is a JSON int, expected an object"
    assert rejects["notes.txt"].startswith("not part of a Slack export")
    bad = next(r for r in out if isinstance(r, Reject) and r.location == "general/2024-01-02.json")
    assert bad.raw == b"[{not json"  # the bytes are kept
    zipped = tmp_path / "export.zip"
    with zipfile.ZipFile(zipped, "w") as zf:
        for p in sorted(root.rglob("*")):
            if p.is_file():
                zf.write(p, f"My Workspace Slack export/{p.relative_to(root)}")
    from_zip = list(read_slack_export(zipped))
    assert [(o.object_type, o.external_id, o.raw) for o in from_zip if isinstance(o, RawObject)] == [
        (o.object_type, o.external_id.replace("users.json", "My Workspace Slack export/users.json")
         .replace("channels.json", "My Workspace Slack export/channels.json"), o.raw)
        for o in out if isinstance(o, RawObject)]


# --------------------------------------------------------------------------- vectorized == reference


@pytest.mark.parametrize("export", ["hfaran_testarchive", "zulip__test_slack_importer", "threads", "events"])
def test_vectorized_path_equals_per_object_reference(corpus: Path, tmp_path: Path, export: str) -> None:
    if export == "threads":
        path = _zulip_thread_export(corpus, tmp_path / "exp")
    elif export == "events":
        names = sorted(p.name for p in (corpus / "slack_api").glob("*Event*"))
        names.append("javaslacksdk__events_MessageThreadBroadcastPayload.json")
        events = [_event(corpus, n) for n in names]
        path = _export(tmp_path / "exp", [], [{"id": "C043YJGBY49", "name": "general"}],
                       {"general/2024-01-01.json": events})
    else:
        path = corpus / "slack_export" / export
    fast, slow, fast_filtered, slow_filtered, fast_rejects, slow_rejects = _vectorized_vs_reference(path)
    assert fast.height > 0
    assert fast.to_dicts() == slow.to_dicts()
    assert fast_filtered == slow_filtered
    assert sorted((r.external_id, r.reason) for r in fast_rejects) == sorted(
        (r.external_id, r.reason) for r in slow_rejects)


def _synthetic_batch() -> pl.DataFrame:
    """3 000 generated export messages plus the odd shapes the generator does not make, as one bronze batch."""
    sys.path.insert(0, str(REPO / "benchmarks"))
    try:
        from slack_normalize import synthetic_messages
    finally:
        sys.path.pop(0)
    objects, _ = synthetic_messages(3_000, users=40, seed=3)
    odd = [  # shapes the generator does not make
        {"type": "message", "user": "", "bot_id": "B9", "username": "ci", "text": "bot without subtype", "ts": "9.1"},
        {"type": "message", "user": "U00000001", "text": "   ", "files": [{"name": "a.pdf"}, {"title": "Spec"}],
         "ts": "10.000001"},
        {"type": "message", "subtype": "message_changed", "ts": "11.0",
         "message": {"user": "U00000002", "text": "new <@U00000003>", "ts": "1760000000.000000",
                     "edited": {"ts": "12.5"}}},
        {"type": "message", "subtype": "message_deleted", "deleted_ts": "1760000007.000001", "ts": "13.0"},
        {"type": "message", "text": "no ts"},
        # fields of unexpected types fail json_decode for their chunk only: those rows take the reference path
        {"type": "message", "user": "U00000004", "text": "odd count", "ts": "14.5", "reply_count": "3"},
        {"type": "message", "user": "U00000004", "text": "odd edit", "ts": "15.5", "edited": "yes"},
    ]
    objects += [RawObject("slack_message", str(i), json.dumps(m).encode(), resource_id="C1", resource_name="c")
                for i, m in enumerate(odd)]
    objects.append(RawObject("slack_message", "latin1", b'{"ts": "16.0", "text": "caf\xe9"}', resource_id="C1"))
    batch = bronze.BatchInfo("u", "slack", dt.date(2026, 1, 1), "import", "slack_export", "b",
                             dt.datetime(2026, 1, 1, tzinfo=dt.UTC))
    return bronze.bronze_frame(objects, batch)


def test_vectorized_path_equals_reference_on_synthetic_messages(tmp_path: Path) -> None:
    frame = _synthetic_batch()
    context = bronze.to_objects(frame.filter(pl.col("object_type") == "slack_users"))
    messages = frame.filter(pl.col("object_type") == "slack_message")
    fast, fast_rejects = normalize_slack_frame(messages, BatchContext(context))
    out = list(normalize_objects(bronze.to_objects(messages), BatchContext(context)))
    slow = items_frame([o for o in out if not isinstance(o, Reject)])
    canon = lambda df: df.with_columns(  # noqa: E731
        pl.col("metadata").map_elements(lambda s: json.dumps(json.loads(s), sort_keys=True), pl.Utf8)).sort("seq")
    assert canon(fast).to_dicts() == canon(slow).to_dicts()
    assert [r.reason for r in fast_rejects] == [r.reason for r in out if isinstance(r, Reject)]
    assert fast.filter(pl.col("is_deleted")).height == 1
    by_id = {r["external_id"]: r for r in fast.iter_rows(named=True)}
    assert by_id["9.1"]["author"] == "ci" and by_id["10.000001"]["content"] == "[file] a.pdf\n[file] Spec"
    assert meta(by_id["14.5"])["reply_count"] == 3 and by_id["15.5"]["source_updated_at"] is None
    assert [r.external_id for r in fast_rejects] == ["4", "latin1"]  # no ts; not UTF-8 JSON
    versions = fast.filter(pl.col("external_id") == "1760000000.000000").sort("seq")
    assert versions.height == 2 and versions["content"][-1] == "new @User 3"  # message_changed: a new version


def test_chunked_parallel_normalization_equals_one_pass(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """The Slack frame normalizer is row-wise: a batch cut into chunks on several threads gives the
    same items, rejects and filtered counts as one pass (edit/delete events and bad rows included)."""
    from yarn_assets.ingest import normalize as normalizers

    frame = _synthetic_batch()
    assert getattr(normalize_slack_frame, "row_wise", False)

    def run(workers: int, chunk_rows: int) -> tuple[pl.DataFrame, list[str], Counter]:
        monkeypatch.setattr(normalizers, "workers", lambda: workers)
        monkeypatch.setattr(normalizers, "ROW_WISE_CHUNK_ROWS", chunk_rows)
        filtered: Counter = Counter()
        items, rejects = normalizers.normalize_batch_frame(frame, filtered=filtered)
        return items.sort("seq"), sorted(r.reason for r in rejects), filtered

    one, one_rejects, one_filtered = run(1, 50_000)
    chunked, chunked_rejects, chunked_filtered = run(4, 250)  # ~12 chunks of the 3 000 rows
    assert one.height > 2_500 and one.to_dicts() == chunked.to_dicts()
    assert one_rejects == chunked_rejects and len(one_rejects) == 2
    assert one_filtered == chunked_filtered and sum(one_filtered.values()) > 0


def test_dm_folders_resolve_by_id_and_are_named_after_members(corpus: Path, tmp_path: Path) -> None:
    root = _zulip_thread_export(corpus, tmp_path / "exp")
    (root / "DJ47BL849").mkdir()
    (root / "DJ47BL849" / "2019-04-30.json").write_text(
        json.dumps([{"type": "message", "user": "U061A1R2R", "text": "hi", "ts": "1556638500.000100"}]))
    dm = next(o for o in read_slack_export(root) if isinstance(o, RawObject) and o.external_id == "1556638500.000100")
    assert (dm.resource_id, dm.resource_name) == ("DJ47BL849", "dm: Jon, Jane")
    assert dm.context["channel_kind"] == "dm"
