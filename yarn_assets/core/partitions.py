"""Partition definitions shared across domains.

Ingest is partitioned by (UTC ingest day × platform): an operator re-reads "Slack for last
Tuesday" or backfills one platform after a parser fix without touching the others, and every
partition maps to exactly one bronze folder (platform=…/ingest_date=…).
"""

from __future__ import annotations

import dagster as dg

from yarn_assets.core.tables import PLATFORMS

PARTITIONS_START = "2024-01-01"

#: ``end_offset=1`` so today's partition exists: imports and syncs land in the current day.
ingest_days = dg.DailyPartitionsDefinition(start_date=PARTITIONS_START, end_offset=1, timezone="UTC")
platforms = dg.StaticPartitionsDefinition(list(PLATFORMS))

#: Keys read ``2026-11-23|slack`` (Dagster orders dimensions by name: date, platform).
ingest_partitions = dg.MultiPartitionsDefinition({"date": ingest_days, "platform": platforms})


def ingest_key(day: str, platform: str) -> str:
    return dg.MultiPartitionKey({"date": day, "platform": platform})
