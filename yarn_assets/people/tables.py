"""The people domain's tables: the interaction timeline, calendar cache, identity evidence and
links, identities, contacts and content vectors.

Physical layout follows what writes them:

* the silver tables written per ingest partition (interactions, calendar_events,
  identity_evidence) are partitioned like bronze, (platform, ingest_date), and each Dagster
  partition replaces exactly its own folder; the current view (latest version of an item wins,
  tombstones hide it) is computed on read (:mod:`yarn_assets.people.timeline`);
* the per-user gold tables (identity_links, identities, contacts) are partitioned by ``user_id``:
  a recompute replaces one user's folder and never touches another user's;
* content vectors are partitioned like silver, (platform, created_day), so the TTL cleanup and the
  embedding step touch the same day folders as silver itself.
"""

from __future__ import annotations

import polars as pl
import polars_hash  # noqa: F401  (registers the ``chash`` expression namespace)

from io_managers.delta_store import TableSpec

UTC_TS = pl.Datetime("us", "UTC")

ATTENDEE = pl.Struct({"email": pl.Utf8, "name": pl.Utf8, "response_status": pl.Utf8, "role": pl.Utf8})

INTERACTIONS = TableSpec(
    name="silver/interactions",
    description="One row per (user, item, person): every email, Slack message and meeting with each person in it.",
    schema={
        "user_id": pl.Utf8,
        "platform": pl.Utf8,
        "ingest_date": pl.Date,
        "channel": pl.Utf8,  # email | slack | meeting
        "item_key": pl.Utf8,  # same key as the item's silver row and vectors
        "resource_id": pl.Utf8,
        "resource_name": pl.Utf8,
        "external_id": pl.Utf8,
        "created_day": pl.Utf8,
        "thread_id": pl.Utf8,
        "occurred_at": UTC_TS,
        "subject": pl.Utf8,
        "sender": pl.Utf8,  # identifier of who sent/organised/wrote the item
        "direction": pl.Utf8,  # sent | received | organised | attended | self
        "role": pl.Utf8,  # from | to | cc | bcc | organizer | attendee | author | member | mention | parent
        "participant": pl.Utf8,  # identifier key: email:<addr> | slack:<id>
        "participant_address": pl.Utf8,  # as written (before normalization)
        "participant_name": pl.Utf8,
        "name_source": pl.Utf8,  # from_header | recipient_header | calendar_cn | slack_profile | ...
        "response_status": pl.Utf8,  # meetings: accepted | declined | tentative | needs-action
        "is_self": pl.Boolean,
        "is_bulk": pl.Boolean,
        "bulk_reason": pl.Utf8,
        "is_deleted": pl.Boolean,  # tombstone marker of the item (hides every older version)
        "fetched_at": UTC_TS,
        "batch_id": pl.Utf8,
        "seq": pl.Int64,
    },
    partition_by=("platform", "ingest_date"),
    keys=("batch_id", "seq", "item_key", "participant"),
    plain_columns=("item_key", "external_id", "participant", "participant_address", "seq"),
    row_group_rows=8192,
)

CALENDAR_EVENTS = TableSpec(
    name="silver/calendar_events",
    description="One row per calendar event instance with attendees and response status; cancelled ones tombstoned.",
    schema={
        "user_id": pl.Utf8,
        "ingest_date": pl.Date,
        "source": pl.Utf8,  # ics | gcal_api
        "calendar_id": pl.Utf8,
        "calendar_name": pl.Utf8,
        "event_uid": pl.Utf8,
        "instance_id": pl.Utf8,  # the silver external_id: UID, or UID/<instance start> for a series
        "item_key": pl.Utf8,
        "created_day": pl.Utf8,
        "recurrence_id": pl.Utf8,
        "starts_at": UTC_TS,
        "ends_at": UTC_TS,
        "all_day": pl.Boolean,
        "title": pl.Utf8,
        "location": pl.Utf8,
        "organizer": pl.Utf8,
        "organizer_name": pl.Utf8,
        "attendees": pl.List(ATTENDEE),
        "self_response": pl.Utf8,
        "status": pl.Utf8,
        "is_cancelled": pl.Boolean,
        "is_recurring": pl.Boolean,
        "fetched_at": UTC_TS,
        "batch_id": pl.Utf8,
        "seq": pl.Int64,
    },
    partition_by=("ingest_date",),
    keys=("batch_id", "seq", "instance_id"),
)

IDENTITY_EVIDENCE = TableSpec(
    name="silver/identity_evidence",
    description="Facts that tie two identifiers together (a Slack profile's email, a provider alias, the user's "
                "own mailbox), each with its rule, confidence and where it was seen.",
    schema={
        "user_id": pl.Utf8,
        "platform": pl.Utf8,
        "ingest_date": pl.Date,
        "a": pl.Utf8,  # identifier key, or "self" for evidence of the user's own address
        "b": pl.Utf8,
        "rule": pl.Utf8,
        "confidence": pl.Float64,
        "reason": pl.Utf8,
        "name": pl.Utf8,  # a display name the evidence carries (Slack real name, attendee CN)
        "ref": pl.Utf8,  # where: object ref (batch:seq) or item key
        "observed_at": UTC_TS,
        "batch_id": pl.Utf8,
        "seq": pl.Int64,
    },
    partition_by=("platform", "ingest_date"),
    keys=("batch_id", "seq", "a", "b", "rule"),
)

IDENTITY_LINKS = TableSpec(
    name="gold/identity_links",
    description="Per user: every link between two identifiers with its rule, confidence, reason and evidence; "
                "status merged | candidate (below the threshold) | vetoed (split by the user).",
    schema={
        "user_id": pl.Utf8,
        "a": pl.Utf8,
        "b": pl.Utf8,
        "rule": pl.Utf8,
        "confidence": pl.Float64,
        "reason": pl.Utf8,
        "status": pl.Utf8,
        "evidence": pl.List(pl.Utf8),  # up to 5 refs
        "evidence_count": pl.Int64,
        "first_seen": UTC_TS,
        "last_seen": UTC_TS,
        "decision_id": pl.Utf8,  # the user's merge/split decision behind a manual link or a veto
    },
    partition_by=("user_id",),
    keys=("user_id", "a", "b", "rule"),
)

IDENTITIES = TableSpec(
    name="gold/identities",
    description="Per user: every identifier seen (email, Slack id, phone in E.164) and the person it belongs to.",
    schema={
        "user_id": pl.Utf8,
        "identifier": pl.Utf8,
        "kind": pl.Utf8,  # email | slack | phone
        "value": pl.Utf8,
        "person_id": pl.Utf8,
        "is_self": pl.Boolean,
        "names": pl.List(pl.Utf8),
        "interactions": pl.Int64,
        "first_seen": UTC_TS,
        "last_seen": UTC_TS,
    },
    partition_by=("user_id",),
    keys=("user_id", "identifier"),
)

CONTACTS = TableSpec(
    name="gold/contacts",
    description="Per user: the people the creation policy admits, with display name, organisation, first/last "
                "interaction and counts per channel.",
    schema={
        "user_id": pl.Utf8,
        "contact_id": pl.Utf8,
        "display_name": pl.Utf8,
        "name_source": pl.Utf8,
        "primary_email": pl.Utf8,
        "emails": pl.List(pl.Utf8),
        "phones": pl.List(pl.Utf8),
        "slack_ids": pl.List(pl.Utf8),
        "organisation": pl.Utf8,
        "organisation_domain": pl.Utf8,
        "first_interaction_at": UTC_TS,
        "last_interaction_at": UTC_TS,
        "next_meeting_at": UTC_TS,
        "emails_sent": pl.Int64,
        "emails_received": pl.Int64,
        "slack_messages": pl.Int64,
        "meetings": pl.Int64,
        "interactions": pl.Int64,
        "last_channel": pl.Utf8,
        "last_subject": pl.Utf8,
        "created_reason": pl.Utf8,
        "alias_ids": pl.List(pl.Utf8),  # ids this person had before merges (lookups still resolve)
        "identifiers": pl.Int64,
    },
    partition_by=("user_id",),
    keys=("user_id", "contact_id"),
)

CONTENT_VECTORS = TableSpec(
    name="silver/content_vectors",
    description="Embeddings of silver content chunks (one row per chunk), partitioned like silver; recomputed only "
                "for new or changed content hashes, deleted with the content.",
    schema={
        "user_id": pl.Utf8,
        "platform": pl.Utf8,
        "created_day": pl.Utf8,
        "item_key": pl.Utf8,
        "resource_id": pl.Utf8,
        "external_id": pl.Utf8,
        "content_type": pl.Utf8,
        "thread_id": pl.Utf8,
        "occurred_at": UTC_TS,
        "chunk": pl.Int64,
        "chunk_start": pl.Int64,  # character offsets into the silver content (text itself is not copied)
        "chunk_end": pl.Int64,
        "content_hash": pl.Utf8,
        "model": pl.Utf8,
        "vector": pl.List(pl.Float32),
        "fetched_at": UTC_TS,
    },
    partition_by=("platform", "created_day"),
    keys=("user_id", "platform", "resource_id", "external_id", "chunk"),
    plain_columns=("item_key", "external_id", "content_hash", "vector"),
    row_group_rows=4096,
)

TABLES = (INTERACTIONS, CALENDAR_EVENTS, IDENTITY_EVIDENCE, IDENTITY_LINKS, IDENTITIES, CONTACTS, CONTENT_VECTORS)


def item_key_expr(user: pl.Expr, platform: pl.Expr, resource_id: pl.Expr, external_id: pl.Expr) -> pl.Expr:
    """The key shared by an item's silver row, its interactions and its vectors (24 hex chars)."""
    joined = pl.concat_str([user, platform, resource_id.fill_null(""), external_id], separator="\x1f")
    return joined.chash.sha2_256().str.slice(0, 24)  # type: ignore[attr-defined]


def with_item_key(df: pl.DataFrame) -> pl.DataFrame:
    return df.with_columns(item_key_expr(pl.col("user_id"), pl.col("platform"), pl.col("resource_id"),
                                         pl.col("external_id")).alias("item_key"))
