"""Bounded retries on every SDK: Retry-After on 429 (shared with other runs), back-off on 5xx."""

from __future__ import annotations

import datetime as dt
import time

import pytest

from tests.fakes.loopback import Response
from yarn_assets.ingest.sync.runner import sync_connection


def _ratelimited_slack() -> Response:
    return Response.json({"ok": False, "error": "ratelimited"}, 429, {"Retry-After": "1"})


def test_slack_429_retry_after_then_5xx_then_success(world):
    s = world.slack
    s.add_channel("C1", "general", 3)
    s.fill("C1", 5)
    s.fail_next("POST", r"conversations\.history", [_ratelimited_slack(), Response(503, "upstream down")])
    start = time.monotonic()
    out = sync_connection(world.env(), world.connections["slack"])
    assert out.status == "synced" and out.objects == 5
    assert time.monotonic() - start >= 1.0, "Retry-After honoured"
    assert s.count(path=r"conversations\.history") == 3
    assert out.rate_limited == 1 and out.retries == 2 and out.requests["conversations.history"] == 3
    # the 429 pushed the shared budget: the next caller on this (connection, method) waits too
    from sqlalchemy import select

    from control_plane.models import ApiRateBudget

    with world.session() as sess:
        keys = set(sess.scalars(select(ApiRateBudget.key)))
    assert f"slack:{world.connections['slack']}:conversations.history" in keys


def test_google_429_and_5xx_on_messages_get_and_token_endpoint(world):
    g = world.google
    g.add_mail(["INBOX"], dt.datetime.now(dt.UTC) - dt.timedelta(hours=1))
    rate = {"error": {"code": 429, "message": "Rate Limit Exceeded", "errors": [{"reason": "rateLimitExceeded"}]}}
    g.fail_next("GET", r"/messages/m\d+$", [Response.json(rate, 429, {"Retry-After": "1"}),
                                             Response(500, "backend error")])
    g.fail_next("POST", r"/token", [Response(503, "token service down")])
    start = time.monotonic()
    out = sync_connection(world.env(), world.connections["gmail"])
    assert out.status == "synced" and out.objects == 1
    assert time.monotonic() - start >= 1.0
    assert g.count(path=r"/messages/m\d+$") == 3 and out.rate_limited == 1
    assert g.count(path=r"/token") == 2  # google-auth retries the token endpoint's 503 itself


def test_notion_429_and_502(world):
    n = world.notion
    page = n.add_page("Doc", blocks=2)
    n.fail_next("GET", r"/v1/blocks/.*/children", [
        Response.json({"object": "error", "status": 429, "code": "rate_limited", "message": "slow down"}, 429,
                      {"Retry-After": "1"}),
        Response(502, "<html>bad gateway</html>"),
    ])
    out = sync_connection(world.env(), world.connections["notion"])
    assert out.status == "synced" and out.objects == 1 and out.rate_limited == 1 and out.retries == 2
    assert page["id"] in out.resources


def test_exhausted_retries_fail_one_source_and_the_rest_syncs(world):
    s = world.slack
    s.add_channel("C1", "general", 9)
    s.add_channel("C2", "random", 3)
    s.fill("C1", 3)
    s.fill("C2", 3)
    # C1 is synced first (more members): its history answers 500 four times
    s.fail_next("POST", r"conversations\.history", [Response(500, "boom")] * 4)
    out = sync_connection(world.env(), world.connections["slack"])
    assert out.status == "partial" and out.objects == 3
    assert "gave up after 4 attempts" in out.failed_resources["C1"]
    reg = world.registry("slack")
    assert "gave up after 4 attempts" in reg["C1"]["error"] and reg["C1"]["cursor"] is None
    assert reg["C2"]["error"] is None and reg["C2"]["cursor"]
    # the next sync retries C1 from scratch (its cursor never advanced)
    out = sync_connection(world.env(run_id="second"), world.connections["slack"])
    assert out.status == "synced" and out.resources["C1"]["new"] == 3


@pytest.mark.parametrize("retry_after", ["3600"])
def test_retry_after_beyond_the_limit_fails_fast(world, retry_after):
    s = world.slack
    s.add_channel("C1", "general", 3)
    s.fill("C1", 2)
    s.fail_next("POST", r"conversations\.history",
                [Response.json({"ok": False, "error": "ratelimited"}, 429, {"Retry-After": retry_after})])
    start = time.monotonic()
    out = sync_connection(world.env(), world.connections["slack"])
    assert time.monotonic() - start < 5
    assert out.status == "failed" and "rate limited for 3600s" in out.failed_resources["C1"]
