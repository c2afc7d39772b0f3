"""Reader and normalizer limits, in process: each limit trips with its name, the rest still lands.

(The process-level bounds — peak RSS, exit status — are in ``test_hostile_inputs.py``.)
"""

from __future__ import annotations

import datetime as dt
import json
import os
import zipfile
from collections import Counter
from pathlib import Path

import pytest

from resources.input_limits import DEFAULT_LIMITS, InputLimits
from resources.settings import YarnSettings, load_settings
from tests.ingest.helpers import meta, read_and_normalize
from yarn_assets.ingest import bronze
from yarn_assets.ingest.json_depth import json_deeper_than
from yarn_assets.ingest.normalize import normalize_batch_frame
from yarn_assets.ingest.objects import RawObject, Reject
from yarn_assets.ingest.readers import reader_for

UTC = dt.UTC


def _read(provider: str, path: Path, **limits: object) -> tuple[list[RawObject], list[Reject]]:
    out = list(reader_for(provider)(path, InputLimits(**limits)))  # type: ignore[arg-type]
    return [o for o in out if isinstance(o, RawObject)], [o for o in out if isinstance(o, Reject)]


def test_every_limit_is_a_documented_setting_with_an_env_var(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in InputLimits.model_fields:
        info = YarnSettings.model_fields[name]
        assert info.description and info.default is not None, name
        assert getattr(DEFAULT_LIMITS, name) == info.default
    monkeypatch.setenv("YARNNN_IMPORT_MAX_MEMBER_BYTES", "1234")
    monkeypatch.setenv("YARNNN_ICS_MAX_INSTANCES_PER_SERIES", "7")
    limits = InputLimits.from_settings(load_settings())
    assert limits.import_max_member_bytes == 1234 and limits.ics_max_instances_per_series == 7
    docs = (Path(__file__).resolve().parents[2] / "docs" / "OPERATIONS.md").read_text()
    for name in InputLimits.model_fields:  # the operator's table lists every one
        assert f"YARNNN_{name.upper()}" in docs, name


def test_json_depth_check() -> None:
    assert not json_deeper_than(b"[" * 64 + b"]" * 64, 64)
    assert json_deeper_than(b"[" * 65 + b"]" * 65, 64)
    assert json_deeper_than(b'[{"a": ' * 40 + b"1" + b"}]" * 40, 64)
    # brackets inside strings are text, not nesting
    assert not json_deeper_than(json.dumps([{"text": "[" * 500 + "]" * 500}]).encode(), 64)
    assert not json_deeper_than(b"[[[[", 2)  # malformed: the parser reports it, not the depth check


def test_deep_slack_json_is_a_reject_naming_the_limit(tmp_path: Path) -> None:
    path = tmp_path / "export.zip"
    deep = b"[" + b'{"type": "message", "ts": "1.0", "blocks": ' + b"[" * 100 + b"]" * 100 + b"}]"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("users.json", b"[" * 5000 + b"]" * 5000)  # past the parser's own recursion limit
        zf.writestr("channels.json", b'[{"id": "C1", "name": "general"}]')
        zf.writestr("general/2026-01-01.json", deep)
        zf.writestr("general/2026-01-02.json", b'[{"type": "message", "text": "ok", "ts": "2.0"}]')
    objects, rejects = _read("slack_export", path)
    reasons = {r.location: r.reason for r in rejects}
    assert reasons["users.json"] == "users.json is not valid JSON: nested deeper than yarnnn import_max_json_depth=64"
    assert reasons["general/2026-01-01.json"] == "day file nests deeper than yarnnn import_max_json_depth=64"
    assert [o.external_id for o in objects if o.object_type == "slack_message"] == ["2.0"]


def test_object_cap_stops_the_import_with_one_reject(tmp_path: Path) -> None:
    box = tmp_path / "box.mbox"
    box.write_bytes(b"".join(
        b"From a@x Mon Jan  5 10:00:%02d 2026\nMessage-ID: <m%d@x>\nSubject: s\n\nbody\n\n" % (i, i) for i in range(5)))
    objects, rejects = _read("mbox", box, import_max_objects=3)
    assert len(objects) == 3
    assert [r.reason for r in rejects] == ["import stops at yarnnn import_max_objects=3 messages: message #3 and the "
                                           "messages after it were not landed"]


def test_oversized_message_is_skipped_as_it_streams(tmp_path: Path) -> None:
    box = tmp_path / "box.mbox"
    big = b"x" * 5000 + b"\n"
    box.write_bytes(b"From a@x Mon Jan  5 10:00:00 2026\nSubject: big\n\n" + big * 3 + b"\n"
                    b"From a@x Mon Jan  5 10:00:01 2026\nMessage-ID: <small@x>\nSubject: small\n\nhi\n")
    objects, rejects = _read("mbox", box, import_max_message_bytes=10_000, import_reject_sample_bytes=100)
    assert [o.external_id for o in objects] == ["small@x"]
    assert rejects[0].reason == "message of 15018 bytes exceeds yarnnn import_max_message_bytes=10000"
    assert len(rejects[0].raw) < 200 and rejects[0].location == "box.mbox#0"


def test_chat_lines_and_eml_and_ics_sizes(tmp_path: Path) -> None:
    chat = tmp_path / "chat.jsonl"
    chat.write_bytes(b'{"session_id": "s", "sequence": 1, "role": "user", "content": "hi"}\n'
                     + b'{"x": "' + b"y" * 5000 + b'"}\n'
                     + b'{"session_id": "s", "sequence": 2, "role": "user", "content": "again"}\n')
    objects, rejects = _read("chat_jsonl", chat, import_max_message_bytes=1000)
    assert [o.external_id for o in objects] == ["s:1", "s:2"]
    assert rejects[0].reason == "line 2 of 5010 bytes exceeds yarnnn import_max_message_bytes=1000"
    eml = tmp_path / "big.eml"
    eml.write_bytes(b"Subject: x\n\n" + b"y" * 2000)
    assert _read("eml", eml, import_max_message_bytes=1000)[1][0].reason.startswith(
        "message file of 2012 bytes exceeds yarnnn import_max_message_bytes=1000")
    ics = tmp_path / "big.ics"
    ics.write_bytes(b"BEGIN:VCALENDAR\r\n" + b"X-PAD:" + b"p" * 2000 + b"\r\nEND:VCALENDAR\r\n")
    assert _read("ics", ics, import_max_ics_bytes=1000)[1][0].reason.startswith(
        ".ics file of 2040 bytes exceeds yarnnn import_max_ics_bytes=1000")


def test_folder_exports_refuse_links_and_fifos_inside(tmp_path: Path) -> None:
    root = tmp_path / "export"
    (root / "general").mkdir(parents=True)
    (root / "users.json").write_text("[]")
    (root / "channels.json").write_text('[{"id": "C1", "name": "general"}]')
    (root / "general" / "2026-01-01.json").write_text('[{"type": "message", "text": "ok", "ts": "1.0"}]')
    secret = tmp_path / "secret.json"
    secret.write_text('[{"type": "message", "text": "secret", "ts": "9.0"}]')
    (root / "general" / "2026-01-02.json").symlink_to(secret)
    os.mkfifo(root / "general" / "2026-01-03.json")
    objects, rejects = _read("slack_export", root)
    assert [o.external_id for o in objects if o.object_type == "slack_message"] == ["1.0"]
    assert sorted((r.location, r.reason) for r in rejects) == [
        ("general/2026-01-02.json", "a symlink in the export folder: refused, never read"),
        ("general/2026-01-03.json", "a FIFO in the export folder: refused, never read"),
    ]


def test_moving_the_start_keeps_every_instance_where_it_was(tmp_path: Path) -> None:
    """A rule walked from far back and the same rule started near the window give the same instances."""
    path = tmp_path / "cal.ics"
    path.write_text(
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//t//EN\r\n"
        "BEGIN:VEVENT\r\nUID:standup\r\nDTSTART;TZID=Europe/Berlin:20100104T093000\r\nDURATION:PT15M\r\n"
        "RRULE:FREQ=HOURLY;INTERVAL=5;BYDAY=MO,TU,WE,TH,FR\r\nEXDATE;TZID=Europe/Berlin:20260312T023000\r\n"
        "SUMMARY:every five hours on weekdays\r\nEND:VEVENT\r\n"
        "BEGIN:VEVENT\r\nUID:standup\r\nRECURRENCE-ID;TZID=Europe/Berlin:20260313T073000\r\n"
        "DTSTART;TZID=Europe/Berlin:20260313T080000\r\nDURATION:PT15M\r\nSUMMARY:moved\r\nEND:VEVENT\r\n"
        "END:VCALENDAR\r\n")
    fetched = dt.datetime(2026, 3, 10, 12, tzinfo=UTC)
    objects, _ = _read("ics", path)
    batch = bronze.BatchInfo("u", "calendar", fetched.date(), "import", "ics", "b", fetched)

    def run(**limits: object) -> tuple[list[tuple[str, dt.datetime]], Counter[str]]:
        stats: Counter[str] = Counter()
        items, _ = normalize_batch_frame(bronze.bronze_frame(objects, batch), limits=InputLimits(**limits),
                                         stats=stats)  # type: ignore[arg-type]
        return sorted(zip(items["external_id"], items["occurred_at"], strict=True)), stats

    walked, walked_stats = run(ics_max_rule_steps=10_000_000)
    moved, moved_stats = run(ics_max_rule_steps=100)
    assert walked == moved and len(walked) > 50
    assert "ics_series_start_moved" not in walked_stats and moved_stats["ics_series_start_moved"] == 1
    assert ("standup/20260313T063000Z", dt.datetime(2026, 3, 13, 7, tzinfo=UTC)) in moved  # the override
    assert all(not eid.endswith("20260312T013000Z") for eid, _ in moved)  # the EXDATE


def test_instance_cap_and_time_budget_are_settings(tmp_path: Path) -> None:
    path = tmp_path / "cal.ics"
    path.write_text(
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//t//EN\r\n"
        "BEGIN:VEVENT\r\nUID:hourly\r\nDTSTART:20260301T000000Z\r\nRRULE:FREQ=HOURLY\r\nSUMMARY:h\r\nEND:VEVENT\r\n"
        "BEGIN:VEVENT\r\nUID:never\r\nDTSTART:20000101T000000Z\r\nRRULE:FREQ=DAILY;BYMONTH=2;BYMONTHDAY=30\r\n"
        "SUMMARY:n\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n")
    fetched = dt.datetime(2026, 3, 10, 12, tzinfo=UTC)
    objects, _ = _read("ics", path)
    batch = bronze.BatchInfo("u", "calendar", fetched.date(), "import", "ics", "b", fetched)
    filtered: Counter[str] = Counter()
    items, _ = normalize_batch_frame(bronze.bronze_frame(objects, batch), filtered=filtered, limits=InputLimits(
        ics_max_instances_per_series=24, ics_max_expansion_seconds=0.5))
    hourly = [meta(r) for r in items.iter_rows(named=True) if r["thread_id"] == "hourly"]
    assert len(hourly) == 24 and hourly[0]["start"] == "2026-03-03T12:00:00+00:00"
    # expansion stopped at the cap: the rest of the window is counted from the rule, and labelled so
    assert hourly[0]["instance_cap"] == 24 and hourly[0]["instances_dropped_exact"] is False
    assert hourly[0]["instances_dropped"] == 21 * 24 + 1 - 24  # the window holds 505 hours
    (never,) = [meta(r) for r in items.iter_rows(named=True) if r["thread_id"] == "never"]
    assert never["expansion_error"].startswith("not expanded: over its share (10%) of the file's expansion time "
                                               "budget, yarnnn ics_max_expansion_seconds=0.5")
    assert filtered["calendar_instances_over_cap"] == 21 * 24 + 1 - 24


def test_mbox_from_quoting_is_undone_in_silver_not_in_bronze(tmp_path: Path) -> None:
    box = tmp_path / "quoted.mbox"
    raw = (b"Message-ID: <q@x>\nSubject: quoting\n\nFrom the start\n>From here on\n>>From a quote\n"
           b"not >From the middle\n")
    box.write_bytes(b"From a@x Mon Jan  5 10:00:00 2026\n" + raw.replace(b"\nFrom the", b"\n>From the")
                    .replace(b"\n>From here", b"\n>>From here").replace(b"\n>>From a", b"\n>>>From a"))
    items, read_rejects, _, _ = read_and_normalize(box, "mbox")
    assert not read_rejects
    assert items.row(0, named=True)["content"].splitlines() == [
        "From the start", ">From here on", ">>From a quote", "not >From the middle"]
    objects, _ = _read("mbox", box)
    assert b"\n>From the start" in objects[0].raw  # bronze keeps the bytes as written
    eml = tmp_path / "quoted.eml"  # a single .eml is not mbox-quoted: left alone
    eml.write_bytes(b"Message-ID: <e@x>\nSubject: q\n\n>From a quote\n")
    assert read_and_normalize(eml, "eml")[0].row(0, named=True)["content"] == ">From a quote"
