"""The one place the platform's Definitions are assembled: every domain's assets, checks and jobs,
the triggers of ``sensors/`` and ``schedules/`` (one module per domain), and the resources built
from settings validated at load time. Nothing below imports this module (tests/test_import_layers.py)."""

from __future__ import annotations

import warnings

import dagster as dg

from resources.registry import build_resources
from resources.settings import YarnSettings, load_settings
from schedules import memory as memory_schedules
from schedules import ops as ops_schedules
from schedules import signals as signals_schedules
from sensors import automation as automation_sensors
from sensors import deliverables as deliverables_sensors
from sensors import ingest as ingest_sensors
from sensors import memory as memory_sensors
from sensors import ops as ops_sensors
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


#: Triggers per domain; ``sensors.automation`` is the global declarative-automation sensor.
SENSORS = (automation_sensors, ingest_sensors, deliverables_sensors, memory_sensors, ops_sensors)
SCHEDULES = (signals_schedules, memory_schedules, ops_schedules)


def build_definitions(settings: YarnSettings) -> dg.Definitions:
    merged = dg.Definitions.merge(
        *(domain() for domain in DOMAINS),
        dg.Definitions(
            sensors=[sensor for module in SENSORS for sensor in module.SENSORS],
            schedules=[schedule for module in SCHEDULES for schedule in module.SCHEDULES],
            resources=build_resources(settings),
            executor=build_executor(settings),
        ),
    )
    # cross-cutting policies, applied once over every domain's assets (DOP style)
    return apply_freshness_policies(merged)


@dg.definitions
def defs() -> dg.Definitions:
    return build_definitions(load_settings())
