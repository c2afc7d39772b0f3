"""Local folders the platform works in (inbox, import archive, outbox) and the import retry policy."""

from __future__ import annotations

import dagster as dg
from pydantic import Field


class Runtime(dg.ConfigurableResource):
    """Paths under the yarnnn home; all derived from settings when definitions load."""

    home: str = Field(description="yarnnn home folder.")
    inbox_dir: str = Field(description="Drop export files into <inbox>/<user_id>/ to import them.")
    archive_dir: str = Field(description="Registered import files are kept here, by content hash.")
    outbox_dir: str = Field(description="File outbox for deliverables (the embedded default destination).")
    import_max_attempts: int = Field(default=3, description="Claims of an import job before it is failed.")
    stale_after_seconds: float = Field(default=600.0, description="Unknown-run jobs/batches presumed dead after this.")
    silver_max_catchup_runs: int = Field(default=3, description="Catch-up runs per bronze batch before it is failed.")
