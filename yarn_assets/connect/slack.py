"""Slack OAuth v2: a bot token for the workspace and a user token (DMs, reads as the user).

Token endpoint ``oauth.v2.access`` (client authentication by HTTP Basic, as Slack recommends),
answering HTTP 200 with ``{"ok": true, "access_token": "xoxb-…", "authed_user": {"access_token":
"xoxp-…"}}`` or ``{"ok": false, "error": "invalid_code"}`` (Authlib raises on ``error``). PKCE is sent
(``oauth.v2.access`` takes ``code_verifier``). With token rotation on, both tokens come with a
``refresh_token`` and ``expires_in``; both are refreshed at the same endpoint.
"""

from __future__ import annotations

import time
from typing import Any

from yarn_assets.connect.base import Grant, Provider, Slot, expires_at
from yarn_assets.connect.config import ConnectConfig, OAuthClient
from yarn_assets.connect.errors import ConnectError

BOT_SCOPES = ["channels:read", "channels:history", "groups:read", "groups:history", "users:read", "chat:write",
              "im:write"]
USER_SCOPES = ["channels:history", "groups:history", "im:history", "im:read", "mpim:history", "users:read",
               "chat:write"]


class SlackProvider(Provider):
    name = "slack"
    platforms = ("slack",)
    pkce = True
    auth_method = "client_secret_basic"
    slots = (Slot("bot_token", "refresh_token", "expires_at"),
             Slot("user_token", "user_refresh_token", "user_expires_at"))

    def authorize_url(self, cfg: ConnectConfig) -> str:
        return cfg.slack_authorize_url

    def token_url(self, cfg: ConnectConfig) -> str:
        return cfg.slack_api_base_url.rstrip("/") + "/oauth.v2.access"

    def revoke_url(self, cfg: ConnectConfig) -> str:
        return cfg.slack_api_base_url.rstrip("/") + "/auth.revoke"

    def scopes(self, platforms: list[str]) -> list[str]:
        return list(BOT_SCOPES)

    def authorize_params(self, platforms: list[str], has_refresh_token: bool) -> dict[str, str]:
        return {"user_scope": ",".join(USER_SCOPES)}

    def scope_param(self, scopes: list[str]) -> dict[str, str]:
        return {"scope": ",".join(scopes)}  # Slack separates scopes with commas

    def grant(self, token: dict[str, Any], client: OAuthClient, platforms: list[str],
              stored: dict[str, Any] | None) -> Grant:
        now = time.time()
        user = token.get("authed_user") or {}
        top_is_user = token.get("token_type") == "user"
        bot = None if top_is_user else token.get("access_token")
        user_token = user.get("access_token") or (token.get("access_token") if top_is_user else None)
        if not (bot or user_token):
            raise ConnectError("Slack returned no token", "no_token")
        team = token.get("team") or {}
        creds: dict[str, Any] = {
            # the sync client reads ``bot_token``; a user-only install syncs with the user's token
            "bot_token": bot or user_token,
            "user_token": user_token,
            "slack_user_id": user.get("id"),
            "team_id": team.get("id"),
            "scope": token.get("scope"),
            "user_scope": user.get("scope"),
            "oauth": "slack",
            "client_id": client.client_id, "client_secret": client.client_secret,  # to refresh rotated tokens
        }
        if bot and token.get("refresh_token"):
            creds.update(refresh_token=token["refresh_token"], expires_at=expires_at(token, now))
        if user.get("refresh_token"):
            creds.update(user_refresh_token=user["refresh_token"], user_expires_at=expires_at(user, now))
        scopes = [s for s in str(token.get("scope") or "").split(",") if s]
        return Grant({"slack": {k: v for k, v in creds.items() if v is not None}}, team.get("name"), scopes)

    def revoke(self, cfg: ConnectConfig, creds: dict[str, Any]) -> str:
        """``auth.revoke`` each distinct token (the user token first, then the bot token)."""
        outcomes = []
        for key in ("user_token", "bot_token"):
            token = creds.get(key)
            if not token or (key == "bot_token" and token == creds.get("user_token")):
                continue
            with self.session(cfg, creds=creds) as sess:
                resp = sess.revoke_token(self.revoke_url(cfg), token=token)
            outcomes.append(self.revoke_outcome(resp))
        return "revoked" if "revoked" in outcomes else (outcomes[0] if outcomes else "nothing to revoke")
