"""Requests per provider for a first and an incremental sync of the test workspace (reported numbers).

The workspace: Slack 3 channels (300 / 120 / 40 messages, 15 min apart; 6 threads), Gmail 60 inbox +
10 sent (5 starred) + 5 labelled, Calendar 40 + 10 events, Notion 5 pages + a 30-row data source.
The increment: 10 Slack messages and 1 reply to an old thread, 3 mails, 2 event changes,
1 edited page and 1 edited row.
"""

from __future__ import annotations

import datetime as dt
import json

from tests.sync.conftest import metadata


def _build(world) -> dict:
    s, g, n = world.slack, world.google, world.notion
    now = dt.datetime.now(dt.UTC)
    s.add_channel("C1", "general", 30)
    s.add_channel("C2", "eng", 12)
    s.add_channel("C3", "random", 8)
    threads = []
    for cid, count in (("C1", 300), ("C2", 120), ("C3", 40)):
        ts = s.fill(cid, count, every=900)
        for parent in ts[-2:]:
            threads.append((cid, parent))
            for i in range(3):
                s.post(cid, f"reply {i}", thread_ts=parent)
    for i in range(60):
        g.add_mail(["INBOX"], now - dt.timedelta(hours=5 * i + 1))
    for i in range(10):
        g.add_mail(["SENT", "STARRED"] if i < 5 else ["SENT"], now - dt.timedelta(days=i + 1))
    for i in range(5):
        g.add_mail(["Label_1"], now - dt.timedelta(days=2 * i + 1))
    g.calendars["team"] = {"id": "team", "summary": "Team", "timeZone": "UTC", "accessRole": "reader"}
    events = [g.add_event(now - dt.timedelta(days=6) + dt.timedelta(hours=8 * i)) for i in range(40)]
    events += [g.add_event(now + dt.timedelta(days=i), calendar="team") for i in range(10)]
    pages = [n.add_page(f"Doc {i}", blocks=3, nested=2 if i == 0 else 0) for i in range(5)]
    ds = n.add_data_source("Tasks", rows=30)
    return {"threads": threads, "events": events, "pages": pages, "ds": ds}


def _increment(world, built) -> None:
    s, g, n = world.slack, world.google, world.notion
    now = dt.datetime.now(dt.UTC)
    s.fill("C1", 10, every=60)
    cid, parent = built["threads"][0]
    s.post(cid, "late reply", thread_ts=parent)
    for _ in range(3):
        g.add_mail(["INBOX"], now)
    g.update_event(built["events"][3]["id"], summary="moved")
    g.cancel_event(built["events"][45]["id"])
    n.edit_page(built["pages"][2]["id"], "new text")
    row = n.pages[n.rows[built["ds"]["id"]][0]]
    row["last_edited_time"] = n.tick()


def test_requests_first_and_incremental(world, capsys):
    built = _build(world)
    servers = {"slack": world.slack, "gmail": world.google, "calendar": world.google, "notion": world.notion}
    report: dict[str, dict[str, int]] = {}
    for phase in ("first", "incremental"):
        if phase == "incremental":
            _increment(world, built)
        for platform, server in servers.items():
            server.reset_log()
            md = metadata(world.sync(platform))
            paths: dict[str, int] = {}
            for r in server.requests:
                key = r.path.rsplit("/", 1)[-1] if platform == "slack" else r.path
                paths[key] = paths.get(key, 0) + 1
            report.setdefault(platform, {})[phase] = len(server.requests)
            report[platform][f"{phase}_objects"] = md["objects"]
            report[platform][f"{phase}_by_call"] = md["requests_by_method"]  # type: ignore[assignment]
    with capsys.disabled():
        print("\nREQUEST COUNTS " + json.dumps(report, sort_keys=True))

    # first sync: landscape + pages; incremental: the cheap path only
    assert report["slack"]["first_objects"] == 300 + 120 + 40 + 6 * 3
    assert report["slack"]["incremental_objects"] == 11
    assert report["gmail"]["incremental_objects"] == 3
    assert report["calendar"]["incremental_objects"] == 2
    assert report["notion"]["incremental_objects"] == 2
    for platform in servers:
        assert report[platform]["incremental"] < report[platform]["first"]
    assert report["gmail"]["incremental"] == 1 + 6 + 3  # token + one history call per label + 3 gets
    assert report["calendar"]["incremental"] == 1 + 2  # token + one sync-token call per calendar
    assert report["notion"]["incremental"] == 1 + 1 + 1 + 1  # search + page blocks + query + row blocks
