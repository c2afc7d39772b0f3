"""Knobs of the warehouse housekeeping assets (daily compaction and vacuum, hourly TTL cleanup)."""

from __future__ import annotations

import dagster as dg
from pydantic import Field

#: Delta's own default for ``delta.deletedFileRetentionDuration``; vacuum below it breaks time travel
#: and concurrent readers of older versions, so it needs an explicit opt-in.
SAFE_VACUUM_HOURS = 168


class Maintenance(dg.ConfigurableResource):
    """How long vacuum keeps unreferenced files, and whether cleanup drops archived export files."""

    vacuum_retention_hours: int = Field(default=SAFE_VACUUM_HOURS, ge=0,
                                        description="Files unreferenced for less than this survive vacuum.")
    expire_import_archives: bool = Field(
        default=True, description="Delete an archived export file once every body read from it has expired.")

    @property
    def enforce_retention(self) -> bool:
        return self.vacuum_retention_hours >= SAFE_VACUUM_HOURS
