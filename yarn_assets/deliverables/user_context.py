"""User memory for prompts, read through one function so the memory domain can replace it.

Reads ``user_context`` facts (key, value, confidence) of one user wherever the memory domain
keeps them: a Delta table (``gold/user_context`` or ``silver/user_context``) or a control-plane
table. Returns "" when no memory table exists yet. Rendering follows the original's
``[USER CONTEXT]`` block: at most 20 fact / instruction / preference rows, highest confidence first.
"""

from __future__ import annotations

from typing import Any

import polars as pl
from sqlalchemy import Engine, MetaData, Table, inspect, select

from io_managers.delta_store import DeltaStore
from io_managers.predicates import Eq

MAX_ROWS = 20
_PREFIXES = ("fact:", "instruction:", "preference:")
_PROFILE_KEYS = ("name", "role", "company", "timezone", "summary")
_DELTA_TABLES = ("gold/user_context", "silver/user_context")


def _rows_from_delta(store: DeltaStore, user_id: str) -> list[dict[str, Any]] | None:
    for name in _DELTA_TABLES:
        lf = store.scan(name)
        if lf is None:
            continue
        cols = lf.collect_schema().names()
        if not {"user_id", "key", "value"} <= set(cols):
            continue
        lf = lf.filter(Eq("user_id", user_id).to_polars())
        if "deleted_at" in cols:
            lf = lf.filter(pl.col("deleted_at").is_null())
        keep = [c for c in ("key", "value", "confidence") if c in cols]
        return lf.select(keep).collect().to_dicts()
    return None


def _rows_from_control_plane(engine: Engine, user_id: str) -> list[dict[str, Any]] | None:
    if not inspect(engine).has_table("user_context"):
        return None
    table = Table("user_context", MetaData(), autoload_with=engine)
    cols = [c for c in ("key", "value", "confidence") if c in table.c]
    with engine.connect() as conn:
        result = conn.execute(select(*(table.c[c] for c in cols)).where(table.c.user_id == user_id))
        return [dict(r._mapping) for r in result]


def read_user_context(store: DeltaStore, engine: Engine | None, user_id: str) -> str:
    """The user's memory rendered for a prompt, or "" when there is none (or no memory table yet)."""
    rows = _rows_from_delta(store, user_id)
    if rows is None and engine is not None:
        rows = _rows_from_control_plane(engine, user_id)
    if not rows:
        return ""
    profile = [r for r in rows if r.get("key") in _PROFILE_KEYS]
    facts = [r for r in rows if str(r.get("key", "")).startswith(_PREFIXES)]
    facts.sort(key=lambda r: (-(float(r.get("confidence") or 1.0)), str(r.get("key"))))
    lines = [f"- {r['key']}: {r['value']}" for r in profile]
    lines += [f"- {r['key']}: {r['value']}" for r in facts[:MAX_ROWS]]
    return "\n".join(lines)
