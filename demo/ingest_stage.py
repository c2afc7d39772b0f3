"""Demo stage 1: generate the sample workspace, register users and imports, run ingest."""

from __future__ import annotations

from control_plane import db
from control_plane.models import User
from demo.context import DemoContext
from demo.sample_workspace import generate_workspace
from yarn_assets.core.partitions import ingest_key
from yarn_assets.core.tables import PLATFORMS
from yarn_assets.ingest import import_jobs


def ingest_stage(ctx: DemoContext) -> None:
    workspace = generate_workspace(ctx.workspace_dir, now=ctx.now)
    url = ctx.settings.resolved_control_plane_url
    db.ensure_schema(url, True)
    archive = ctx.settings.resolved_home / "imports"
    with db.session_scope(url) as session:
        for user in workspace.users:
            existing = session.get(User, user.id)
            if existing is None:
                session.add(User(id=user.id, email=user.email, name=user.name, tier=user.tier, timezone=user.timezone))
        session.flush()
        for export in workspace.exports:
            import_jobs.register_import(
                session, user_id=export.user_id, path=export.path, archive_root=archive, provider=export.provider,
                partition_date=ctx.now.date(),
            )
    for platform in PLATFORMS:
        ctx.run_job("ingest_job", partition_key=ingest_key(ctx.today, platform))
    ctx.note(f"ingest: {len(workspace.exports)} export files of {len(workspace.users)} users -> bronze -> silver")
