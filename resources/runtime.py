"""Local folders the platform works in (inbox, import archive, outbox) as one resource."""

from __future__ import annotations

import dagster as dg
from pydantic import Field


class Runtime(dg.ConfigurableResource):
    """Paths under the yarnnn home; all derived from settings when definitions load."""

    home: str = Field(description="yarnnn home folder.")
    inbox_dir: str = Field(description="Drop export files into <inbox>/<user_id>/ to import them.")
    archive_dir: str = Field(description="Registered import files are kept here, by content hash.")
    outbox_dir: str = Field(description="File outbox for deliverables (the embedded default destination).")
