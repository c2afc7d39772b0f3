"""Every table of the warehouse as comparable rows, and the run helpers the distributed tests share.

Two runs of the same work are equal when every catalog table holds the same rows once the columns
that record *when* or *by which run* something was written are set aside (processing times differ
between any two runs; event times, ids and contents must not).
"""

from __future__ import annotations

import json
import re
from typing import Any

import dagster as dg
import polars as pl

from io_managers.delta_store import DeltaStore
from yarn_assets.core.catalog import all_tables

#: columns that record the processing itself (wall-clock times of the write, run ids, durations)
VOLATILE = re.compile(r"(^|_)(run_id|recorded_at|ingested_at|processed_at|updated_at|created_at|written_at|"
                      r"generated_at|evaluated_at|merged_at|landed_at|delivered_at|computed_at|fetched_at|"
                      r"rejected_at|retained_at|expires_at|expired_at|as_of|"
                      r"duration_ms|latency_ms|elapsed_ms|attempt|attempts)$")

#: per table: identity evidence and links from control-plane decisions take the decision record's creation
#: time as first/last seen (people/identity.py), i.e. when the run happened
TABLE_VOLATILE = {"gold/identities": {"first_seen", "last_seen"}, "gold/identity_links": {"first_seen", "last_seen"},
                  "silver/identity_evidence": {"observed_at"}}


def table_rows(store: DeltaStore, volatile: re.Pattern[str] = VOLATILE) -> dict[str, pl.DataFrame]:
    """Each existing catalog table, without volatile columns, as rows sorted on every column."""
    out: dict[str, pl.DataFrame] = {}
    for spec in all_tables():
        lf = store.scan(spec)
        if lf is None:
            continue
        df = lf.collect()
        skip = TABLE_VOLATILE.get(spec.name, set())
        df = df.select([c for c in df.columns if not volatile.search(c) and c not in skip])
        if "metadata" in df.columns and df.schema["metadata"] == pl.String:  # JSON: drop its volatile keys too
            df = df.with_columns(pl.Series("metadata", [_stable_json(v, volatile) for v in df["metadata"].to_list()],
                                           dtype=pl.String))
        nested = [c for c in df.columns if isinstance(df.schema[c], (pl.List, pl.Struct, pl.Array))]
        # nested values compare as their repr (polars cannot sort on them)
        df = df.with_columns([pl.Series(c, [repr(v) for v in df[c].to_list()], dtype=pl.String) for c in nested])
        out[spec.name] = df.sort(df.columns, nulls_last=True) if df.columns else df
    return out


def _stable_json(value: str | None, volatile: re.Pattern[str]) -> str | None:
    try:
        parsed = json.loads(value) if value else None
    except ValueError:
        return value
    if isinstance(parsed, dict):
        parsed = {k: v for k, v in parsed.items() if not volatile.search(k)}
    return json.dumps(parsed, sort_keys=True)


def diff_tables(left: dict[str, pl.DataFrame], right: dict[str, pl.DataFrame]) -> list[str]:
    """Human-readable differences (table set, row counts, first differing rows)."""
    problems = []
    for name in sorted(set(left) | set(right)):
        if name not in left or name not in right:
            problems.append(f"{name}: only in {'left' if name in left else 'right'}")
            continue
        a, b = left[name], right[name]
        if a.columns != b.columns:
            problems.append(f"{name}: columns {a.columns} != {b.columns}")
        elif a.height != b.height:
            problems.append(f"{name}: {a.height} rows != {b.height} rows")
        elif not a.equals(b):
            columns = [c for c in a.columns if not a[c].equals(b[c])]
            for i, (ra, rb) in enumerate(zip(a.iter_rows(named=True), b.iter_rows(named=True), strict=True)):
                if ra != rb:
                    changed = {k: (ra[k], rb[k]) for k in ra if ra[k] != rb[k]}
                    problems.append(f"{name}: columns {columns} differ; first at row {i}: {changed}")
                    break
    return problems


def celery_hosts(instance: dg.DagsterInstance, run_id: str) -> dict[str, str]:
    """step key -> the Celery worker (``name@host``) that executed it, from the run's engine events."""
    hosts: dict[str, str] = {}
    for record in instance.all_logs(run_id, of_type=dg.DagsterEventType.ENGINE_EVENT):
        event = record.dagster_event
        if event is None or event.step_key is None:
            continue
        data: Any = event.event_specific_data
        entry = (getattr(data, "metadata", None) or {}).get("Celery worker")
        if entry is not None:
            hosts[event.step_key] = getattr(entry, "value", entry)
    return hosts
