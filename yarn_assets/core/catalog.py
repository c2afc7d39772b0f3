"""Every Delta table the platform writes, for the CLI, maintenance and the README."""

from __future__ import annotations

from io_managers.delta_store import TableSpec


def all_tables() -> list[TableSpec]:
    from yarn_assets.core import tables
    from yarn_assets.memory.tables import MEMORY_TABLES

    specs: list[TableSpec] = [tables.BRONZE_ITEMS, tables.REJECTS, tables.PLATFORM_CONTENT, tables.ACTIVITY_LOG]
    specs.extend(MEMORY_TABLES)
    return specs
