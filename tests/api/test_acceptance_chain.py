"""Issue 16's acceptance as one chain, every step through the product's own surfaces: alice connects Slack and
Google through the OAuth flow of the API (a real uvicorn server, real loopback OAuth servers); she triggers a
Slack sync from the API (a run queued on the Dagster instance, then executed in-process as the daemon would:
no daemon runs here); a signal pass creates a deliverable with no destination, whose run lands in her inbox
(real SMTP) and her Slack DM (posted with the token the OAuth flow stored); she edits it through the API; the
next night's ``gold/activity_patterns`` reflect the edit.

One Slack workspace on loopback serves the three Slack surfaces at one base URL, as slack.com does: the
conversations API the sync reads (:class:`FakeSlack`), the OAuth endpoints (:class:`FakeSlackOAuth`'s routes
mounted on it) and ``chat.postMessage`` (recorded below)."""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Iterator
from typing import Any

import dagster as dg
import httpx
import pytest
from sqlalchemy import select

from control_plane import db
from control_plane.crypto import TokenCipher
from control_plane.models import Deliverable, DeliverableRunRequest, PlatformConnection
from tests.api.conftest import NOW, ApiServer
from tests.deliverables.helpers import run_resources
from tests.fakes.loopback import Request, Response
from tests.fakes.oauth_servers import CLIENT_ID, CLIENT_SECRET, FakeGoogleOAuth, FakeSlackOAuth
from tests.fakes.slack_api import FakeSlack
from tests.fakes.smtp import SmtpServer
from tests.signals.test_signals_offline import H, seed
from yarn_assets.core.activity_log import read_events
from yarn_assets.memory import user_context
from yarn_assets.memory.assets import day_key


class Workspace:
    """The loopback Slack workspace: sync API + OAuth + ``chat.postMessage`` on one server."""

    def __init__(self) -> None:
        self.api = FakeSlack()
        self.oauth = FakeSlackOAuth()
        self.oauth.server = self.api  # the OAuth routes on the same host, as slack.com serves them
        self.oauth.routes()
        self.posts: list[tuple[str, str, str]] = []  # (channel, bearer token, text)
        self.api.route("POST", r"^/api/chat[.]postMessage$", self._post)

    def _post(self, req: Request, _m: Any) -> Response:
        if self.api.tokens.get(req.bearer or "") != "ok":
            return Response.json({"ok": False, "error": "invalid_auth"})
        channel = req.param("channel") or ""
        self.posts.append((channel, req.bearer or "", req.param("text") or ""))
        return Response.json({"ok": True, "channel": channel, "ts": self.api.next_ts()})


@pytest.fixture
def chain(api_env: None, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Workspace, FakeGoogleOAuth, SmtpServer]]:
    ws = Workspace()
    with ws.api, FakeGoogleOAuth() as google, SmtpServer() as smtp:
        env = {"SMTP_HOST": "127.0.0.1", "SMTP_PORT": str(smtp.port), "SLACK_BASE_URL": ws.api.base_url,
               "SLACK_AUTHORIZE_URL": ws.oauth.authorize_url, "GOOGLE_AUTHORIZE_URL": google.authorize_url,
               "GOOGLE_TOKEN_URI": google.token_url, "GOOGLE_REVOKE_URL": google.revoke_url,
               "PLATFORM_TIMEOUT_SECONDS": "5"}
        for provider in ("SLACK", "GOOGLE"):
            env |= {f"{provider}_CLIENT_ID": CLIENT_ID, f"{provider}_CLIENT_SECRET": CLIENT_SECRET}
        for name, value in env.items():
            monkeypatch.setenv(f"YARNNN_{name}", value)
        yield ws, google, smtp


def _connect(c: httpx.Client, provider: str) -> None:
    """Start (the API), consent (the provider's authorize endpoint redirects back), callback (the API)."""
    start = c.post(f"/connect/{provider}/start")
    assert start.status_code == 200, start.text
    consent = httpx.get(start.json()["authorize_url"], follow_redirects=False, timeout=10)
    assert consent.status_code == 302, consent.text
    callback = httpx.URL(consent.headers["location"])
    assert {"code", "state"} <= set(callback.params)
    done = c.get(str(callback))  # the browser lands on the API's callback (no bearer needed, state binds it)
    assert done.status_code < 400, done.text


def test_connect_sync_deliver_edit_learn(chain, _clock_at_now, tmp_path, monkeypatch) -> None:
    from io_managers.delta_store import DeltaStore
    from resources.registry import build_resources
    from resources.settings import load_settings
    from yarn_assets.api.app import create_app
    from yarn_assets.core.instance import ensure_instance_dir
    from yarn_assets.deliverables.run import run_deliverable
    from yarn_assets.ingest.sync.asset import TAG_CONNECTIONS, bronze_synced_items
    from yarn_assets.memory.assets import activity_patterns
    from yarn_assets.signals.assets import hour_key, signal_passes

    ws, google, smtp = chain
    ws.api.add_channel("C0GEN", "general", 3)
    ws.api.fill("C0GEN", 4)
    app: dict[str, Any] = {}

    async def lazy(scope: Any, receive: Any, send: Any) -> None:  # the port is needed before the settings
        await app["asgi"](scope, receive, send)

    with dg.DagsterInstance.from_config(str(ensure_instance_dir(tmp_path / "dagster_home"))) as instance, \
            ApiServer(lazy) as server:
        monkeypatch.setenv("YARNNN_OAUTH_REDIRECT_BASE_URL", server.base_url)
        settings = load_settings()
        url = settings.resolved_control_plane_url
        store = DeltaStore(settings.resolved_warehouse_root)
        seed(store, url)  # alice (alice@northwind.example) with her calendar; no connection yet
        app["asgi"] = create_app(settings, instance=instance)

        with server.client("alice") as c:
            _connect(c, "slack")
            _connect(c, "google")
            with db.session_scope(url) as s:
                conns = {p.platform: p for p in s.scalars(select(PlatformConnection)
                                                          .where(PlatformConnection.user_id == "alice"))}
                assert set(conns) == {"slack", "gmail", "calendar"}
                assert all(p.status == "active" for p in conns.values()), {p.platform: p.status
                                                                           for p in conns.values()}
                slack_id = conns["slack"].id
                cipher = TokenCipher(os.environ["YARNNN_ENCRYPTION_KEY"])
                gmail = cipher.decrypt(conns["gmail"].credentials_encrypted)
                assert gmail["refresh_token"] in google.live_refresh  # offline access: a refresh token kept
                assert gmail["refresh_token"] not in str(conns["gmail"].credentials_encrypted)  # stored encrypted
            # the tokens the flow minted are the workspace's: the sync and the DM use them
            ws.api.tokens.update({t: "ok" for t in ws.oauth.live_access})

            sync = c.post("/triggers/sync/slack")
            assert sync.status_code == 202, sync.text
        queued = instance.get_run_by_id(sync.json()["run_id"])
        assert queued is not None and queued.status == dg.DagsterRunStatus.QUEUED
        assert (queued.job_name, queued.tags[TAG_CONNECTIONS]) == ("platform_sync_job", slack_id)
        # what the daemon would launch: the same job's asset, partition and tags, on the same instance
        resources = build_resources(settings)
        result = dg.materialize([bronze_synced_items], partition_key=queued.tags["dagster/partition"],
                                tags={TAG_CONNECTIONS: queued.tags[TAG_CONNECTIONS]}, instance=instance,
                                resources=resources)
        assert result.success
        meta = result.get_asset_materialization_events()[0].materialization.metadata
        assert (meta["connections"].value, meta["connections_failed"].value, meta["objects"].value) == (1, 0, 4)
        assert ws.api.matching("POST", r"conversations[.]history")[-1].bearer in ws.oauth.live_access
        with db.session_scope(url) as s:
            assert s.get(PlatformConnection, slack_id).last_synced_at is not None

        assert dg.materialize([signal_passes], partition_key=hour_key(H), resources=resources,
                              instance=instance).success
        with db.session_scope(url) as s:
            prep = s.scalars(select(Deliverable).where(Deliverable.deliverable_type == "meeting_prep")).one()
            assert (prep.user_id, prep.origin, prep.destination) == ("alice", "signal_emergent", {})
            request = s.scalars(select(DeliverableRunRequest)
                                .where(DeliverableRunRequest.deliverable_id == prep.id)).one()
            prep_id, request_id = prep.id, request.id
        # the run the requests sensor launches for that request: no operator step
        out = run_deliverable(run_resources(), deliverable_id=prep_id, run_id="run-prep", trigger="signal")
        assert out.status == "delivered", out.reason
        assert [m.rcpt_tos for m in smtp.inbox] == [["alice@northwind.example"]]
        [(channel, token, text)] = ws.posts
        assert channel == "U0USER" and token in ws.oauth.live_access  # a DM, as her own Slack connection
        assert "Upcoming meetings" in smtp.inbox[0].text() and "*Upcoming meetings*" in text
        with db.session_scope(url) as s:
            assert s.get(DeliverableRunRequest, request_id).status == "completed"

        with server.client("alice") as c:
            [version] = c.get(f"/deliverables/{prep_id}/versions").json()["versions"]
            content = c.get(f"/versions/{version['id']}").json()["final_content"]
            shorter = "\n".join(content.splitlines()[: max(2, len(content.splitlines()) // 3)])
            assert len(shorter) < 0.7 * len(content)
            edit = c.post(f"/versions/{version['id']}/edit", json={"content": shorter})
            assert edit.status_code == 200 and edit.json()["diff"].count("\n-") >= 1

    _clock_at_now.move_to(NOW + dt.timedelta(days=1, hours=-11))  # the next night
    assert dg.materialize([activity_patterns], partition_key=day_key(NOW.date().isoformat()),
                          resources={k: resources[k] for k in ("warehouse", "control_plane")}).success
    with db.session_scope(url) as s:
        memory = {r.key: (r.value, r.source) for r in user_context.current(s, "alice")}
    assert memory["preference:length"] == ("Shortens drafts: prefers shorter deliverables.", "feedback")
    learned = read_events(store, user_ids=["alice"], event_types=["memory_written"])
    assert "preference:length" in " ".join(learned["metadata"].to_list())
    connected = read_events(store, user_ids=["alice"], event_types=["integration_connected"])
    assert connected.height >= 2  # slack and google, written by the callbacks
