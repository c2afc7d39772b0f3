"""A child process for the hostile-input tests: read (or import end to end) one file, print JSON.

``python -m tests.ingest.hostile_child read <provider> <path> [<limits json>]``
    the reader, then the normalizers (the pure path), within ``RLIMIT_AS`` when ``HOSTILE_AS_BYTES``
    is set;
``python -m tests.ingest.hostile_child import <provider> <path>``
    register the file as an import job and materialize bronze + silver of its partition with the
    resources built from the environment (``YARNNN_HOME``…), as the import sensor's run would.

The result carries this process's peak RSS (``VmHWM``) and peak address space (``VmPeak``).
"""

from __future__ import annotations

import json
import os
import resource
import sys
from pathlib import Path


def _limit_address_space() -> None:
    limit = os.environ.get("HOSTILE_AS_BYTES")
    if limit:
        resource.setrlimit(resource.RLIMIT_AS, (int(limit), int(limit)))


def read(provider: str, path: Path, limits_json: str | None) -> dict[str, object]:
    import datetime as dt
    from collections import Counter

    from resources.input_limits import InputLimits
    from yarn_assets.ingest import bronze
    from yarn_assets.ingest.archive import UnreadableArchive
    from yarn_assets.ingest.normalize import normalize_batch_frame
    from yarn_assets.ingest.objects import RawObject, Reject
    from yarn_assets.ingest.readers import PROVIDER_PLATFORM, reader_for

    limits = InputLimits(**json.loads(limits_json)) if limits_json else InputLimits()
    objects, rejects = [], []
    try:
        for out in reader_for(provider)(path, limits):
            (objects if isinstance(out, RawObject) else rejects).append(out)
    except UnreadableArchive as exc:  # the whole file is refused: the asset makes it the job's error
        return {"unreadable": str(exc)}
    fetched = dt.datetime.fromisoformat(os.environ.get("HOSTILE_FETCHED_AT", "2026-03-10T12:00:00+00:00"))
    batch = bronze.BatchInfo("u1", PROVIDER_PLATFORM[provider], fetched.date(), "import", provider, "b1", fetched)
    filtered: Counter[str] = Counter()
    stats: Counter[str] = Counter()
    items, norm_rejects = normalize_batch_frame(bronze.bronze_frame(objects, batch), filtered=filtered,
                                                limits=limits, stats=stats)
    return {
        "objects": [o.external_id for o in objects],
        "rejects": [[r.location, r.reason, len(r.raw)] for r in rejects],
        "items": items.height,
        "item_metadata": [json.loads(m) for m in items["metadata"].to_list()[:5]] if items.height else [],
        "items_by_thread": dict(Counter(items["thread_id"].to_list())) if items.height else {},
        "normalize_rejects": [r.reason for r in norm_rejects if isinstance(r, Reject)],
        "filtered": dict(filtered),
        "stats": dict(stats),
    }


def import_end_to_end(provider: str, path: Path) -> dict[str, object]:
    import datetime as dt

    import dagster as dg
    import polars as pl

    from control_plane.models import ImportJob, User
    from io_managers.predicates import Eq, all_of
    from resources.registry import build_resources
    from resources.settings import load_settings
    from yarn_assets.core.partitions import ingest_key
    from yarn_assets.core.tables import PLATFORM_CONTENT, REJECTS
    from yarn_assets.ingest.assets import bronze_imported_items, silver_platform_content
    from yarn_assets.ingest.import_jobs import register_import

    settings = load_settings()
    resources = build_resources(settings)
    cp = resources["control_plane"]
    day = dt.datetime.now(dt.UTC).date()
    with cp.session() as session:
        session.add(User(id="mallory", email="mallory@example.com", tier="pro", timezone="UTC"))
    with cp.session() as session:
        job, _ = register_import(session, user_id="mallory", path=path, archive_root=settings.resolved_home / "imports",
                                 provider=provider, partition_date=day)
        job_id, platform = job.id, job.platform
    result = dg.materialize([bronze_imported_items, silver_platform_content],
                            partition_key=ingest_key(day.isoformat(), platform), resources=resources,
                            instance=dg.DagsterInstance.ephemeral(), raise_on_error=False)
    with cp.session() as session:
        job = session.get(ImportJob, job_id)
        assert job is not None
        status, error, outcome = job.status, job.error, dict(job.result or {})
    store = resources["warehouse"].store
    rejects = store.read(REJECTS, all_of(Eq("platform", platform)))
    silver = store.read(PLATFORM_CONTENT, all_of(Eq("platform", platform)))
    return {
        "success": result.success,
        "status": status,
        "error": error,
        "result": outcome,
        "rejects": rejects.select(["stage", "location", "reason"]).rows() if rejects.height else [],
        "reject_raw_bytes": int(rejects.select(pl.col("raw").bin.size().sum()).item() or 0) if rejects.height else 0,
        "silver_rows": silver.height,
    }


def main() -> None:
    _limit_address_space()
    mode, provider, path = sys.argv[1], sys.argv[2], Path(sys.argv[3])
    if mode == "read":
        out = read(provider, path, sys.argv[4] if len(sys.argv) > 4 else None)
    else:
        out = import_end_to_end(provider, path)
    # VmHWM: the peak RSS of this process's own memory (getrusage's ru_maxrss would also count the
    # parent's pages this process had between fork and exec: pytest itself)
    fields = dict(line.split(":", 1) for line in Path("/proc/self/status").read_text().splitlines() if ":" in line)
    out["peak_rss_kb"] = int(fields["VmHWM"].split()[0])
    out["vm_peak_kb"] = int(fields["VmPeak"].split()[0])
    print("HOSTILE_RESULT " + json.dumps(out, default=str))


if __name__ == "__main__":
    main()
