"""What every provider shares: an Authlib ``OAuth2Session`` per request, token slots, error codes.

A provider module (:mod:`.slack`, :mod:`.google`, :mod:`.notion`) subclasses :class:`Provider` with its
endpoints, scopes, client authentication and the mapping of its token response onto the stored
credential payloads the sync clients read.
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any

from authlib.integrations.base_client.errors import OAuthError
from authlib.integrations.requests_client import OAuth2Session
from requests import RequestException

from yarn_assets.connect.config import ConnectConfig, OAuthClient
from yarn_assets.connect.errors import NotConfigured

#: provider error codes meaning "this grant is dead": the user must consent again
DEAD_GRANT_ERRORS = frozenset({
    "invalid_grant", "invalid_refresh_token", "token_revoked", "token_expired", "invalid_auth",
    "account_inactive", "refresh_token_revoked",
})

#: what a provider revoke may answer when the token is already gone (disconnect still succeeds)
ALREADY_GONE = frozenset({"invalid_token", "invalid_auth", "token_revoked", "invalid_grant", "not_authed",
                          "unauthorized"})

TransportError = (RequestException, OSError)


@dataclass(frozen=True)
class Slot:
    """One token in a stored payload: its key, its refresh token's key and its expiry's key (epoch s)."""

    access: str
    refresh: str
    expires: str


@dataclass
class Grant:
    """The outcome of one consent: a credential payload per platform it covers, and a label."""

    credentials: dict[str, dict[str, Any]]
    account_label: str | None
    scopes: list[str]


def expires_at(token: dict[str, Any], now: float | None = None) -> int | None:
    """Absolute expiry (epoch seconds) of a token response: ``expires_in`` counted from ``now`` (the
    caller's clock; Authlib's own ``expires_at`` uses the wall clock), else ``expires_at``."""
    if token.get("expires_in"):
        return int((now if now is not None else time.time()) + int(token["expires_in"]))
    if token.get("expires_at"):
        return int(token["expires_at"])
    return None


class Provider(ABC):
    name: str = ""
    platforms: tuple[str, ...] = ()
    pkce: bool = False
    auth_method: str = "client_secret_basic"
    slots: tuple[Slot, ...] = ()

    def client(self, cfg: ConnectConfig, creds: dict[str, Any] | None = None) -> OAuthClient:
        """The configured OAuth app; else the one a stored grant was made with (the sync workers
        refresh tokens without the operator's OAuth settings)."""
        client = getattr(cfg, self.name)
        if client is None and creds and creds.get("client_id") and creds.get("client_secret"):
            return OAuthClient(str(creds["client_id"]), str(creds["client_secret"]))
        if client is None:
            upper = self.name.upper()
            raise NotConfigured(
                f"{self.name} connections are not configured: the operator must set YARNNN_{upper}_CLIENT_ID "
                f"and YARNNN_{upper}_CLIENT_SECRET"
            )
        return client

    # --- endpoints
    @abstractmethod
    def authorize_url(self, cfg: ConnectConfig) -> str:
        """The provider's consent page."""

    @abstractmethod
    def token_url(self, cfg: ConnectConfig) -> str:
        """Where codes and refresh tokens are exchanged."""

    @abstractmethod
    def revoke_url(self, cfg: ConnectConfig) -> str:
        """Where a disconnect revokes the grant."""

    # --- consent
    @abstractmethod
    def scopes(self, platforms: list[str]) -> list[str]:
        """The scopes the consent asks for, for the platforms being connected."""

    def authorize_params(self, platforms: list[str], has_refresh_token: bool) -> dict[str, str]:
        """Extra query parameters of the authorize URL."""
        return {}

    def scope_param(self, scopes: list[str]) -> dict[str, str]:
        return {"scope": " ".join(scopes)} if scopes else {}

    @abstractmethod
    def grant(self, token: dict[str, Any], client: OAuthClient, platforms: list[str],
              stored: dict[str, Any] | None) -> Grant:
        """Credential payloads from a token response; ``stored`` is what the user had (may keep a refresh token)."""

    # --- HTTP
    def session(self, cfg: ConnectConfig, *, redirect_uri: str | None = None, scope: list[str] | None = None,
                creds: dict[str, Any] | None = None) -> OAuth2Session:
        client = self.client(cfg, creds)
        sess = OAuth2Session(
            client.client_id, client.client_secret, scope=" ".join(scope) if scope else None,
            redirect_uri=redirect_uri, token_endpoint_auth_method=self.auth_method,
            revocation_endpoint_auth_method=self.auth_method,
            code_challenge_method="S256" if self.pkce else None, default_timeout=cfg.timeout_seconds,
        )
        sess.trust_env = False  # never route tokens through a proxy from the environment
        self.hooks(sess)
        return sess

    def hooks(self, sess: OAuth2Session) -> None:
        """Register Authlib compliance hooks or client-auth methods for a provider's wire format."""
        return None  # the standard wire format needs none (Notion overrides it)

    def refresh(self, cfg: ConnectConfig, refresh_token: str, creds: dict[str, Any] | None = None) -> dict[str, Any]:
        with self.session(cfg, creds=creds) as sess:
            return dict(sess.refresh_token(self.token_url(cfg), refresh_token=refresh_token))

    def revoke(self, cfg: ConnectConfig, creds: dict[str, Any]) -> str:
        """Revoke the grant at the provider; returns what happened (``revoked`` or ``already gone``)."""
        token = self.revocable_token(creds)
        if not token:
            return "nothing to revoke"
        with self.session(cfg, creds=creds) as sess:
            resp = sess.revoke_token(self.revoke_url(cfg), token=token)
        return self.revoke_outcome(resp)

    def revocable_token(self, creds: dict[str, Any]) -> str | None:
        slot = self.slots[0]
        return creds.get(slot.refresh) or creds.get(slot.access)

    def revoke_outcome(self, resp: Any) -> str:
        data = _json(resp)
        if resp.status_code < 300 and data.get("ok", True) is not False:
            return "revoked"
        code = str(data.get("error") or data.get("code") or f"http_{resp.status_code}")
        if code in ALREADY_GONE:
            return "already gone"
        raise OAuthError(error=code, description=f"revoke refused: {code}")


def _json(resp: Any) -> dict[str, Any]:
    try:
        data = resp.json()
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}
