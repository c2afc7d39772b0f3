"""People assets: the CRM cascade, each stage following its upstream by declarative automation.

    silver/platform_content --> silver/interactions, silver/calendar_events, silver/identity_evidence
                                  --> gold/identity_links, gold/identities, gold/contacts
    silver/platform_content + silver/interactions --> silver/content_vectors

Every asset is partitioned like ingest (day x platform) and carries ``AutomationCondition.eager()``:
when silver lands a partition, the timeline, then contacts and vectors follow with nobody pressing
anything (the original's chained jobs sat "queued" until someone pressed "Process Jobs"). Each stage
is idempotent on re-run. Embedding is its own asset, so ingest latency does not include it.
"""

import datetime as dt
from collections import Counter
from typing import Any

import dagster as dg
import polars as pl
from dagster import AssetExecutionContext

from io_managers.delta_store import TableSpec
from io_managers.predicates import Eq, all_of
from resources.control_plane import ControlPlane
from resources.embeddings import Embeddings
from resources.people import PeoplePolicy
from resources.warehouse import Warehouse
from yarn_assets.core import metadata as md
from yarn_assets.core.partitions import ingest_partitions
from yarn_assets.core.tables import PLATFORM_CONTENT
from yarn_assets.ingest.sources import SILVER_CONTENT
from yarn_assets.people import extract, refresh, retrieval, settings, timeline, vectors
from yarn_assets.people.tables import (
    CALENDAR_EVENTS,
    CONTACTS,
    CONTENT_VECTORS,
    IDENTITIES,
    IDENTITY_EVIDENCE,
    IDENTITY_LINKS,
    INTERACTIONS,
)

GROUP = "people"
OWNERS = ["team:data-platform"]
KINDS = {"deltalake", "polars"}

INTERACTIONS_KEY = dg.AssetKey(["silver", "interactions"])
CALENDAR_KEY = dg.AssetKey(["silver", "calendar_events"])
EVIDENCE_KEY = dg.AssetKey(["silver", "identity_evidence"])
LINKS_KEY = dg.AssetKey(["gold", "identity_links"])
IDENTITIES_KEY = dg.AssetKey(["gold", "identities"])
CONTACTS_KEY = dg.AssetKey(["gold", "contacts"])
VECTORS_KEY = dg.AssetKey(["silver", "content_vectors"])

#: Contact recomputes read a user's whole timeline and replace their folders: one at a time, so the
#: last one to run has seen every interaction committed before it started.
PEOPLE_POOL = "people_aggregates"

RETRY = dg.RetryPolicy(max_retries=2, delay=5, backoff=dg.Backoff.EXPONENTIAL, jitter=dg.Jitter.PLUS_MINUS)
EAGER = dg.AutomationCondition.eager()


def _parts(context: AssetExecutionContext) -> tuple[str, str]:
    key = context.partition_key
    if isinstance(key, dg.MultiPartitionKey):
        dims = key.keys_by_dimension
        return dims["date"], dims["platform"]
    day, platform = str(key).split("|")
    return day, platform


def _table_meta(store: Any, spec: TableSpec, rows: int) -> dict[str, Any]:
    """Standard table metadata: the table's rows (from the Delta log), the rows this run wrote, columns, URI."""
    return md.table_metadata_of(store, spec, partition_rows=rows)


# =========================================================================================== timeline
@dg.multi_asset(
    specs=[
        dg.AssetSpec(INTERACTIONS_KEY, deps=[SILVER_CONTENT], group_name=GROUP, kinds=KINDS, owners=OWNERS,
                     automation_condition=EAGER, code_version="1", description=(
                         "One row per (user, item, person): every email, Slack message and meeting with each person "
                         "in it (direction, channel, time, subject, item ref), read from the partition's bronze "
                         "objects (headers silver does not keep) with the ingest normalizers' own item keys. "
                         "Bulk mail is kept and flagged.")),
        dg.AssetSpec(CALENDAR_KEY, deps=[SILVER_CONTENT], group_name=GROUP, kinds=KINDS, owners=OWNERS,
                     automation_condition=EAGER, code_version="1", description=(
                         "One row per calendar event instance (series expanded over years of history) with "
                         "attendees and their response status; cancelled instances are tombstones.")),
        dg.AssetSpec(EVIDENCE_KEY, deps=[SILVER_CONTENT], group_name=GROUP, kinds=KINDS, owners=OWNERS,
                     automation_condition=EAGER, code_version="1", description=(
                         "Identity evidence: Slack profile email/phone, the user's own addresses (Delivered-To, "
                         "Sent folder, own Slack profile, calendar self), each with its rule and confidence.")),
    ],
    partitions_def=ingest_partitions,
    retry_policy=RETRY,
    can_subset=False,
    check_specs=[
        dg.AssetCheckSpec("rows_belong_to_batch_users", asset=INTERACTIONS_KEY,
                          description="Every interaction row belongs to the user of the bronze batch it came from."),
        dg.AssetCheckSpec("no_meetings_for_cancelled_instances", asset=CALENDAR_KEY,
                          description="A cancelled instance has no meeting interactions, only its tombstone."),
    ],
)
def people_timeline(context: AssetExecutionContext, warehouse: Warehouse, control_plane: ControlPlane,
                    people_policy: PeoplePolicy):  # type: ignore[no-untyped-def]
    day, platform = _parts(context)
    ingest_date = dt.date.fromisoformat(day)
    store = warehouse.store
    batch_users = _batch_users(store, platform, ingest_date)
    users = sorted(set(batch_users.values()))
    with control_plane.session() as session:
        own = {u: s.own for u, s in settings.load(session, users, default_policy=people_policy.contact_policy,
                                                  exclude_freemail=False, exclude_role_addresses=False).items()}
    earlier = timeline.self_identifiers(store, users)
    own = {u: own.get(u, frozenset()) | earlier.get(u, frozenset()) for u in users}
    limits = extract.Limits(max_recipients=people_policy.max_recipients, phone_region=people_policy.phone_region,
                            history_days=people_policy.calendar_history_days,
                            future_days=people_policy.calendar_future_days,
                            max_instances=people_policy.max_instances_per_series)
    out = extract.extract_partition(store, platform, ingest_date, own, limits)
    interactions, events, evidence = out.frames()
    written = timeline.write_partition(store, platform, ingest_date, {
        INTERACTIONS.name: interactions, CALENDAR_EVENTS.name: events, IDENTITY_EVIDENCE.name: evidence,
    }, out.expired)
    stats = out.stats
    wrong = [u for b, u in interactions.select("batch_id", "user_id").unique().iter_rows() if batch_users.get(b) != u]
    people = interactions.filter(pl.col("participant") != "")
    by_channel = dict(Counter(people["channel"].to_list())) if people.height else {}
    yield dg.MaterializeResult(asset_key=INTERACTIONS_KEY, metadata={
        **_table_meta(store, INTERACTIONS, written.get(INTERACTIONS.name, 0)),
        "users": len(users), "objects_read": stats["objects"], "emails": stats["emails"],
        "bulk_emails": stats["bulk_emails"], "slack_messages": stats["slack_messages"],
        "interactions": people.height, "items": interactions["item_key"].n_unique() if interactions.height else 0,
        "tombstones": interactions.filter(pl.col("is_deleted")).height if interactions.height else 0,
        "by_channel": dg.MetadataValue.json(by_channel),
        "carried_over_expired_bodies": len(out.expired),
    })
    cancelled = events.filter(pl.col("is_cancelled")) if events.height else events
    yield dg.MaterializeResult(asset_key=CALENDAR_KEY, metadata={
        **_table_meta(store, CALENDAR_EVENTS, written.get(CALENDAR_EVENTS.name, 0)),
        "event_instances": events.height, "cancelled_instances": cancelled.height,
        "instances_over_cap": stats["instances_over_cap"], "broken_series": stats["broken_series"],
        "unreadable_calendars": stats["unreadable_calendars"],
    })
    yield dg.MaterializeResult(asset_key=EVIDENCE_KEY, metadata={
        **_table_meta(store, IDENTITY_EVIDENCE, written.get(IDENTITY_EVIDENCE.name, 0)),
        "by_rule": dg.MetadataValue.json(dict(Counter(evidence["rule"].to_list())) if evidence.height else {}),
    })
    leaked = people.join(cancelled.select("item_key"), on="item_key", how="semi").height if cancelled.height else 0
    yield dg.AssetCheckResult(check_name="rows_belong_to_batch_users", asset_key=INTERACTIONS_KEY, passed=not wrong,
                              metadata={"rows_checked": interactions.height, "mismatched_users": len(wrong)})
    yield dg.AssetCheckResult(check_name="no_meetings_for_cancelled_instances", asset_key=CALENDAR_KEY,
                              passed=leaked == 0, metadata={"cancelled": cancelled.height, "leaked_rows": leaked})


def _batch_users(store: Any, platform: str, day: dt.date) -> dict[str, str]:
    from yarn_assets.ingest import bronze

    lf = bronze.scan_partition(store, platform, day)
    df = lf.select("batch_id", "user_id").unique().collect()
    return dict(df.iter_rows())


# =========================================================================================== contacts
@dg.multi_asset(
    specs=[
        dg.AssetSpec(LINKS_KEY, deps=[INTERACTIONS_KEY, EVIDENCE_KEY], group_name=GROUP, kinds=KINDS, owners=OWNERS,
                     automation_condition=EAGER, code_version="1", description=(
                         "Per user: every identity link with rule, confidence, reason and evidence; merged, "
                         "candidate (below the threshold) or vetoed (the user split them). Reversible merges.")),
        dg.AssetSpec(IDENTITIES_KEY, deps=[INTERACTIONS_KEY, EVIDENCE_KEY], group_name=GROUP, kinds=KINDS,
                     owners=OWNERS, automation_condition=EAGER, code_version="1", description=(
                         "Per user: each identifier (normalized email, Slack id, E.164 phone) and its person.")),
        dg.AssetSpec(CONTACTS_KEY, deps=[INTERACTIONS_KEY, EVIDENCE_KEY], group_name=GROUP, kinds=KINDS,
                     owners=OWNERS, automation_condition=EAGER, code_version="1", description=(
                         "Per user: contacts admitted by the user's creation policy (sent | sent_and_received | "
                         "none), never from bulk mail or the user's own addresses; display name, organisation, "
                         "first/last interaction, counts per channel.")),
    ],
    partitions_def=ingest_partitions,
    retry_policy=RETRY,
    pool=PEOPLE_POOL,
    can_subset=False,
    check_specs=[
        dg.AssetCheckSpec("no_self_contacts", asset=CONTACTS_KEY,
                          description="No contact holds one of the user's own identifiers."),
        dg.AssetCheckSpec("one_person_per_identifier", asset=IDENTITIES_KEY,
                          description="Each (user, identifier) belongs to exactly one person."),
    ],
)
def people_contacts(context: AssetExecutionContext, warehouse: Warehouse, control_plane: ControlPlane,
                    people_policy: PeoplePolicy):  # type: ignore[no-untyped-def]
    day, platform = _parts(context)
    store = warehouse.store
    users = _partition_users(store, platform, dt.date.fromisoformat(day))
    now = dt.datetime.now(dt.UTC)
    report = refresh.refresh_users(store, control_plane.session, users, people_policy, now)
    contacts = report.frames.get("contacts", CONTACTS.empty())
    identities = report.frames.get("identities", IDENTITIES.empty())
    self_ids = identities.filter(pl.col("is_self"))["identifier"].to_list() if identities.height else []
    bad = contacts.explode("emails").filter(pl.col("emails").is_not_null()).filter(
        pl.concat_str([pl.lit("email:"), pl.col("emails")]).is_in(self_ids)) if contacts.height else contacts
    dupes = identities.group_by(["user_id", "identifier"]).len().filter(pl.col("len") > 1) if identities.height \
        else identities
    yield dg.MaterializeResult(asset_key=LINKS_KEY, metadata={
        **_table_meta(store, IDENTITY_LINKS, report.frames["links"].height if "links" in report.frames else 0),
        "users": report.users, "links_by_status": dg.MetadataValue.json(dict(report.links)),
    })
    yield dg.MaterializeResult(asset_key=IDENTITIES_KEY, metadata={
        **_table_meta(store, IDENTITIES, report.identities), "identities": report.identities,
        "persons_merged": report.merged_persons,
    })
    yield dg.MaterializeResult(asset_key=CONTACTS_KEY, metadata={
        **_table_meta(store, CONTACTS, report.contacts), "contacts": report.contacts, "users": report.users,
        "contacts_merged": report.merged_persons,
        "not_created": dg.MetadataValue.json(dict(report.excluded)),
    })
    yield dg.AssetCheckResult(check_name="no_self_contacts", asset_key=CONTACTS_KEY, passed=bad.height == 0,
                              metadata={"contacts_checked": contacts.height, "self_contacts": bad.height})
    yield dg.AssetCheckResult(check_name="one_person_per_identifier", asset_key=IDENTITIES_KEY,
                              passed=dupes.height == 0, metadata={"identifiers": identities.height,
                                                                  "duplicates": dupes.height})


def _partition_users(store: Any, platform: str, day: dt.date) -> list[str]:
    users: set[str] = set()
    for spec in (INTERACTIONS, IDENTITY_EVIDENCE):
        lf = store.scan(spec, all_of(Eq("platform", platform), Eq("ingest_date", day)))
        if lf is not None:
            users |= set(lf.select("user_id").unique().collect()["user_id"].to_list())
    return sorted(users)


# ============================================================================================ vectors
@dg.asset(
    key=VECTORS_KEY,
    deps=[SILVER_CONTENT, INTERACTIONS_KEY],
    partitions_def=ingest_partitions,
    group_name=GROUP,
    kinds={"deltalake", "polars", "numpy"},
    owners=OWNERS,
    retry_policy=RETRY,
    automation_condition=EAGER,
    code_version="1",
    description=(
        "Embeddings of the partition's silver content (chunks of ~1,000 characters, a local WordLlama model by "
        "default: no network), only for new or changed content hashes; vectors of items silver no longer holds "
        "in the touched days are deleted. Its own asset, so ingest latency is unchanged."
    ),
    check_specs=[
        dg.AssetCheckSpec("vectors_match_silver", asset=VECTORS_KEY,
                          description="Every item with vectors in the touched days has a silver row of the same user."),
    ],
)
def content_vectors(context: AssetExecutionContext, warehouse: Warehouse, embeddings: Embeddings,
                    people_policy: PeoplePolicy) -> dg.MaterializeResult:
    day, platform = _parts(context)
    ingest_date = dt.date.fromisoformat(day)
    store = warehouse.store
    now = dt.datetime.now(dt.UTC)
    rows = vectors.partition_rows(store, platform, ingest_date, now)
    embedder = embeddings.embedder()
    started = dt.datetime.now(dt.UTC)
    report = vectors.embed_partition(store, rows, embedder, embeddings.chunk_chars, embeddings.max_chunks_per_item)
    seconds = (dt.datetime.now(dt.UTC) - started).total_seconds()
    days = set(rows.select("platform", "created_day").unique().iter_rows()) if rows.height else set()
    lf = store.scan(INTERACTIONS, all_of(Eq("platform", platform), Eq("ingest_date", ingest_date)))
    if lf is not None:
        days |= {(platform, d) for d in lf.select("created_day").unique().collect()["created_day"].to_list() if d}
    report.orphans_deleted = vectors.sweep_orphans(store, days)
    retrieval.set_cache_limit(people_policy.retrieval_cache_mb)
    check = _vectors_check(store, days)
    return dg.MaterializeResult(
        metadata={
            **_table_meta(store, CONTENT_VECTORS, report.chunks_written),
            "model": embedder.model_id, "candidates": report.candidates, "items_embedded": report.embedded_items,
            "items_unchanged": report.unchanged_items, "items_replaced": report.replaced_items,
            "vectors_written": report.chunks_written, "vectors_deleted": report.orphans_deleted,
            "embed_seconds": round(seconds, 3),
            "chunks_per_second": round(report.chunks_written / seconds, 1) if seconds > 0 and report.chunks_written
            else 0.0,
            "days_touched": len(days),
        },
        check_results=[check],
    )


def _vectors_check(store: Any, days: set[tuple[str, str]]) -> dg.AssetCheckResult:
    from io_managers.delta_store import partitions_predicate
    from yarn_assets.people.tables import item_key_expr

    if not days or not store.exists(CONTENT_VECTORS):
        return dg.AssetCheckResult(check_name="vectors_match_silver", passed=True, metadata={"items_checked": 0})
    pin = partitions_predicate(["platform", "created_day"], days)
    vec = store.scan(CONTENT_VECTORS, pin).select("item_key", "user_id").unique().collect()
    silver = store.scan(PLATFORM_CONTENT, pin)
    live = silver.select(item_key_expr(pl.col("user_id"), pl.col("platform"), pl.col("resource_id"),
                                       pl.col("external_id")).alias("item_key"), "user_id").collect() \
        if silver is not None else pl.DataFrame(schema={"item_key": pl.Utf8, "user_id": pl.Utf8})
    orphans = vec.join(live, on=["item_key", "user_id"], how="anti")
    return dg.AssetCheckResult(check_name="vectors_match_silver", passed=orphans.is_empty(),
                               metadata={"items_checked": vec.height, "orphans": orphans.height})


ASSETS = [people_timeline, people_contacts, content_vectors]

people_job = dg.define_asset_job(
    "people_job",
    selection=dg.AssetSelection.groups(GROUP),
    description="The people cascade of one (day, platform) by hand (automation runs it after every silver "
    "partition); backfill with `dagster job backfill -j people_job --partitions 2026-11-20|gmail,...`.",
)
JOBS = [people_job]
