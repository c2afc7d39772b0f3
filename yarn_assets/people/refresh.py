"""Recompute identities and contacts of some users from their whole timeline (asset and CLI).

A recompute reads the users' current interactions and identity evidence (every partition), their
settings and decisions, and replaces their folders of the three gold tables. It depends only on
those inputs (and ``now`` for "last" vs "next" interaction), so re-running it changes nothing and
the order in which partitions arrive does not matter.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Any

import polars as pl
from sqlalchemy.orm import Session

from io_managers.delta_store import DeltaStore
from io_managers.predicates import In
from yarn_assets.people import contacts as contacts_mod
from yarn_assets.people import decisions, settings, timeline
from yarn_assets.people.addresses import AddressRules
from yarn_assets.people.tables import CONTACTS, IDENTITIES, IDENTITY_EVIDENCE, IDENTITY_LINKS, INTERACTIONS

SessionFactory = Callable[[], AbstractContextManager[Session]]


@dataclass
class RefreshReport:
    users: int = 0
    contacts: int = 0
    identities: int = 0
    links: Counter[str] = field(default_factory=Counter)  # status -> count
    merged_persons: int = 0  # persons made of more than one identifier
    excluded: Counter[str] = field(default_factory=Counter)
    frames: dict[str, pl.DataFrame] = field(default_factory=dict)


def refresh_users(store: DeltaStore, session_factory: SessionFactory, user_ids: Sequence[str], policy: Any,
                  now: dt.datetime) -> RefreshReport:
    users = sorted(set(user_ids))
    report = RefreshReport(users=len(users))
    if not users:
        return report
    with session_factory() as session:
        per_user = settings.load(session, users, default_policy=policy.contact_policy,
                                 exclude_freemail=policy.exclude_freemail,
                                 exclude_role_addresses=policy.exclude_role_addresses)
        chosen = decisions.active(session, users)
    rules = AddressRules.build(policy.role_localparts, policy.freemail_domains)
    by_user = _split(timeline.interactions_of(store, users), INTERACTIONS)
    evidence_by_user = _split(timeline.evidence_of(store, users), IDENTITY_EVIDENCE)
    out: dict[str, list[pl.DataFrame]] = {"links": [], "identities": [], "contacts": []}
    for user_id in users:
        built = contacts_mod.build(user_id, by_user.get(user_id, INTERACTIONS.empty()),
                                   evidence_by_user.get(user_id, IDENTITY_EVIDENCE.empty()), chosen.get(user_id, []),
                                   per_user[user_id], rules, min_confidence=policy.merge_min_confidence, now=now)
        out["links"].append(built.links)
        out["identities"].append(built.identities)
        out["contacts"].append(built.contacts)
        report.excluded.update(built.excluded)
        report.merged_persons += sum(1 for m in built.resolution.members.values() if len(m) > 1)
    scope = In("user_id", users)
    for spec, name in ((IDENTITY_LINKS, "links"), (IDENTITIES, "identities"), (CONTACTS, "contacts")):
        frame = pl.concat(out[name], how="vertical_relaxed") if out[name] else spec.empty()
        frame = spec.conform(frame)
        report.frames[name] = frame
        if frame.is_empty():
            if store.exists(spec):
                store.delete(spec, scope)
        else:
            store.replace(spec, frame, scope)
    report.contacts = report.frames["contacts"].height
    report.identities = report.frames["identities"].height
    report.links.update(report.frames["links"]["status"].to_list())
    return report


def _split(df: pl.DataFrame, spec: Any) -> dict[str, pl.DataFrame]:
    """One frame per user (each user's rows are handed to that user's pass only)."""
    if df.is_empty():
        return {}
    return {str(k[0]): v for k, v in df.partition_by("user_id", as_dict=True).items()}
