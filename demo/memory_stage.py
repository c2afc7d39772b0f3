"""Demo stage: a week of sample chats -> silver -> nightly memory (backfilled), analysis, digests."""

from __future__ import annotations

import datetime as dt

import polars as pl

from control_plane import db
from control_plane.models import User
from demo.context import DemoContext
from demo.sample_chats import generate_chats
from io_managers.delta_store import DeltaStore
from yarn_assets.ingest import import_jobs
from yarn_assets.memory import digest, user_context
from yarn_assets.memory.assets import day_keys, digest_hours
from yarn_assets.memory.tables import FACT_CANDIDATES
from yarn_assets.memory.working_memory import render_working_memory

DAYS = 7


def memory_stage(ctx: DemoContext) -> None:
    url = ctx.settings.resolved_control_plane_url
    db.ensure_schema(url, True)
    with db.session_scope(url) as session:
        users = {u.id: u.timezone for u in session.query(User)}
        for user in session.query(User):  # the sample accounts are a month old (past onboarding)
            user.created_at = min(user.created_at, ctx.now - dt.timedelta(days=30))
    paths = generate_chats(ctx.workspace_dir, ctx.now, users)
    with db.session_scope(url) as session:
        for user_id, path in paths.items():
            if user_id in users:
                import_jobs.register_import(session, user_id=user_id, path=path, provider="chat_jsonl",
                                            archive_root=ctx.settings.resolved_home / "imports",
                                            partition_date=ctx.now.date())
    ctx.run_job("chat_ingest_job", partition_key=ctx.today)
    days = [(ctx.now.date() - dt.timedelta(days=n)).isoformat() for n in range(DAYS, 0, -1)]
    for day in days:  # the backfill the chat-imports sensor would launch, in order: every user shard of a day
        for key in day_keys(day, ctx.settings.user_shards):
            ctx.run_job("memory_nightly_job", partition_key=key)
    ctx.run_job("conversation_analysis_job", partition_key=days[-1])
    with db.session_scope(url) as session:
        people = list(session.query(User))
        hours = digest.due_hours(people, ctx.now - dt.timedelta(days=7), ctx.now)
    for hour in hours:
        ctx.run_job("weekly_digest_job", partition_key=digest_hours.get_partition_key_for_timestamp(hour.timestamp()))

    store = DeltaStore(ctx.settings.resolved_warehouse_root, ctx.settings.warehouse_storage_options)
    facts = store.read(FACT_CANDIDATES)
    kept = facts.filter(pl.col("decision") == "kept").height
    outranked = facts.filter(pl.col("decision") == "outranked").height
    junk = facts.filter(pl.col("decision") == "rejected").group_by("reason").len().sort("reason")
    reasons = ", ".join(f"{r}={n}" for r, n in junk.iter_rows()) or "none"
    ctx.note(f"memory: {len(days)} nights backfilled; facts kept={kept} outranked={outranked} "
             f"rejected={facts.height - kept - outranked} ({reasons})")
    with db.session_scope(url) as session:
        if "alice" in users:
            role = [h for h in user_context.history(session, "alice", "fact:role")]
            for h in role:
                ctx.note(f"memory: alice fact:role [{h.status}] {h.value!r} ({h.source})")
            ctx.note("memory: alice's working memory:\n" + render_working_memory(store, session, "alice", ctx.now))
