"""The flow's configuration and environment, built once from settings (never read at import time)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from control_plane.crypto import TokenCipher
from io_managers.delta_store import DeltaStore


@dataclass(frozen=True)
class OAuthClient:
    """One registered OAuth app: its id and secret (the secret never leaves this object but in requests)."""

    client_id: str
    client_secret: str

    def __repr__(self) -> str:  # never print the secret
        return f"OAuthClient(client_id={self.client_id!r})"


@dataclass(frozen=True)
class ConnectConfig:
    redirect_base_url: str = "http://127.0.0.1:8000"
    state_ttl_seconds: int = 600
    timeout_seconds: float = 30.0
    slack: OAuthClient | None = None
    slack_authorize_url: str = "https://slack.com/oauth/v2/authorize"
    slack_api_base_url: str = "https://slack.com/api/"
    google: OAuthClient | None = None
    google_authorize_url: str = "https://accounts.google.com/o/oauth2/v2/auth"
    google_token_url: str = "https://oauth2.googleapis.com/token"
    google_revoke_url: str = "https://oauth2.googleapis.com/revoke"
    notion: OAuthClient | None = None
    notion_base_url: str = "https://api.notion.com"
    #: a token expiring within this many seconds is refreshed before use
    refresh_margin_seconds: int = 120

    def redirect_uri(self, provider: str) -> str:
        return f"{self.redirect_base_url.rstrip('/')}/connect/{provider}/callback"

    @classmethod
    def from_settings(cls, s: Any) -> ConnectConfig:
        def client(prefix: str) -> OAuthClient | None:
            cid, secret = getattr(s, f"{prefix}_client_id"), getattr(s, f"{prefix}_client_secret")
            if not cid or secret is None:
                return None
            return OAuthClient(cid, secret.get_secret_value())

        return cls(
            redirect_base_url=s.oauth_redirect_base_url, state_ttl_seconds=s.oauth_state_ttl_seconds,
            timeout_seconds=s.platform_timeout_seconds,
            slack=client("slack"), slack_authorize_url=s.slack_authorize_url, slack_api_base_url=s.slack_base_url,
            google=client("google"), google_authorize_url=s.google_authorize_url, google_token_url=s.google_token_uri,
            google_revoke_url=s.google_revoke_url,
            notion=client("notion"), notion_base_url=s.notion_base_url,
        )


@dataclass
class ConnectEnv:
    """What the flow needs: control-plane sessions (one per step, so a consumed state stays consumed
    whatever happens next), the warehouse (activity events), the credential cipher and the config."""

    sessions: Callable[[], AbstractContextManager[Session]]
    store: DeltaStore
    cipher: Callable[[], TokenCipher]
    config: ConnectConfig

    @classmethod
    def from_settings(cls, s: Any) -> ConnectEnv:
        from control_plane import db

        url = s.resolved_control_plane_url
        checked: list[bool] = []

        @contextmanager
        def sessions() -> Iterator[Session]:
            if not checked:  # the schema check costs a query: once per process is enough
                db.ensure_schema(url, s.control_plane_auto_migrate)
                checked.append(True)
            with db.session_scope(url) as session:
                yield session

        key = s.encryption_key
        return cls(
            sessions=sessions,
            store=DeltaStore(s.resolved_warehouse_root, s.warehouse_storage_options),
            cipher=lambda: TokenCipher(key.get_secret_value() if key else None),
            config=ConnectConfig.from_settings(s),
        )
