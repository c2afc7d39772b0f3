"""The flow on PostgreSQL: racing callbacks with one state, row-locked refresh, reconnect_needed."""

from __future__ import annotations

import datetime as dt
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from tests.connect.conftest import World

pytestmark = pytest.mark.postgres


def test_racing_callbacks_with_one_state_connect_once(world_pg: World) -> None:
    callback = world_pg.consent(world_pg.start("slack")["authorize_url"])
    with ThreadPoolExecutor(max_workers=6) as pool:
        codes = sorted(pool.map(lambda _: requests.get(callback, timeout=30).status_code, range(6)))
    assert codes == [200] + [400] * 5
    assert world_pg.slack.server.count("POST", r"oauth\.v2\.access") == 1  # one exchange, never a second


def test_concurrent_refreshes_spend_a_rotating_refresh_token_once(world_pg: World) -> None:
    from control_plane.models import PlatformConnection
    from yarn_assets.connect.tokens import credentials_for

    world_pg.connect("slack")
    with world_pg.env.sessions() as s:
        conn_id = s.query(PlatformConnection).filter_by(user_id="ada", platform="slack").one().id
    later = dt.datetime.now(dt.UTC) + dt.timedelta(hours=2)
    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(lambda _: credentials_for(world_pg.env, conn_id, now=later)["bot_token"], range(4)))
    assert len(set(results)) == 1  # everyone got the one refreshed token
    refreshes = [r for r in world_pg.slack.server.matching("POST", r"oauth\.v2\.access")
                 if r.param("grant_type") == "refresh_token"]
    assert len(refreshes) == 2  # the bot token and the user token, once each


def test_invalid_grant_on_postgres(world_pg: World) -> None:
    from control_plane.models import PlatformConnection
    from yarn_assets.connect.errors import ReconnectNeeded
    from yarn_assets.connect.tokens import credentials_for

    r = world_pg.connect("google", platforms=["gmail"])
    assert r.status_code == 200
    state = parse_qs(urlsplit(world_pg.start("google")["authorize_url"]).query)["state"][0]
    assert state  # a second pending consent does not disturb the stored grant
    with world_pg.env.sessions() as s:
        gmail = s.query(PlatformConnection).filter_by(user_id="ada", platform="gmail").one()
    world_pg.google.kill_grant(world_pg.env.cipher().decrypt(gmail.credentials_encrypted)["refresh_token"])
    with pytest.raises(ReconnectNeeded):
        credentials_for(world_pg.env, gmail.id, now=dt.datetime.now(dt.UTC) + dt.timedelta(hours=2))
    with world_pg.env.sessions() as s:
        assert s.get(PlatformConnection, gmail.id).status == "reconnect_needed"
