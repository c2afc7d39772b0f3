"""Per-user people settings: the user's own addresses and their contact creation policy.

Where they live, and why: the contact creation policy is a user preference with a platform-wide
default, so the default is a setting (``YARNNN_PEOPLE_CONTACT_POLICY``) and a user's choice is
stored in ``users.preferences["contacts"]`` (the control plane's per-user preference document,
already where a user's extra addresses live: ``preferences["email_addresses"]``). No schema change
is needed for a new preference, and ``yarnnn contacts policy`` validates what it writes. The
user's manual merges and splits are records with a history, so they get their own table
(:mod:`yarn_assets.people.decisions`).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import flag_modified

from control_plane.models import PlatformConnection, User
from yarn_assets.people.addresses import email_key

POLICIES = ("sent", "sent_and_received", "none")


@dataclass(frozen=True)
class UserPeopleSettings:
    user_id: str
    own: frozenset[str]  # identifier keys of the user's own addresses (configured)
    contact_policy: str
    exclude_freemail: bool
    exclude_role_addresses: bool


def own_identifiers(session: Session, user_id: str) -> frozenset[str]:
    """The user's configured addresses: account email, connected accounts, preferences."""
    user = session.get(User, user_id)
    if user is None:
        return frozenset()
    raw: list[str] = [user.email or ""]
    for conn in session.scalars(select(PlatformConnection).where(PlatformConnection.user_id == user_id)):
        raw.append(conn.account_label or "")
    extra = (user.preferences or {}).get("email_addresses") or []
    raw.extend(str(a) for a in extra if isinstance(a, str))
    return frozenset(k for k in (email_key(a) for a in raw) if k)


def load(session: Session, user_ids: Iterable[str], *, default_policy: str, exclude_freemail: bool,
         exclude_role_addresses: bool) -> dict[str, UserPeopleSettings]:
    out = {}
    for user_id in sorted(set(user_ids)):
        user = session.get(User, user_id)
        prefs = ((user.preferences or {}).get("contacts") if user is not None else None) or {}
        policy = prefs.get("creation_policy") if prefs.get("creation_policy") in POLICIES else default_policy
        out[user_id] = UserPeopleSettings(
            user_id=user_id,
            own=own_identifiers(session, user_id),
            contact_policy=policy,
            exclude_freemail=bool(prefs.get("exclude_freemail", exclude_freemail)),
            exclude_role_addresses=bool(prefs.get("exclude_role_addresses", exclude_role_addresses)),
        )
    return out


def set_policy(session: Session, user_id: str, *, creation_policy: str | None = None,
               exclude_freemail: bool | None = None) -> dict[str, object]:
    """Store a user's contact preferences; returns the stored document."""
    if creation_policy is not None and creation_policy not in POLICIES:
        raise ValueError(f"unknown contact creation policy {creation_policy!r}; use one of {', '.join(POLICIES)}")
    user = session.get(User, user_id)
    if user is None:
        raise LookupError(f"unknown user {user_id!r}")
    prefs = dict(user.preferences or {})
    contacts = dict(prefs.get("contacts") or {})
    if creation_policy is not None:
        contacts["creation_policy"] = creation_policy
    if exclude_freemail is not None:
        contacts["exclude_freemail"] = exclude_freemail
    prefs["contacts"] = contacts
    user.preferences = prefs
    flag_modified(user, "preferences")
    return contacts
