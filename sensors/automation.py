"""The declarative-automation sensor, RUNNING out of the box.

Without one defined, Dagster adds ``default_automation_condition_sensor``, which ships STOPPED:
assets with automation conditions (silver follows bronze) would then never run unless someone
switched it on. This one evaluates every asset's condition every 30 s from the first start.
``emit_backfills=False``: automation requests plain runs, so they are never mistaken for an
operator's backfill (which re-lands and re-normalizes whole partitions).
"""


import dagster as dg

automation_sensor = dg.AutomationConditionSensorDefinition(
    "automation_condition_sensor",
    target=dg.AssetSelection.all(),
    default_status=dg.DefaultSensorStatus.RUNNING,
    minimum_interval_seconds=30,
    emit_backfills=False,
    run_tags={"yarnnn/trigger": "automation"},
    description="Evaluates the assets' automation conditions (e.g. silver follows a bronze-only update).",
)

SENSORS = [automation_sensor]
