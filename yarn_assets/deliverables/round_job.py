"""The shard round as a Dagster run: ``deliverable_round_job`` runs the due (or requested) deliverables
of one user shard in one process, through :func:`~yarn_assets.deliverables.round.run_round`.

**History per deliverable stays in the asset.** A run can only target one partition of the dynamic
``deliverables`` partitions (or a contiguous range), and a shard's due deliverables are an arbitrary
set, so the round is an op, not an asset run: it reports every version it makes as an
``AssetMaterialization`` of partition ``<deliverable id>`` of ``gold/deliverable_versions`` (the
same metadata as a single-partition run, :mod:`.report`), and the two asset checks as
``AssetCheckEvaluation`` events of that partition. The UI therefore shows each deliverable's
versions as its partition's history, whichever run made them; a failed version is logged as an
observation of its partition and fails the run (so run retries re-execute the round).

**Resumption.** Versions are keyed by the run lineage (``root_run_id``); an in-step retry or a
re-execution from failure of a round does not run again the items whose version of this lineage
already finished (reporting their materialization if the failed attempt never did), and resumes the
others: a scheduled item whose version exists is run with trigger ``resume`` so the "nothing new"
gate (which the first attempt's checkpoint just satisfied) does not skip the unfinished version.
"""

import dagster as dg
from sqlalchemy import select

from control_plane.models import DeliverableVersion
from resources.control_plane import ControlPlane
from resources.embeddings import Embeddings
from resources.llm import LLM, LLMScope
from resources.search import WebSearch
from resources.warehouse import Warehouse
from yarn_assets.core import metadata as md
from yarn_assets.deliverables.assets import DELIVERABLE_RETRY
from yarn_assets.deliverables.delivery.resource import DeliveryChannels
from yarn_assets.deliverables.report import (
    DELIVERABLE_VERSIONS_KEY,
    as_evaluation,
    check_results,
    outcome_metadata,
)
from yarn_assets.deliverables.round import RoundItem, run_round
from yarn_assets.deliverables.run import RunOutcome
from yarn_assets.deliverables.run_resources import RunResources
from yarn_assets.deliverables.tables import DELIVERABLE_VERSIONS

ROUND_JOB = "deliverable_round_job"
ROUND_OP = "deliverable_round"
SHARD_TAG = "yarnnn/deliverable_shard"
#: a lineage version in one of these states is finished: a retry of the round does not run it again
FINISHED = ("delivered", "empty")


class RoundEntry(dg.Config):
    """One deliverable of the round (ids only: the run config never carries content)."""

    deliverable_id: str
    trigger: str = "schedule"
    request_ids: list[str] = []


class RoundConfig(dg.Config):
    shard: str = "0"
    shards: int = 1
    items: list[RoundEntry] = []


def round_run_config(shard: str, shards: int, entries: list[dict]) -> dict:
    """The run config of a round (sensors, CLI, demo): ``entries`` are RoundEntry fields."""
    return {"ops": {ROUND_OP: {"config": {"shard": shard, "shards": shards, "items": entries}}}}


def _lineage(res: RunResources, ids: list[str], root_run_id: str) -> dict[str, DeliverableVersion]:
    with res.session_factory() as session:
        rows = session.scalars(select(DeliverableVersion).where(DeliverableVersion.root_run_id == root_run_id,
                                                                DeliverableVersion.deliverable_id.in_(ids))).all()
        for r in rows:
            session.expunge(r)
    return {r.deliverable_id: r for r in rows}


def plan_items(entries: list[RoundEntry], lineage: dict[str, DeliverableVersion]
               ) -> tuple[list[RoundItem], list[DeliverableVersion]]:
    """(items to run, finished versions of this lineage that are not run again)."""
    run, finished = [], []
    for e in entries:
        v = lineage.get(e.deliverable_id)
        if v is not None and v.status in FINISHED:
            finished.append(v)
        elif v is not None and e.trigger == "schedule":
            run.append(RoundItem(e.deliverable_id, "resume"))
        else:
            run.append(RoundItem(e.deliverable_id, e.trigger))
    return run, finished


def _already_reported(instance: dg.DagsterInstance, v: DeliverableVersion) -> bool:
    records = instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=DELIVERABLE_VERSIONS_KEY, asset_partitions=[v.deliverable_id]), limit=1).records
    mat = records[0].asset_materialization if records else None
    version = mat.metadata.get("version_id") if mat else None
    return version is not None and version.value == v.id


def report_round(context: dg.OpExecutionContext, res: RunResources, outcomes: list[RunOutcome],
                 finished: list[DeliverableVersion]) -> list[RunOutcome]:
    """Log each version as a materialization (failed ones as observations) of its partition, with the
    table metadata of a single-partition run, and its checks; returns the failed outcomes."""
    made = [o for o in outcomes if o.status in FINISHED]
    failed = [o for o in outcomes if o.status == "failed"]
    checked = [(o.deliverable_id, o.version_id) for o in made + failed]
    results = check_results(res, checked) if checked else {}
    table = md.table_metadata_of(res.store, DELIVERABLE_VERSIONS) if made else {}
    for o in made:
        context.log_event(dg.AssetMaterialization(
            asset_key=DELIVERABLE_VERSIONS_KEY, partition=o.deliverable_id,
            metadata={**outcome_metadata(o), **table,
                      "dagster/partition_row_count": results[o.deliverable_id][1]}))
    for o in failed:
        context.log_event(dg.AssetObservation(asset_key=DELIVERABLE_VERSIONS_KEY, partition=o.deliverable_id,
                                              metadata=outcome_metadata(o)))
    for v in finished:
        if not _already_reported(context.instance, v):
            context.log_event(dg.AssetMaterialization(
                asset_key=DELIVERABLE_VERSIONS_KEY, partition=v.deliverable_id,
                metadata={"deliverable_id": v.deliverable_id, "version_id": v.id, "version_number": v.version_number,
                          "status": v.status, "resumed": True, "delivery_status": v.delivery_status or "skipped"}))
    for did, (checks, _rows) in results.items():
        for c in checks:
            context.log_event(as_evaluation(c, did))
    return failed


@dg.op(
    name=ROUND_OP,
    pool="llm",
    retry_policy=DELIVERABLE_RETRY,
    description="The deliverables of one user shard (ids and triggers in the run config), each versioned, "
    "stored and delivered once; every version is reported as a materialization of its deliverable's partition "
    "of gold/deliverable_versions.",
)
def deliverable_round(
    context: dg.OpExecutionContext,
    config: RoundConfig,
    warehouse: Warehouse,
    control_plane: ControlPlane,
    llm: LLM,
    search: WebSearch,
    delivery: DeliveryChannels,
    embeddings: Embeddings,
) -> None:
    run = context.run
    root = run.root_run_id or run.run_id
    res = RunResources(store=warehouse.store, session_factory=control_plane.session, llm=llm, search=search,
                       delivery=delivery, log=context.log, embedder=embeddings.embedder())
    ids = [e.deliverable_id for e in config.items]
    items, finished = plan_items(list(config.items), _lineage(res, ids, root) if ids else {})
    scope = LLMScope.from_context(context, asset_key=DELIVERABLE_VERSIONS_KEY.to_user_string())
    outcomes = run_round(res, items, run_id=run.run_id, root_run_id=root, scope=scope) if items else []
    failed = report_round(context, res, outcomes, finished)
    counts = {s: sum(o.status == s for o in outcomes) for s in ("delivered", "empty", "skipped", "failed")}
    context.log.info(f"round of shard {config.shard}/{config.shards}: {len(items)} run, {len(finished)} already "
                     f"finished in this lineage; " + ", ".join(f"{k} {v}" for k, v in counts.items()))
    if failed:
        raise dg.Failure(
            description=f"{len(failed)} of {len(outcomes)} deliverables of the round failed: "
            + "; ".join(f"{o.deliverable_id} v{o.version_number}: {o.reason}" for o in failed),
            metadata={"failed": dg.MetadataValue.json([o.deliverable_id for o in failed]), **counts},
            allow_retries=False,
        )


@dg.job(
    name=ROUND_JOB,
    executor_def=dg.in_process_executor,
    description="One round: the due or requested deliverables of one user shard in one run (one process, one "
    "definitions load, shared reads and writes), one run per shard and tick from the deliverable sensors. "
    "Each version shows as a materialization of its deliverable's partition of gold/deliverable_versions.",
)
def deliverable_round_job() -> None:
    deliverable_round()
