"""Demo stage (last): housekeeping as the schedules would run it, and the instance's pool limits."""

from __future__ import annotations

import datetime as dt

from demo.context import DemoContext
from yarn_assets.core.pools import apply_pool_limits, pool_limits


def ops_stage(ctx: DemoContext) -> None:
    apply_pool_limits(ctx.instance, pool_limits(ctx.settings.pool_limits))
    hour = (ctx.now - dt.timedelta(hours=1)).strftime("%Y-%m-%d-%H:00")
    day = (ctx.now - dt.timedelta(days=1)).date().isoformat()
    cleanup = ctx.run_job("content_cleanup_job", partition_key=hour)
    maintenance = ctx.run_job("table_maintenance_job", partition_key=day)
    checks = ctx.run_job("warehouse_checks_job")
    c = cleanup.asset_materializations_for_node("ops__content_cleanup")[0].metadata
    m = maintenance.asset_materializations_for_node("ops__table_maintenance")[0].metadata
    failed = [e.check_name for e in checks.get_asset_check_evaluations() if not e.passed]
    ctx.note(f"ops: cleanup {hour}: {c['silver_rows_deleted'].value} expired rows, {c['bronze_bodies_expired'].value} "
             f"bodies; maintenance: {m['tables'].value} tables, {m['files_before'].value} -> {m['files_after'].value} "
             f"files; checks: {'all passed' if not failed else 'FAILED ' + ', '.join(failed)}")
