"""People-domain policy as a resource: contact creation defaults, merge threshold, reader limits.

A user's own contact creation policy (``yarnnn contacts policy``) overrides ``contact_policy``; the
rest is platform-wide configuration read from ``YARNNN_PEOPLE_*`` when definitions load.
"""

from __future__ import annotations

from typing import Literal

import dagster as dg
from pydantic import Field


class PeoplePolicy(dg.ConfigurableResource):
    contact_policy: Literal["sent", "sent_and_received", "none"] = Field(
        default="sent_and_received", description="Default contact creation policy (a user may override it).")
    exclude_role_addresses: bool = Field(default=True, description="No contacts from group/role addresses.")
    exclude_freemail: bool = Field(default=False, description="No contacts from free-mail addresses.")
    role_localparts: list[str] = Field(default_factory=list, description="Extra role/group local parts.")
    freemail_domains: list[str] = Field(default_factory=list, description="Extra free-mail domains.")
    merge_min_confidence: float = Field(default=0.75, description="Links below this are candidates, not merges.")
    max_recipients: int = Field(default=50, description="More recipients than this: mass mail, no contacts.")
    phone_region: str | None = Field(default=None, description="Region for phone numbers without a country code.")
    calendar_history_days: int = Field(default=3650, description="Series expansion window, days back.")
    calendar_future_days: int = Field(default=180, description="Series expansion window, days ahead.")
    max_instances_per_series: int = Field(default=1000, description="Instances kept per recurring series.")
    retrieval_max_k: int = Field(default=100, description="Largest k a search accepts.")
    retrieval_cache_mb: int = Field(default=512, description="Per-process cache of users' vector matrices (MiB).")
