"""The Delta warehouse as a Dagster resource: one root (folder or object store) for every table."""

from __future__ import annotations

from typing import Any

import dagster as dg
from pydantic import Field

from io_managers.delta_store import DeltaStore


class Warehouse(dg.ConfigurableResource):
    """Bronze, silver and gold Delta tables under ``root``.

    Object-store credentials are not fields: deltalake reads the store's standard variables
    (``AWS_ACCESS_KEY_ID``…), so they never reach run config or the UI.
    """

    root: str = Field(description="Folder or object-store URI (s3://bucket/prefix) of the warehouse.")
    storage_options: dict[str, Any] = Field(default_factory=dict, description="Non-secret store options.")

    @property
    def store(self) -> DeltaStore:
        return DeltaStore(self.root, {k: str(v) for k, v in self.storage_options.items()})
