"""Demo stage: the people cascade for today's partitions, then a user's contacts and a sample search."""

from __future__ import annotations

from demo.context import DemoContext
from yarn_assets.core.partitions import ingest_key
from yarn_assets.core.tables import PLATFORMS
from yarn_assets.people import retrieval, service

USER = "alice"
QUERY = "review the pricing deck"


def people_stage(ctx: DemoContext) -> None:
    for platform in PLATFORMS:  # in production declarative automation runs these after silver
        ctx.run_job("people_job", partition_key=ingest_key(ctx.today, platform))
    from io_managers.delta_store import DeltaStore
    from resources.registry import build_embeddings

    store = DeltaStore(ctx.settings.resolved_warehouse_root, ctx.settings.warehouse_storage_options)
    contacts = service.contacts(store, USER).sort("last_interaction_at", descending=True, nulls_last=True)
    ctx.note(f"people: {contacts.height} contacts for {USER} (policy {ctx.settings.people_contact_policy})")
    for c in contacts.head(8).iter_rows(named=True):
        channels = f"mail {c['emails_sent']}/{c['emails_received']}, slack {c['slack_messages']}, " \
                   f"meetings {c['meetings']}"
        print(f"    {c['display_name']:<16} {c['primary_email'] or '-':<30} {c['organisation'] or '-':<12} "
              f"{channels}", flush=True)
    hits = retrieval.search(store, USER, QUERY, 3, embedder=build_embeddings(ctx.settings).embedder())
    ctx.note(f"people: search {USER} \"{QUERY}\" -> {len(hits)} hits")
    for h in hits:
        print(f"    {h.score:.2f} {h.platform}:{h.resource_name or h.resource_id} {h.snippet[:80]}", flush=True)
