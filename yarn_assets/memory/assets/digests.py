"""Weekly digests mailed in each user's local digest hour."""


import datetime as dt
from collections import Counter
from typing import Any

import dagster as dg
import polars as pl
from dagster import AssetExecutionContext

from resources.control_plane import ControlPlane
from resources.mailer import MemoryMailer
from resources.warehouse import Warehouse
from yarn_assets.core.activity_log import ActivityEvent, write_events
from yarn_assets.memory import digest
from yarn_assets.memory.assets.common import (
    CODE_VERSION,
    MAIL_RETRY,
    OWNERS,
    WEEKLY_DIGESTS_KEY,
    _run_id,
    _table_md,
    digest_hours,
)
from yarn_assets.memory.tables import (
    WEEKLY_DIGESTS,
)


# =========================================================================== gold: weekly digests
@dg.asset(
    key=WEEKLY_DIGESTS_KEY,
    partitions_def=digest_hours,
    group_name="memory",
    code_version=CODE_VERSION,
    kinds={"deltalake", "polars", "email"},
    owners=OWNERS,
    retry_policy=MAIL_RETRY,
    description=(
        "Weekly digests of the users due in this UTC hour (their local digest_day/digest_hour): the week's "
        "deliverables delivered, new memories and syncs, mailed to that user; skipped when empty; at most once per "
        "user and ISO week (notification_log claim)."
    ),
)
def weekly_digests(
    context: AssetExecutionContext, warehouse: Warehouse, control_plane: ControlPlane, memory_mailer: MemoryMailer
) -> dg.MaterializeResult:
    hour = context.partition_time_window.start.astimezone(dt.UTC)
    start = hour - dt.timedelta(days=7)
    store = warehouse.store
    rows: list[dict[str, Any]] = []
    events: list[ActivityEvent] = []
    outcomes: Counter[str] = Counter()
    failures: list[str] = []
    with control_plane.session() as session:
        users = digest.due_users(session, hour)
        for user in users:
            week = digest.iso_week(hour.astimezone(digest.local_zone(user)))
            if digest.status_of(session, user.id, week) in ("sent", "sending"):
                outcomes["already_sent"] += 1
                continue
            counts = digest.week_counts(session, store, user.id, start, hour)
            row = {"user_id": user.id, "iso_week": week, "scheduled_for": hour, "period_start": start,
                   "period_end": hour, "versions_delivered": counts.versions_delivered,
                   "new_memory": counts.new_memory, "syncs": counts.syncs, "recipient": user.email}
            if counts.empty:
                rows.append({**row, "status": "skipped_empty"})
                outcomes["skipped_empty"] += 1
                continue
            subject, text, html = digest.render(user, counts, start, hour)
            claim = digest.claim(session, user, week, subject)
            if claim is None:
                outcomes["already_sent"] += 1
                continue
            try:
                sent = memory_mailer.send(user_id=user.id, to=user.email, subject=subject, text=text, html=html,
                                          idempotency_key=f"digest.{user.id}.{week}")
            except Exception as exc:
                digest.settle(session, claim, ok=False, error=str(exc)[:500])
                rows.append({**row, "status": "failed"})
                failures.append(f"{user.id}: {exc}")
                outcomes["failed"] += 1
                continue
            digest.settle(session, claim, ok=True, message_id=sent.message_id,
                          details={"transport": sent.transport, **counts.__dict__})
            rows.append({**row, "status": "sent", "transport": sent.transport, "message_id": sent.message_id})
            outcomes["sent"] += 1
            events.append(ActivityEvent(
                user_id=user.id, event_type="weekly_digest_sent", summary=f"Weekly digest sent: {subject}",
                idempotency_key=f"digest:{week}", created_at=hour, event_date=hour.date(),
                metadata={"iso_week": week, **counts.__dict__, "transport": sent.transport},
            ))
    if rows:
        frame = WEEKLY_DIGESTS.conform(pl.DataFrame(rows, schema=dict(WEEKLY_DIGESTS.schema)))
        store.merge(WEEKLY_DIGESTS, frame, update_when="t.status <> 'sent'")
    inserted = write_events(store, events, run_id=_run_id(context))
    if failures:
        raise dg.Failure(description=f"{len(failures)} weekly digest(s) failed to send (retryable)",
                         metadata={"failures": dg.MetadataValue.json(failures)})
    return dg.MaterializeResult(metadata={
        "users_due": len(users), "outcomes": dg.MetadataValue.json(dict(outcomes)), "sent": outcomes["sent"],
        "skipped_empty": outcomes["skipped_empty"], "already_sent": outcomes["already_sent"],
        "events_written": inserted, **_table_md(store, WEEKLY_DIGESTS, partition_rows=len(rows)),
    })


