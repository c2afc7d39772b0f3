"""The deliverables asset: one materialization of a partition = one new version of one deliverable.

**Partitioning: ``DynamicPartitionsDefinition("deliverables")`` keyed by deliverable id.**
A deliverable is the unit that is scheduled, triggered, retried, backfilled and inspected, and
deliverables come and go at run time (users, signals and the analyst create them), so their ids
are dynamic partition keys: the UI shows each deliverable's history of versions as that
partition's materializations (with sources, tokens, cost and steps as metadata) and an operator
re-runs one deliverable by materializing its partition. Time partitions would not fit (versions are
not tied to calendar windows and a deliverable may run several times a day), and a static list cannot
follow creation. Keys are added when a deliverable is created (CLI, demo) or by the sensors
(``dynamic_partitions_requests``) for deliverables created elsewhere (signals).

**Two entry points, one code path.** Scheduled and requested runs go through the shard round
(:mod:`.round_job`: one run per user shard and tick, each version reported as a materialization of
its partition here); this asset is the single-deliverable entry (materialize a partition in the UI,
a backfill, the API's and CLI's "run now"). Both call :func:`~yarn_assets.deliverables.round.run_round`
and report through :mod:`.report`, so a version looks the same whichever made it.

**One multi-step asset, not a graph.** The steps (plan → search → papers for research, platform
gathering in parallel for hybrid, then compose → store → retain → deliver) depend on each
deliverable's binding, which a static graph would have to express as no-op ops for most
partitions; instead each step is timed and its status recorded in the control plane as it
finishes, and the version is checkpointed so a retry or a re-execution from failure resumes it
instead of generating or sending again.
"""

import dagster as dg
from dagster import AssetExecutionContext

from resources.control_plane import ControlPlane
from resources.embeddings import Embeddings
from resources.llm import LLM, LLMScope
from resources.search import WebSearch
from resources.warehouse import Warehouse
from yarn_assets.core import metadata as md
from yarn_assets.deliverables.delivery.resource import DeliveryChannels
from yarn_assets.deliverables.report import (
    CHECK_DESTINATION,
    CHECK_VERSIONS,
    DELIVERABLE_VERSIONS_KEY,
    check_results,
    outcome_metadata,
)
from yarn_assets.deliverables.round import RoundItem, run_round
from yarn_assets.deliverables.run_resources import RunResources
from yarn_assets.deliverables.tables import DELIVERABLE_VERSIONS
from yarn_assets.ingest.sources import SILVER_CONTENT

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

#: transient failures (LLM API, Delta commit races) retry in-step; a version is resumed, never re-sent.
DELIVERABLE_RETRY = dg.RetryPolicy(max_retries=2, delay=2, backoff=dg.Backoff.EXPONENTIAL, jitter=dg.Jitter.PLUS_MINUS)


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
    [outcome] = run_round(res, [RoundItem(deliverable_id, trigger)], run_id=run.run_id,
                          root_run_id=run.root_run_id or run.run_id, scope=LLMScope.from_context(context))
    checks, partition_rows = check_results(res, [(deliverable_id, outcome.version_id)])[deliverable_id]
    if outcome.status == "skipped":
        context.log.info(f"deliverable {deliverable_id} skipped: {outcome.reason}")
        yield from checks
        return
    if outcome.status == "failed":
        raise dg.Failure(
            description=f"deliverable {deliverable_id} v{outcome.version_number}: {outcome.reason}",
            metadata=outcome_metadata(outcome), allow_retries=False,
        )
    table = md.table_metadata_of(warehouse.store, DELIVERABLE_VERSIONS, partition_rows=partition_rows)
    yield dg.MaterializeResult(metadata={**outcome_metadata(outcome), **table}, check_results=checks)


deliverable_job = dg.define_asset_job(
    "deliverable_job",
    selection=dg.AssetSelection.assets(DELIVERABLE_VERSIONS_KEY),
    executor_def=dg.in_process_executor,
    description="Generate and deliver one version of one deliverable now (partition = deliverable id): the UI, "
    "API and CLI entry; scheduled and requested deliverables run in shard rounds (deliverable_round_job). "
    "In-process: the run has one step, so a subprocess would only add start-up time.",
)
