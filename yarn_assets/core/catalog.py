"""Every Delta table the platform writes, for the CLI, maintenance and the README."""

from __future__ import annotations

from importlib import import_module

from io_managers.delta_store import TableSpec

#: Modules exposing ``TABLES``: each domain lists its own tables there.
TABLE_MODULES = (
    "yarn_assets.core.tables",
    "yarn_assets.ingest.platforms.chat.tables",
    "yarn_assets.signals.tables",
    "yarn_assets.deliverables.tables",
    "yarn_assets.deliverables.feedback",
    "yarn_assets.memory.tables",
    "yarn_assets.recipes.tables",
    "yarn_assets.people.tables",
)


def all_tables() -> list[TableSpec]:
    specs: list[TableSpec] = []
    for name in TABLE_MODULES:
        specs.extend(import_module(name).TABLES)
    return specs
