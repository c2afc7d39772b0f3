"""What a deliverable run reports to Dagster: per-version metadata and the two asset checks.

Shared by the single-partition asset and the shard round (``round_job``), so a version looks the
same in the UI whichever run made it. Metadata carries counts and ids, never content. The checks of
a round read the control plane in one session and the gold table once for all of its deliverables
(a per-deliverable scan of the shared table is what the round exists to avoid).
"""

from __future__ import annotations

import json
from collections.abc import Sequence

import dagster as dg
import polars as pl
from sqlalchemy import select

from control_plane.models import Deliverable, DeliverableDelivery
from io_managers.predicates import In
from yarn_assets.deliverables.delivery.base import DeliveryError
from yarn_assets.deliverables.delivery.dispatch import resolve
from yarn_assets.deliverables.run import RunOutcome
from yarn_assets.deliverables.run_resources import RunResources
from yarn_assets.deliverables.tables import DELIVERABLE_VERSIONS

DELIVERABLE_VERSIONS_KEY = dg.AssetKey(["gold", "deliverable_versions"])
CHECK_DESTINATION = "delivered_only_to_configured_destination"
CHECK_VERSIONS = "version_numbers_unique"

#: Source fields that name or quote content (channel/page titles, API error text): kept out of run history.
_CONTENT_FIELDS = ("resource_name", "last_error", "label")


def _ids_only(raw: str | None) -> list[dict]:
    """A sources JSON column (list of dicts) without the fields that can carry titles or text."""
    return [{k: v for k, v in entry.items() if k not in _CONTENT_FIELDS} for entry in json.loads(raw or "[]")]


def outcome_metadata(o: RunOutcome) -> dict:
    """The materialization metadata of one version (counts, ids, step timings; no text)."""
    row = o.row or {}
    steps = [s.as_dict() for s in o.steps]
    meta = {
        "deliverable_id": o.deliverable_id,
        "user_id": o.user_id,
        "deliverable_type": o.deliverable_type,
        "strategy": o.strategy,
        "version_number": o.version_number or 0,
        "version_id": o.version_id or "",
        "status": o.status,
        "resumed": o.resumed,
        "model": row.get("model") or "-",
        "offline": bool(row.get("offline")),
        "input_tokens": int(row.get("input_tokens") or 0),
        "output_tokens": int(row.get("output_tokens") or 0),
        "cost_usd": dg.MetadataValue.float(float(row.get("cost_usd") or 0.0)),
        "items_in_prompt": int(row.get("items_in_prompt") or 0),
        "items_retained": o.retained,
        "sources_used": dg.MetadataValue.json(_ids_only(row.get("sources_used"))),
        "source_snapshot": dg.MetadataValue.json(_ids_only(row.get("source_snapshot"))),
        "stale_sources": dg.MetadataValue.json(json.loads(row.get("stale_sources") or "[]")),
        "steps": dg.MetadataValue.json(steps),
        "step_ms": dg.MetadataValue.json({s["name"]: s["ms"] for s in steps}),
        "delivery_status": (o.delivery.status if o.delivery else row.get("delivery_status")) or "skipped",
        "destination": dg.MetadataValue.json(json.loads(row.get("destination") or "{}")),
        "wall_ms": dg.MetadataValue.float(round(o.wall_ms, 1)),
        "next_run_at": o.next_run_at.isoformat() if o.next_run_at else "-",
        "content_chars": len(row.get("final_content") or ""),
    }
    if o.reason:
        meta["reason"] = o.reason
    return meta


def check_results(res: RunResources, versions: Sequence[tuple[str, str | None]]
                  ) -> dict[str, tuple[list[dg.AssetCheckResult], int]]:
    """Per deliverable id of ``versions`` ((deliverable id, version id of this run)): the two checks and
    the deliverable's row count in gold. One control-plane session, one gold read for all of them."""
    ids = [did for did, _ in versions]
    with res.session_factory() as session:
        expected: dict[str, list[list[str]]] = {}
        for d in session.scalars(select(Deliverable).where(Deliverable.id.in_(ids))):
            try:
                expected[d.id] = resolve(session, res.delivery, user_id=d.user_id,
                                         destination=d.destination).targets()
            except (ValueError, DeliveryError):
                expected[d.id] = []
        version_ids = [v for _, v in versions if v]
        sent: dict[str, list[list[str]]] = {}
        for r in session.scalars(select(DeliverableDelivery).where(DeliverableDelivery.version_id.in_(version_ids))):
            sent.setdefault(r.version_id, []).append([r.channel, r.target, r.status])
    gold = res.store.read(DELIVERABLE_VERSIONS, In("deliverable_id", ids),
                          columns=["deliverable_id", "version_number", "version_id"])
    out: dict[str, tuple[list[dg.AssetCheckResult], int]] = {}
    for did, version_id in versions:
        rows = sent.get(version_id or "", [])
        wrong = [r for r in rows if r[:2] not in expected.get(did, [])]
        mine = gold.filter(pl.col("deliverable_id") == did)
        dupes = mine.group_by("version_number").agg(pl.col("version_id").n_unique().alias("n")).filter(pl.col("n") > 1)
        out[did] = ([
            dg.AssetCheckResult(check_name=CHECK_DESTINATION, asset_key=DELIVERABLE_VERSIONS_KEY, passed=not wrong,
                                metadata={"configured": dg.MetadataValue.json(expected.get(did, [])),
                                          "deliveries_of_version": len(rows),
                                          "unexpected_targets": dg.MetadataValue.json(wrong)}),
            dg.AssetCheckResult(check_name=CHECK_VERSIONS, asset_key=DELIVERABLE_VERSIONS_KEY, passed=dupes.is_empty(),
                                metadata={"versions": mine.height, "duplicate_numbers": dupes.height}),
        ], mine.height)
    return out


def as_evaluation(check: dg.AssetCheckResult, partition: str) -> dg.AssetCheckEvaluation:
    """A check result as the evaluation event an op logs for one partition of the versions asset."""
    return dg.AssetCheckEvaluation(
        asset_key=DELIVERABLE_VERSIONS_KEY, check_name=check.check_name or "", passed=check.passed,
        metadata=check.metadata, severity=check.severity, partition=partition,
    )
