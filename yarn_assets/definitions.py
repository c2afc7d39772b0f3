"""The one place the platform's Definitions are assembled: per-domain definitions merged,
resources built from settings validated at load time."""

from __future__ import annotations

import warnings

import dagster as dg

from resources.registry import build_resources
from resources.settings import YarnSettings, load_settings
from sensors.automation import automation_sensor
from yarn_assets.core.executors import build_executor
from yarn_assets.deliverables.definitions import definitions as deliverables_definitions
from yarn_assets.ingest.definitions import definitions as ingest_definitions
from yarn_assets.memory.definitions import definitions as memory_definitions
from yarn_assets.ops.definitions import definitions as ops_definitions
from yarn_assets.ops.freshness import apply_freshness_policies
from yarn_assets.people.definitions import definitions as people_definitions
from yarn_assets.recipes.definitions import definitions as recipes_definitions
from yarn_assets.signals.definitions import definitions as signals_definitions

warnings.filterwarnings("ignore", category=dg.BetaWarning)
warnings.filterwarnings("ignore", category=dg.PreviewWarning)

DOMAINS = (
    ingest_definitions,
    signals_definitions,
    deliverables_definitions,
    memory_definitions,
    people_definitions,
    ops_definitions,
    recipes_definitions,
)


def build_definitions(settings: YarnSettings) -> dg.Definitions:
    merged = dg.Definitions.merge(
        *(domain() for domain in DOMAINS),
        dg.Definitions(
            resources=build_resources(settings),
            executor=build_executor(settings),
            sensors=[automation_sensor],  # declarative automation runs without anyone switching it on
        ),
    )
    # cross-cutting policies, applied once over every domain's assets (DOP style)
    return apply_freshness_policies(merged)


@dg.definitions
def defs() -> dg.Definitions:
    return build_definitions(load_settings())
