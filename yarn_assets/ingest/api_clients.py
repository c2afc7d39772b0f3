"""What every platform's API client shares: the endpoints and timeout (from the ``platform_clients``
resource) and the check that stored credentials hold what the client needs.

The clients themselves live with their platform (``platforms/<name>/client.py``): thin wrappers over
the official SDKs, one method per API call, each through :class:`~yarn_assets.ingest.api_calls.ApiCaller`.
Tokens live only inside the SDK objects; nothing logs or returns them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from yarn_assets.ingest.api_errors import CredentialProblem


@dataclass(frozen=True)
class ClientConfig:
    slack_base_url: str = "https://slack.com/api/"
    google_api_base_url: str | None = None  # None = Google's public endpoints
    google_token_uri: str = "https://oauth2.googleapis.com/token"
    notion_base_url: str = "https://api.notion.com"
    timeout_seconds: float = 30.0


def require_credentials(creds: dict[str, Any], keys: tuple[str, ...], label: str) -> None:
    missing = [k for k in keys if not creds.get(k)]
    if missing:
        raise CredentialProblem(f"{label}: stored credentials lack {', '.join(missing)}; reconnect it")
