"""Two users' context in a real warehouse + control plane, and the MCP server as a real process."""

from __future__ import annotations

import datetime as dt
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import polars as pl
import pytest

SIGNING_KEY = "m" * 48
REPO = Path(__file__).resolve().parents[2]

ADA_ITEMS = {
    "m1": ("slack", "C1", "T1", "Budget review: the Q3 marketing budget is over by 12 percent, cut the events line."),
    "m2": ("slack", "C1", "T1", "Agreed, let's move the offsite budget to Q4."),
    "e1": ("gmail", "INBOX", None, "Invoice 4471 from the printing vendor is due on Friday."),
}
BOB_ITEMS = {
    "b1": ("slack", "C9", None, "Secret zebra migration plan: budget for the zebra enclosure is approved."),
}


@dataclass
class Seeded:
    home: Path
    ada_items: dict[str, str] = field(default_factory=dict)  # external_id -> item_key
    bob_items: dict[str, str] = field(default_factory=dict)
    ada_deliverable: str = ""
    bob_deliverable: str = ""
    ada_meeting: str = ""
    bob_meeting: str = ""


def _content(user: str, items: dict[str, tuple[str, str, str | None, str]], now: dt.datetime) -> pl.DataFrame:
    from yarn_assets.core.tables import PLATFORM_CONTENT
    from yarn_assets.people.tables import with_item_key

    rows = [{
        "user_id": user, "platform": platform, "created_day": now.date().isoformat(), "resource_id": res,
        "resource_name": f"#{res.lower()}", "external_id": ext, "content_type": "message" if platform == "slack"
        else "email", "thread_id": thread, "title": None, "author": user.title(), "content": text,
        "content_hash": f"h-{ext}", "content_chars": len(text), "occurred_at": now - dt.timedelta(hours=i + 1),
        "fetched_at": now, "expires_at": now + dt.timedelta(days=30), "retained": False, "participants": [user],
    } for i, (ext, (platform, res, thread, text)) in enumerate(items.items())]
    return with_item_key(pl.DataFrame(rows, schema=dict(PLATFORM_CONTENT.schema), strict=False))


def _meeting(user: str, uid: str, title: str, starts: dt.datetime, now: dt.datetime
             ) -> tuple[pl.DataFrame, pl.DataFrame]:
    """The event's silver row (what read_item reads) and its calendar_events row (same item_key)."""
    from yarn_assets.core.tables import PLATFORM_CONTENT
    from yarn_assets.people.tables import CALENDAR_EVENTS, with_item_key

    silver = with_item_key(pl.DataFrame([{
        "user_id": user, "platform": "calendar", "created_day": starts.date().isoformat(), "resource_id": "primary",
        "resource_name": "Work", "external_id": uid, "content_type": "event", "title": title,
        "content": f"{title}. Agenda: numbers first.", "content_hash": f"h-{uid}", "occurred_at": starts,
        "ends_at": starts + dt.timedelta(hours=1), "fetched_at": now, "expires_at": now + dt.timedelta(days=30),
        "retained": False, "participants": [user],
    }], schema=dict(PLATFORM_CONTENT.schema), strict=False))
    event = pl.DataFrame([{
        "user_id": user, "ingest_date": now.date(), "source": "gcal_api", "calendar_id": "primary",
        "calendar_name": "Work", "event_uid": uid, "instance_id": uid, "item_key": silver["item_key"][0],
        "created_day": starts.date().isoformat(), "starts_at": starts, "ends_at": starts + dt.timedelta(hours=1),
        "all_day": False, "title": title, "location": "Room 1", "organizer": f"{user}@example.com",
        "attendees": [{"email": f"{user}@example.com", "name": user, "response_status": "accepted",
                       "role": "organizer"}],
        "status": "confirmed", "is_cancelled": False, "is_recurring": False, "fetched_at": now, "batch_id": "b1",
        "seq": 1,
    }], schema=dict(CALENDAR_EVENTS.schema), strict=False)
    return silver.drop("item_key"), event


def _deliverable(session: Any, store: Any, user: str, title: str, text: str, now: dt.datetime) -> str:
    from control_plane.models import Deliverable
    from yarn_assets.deliverables.tables import DELIVERABLE_VERSIONS

    d = Deliverable(user_id=user, title=title, deliverable_type="status_report", last_run_at=now)
    session.add(d)
    session.flush()
    store.append(DELIVERABLE_VERSIONS, pl.DataFrame([{
        "deliverable_id": d.id, "version_id": f"{d.id}-v1", "version_number": 1, "user_id": user,
        "deliverable_type": "status_report", "title": title, "status": "delivered", "final_content": text,
        "draft_content": text, "sources_used": "[]", "created_at": now, "generated_at": now,
        "delivery_status": "delivered",
    }], schema=dict(DELIVERABLE_VERSIONS.schema), strict=False))
    return d.id


@pytest.fixture
def seeded(monkeypatch: pytest.MonkeyPatch, _isolated_env: Path) -> Seeded:
    from control_plane import db
    from control_plane.models import User
    from io_managers.delta_store import DeltaStore
    from resources.embeddings import WordLlamaEmbedder
    from resources.settings import load_settings
    from yarn_assets.core.tables import PLATFORM_CONTENT
    from yarn_assets.memory import user_context
    from yarn_assets.people import vectors
    from yarn_assets.people.tables import CALENDAR_EVENTS

    monkeypatch.setenv("YARNNN_AUTH_SIGNING_KEY", SIGNING_KEY)
    settings = load_settings()
    store = DeltaStore(settings.resolved_warehouse_root)
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    out = Seeded(home=_isolated_env)
    embedder = WordLlamaEmbedder()
    for user, items, target in (("ada", ADA_ITEMS, out.ada_items), ("bob", BOB_ITEMS, out.bob_items)):
        df = _content(user, items, now)
        store.append(PLATFORM_CONTENT, df)
        vectors.embed_partition(store, df, embedder, 1000, 12)
        target.update(dict(zip(df["external_id"], df["item_key"], strict=True)))
    keys = []
    for user, uid, title, days in (("ada", "ev-a1", "Budget sync with finance", 1),
                                   ("bob", "ev-b1", "Zebra enclosure walkthrough", 1),
                                   ("ada", "ev-a0", "Last week's retro", -7)):
        silver, event = _meeting(user, uid, title, now + dt.timedelta(days=days), now)
        store.append(PLATFORM_CONTENT, silver)
        store.append(CALENDAR_EVENTS, event)
        keys.append(event["item_key"][0])
    out.ada_meeting, out.bob_meeting = keys[0], keys[1]
    url = settings.resolved_control_plane_url
    db.ensure_schema(url, True)
    with db.session_scope(url) as s:
        s.add_all([User(id="ada", email="ada@example.com"), User(id="bob", email="bob@example.com")])
        s.flush()
        for user, value in (("ada", "Berlin"), ("bob", "Lisbon")):
            user_context.upsert(s, user_context.Assertion(user_id=user, key="fact:home_city", value=value,
                                                          source="conversation", confidence=0.7, observed_at=now))
        out.ada_deliverable = _deliverable(s, store, "ada", "Weekly budget status", "Budget is 12% over.", now)
        out.bob_deliverable = _deliverable(s, store, "bob", "Zebra weekly", "Zebra enclosure on track.", now)
    return out


def token(user: str, audience: str = "mcp") -> str:
    from yarn_assets.core import auth

    return auth.issue(SIGNING_KEY, user, audience=audience)


def server_env(home: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("YARNNN_")}
    env.update(YARNNN_HOME=str(home), YARNNN_AUTH_SIGNING_KEY=SIGNING_KEY, PYTHONPATH=str(REPO), **extra)
    return env


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def http_server(seeded: Seeded) -> Iterator[str]:
    """``yarnnn serve mcp --transport http`` as a real process on loopback; yields its /mcp URL."""
    port = free_port()
    yarnnn = str(Path(sys.executable).parent / "yarnnn")  # the documented command: yarnnn serve mcp
    log = seeded.home / "mcp-server.log"
    with log.open("wb") as out:  # a file, not a pipe nobody reads (a full pipe would block the server)
        proc = subprocess.Popen([yarnnn, "serve", "mcp", "--transport", "http", "--port", str(port)], cwd=REPO,
                                env=server_env(seeded.home), stdout=out, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 90
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"mcp server exited: {log.read_text(errors='replace')[-2000:]}")
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                    break
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError("mcp server did not start") from None
                time.sleep(0.2)
        yield f"http://127.0.0.1:{port}/mcp"
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)
