"""Platform API clients (Slack, Gmail, Calendar, Notion) as one resource: endpoints and policies.

Holds no secrets: credentials are per connection, encrypted in the control plane and decrypted
by the sync with the ``credentials`` resource. Base URLs are configurable so tests (and
self-hosted proxies) can point the official SDKs elsewhere.
"""

from __future__ import annotations

import dagster as dg
from pydantic import Field


class PlatformClients(dg.ConfigurableResource):
    """Endpoints, timeouts, retry policy and request budgets of the platform APIs."""

    slack_base_url: str = Field(default="https://slack.com/api/")
    google_api_base_url: str | None = Field(default=None, description="None = Google's public endpoints.")
    google_token_uri: str = Field(default="https://oauth2.googleapis.com/token")
    notion_base_url: str = Field(default="https://api.notion.com")
    timeout_seconds: float = Field(default=30.0, description="Per request.")
    max_attempts: int = Field(default=4, description="Per call, counting the first (429, 5xx, network errors).")
    backoff_seconds: float = Field(default=1.0, description="First back-off after a 5xx; doubles, with jitter.")
    max_retry_after_seconds: float = Field(default=120.0, description="Longer Retry-After values fail the call.")
    rate_limits: dict[str, float] = Field(
        default_factory=dict, description='Requests/minute overrides: {"slack": 50, "slack:users.info": 100}.'
    )
    shared_budget: bool = Field(default=True, description="Budgets in the control plane, shared by all runs.")
