"""Daily Delta housekeeping: compact small files, then vacuum files no version needs any more.

Vacuum is also where expired bodies physically leave storage: clearing ``raw`` writes new files,
and the old ones (still holding the bytes, for time travel) go once they are older than the
retention window.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from io_managers.delta_store import DeltaStore, TableSpec


@dataclass
class TableMaintenance:
    table: str
    exists: bool = False
    version_before: int | None = None
    version_after: int | None = None
    files_before: int = 0
    files_after: int = 0
    bytes_before: int = 0
    bytes_after: int = 0
    compact_files_added: int = 0
    compact_files_removed: int = 0
    compact_bytes_added: int = 0
    compact_bytes_removed: int = 0
    vacuumed_files: int = 0  # on object stores: what vacuum reported (may repeat old tombstones)
    vacuumed_bytes: int | None = 0  # None on object stores (not measured)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _size_stats(raw: Any) -> int:
    if isinstance(raw, str):
        try:
            raw = json.loads(raw)
        except ValueError:
            return 0
    return int((raw or {}).get("totalSize", 0)) if isinstance(raw, dict) else 0


def maintain(store: DeltaStore, spec: TableSpec, *, retention_hours: int, enforce_retention: bool = True
             ) -> TableMaintenance:
    """Compact then vacuum one table; a table that does not exist yet is reported, not created."""
    result = TableMaintenance(table=spec.name)
    if not store.exists(spec):
        return result
    result.exists = True
    before = store.files(spec)
    result.version_before = store.version(spec)
    result.files_before, result.bytes_before = before.height, int(before["size_bytes"].sum() or 0)

    compacted = store.compact(spec)
    result.compact_files_added = int(compacted.get("numFilesAdded", 0))
    result.compact_files_removed = int(compacted.get("numFilesRemoved", 0))
    result.compact_bytes_added = _size_stats(compacted.get("filesAdded"))
    result.compact_bytes_removed = _size_stats(compacted.get("filesRemoved"))

    sizes: dict[str, int] | None = None
    if store.is_local:
        root = Path(store.uri(spec).removeprefix("file://"))
        planned = store.vacuum(spec, retention_hours, enforce_retention_duration=enforce_retention, dry_run=True)
        sizes = {}
        for rel in planned:
            path = Path(rel) if Path(rel).is_absolute() else root / rel
            if path.exists():
                sizes[rel] = path.stat().st_size
    removed = store.vacuum(spec, retention_hours, enforce_retention_duration=enforce_retention)
    if sizes is None:
        result.vacuumed_files, result.vacuumed_bytes = len(removed), None
    else:  # delta-rs lists every old tombstone again, also files an earlier vacuum already deleted
        gone = [r for r in removed if r in sizes]
        result.vacuumed_files, result.vacuumed_bytes = len(gone), sum(sizes[r] for r in gone)

    after = store.files(spec)
    result.version_after = store.version(spec)
    result.files_after, result.bytes_after = after.height, int(after["size_bytes"].sum() or 0)
    return result


def summary_table(results: list[TableMaintenance]) -> str:
    lines = ["| table | files before → after | compacted (removed/added) | bytes rewritten | vacuumed files | "
             "vacuumed bytes |", "|---|---|---|---|---|---|"]
    for r in results:
        if not r.exists:
            lines.append(f"| {r.table} | (absent) | | | | |")
            continue
        lines.append(f"| {r.table} | {r.files_before} → {r.files_after} | {r.compact_files_removed}/"
                     f"{r.compact_files_added} | {r.compact_bytes_removed} | {r.vacuumed_files} | "
                     f"{'n/a' if r.vacuumed_bytes is None else r.vacuumed_bytes} |")
    return "\n".join(lines)
