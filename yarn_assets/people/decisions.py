"""A user's manual merges and splits (control plane), the constraints the identity pass obeys.

A merge adds a link (rule ``manual``, confidence 1.0) between two identifiers; a split forbids one
identifier to share a person with a list of others. A new decision revokes the earlier ones it
contradicts (merging what was split lifts the split, splitting what was merged by hand revokes the
merge), so the latest word of the user wins and every earlier word stays on record.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from control_plane.models import PeopleDecision, User

MAX_OTHERS = 500


@dataclass(frozen=True)
class Decision:
    id: str
    user_id: str
    kind: str
    identifier: str
    others: tuple[str, ...]
    note: str | None
    created_at: dt.datetime


def active(session: Session, user_ids: list[str]) -> dict[str, list[Decision]]:
    out: dict[str, list[Decision]] = {u: [] for u in user_ids}
    if not user_ids:
        return out
    rows = session.scalars(
        select(PeopleDecision).where(PeopleDecision.user_id.in_(user_ids), PeopleDecision.revoked_at.is_(None))
        .order_by(PeopleDecision.created_at, PeopleDecision.id)
    )
    for r in rows:
        out.setdefault(r.user_id, []).append(Decision(r.id, r.user_id, r.kind, r.identifier,
                                                      tuple(str(o) for o in r.others or []), r.note, r.created_at))
    return out


def _require_user(session: Session, user_id: str) -> None:
    if session.get(User, user_id) is None:
        raise LookupError(f"unknown user {user_id!r}")


def record_merge(session: Session, user_id: str, a: str, b: str, note: str | None, now: dt.datetime) -> str:
    """Merge the persons of identifiers ``a`` and ``b``; lifts splits that kept them apart."""
    _require_user(session, user_id)
    if a == b:
        raise ValueError("cannot merge an identifier with itself")
    for d in session.scalars(select(PeopleDecision).where(
            PeopleDecision.user_id == user_id, PeopleDecision.kind == "split", PeopleDecision.revoked_at.is_(None))):
        others = set(d.others or [])
        if (d.identifier == a and b in others) or (d.identifier == b and a in others):
            d.revoked_at = now
    row = PeopleDecision(user_id=user_id, kind="merge", identifier=a, others=[b], note=note, created_at=now)
    session.add(row)
    session.flush()
    return row.id


def record_split(session: Session, user_id: str, identifier: str, others: list[str], note: str | None,
                 now: dt.datetime) -> str:
    """Keep ``identifier`` apart from ``others``; revokes manual merges that joined them."""
    _require_user(session, user_id)
    rest = sorted({o for o in others if o != identifier})[:MAX_OTHERS]
    if not rest:
        raise ValueError(f"{identifier} is alone in its contact: nothing to split from")
    for d in session.scalars(select(PeopleDecision).where(
            PeopleDecision.user_id == user_id, PeopleDecision.kind == "merge", PeopleDecision.revoked_at.is_(None))):
        pair = {d.identifier, *(d.others or [])}
        if identifier in pair and pair & set(rest):
            d.revoked_at = now
    row = PeopleDecision(user_id=user_id, kind="split", identifier=identifier, others=rest, note=note, created_at=now)
    session.add(row)
    session.flush()
    return row.id
