"""Demo stage: one deliverable per type the sample data supports, delivered to the file outbox.

For every sample user: a platform-bound deliverable for each platform that has content, plus a
cross-platform status report, a research brief and a custom (hybrid) deliverable, so every
binding is exercised. They run as the sensors launch them: one ``deliverable_round_job`` run per
user shard (each version shows as a materialization of its deliverable's partition), and the outbox
files are listed at the end.
"""

from __future__ import annotations

from pathlib import Path

import polars as pl
from sqlalchemy import select

from control_plane import db
from control_plane.models import Deliverable, DeliverableVersion
from demo.context import DemoContext
from io_managers.delta_store import DeltaStore
from io_managers.predicates import Eq
from yarn_assets.cli.common import quiet_run_config
from yarn_assets.core.shards import shard_of
from yarn_assets.core.tables import PLATFORM_CONTENT
from yarn_assets.deliverables import service
from yarn_assets.deliverables.assets import TRIGGER_TAG, deliverable_partitions
from yarn_assets.deliverables.round_job import ROUND_JOB, SHARD_TAG, round_run_config
from yarn_assets.deliverables.types import TYPES

FOCUS = "search relevance ranking for product catalogs"


def _platforms_with_content(store: DeltaStore, user_id: str) -> set[str]:
    df = store.read(PLATFORM_CONTENT, Eq("user_id", user_id), columns=["platform"])
    return set(df.get_column("platform").unique().to_list()) if df.height else set()


def _plan(platforms: set[str]) -> list[str]:
    bound = [t.name for t in TYPES.values() if t.binding == "platform_bound" and t.primary_platform in platforms]
    return [*bound, "status_report", "research_brief", "custom"]


def deliverables_stage(ctx: DemoContext) -> None:
    url = ctx.settings.resolved_control_plane_url
    store = DeltaStore(ctx.settings.resolved_warehouse_root, ctx.settings.warehouse_storage_options)
    users = sorted(set(store.read(PLATFORM_CONTENT, columns=["user_id"]).get_column("user_id").to_list()))
    created: list[tuple[str, str, str]] = []
    with db.session_scope(url) as session:
        for user_id in users:
            for dtype in _plan(_platforms_with_content(store, user_id)):
                title = f"{TYPES[dtype].label} (demo)"
                d = session.scalars(select(Deliverable).where(
                    Deliverable.user_id == user_id, Deliverable.deliverable_type == dtype,
                    Deliverable.title == title)).first()
                if d is None:
                    d = service.create_deliverable(
                        session, user_id=user_id, deliverable_type=dtype, title=title,
                        destination={"platform": "file"},
                        type_config={"focus": FOCUS} if dtype in ("research_brief", "custom") else {},
                        now=ctx.now,
                    )
                created.append((d.id, user_id, dtype))
    ctx.instance.add_dynamic_partitions(deliverable_partitions.name, [c[0] for c in created])
    shards = ctx.settings.user_shards
    rounds: dict[str, list[dict]] = {}
    for did, user_id, _dtype in created:
        rounds.setdefault(shard_of(user_id, shards), []).append({"deliverable_id": did, "trigger": "manual"})
    for shard, entries in sorted(rounds.items()):
        ctx.run_job(ROUND_JOB, run_config={**quiet_run_config(), **round_run_config(shard, shards, entries)},
                    tags={TRIGGER_TAG: "manual", SHARD_TAG: shard})
    with db.session_scope(url) as session:
        rows = session.execute(
            select(Deliverable.deliverable_type, DeliverableVersion.delivery_status)
            .join(DeliverableVersion, DeliverableVersion.deliverable_id == Deliverable.id)
            .where(Deliverable.id.in_([c[0] for c in created]))
        ).all()
    stats = pl.DataFrame(rows, schema={"type": pl.Utf8, "delivery": pl.Utf8}, orient="row")
    delivered = stats.filter(pl.col("delivery") == "delivered").height
    outbox = Path(ctx.settings.resolved_home / "outbox")
    files = sorted(outbox.rglob("*.md")) if outbox.exists() else []
    ctx.note(f"deliverables: {len(created)} deliverables of {len(users)} users run in {len(rounds)} round(s); "
             f"{delivered} versions delivered; "
             f"{len(files)} files in {outbox}")
