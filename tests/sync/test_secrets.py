"""No token, secret or refresh token in run logs, the event log, run config, metadata or tables."""

from __future__ import annotations

import datetime as dt
import io
import json
import logging

import polars as pl
from sqlalchemy import select

from control_plane.models import PlatformConnection, SyncRegistry
from tests.fakes.loopback import Response
from tests.fakes.slack_api import BOT_TOKEN
from tests.sync.conftest import SECRETS
from yarn_assets.core.tables import ACTIVITY_LOG, BRONZE_ITEMS, PLATFORM_CONTENT, REJECTS

LOGGERS = ("", "slack_sdk", "slack_sdk.web.base_client", "googleapiclient", "googleapiclient.http",
           "googleapiclient.discovery", "google", "google.auth", "google.auth.transport.requests",
           "google.oauth2._client", "google_auth_httplib2", "notion_client", "httpx", "httpcore", "urllib3",
           "yarnnn", "yarn_assets")


def test_no_secret_anywhere_after_syncs_with_retries_and_failures(world, capfd):
    now = dt.datetime.now(dt.UTC)
    world.slack.add_channel("C1", "general", 3)
    world.slack.fill("C1", 4)
    world.google.add_mail(["INBOX"], now - dt.timedelta(hours=1))
    world.google.add_event(now + dt.timedelta(hours=2))
    world.notion.add_page("Doc", blocks=2)
    world.slack.fail_next("POST", r"conversations\.history",
                          [Response.json({"ok": False, "error": "ratelimited"}, 429, {"Retry-After": "0"})])
    world.google.fail_next("GET", r"/messages/m\d+$", [Response(500, "oops")])

    buffer = io.StringIO()
    handler = logging.StreamHandler(buffer)
    handler.setLevel(logging.DEBUG)
    saved = {name: logging.getLogger(name).level for name in LOGGERS}
    logging.getLogger().addHandler(handler)
    for name in LOGGERS:
        logging.getLogger(name).setLevel(logging.DEBUG)
    try:
        results = [world.sync(p) for p in ("slack", "gmail", "calendar", "notion")]
        world.slack.tokens[BOT_TOKEN] = "invalid_auth"
        results.append(world.sync("slack", raise_on_error=False))  # a failing run too
    finally:
        logging.getLogger().removeHandler(handler)
        for name, level in saved.items():
            logging.getLogger(name).setLevel(level)

    texts = {"python logging (DEBUG, every logger)": buffer.getvalue()}
    out, err = capfd.readouterr()
    texts["stdout/stderr"] = out + err
    instance = world.instance
    for r in results:
        records = instance.all_logs(r.run_id)
        texts[f"event log {r.run_id}"] = "\n".join(repr(rec) for rec in records)
        run = instance.get_run_by_id(r.run_id)
        texts[f"run config + tags {r.run_id}"] = json.dumps(run.run_config, default=str) + json.dumps(run.tags)
    for spec in (BRONZE_ITEMS, REJECTS, PLATFORM_CONTENT, ACTIVITY_LOG):
        frame = world.store.read(spec)
        texts[spec.name] = "\n".join(
            str(v) for col in frame.columns if frame.schema[col] != pl.Binary for v in frame[col].to_list())
    with world.session() as s:
        conns = list(s.scalars(select(PlatformConnection)))
        texts["platform_connections (except the encrypted blob)"] = "\n".join(
            repr({c.name: getattr(conn, c.name) for c in PlatformConnection.__table__.columns
                  if c.name != "credentials_encrypted"}) for conn in conns)
        texts["sync_registry"] = "\n".join(repr(r.__dict__) for r in s.scalars(select(SyncRegistry)))
        assert all(BOT_TOKEN not in (c.credentials_encrypted or "") for c in conns)

    debug = texts["python logging (DEBUG, every logger)"]
    assert "Sending a request - url:" in debug and "'Authorization': '(redacted)'" in debug, "slack_sdk debug captured"
    assert "invalid_auth" in texts["sync_registry"]
    access_tokens = sorted(world.google.access_tokens)
    assert access_tokens
    for where, text in texts.items():
        for secret in (*SECRETS, *access_tokens):
            assert secret not in text, f"a secret leaked into {where}"
        assert "SECRET" not in text, f"something secret-looking leaked into {where}"
