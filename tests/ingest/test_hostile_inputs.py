"""Hostile and broken export files never take a process down (issue 11 §2).

Each file is generated here (zip bombs with honest and lying headers, zip-in-zip, deep nesting,
huge member counts, never-ending RRULEs, an endless mbox line) and read in a child process: the
child must exit cleanly, its peak RSS (``VmHWM``) must stay well under 1 GiB, and the reject
must name the limit that tripped. Reader children also run under ``RLIMIT_AS`` (the libraries'
own reservations are ~1.5 GB of address space, so 2.5 GiB leaves no room for a 1 GiB read).
The end-to-end cases materialize the real bronze and silver assets over such a file.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import threading
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import REPO
from tests.ingest import hostile_files as hf

READER_RSS_MB = 400  # a reader child idles at ~150 MB (polars, dagster imported)
IMPORT_RSS_MB = 600  # a Dagster materialization idles at ~350 MB
READER_ADDRESS_SPACE = int(2.5 * hf.GiB)


def run_child(mode: str, provider: str, path: Path, *, limits: dict[str, Any] | None = None,
              env: dict[str, str] | None = None, timeout: float = 300) -> tuple[dict[str, Any], int]:
    """Run ``tests.ingest.hostile_child``; (its JSON result, its peak RSS in MB).

    The peak is the child's ``VmHWM`` (its own memory since exec): ``ru_maxrss`` from ``wait4``
    would also count the pages of this (large) pytest process the child shared before exec.
    """
    child_env = {**os.environ, "POLARS_MAX_THREADS": "2", **(env or {})}
    if mode == "read":
        child_env["HOSTILE_AS_BYTES"] = str(READER_ADDRESS_SPACE)
    args = [sys.executable, "-m", "tests.ingest.hostile_child", mode, provider, str(path)]
    if limits:
        args.append(json.dumps(limits))
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        proc = subprocess.Popen(args, cwd=REPO, env=child_env, stdout=out, stderr=err)
        watchdog = threading.Timer(timeout, proc.kill)
        watchdog.start()
        try:
            _, status = os.waitpid(proc.pid, 0)
        finally:
            watchdog.cancel()
        proc.returncode = os.waitstatus_to_exitcode(status)  # reaped here, tell Popen
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read().decode(errors="replace"), err.read().decode(errors="replace")
    assert proc.returncode == 0, f"child exited {proc.returncode}: {stderr[-3000:]}"
    line = next(x for x in stdout.splitlines() if x.startswith("HOSTILE_RESULT "))
    result = json.loads(line.removeprefix("HOSTILE_RESULT "))
    return result, result["peak_rss_kb"] // 1024


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Every hostile file once per module (the 1 GiB bombs take ~2.5 s each to deflate)."""
    d = tmp_path_factory.mktemp("hostile")
    work = d / "work"
    work.mkdir()
    return {
        "slack_bomb": hf.slack_export(d / "slack bomb.zip"),
        "slack_lying": hf.lie_about_size(hf.slack_export(d / "slack lying.zip"), "general/2026-01-02.json",
                                         10 * hf.MiB),
        "slack_ratio": hf.slack_export(d / "slack ratio.zip", bomb_bytes=5 * hf.MiB),
        "notion_zip_in_zip": hf.notion_zip_in_zip(d / "notion.zip", work),
        "nested": hf.nested_zips(d / "nested.zip", 6),
        "many_members": hf.many_members(d / "many.zip", 100_001),
        "many_members_lying": hf.lie_about_count(hf.many_members(d / "many lying.zip", 100_001), 3),
        "ics": hf.never_ending_ics(d / "never ending.ics"),
        "mbox": hf.mbox_with_endless_line(d / "endless.mbox", 600 * hf.MiB),
        "mbox_huge": hf.mbox_with_endless_line(d / "huge.mbox", 2 * hf.GiB),
    }


def test_generated_files_are_small_on_disk(files: dict[str, Path]) -> None:
    assert files["slack_bomb"].stat().st_size < 2 * hf.MiB  # 1 GiB inside
    assert files["notion_zip_in_zip"].stat().st_size < 8 * 1024  # 1 GiB two levels down
    assert len(files["ics"].read_bytes()) < 1024
    assert os.stat(files["mbox_huge"]).st_blocks * 512 < hf.MiB  # sparse


@pytest.mark.parametrize(
    ("name", "provider", "location", "reason"),
    [
        ("slack_bomb", "slack_export", "general/2026-01-02.json",
         "day file member declares 1073741824 bytes, over yarnnn import_max_member_bytes=134217728"),
        ("slack_lying", "slack_export", "general/2026-01-02.json",
         "day file member unreadable: BadZipFile: Bad CRC-32"),
        ("slack_ratio", "slack_export", "general/2026-01-02.json",
         "day file member declares a compression ratio of"),
        ("notion_zip_in_zip", "notion_export", f"Export/Huge {'f' * 32}.md",
         "page member declares 1073741824 bytes, over yarnnn import_max_member_bytes=134217728"),
        ("nested", "notion_export", "level-3.zip",
         "nested zip not opened: it is zip level 3, over yarnnn import_max_archive_depth=2"),
        ("mbox", "mbox", "endless.mbox#0",
         "message of 629145554 bytes exceeds yarnnn import_max_message_bytes=67108864"),
        ("mbox_huge", "mbox", "huge.mbox",
         "mbox file of 2147483648 bytes exceeds yarnnn import_max_total_bytes=1073741824; not read"),
    ],
)
def test_bombs_become_rejects_and_the_rest_lands(files: dict[str, Path], name: str, provider: str, location: str,
                                                 reason: str) -> None:
    result, rss = run_child("read", provider, files[name])
    assert rss < READER_RSS_MB, f"{name}: peak RSS {rss} MB"
    rejects = {loc: why for loc, why, _ in result["rejects"]}
    assert rejects.get(location, "").startswith(reason), result["rejects"]
    assert all(size <= 64 * 1024 + 100 for _, _, size in result["rejects"])  # a sample is kept, never the bomb
    if provider == "slack_export":  # the ordinary day file and the workspace files still land
        assert result["objects"] == ["channels.json", "users.json", "1767225600.000100"] and result["items"] == 1
    if provider == "notion_export":  # the ordinary page (Part-2.zip, or the top level) still lands
        assert "01234567-89ab-cdef-0123-456789abcdef" in result["objects"] and result["items"] == 1


@pytest.mark.parametrize("name", ["many_members", "many_members_lying"])
def test_member_count_is_read_from_the_directory_before_parsing(files: dict[str, Path], name: str) -> None:
    result, rss = run_child("read", "slack_export", files[name])
    assert rss < READER_RSS_MB
    assert "has 100003 members: the export would exceed yarnnn import_max_members=100000" in result["unreadable"]


def test_a_nested_zip_over_the_member_count_is_rejected_alone(tmp_path: Path) -> None:
    inner = hf.many_members(tmp_path / "inner.zip", 2_000)
    good = tmp_path / "good.zip"
    import zipfile

    with zipfile.ZipFile(good, "w") as zf:
        zf.writestr(f"Export/{hf.NOTION_PAGE}", "# Plans\n")
    outer = tmp_path / "notion.zip"
    with zipfile.ZipFile(outer, "w") as zf:
        zf.write(inner, "Export-Part-1.zip")
        zf.write(good, "Export-Part-2.zip")
    result, _ = run_child("read", "notion_export", outer, limits={"import_max_members": 1_000})
    assert "unreadable" not in result, result
    assert [loc for loc, _, _ in result["rejects"]] == ["Export-Part-1.zip"]
    assert "the export would exceed yarnnn import_max_members=1000" in result["rejects"][0][1]
    assert "01234567-89ab-cdef-0123-456789abcdef" in result["objects"]


def test_total_bytes_limit_stops_the_rest(tmp_path: Path) -> None:
    path = hf.slack_export(tmp_path / "export.zip", bomb_bytes=3 * hf.MiB)
    result, _ = run_child("read", "slack_export", path, limits={"import_max_total_bytes": 2 * hf.MiB,
                                                                 "import_max_compression_ratio": 10_000})
    (location, reason, _), = result["rejects"]
    assert location == "general/2026-01-02.json"
    assert "would take the import over yarnnn import_max_total_bytes=2097152" in reason


def test_never_ending_rrules_are_capped_and_counted(files: dict[str, Path]) -> None:
    """every second / every minute since 2000, Feb 30th every second, COUNT=2e9 (the 105 s, 3.3 GB file)."""
    result, rss = run_child("read", "ics", files["ics"], env={"HOSTILE_FETCHED_AT": "2026-03-10T12:00:00+00:00"})
    assert rss < READER_RSS_MB
    assert not result["rejects"] and not result["normalize_rejects"]
    by_thread = result["items_by_thread"]
    assert by_thread["every-second"] == 1000 and by_thread["every-minute"] == 1000  # the cap
    assert by_thread["never-matches"] == 1 and by_thread["huge-count"] == 1  # kept once, flagged
    first = result["item_metadata"][0]
    assert first["instance_cap"] == 1000 and first["recurrence_start_moved"] is True
    # 21 days of seconds in the window, 1000 kept
    assert first["instances_dropped"] == 21 * 86400 + 1 - 1000
    assert result["stats"]["ics_series_capped"] == 2 and result["stats"]["ics_series_not_expanded"] == 2
    assert result["filtered"]["calendar_instances_over_cap"] == result["stats"]["ics_instances_dropped"]


def test_slack_bomb_end_to_end(files: dict[str, Path], tmp_path: Path) -> None:
    """The real bronze + silver materialization: the reject is stored, the job settles, the rest lands."""
    result, rss = run_child("import", "slack_export", files["slack_bomb"], env={"YARNNN_HOME": str(tmp_path)})
    assert rss < IMPORT_RSS_MB
    assert result["success"] and result["status"] == "completed"
    assert result["result"]["objects"] == 3 and result["result"]["rejected"] == 1
    assert result["rejects"] == [["bronze", "general/2026-01-02.json",
                                  "day file member declares 1073741824 bytes, over yarnnn "
                                  "import_max_member_bytes=134217728"]]
    assert result["reject_raw_bytes"] == 64 * 1024  # a sample, the archive keeps the whole file
    assert result["silver_rows"] == 1


def test_never_ending_rrules_end_to_end(files: dict[str, Path], tmp_path: Path) -> None:
    result, rss = run_child("import", "ics", files["ics"], env={"YARNNN_HOME": str(tmp_path)})
    assert rss < IMPORT_RSS_MB
    assert result["success"] and result["status"] == "completed" and not result["rejects"]
    assert result["silver_rows"] == 2 * 1000 + 2


def test_unreadable_archive_end_to_end_fails_the_job_with_the_limit(files: dict[str, Path], tmp_path: Path) -> None:
    result, rss = run_child("import", "slack_export", files["many_members_lying"], env={"YARNNN_HOME": str(tmp_path)})
    assert rss < IMPORT_RSS_MB
    assert result["success"] and result["status"] == "failed"
    assert "yarnnn import_max_members=100000" in result["error"]
    assert [stage for stage, _, _ in result["rejects"]] == ["bronze"]
