"""Google OAuth for Gmail and Calendar: one consent, offline access, incremental consent.

* ``access_type=offline`` asks for a refresh token; ``include_granted_scopes=true`` makes a later
  consent (say Calendar after Gmail) return a grant covering both. Google returns a refresh token
  only on the first consent (or with ``prompt=consent``), so ``prompt=consent`` is sent only when no
  refresh token is stored, and a second consent that returns none keeps the stored one.
* PKCE (S256); client authentication in the body (``client_secret_post``).
* The account's address comes from the ``id_token`` returned by the token endpoint itself over
  TLS (OpenID Connect Core 3.1.3.7 allows skipping the signature check for that case); it is a label only.
"""

from __future__ import annotations

import base64
import json
import time
from typing import Any

from yarn_assets.connect.base import Grant, Provider, Slot, expires_at
from yarn_assets.connect.config import ConnectConfig, OAuthClient
from yarn_assets.connect.errors import ConnectError

PLATFORM_SCOPES = {
    "gmail": "https://www.googleapis.com/auth/gmail.readonly",
    "calendar": "https://www.googleapis.com/auth/calendar.readonly",
}
IDENTITY_SCOPES = ["openid", "email"]


def _email_from_id_token(id_token: str | None) -> str | None:
    if not id_token or id_token.count(".") != 2:
        return None
    try:
        payload = id_token.split(".")[1]
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    except (ValueError, UnicodeDecodeError):
        return None
    email = claims.get("email") if isinstance(claims, dict) else None
    return email if isinstance(email, str) and len(email) <= 320 else None


class GoogleProvider(Provider):
    name = "google"
    platforms = ("gmail", "calendar")
    pkce = True
    auth_method = "client_secret_post"
    slots = (Slot("access_token", "refresh_token", "expires_at"),)

    def authorize_url(self, cfg: ConnectConfig) -> str:
        return cfg.google_authorize_url

    def token_url(self, cfg: ConnectConfig) -> str:
        return cfg.google_token_url

    def revoke_url(self, cfg: ConnectConfig) -> str:
        return cfg.google_revoke_url

    def scopes(self, platforms: list[str]) -> list[str]:
        return IDENTITY_SCOPES + [PLATFORM_SCOPES[p] for p in platforms]

    def authorize_params(self, platforms: list[str], has_refresh_token: bool) -> dict[str, str]:
        params = {"access_type": "offline", "include_granted_scopes": "true"}
        if not has_refresh_token:
            params["prompt"] = "consent"  # the only way to be sure a refresh token comes back
        return params

    def granted_platforms(self, token: dict[str, Any], requested: list[str]) -> list[str]:
        scope = token.get("scope")
        if not scope:
            return list(requested)
        granted = set(str(scope).split())
        return [p for p in self.platforms if PLATFORM_SCOPES[p] in granted]

    def grant(self, token: dict[str, Any], client: OAuthClient, platforms: list[str],
              stored: dict[str, Any] | None) -> Grant:
        if not token.get("access_token"):
            raise ConnectError("Google returned no access token", "no_token")
        refresh = token.get("refresh_token") or (stored or {}).get("refresh_token")
        if not refresh:
            raise ConnectError(
                "Google returned no refresh token and none is stored; start the connection again "
                "(it will ask for consent)", "no_refresh_token")
        granted = self.granted_platforms(token, platforms)
        if not granted:
            raise ConnectError("the Google consent granted neither Gmail nor Calendar access", "scope_denied")
        creds = {
            "refresh_token": refresh, "client_id": client.client_id, "client_secret": client.client_secret,
            "access_token": token["access_token"], "expires_at": expires_at(token, time.time()),
            "scope": token.get("scope"), "oauth": "google",
        }
        clean = {k: v for k, v in creds.items() if v is not None}
        label = _email_from_id_token(token.get("id_token"))
        return Grant({p: dict(clean) for p in granted}, label, str(token.get("scope") or "").split())
