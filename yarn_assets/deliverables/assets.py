"""The deliverables asset: one materialization of a partition = one new version of one deliverable.

**Partitioning: ``DynamicPartitionsDefinition("deliverables")`` keyed by deliverable id.**
A deliverable is the unit that is scheduled, triggered, retried, backfilled and inspected, and
deliverables come and go at run time (users, signals and the analyst create them), so their ids
are dynamic partition keys: the UI shows each deliverable's history of versions as that
partition's materializations (with sources, tokens, cost and steps as metadata), an operator
re-runs one deliverable by materializing its partition, and runs of different deliverables never
share a step. Time partitions would not fit (versions are not tied to calendar windows and a
deliverable may run several times a day), and a static list cannot follow creation. Keys are added
when a deliverable is created (CLI, demo) or by the sensors (``dynamic_partitions_requests``) for
deliverables created elsewhere (signals).

**One multi-step asset, not a graph.** The steps (plan → search → papers for research, platform
gathering in parallel for hybrid, then compose → store → retain → deliver) depend on each
deliverable's binding, which a static graph would have to express as no-op ops for most
partitions; instead each step is timed and its status recorded in the control plane as it
finishes, and the version is checkpointed so a retry or a re-execution from failure resumes it
instead of generating or sending again.
"""

import json

import dagster as dg
import polars as pl
from dagster import AssetExecutionContext
from sqlalchemy import select

from control_plane.models import DeliverableDelivery
from io_managers.predicates import Eq
from resources.control_plane import ControlPlane
from resources.embeddings import Embeddings
from resources.llm import LLM, LLMScope
from resources.search import WebSearch
from resources.warehouse import Warehouse
from yarn_assets.core import metadata as md
from yarn_assets.deliverables.delivery.base import DeliveryError
from yarn_assets.deliverables.delivery.dispatch import resolve
from yarn_assets.deliverables.delivery.resource import DeliveryChannels
from yarn_assets.deliverables.run import RunOutcome, run_deliverable
from yarn_assets.deliverables.run_resources import RunResources
from yarn_assets.deliverables.tables import DELIVERABLE_VERSIONS
from yarn_assets.ingest.sources import SILVER_CONTENT

DELIVERABLE_VERSIONS_KEY = dg.AssetKey(["gold", "deliverable_versions"])
#: bump when what a run writes changes (prompt, composition, row layout): versions then show as stale
CODE_VERSION = "1"

#: The control-plane tables ``deliverables`` and ``deliverable_run_requests`` as an external asset, so the
#: lineage shows the real flow: the signal passes and the conversation analyst write them (through
#: :mod:`yarn_assets.deliverables.service`), the versions asset reads them. Upstream keys are named,
#: not imported: the producers live in other domains.
CONTROL_DELIVERABLES_KEY = dg.AssetKey(["control", "deliverables"])
control_deliverables = dg.AssetSpec(
    CONTROL_DELIVERABLES_KEY,
    deps=[dg.AssetKey(["gold", "signal_actions"]), dg.AssetKey(["gold", "deliverable_suggestions"])],
    description=(
        "Control-plane tables deliverables + deliverable_run_requests: what to generate and when. Written by "
        "users (CLI, API), by executed signal actions (signal-emergent deliverables, run requests, triggers) and "
        "by the conversation analyst (paused suggestions), always through the deliverables service; read by the "
        "deliverable sensors and runs. Not materialized by Dagster."
    ),
    group_name="deliverables", kinds={"sqlalchemy"}, owners=["team:data-platform"],
)

deliverable_partitions = dg.DynamicPartitionsDefinition(name="deliverables")

TRIGGER_TAG = "yarnnn/trigger"
REQUEST_TAG = "yarnnn/request_id"

#: transient failures (LLM API, Delta commit races) retry in-step; a version is resumed, never re-sent.
DELIVERABLE_RETRY = dg.RetryPolicy(max_retries=2, delay=2, backoff=dg.Backoff.EXPONENTIAL, jitter=dg.Jitter.PLUS_MINUS)

CHECK_DESTINATION = "delivered_only_to_configured_destination"
CHECK_VERSIONS = "version_numbers_unique"


@dg.asset(
    key=DELIVERABLE_VERSIONS_KEY,
    partitions_def=deliverable_partitions,
    deps=[dg.AssetDep(SILVER_CONTENT, partition_mapping=dg.AllPartitionMapping()), CONTROL_DELIVERABLES_KEY],
    group_name="deliverables",
    code_version=CODE_VERSION,
    kinds={"deltalake", "polars", "anthropic"},
    owners=["team:data-platform"],
    retry_policy=DELIVERABLE_RETRY,
    pool="llm",
    output_required=False,
    description=(
        "Versions of each deliverable (partition = deliverable id): a run gathers the user's own silver "
        "content (and web/arXiv research for research and hybrid types), writes the text with the LLM (or the "
        "labelled offline rules), stores draft and final with sources, source snapshot, tokens, cost and step "
        "timings in gold/deliverable_versions, marks the prompt's items retained and delivers once to the "
        "configured destination (email, Slack or the file outbox). Scheduled runs with nothing new are skipped."
    ),
    check_specs=[
        dg.AssetCheckSpec(CHECK_DESTINATION, asset=DELIVERABLE_VERSIONS_KEY,
                          description="Every delivery of this deliverable went to its configured destination."),
        dg.AssetCheckSpec(CHECK_VERSIONS, asset=DELIVERABLE_VERSIONS_KEY,
                          description="Version numbers of this deliverable are unique in the gold table."),
    ],
)
def deliverable_versions(
    context: AssetExecutionContext,
    warehouse: Warehouse,
    control_plane: ControlPlane,
    llm: LLM,
    search: WebSearch,
    delivery: DeliveryChannels,
    embeddings: Embeddings,
):
    deliverable_id = context.partition_key
    run = context.run
    tags = run.tags
    trigger = tags.get(TRIGGER_TAG, "manual")
    res = RunResources(store=warehouse.store, session_factory=control_plane.session,
                       llm=llm, search=search, delivery=delivery, log=context.log, embedder=embeddings.embedder())
    outcome = run_deliverable(
        res, deliverable_id=deliverable_id, run_id=run.run_id, root_run_id=run.root_run_id or run.run_id,
        trigger=trigger, scope=LLMScope.from_context(context),
    )
    checks, partition_rows = _checks(res, deliverable_id, outcome.version_id)
    if outcome.status == "skipped":
        context.log.info(f"deliverable {deliverable_id} skipped: {outcome.reason}")
        yield from checks
        return
    if outcome.status == "failed":
        raise dg.Failure(
            description=f"deliverable {deliverable_id} v{outcome.version_number}: {outcome.reason}",
            metadata=_metadata(outcome), allow_retries=False,
        )
    table = md.table_metadata_of(warehouse.store, DELIVERABLE_VERSIONS, partition_rows=partition_rows)
    yield dg.MaterializeResult(metadata={**_metadata(outcome), **table}, check_results=checks)


#: Source fields that name or quote content (channel/page titles, API error text): kept out of run history.
_CONTENT_FIELDS = ("resource_name", "last_error", "label")


def _ids_only(raw: str | None) -> list[dict]:
    """A sources JSON column (list of dicts) without the fields that can carry titles or text."""
    return [{k: v for k, v in entry.items() if k not in _CONTENT_FIELDS} for entry in json.loads(raw or "[]")]


def _metadata(o: RunOutcome) -> dict:
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


def _checks(res: RunResources, deliverable_id: str, version_id: str | None
            ) -> tuple[list[dg.AssetCheckResult], int]:
    """The two checks, and the partition's (this deliverable's) row count they read."""
    from control_plane.models import Deliverable

    with res.session_factory() as session:
        d = session.get(Deliverable, deliverable_id)
        try:
            expected = resolve(session, res.delivery, user_id=d.user_id, destination=d.destination).targets() \
                if d else []
        except (ValueError, DeliveryError):
            expected = []
        rows = [[r.channel, r.target, r.status] for r in session.scalars(
            select(DeliverableDelivery).where(DeliverableDelivery.version_id == (version_id or "")))]
    wrong = [r for r in rows if r[:2] not in expected]
    versions = res.store.read(DELIVERABLE_VERSIONS, Eq("deliverable_id", deliverable_id),
                              columns=["version_number", "version_id"])
    dupes = versions.group_by("version_number").agg(pl.col("version_id").n_unique().alias("n")).filter(pl.col("n") > 1)
    return [
        dg.AssetCheckResult(check_name=CHECK_DESTINATION, passed=not wrong,
                            metadata={"configured": dg.MetadataValue.json(expected),
                                      "deliveries_of_version": len(rows),
                                      "unexpected_targets": dg.MetadataValue.json(wrong)}),
        dg.AssetCheckResult(check_name=CHECK_VERSIONS, passed=dupes.is_empty(),
                            metadata={"versions": versions.height, "duplicate_numbers": dupes.height}),
    ], versions.height


deliverable_job = dg.define_asset_job(
    "deliverable_job",
    selection=dg.AssetSelection.assets(DELIVERABLE_VERSIONS_KEY),
    executor_def=dg.in_process_executor,
    description="Generate and deliver one version of one deliverable (partition = deliverable id). In-process: "
    "the run has one step, so a subprocess would only add start-up time.",
)
