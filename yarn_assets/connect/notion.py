"""Notion public-integration OAuth: HTTP Basic client authentication and JSON bodies at the token endpoint.

``POST {notion}/v1/oauth/token`` takes ``{"grant_type", "code", "redirect_uri"}`` as JSON with HTTP
Basic client authentication (Authlib builds a form body; a client-auth method of our own, which
Authlib applies last, adds the Basic header and re-encodes the body as JSON) and answers ``{"access_token", "bot_id",
"workspace_id", "workspace_name", "owner", "refresh_token"?}``; revoke is ``POST /v1/oauth/revoke``
with ``{"token"}``. Notion has no PKCE and no scopes (access is chosen page by page in its consent).
"""

from __future__ import annotations

import base64
import json
import time
from typing import Any
from urllib.parse import parse_qsl

from authlib.integrations.requests_client import OAuth2Session

from yarn_assets.connect.base import Grant, Provider, Slot, expires_at
from yarn_assets.connect.config import ConnectConfig, OAuthClient
from yarn_assets.connect.errors import ConnectError

NOTION_VERSION = "2025-09-03"


AUTH_METHOD = "notion_basic_json"


def _basic_json(client: Any, method: str, uri: str, headers: Any, body: Any) -> tuple[str, Any, str]:
    """Authlib client-auth method: HTTP Basic, and the form body re-encoded as JSON."""
    text = body.decode("utf-8") if isinstance(body, bytes) else (body or "")
    data = dict(parse_qsl(text, keep_blank_values=True))
    data.pop("client_id", None)
    data.pop("client_secret", None)
    pair = base64.b64encode(f"{client.client_id}:{client.client_secret}".encode()).decode()
    headers["Authorization"] = f"Basic {pair}"
    headers["Content-Type"] = "application/json"
    headers["Notion-Version"] = NOTION_VERSION
    return uri, headers, json.dumps(data)


class NotionProvider(Provider):
    name = "notion"
    platforms = ("notion",)
    pkce = False
    auth_method = AUTH_METHOD
    slots = (Slot("token", "refresh_token", "expires_at"),)

    def _api(self, cfg: ConnectConfig) -> str:
        return cfg.notion_base_url.rstrip("/") + "/v1/oauth"

    def authorize_url(self, cfg: ConnectConfig) -> str:
        return self._api(cfg) + "/authorize"

    def token_url(self, cfg: ConnectConfig) -> str:
        return self._api(cfg) + "/token"

    def revoke_url(self, cfg: ConnectConfig) -> str:
        return self._api(cfg) + "/revoke"

    def scopes(self, platforms: list[str]) -> list[str]:
        return []

    def authorize_params(self, platforms: list[str], has_refresh_token: bool) -> dict[str, str]:
        return {"owner": "user"}

    def hooks(self, sess: OAuth2Session) -> None:
        sess.register_client_auth_method((AUTH_METHOD, _basic_json))

    def revocable_token(self, creds: dict[str, Any]) -> str | None:
        return creds.get("token")  # Notion revokes the access token (and the grant with it)

    def grant(self, token: dict[str, Any], client: OAuthClient, platforms: list[str],
              stored: dict[str, Any] | None) -> Grant:
        if not token.get("access_token"):
            raise ConnectError("Notion returned no access token", "no_token")
        creds: dict[str, Any] = {
            "token": token["access_token"], "bot_id": token.get("bot_id"),
            "workspace_id": token.get("workspace_id"), "oauth": "notion",
            "client_id": client.client_id, "client_secret": client.client_secret,  # to refresh its tokens
        }
        if token.get("refresh_token"):
            creds["refresh_token"] = token["refresh_token"]
        exp = expires_at(token, time.time())
        if exp:
            creds["expires_at"] = exp
        return Grant({"notion": {k: v for k, v in creds.items() if v is not None}}, token.get("workspace_name"), [])
