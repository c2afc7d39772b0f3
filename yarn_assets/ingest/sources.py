"""The bronze assets silver reads from: export imports and live API syncs (same table, same partitions)."""

from __future__ import annotations

import dagster as dg

BRONZE_IMPORTS = dg.AssetKey(["bronze", "imported_items"])
BRONZE_SYNCS = dg.AssetKey(["bronze", "synced_items"])
SILVER_CONTENT = dg.AssetKey(["silver", "platform_content"])

BRONZE_SOURCES = (BRONZE_IMPORTS, BRONZE_SYNCS)
