"""Contacts for one user: persons (from :mod:`identity`) the creation policy admits, with their facts.

Creation policy (per user, default from settings), as a CRM's auto-creation settings:

* ``sent``: people the user wrote to, invited, or messaged directly;
* ``sent_and_received``: also people who wrote to the user, invited them, or met with them;
* ``none``: no contact is created automatically.

Never a contact: the user's own addresses (anything merged with them), participants of bulk mail
only (List-Unsubscribe, List-Id, Precedence, Auto-Submitted, no-reply senders, mass mail), no-reply
and calendar-resource addresses, Slack bots, group/role addresses (``info@``, ``team@``,
``*-request@``; configurable) and, when configured, free-mail addresses. A person qualifies through
any of its identifiers that passes these rules.

Display name, best source wins, with this rule: a name from the person's Slack profile (the
directory) beats the name they send their own mail with (From header), which beats names others
gave them (calendar CN, To/Cc display names, a Slack author label); within a source the most
frequent name wins, then the most recent; with no name anywhere, the address's local part
(``dana.lee`` -> ``Dana Lee``). The organisation is the registrable domain of the primary email
(free mail has none).
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

import polars as pl

from yarn_assets.people import addresses as addr
from yarn_assets.people.decisions import Decision
from yarn_assets.people.identity import (
    MAX_ALIAS_IDS,
    Link,
    Resolution,
    alias_links,
    evidence_links,
    kind_of,
    name_links,
    person_id,
    resolve,
    value_of,
)
from yarn_assets.people.settings import UserPeopleSettings
from yarn_assets.people.tables import CONTACTS, IDENTITIES, IDENTITY_LINKS

NAME_RANK = {"manual": 5, "slack_profile": 4, "from_header": 3, "calendar_cn": 2, "recipient_header": 2,
             "slack_author": 1, "address": 0}
POLICY_DIRECTIONS = {
    "sent": frozenset({"sent", "organised"}),
    "sent_and_received": frozenset({"sent", "organised", "received", "attended"}),
    "none": frozenset(),
}


@dataclass
class UserPeople:
    links: pl.DataFrame
    identities: pl.DataFrame
    contacts: pl.DataFrame
    resolution: Resolution
    excluded: dict[str, int]


def eligible(identifier: str, settings: UserPeopleSettings, rules: addr.AddressRules) -> str | None:
    """Why this identifier can never create a contact, or None when it can."""
    kind = kind_of(identifier)
    if kind == "slack":
        return "slack_bot" if value_of(identifier).startswith("B") else None
    if kind != "email":
        return "not_a_channel"
    email = value_of(identifier)
    if addr.is_no_reply(email):
        return "no_reply"
    if addr.is_not_person_domain(email):
        return "calendar_resource"
    if settings.exclude_role_addresses and rules.is_role(email):
        return "role_address"
    if settings.exclude_freemail and rules.is_freemail(email):
        return "freemail"
    return None


def _names(interactions: pl.DataFrame, evidence: pl.DataFrame) -> dict[str, list[tuple[str, str, Any]]]:
    out: dict[str, list[tuple[str, str, Any]]] = defaultdict(list)
    named = interactions.filter(pl.col("participant_name").is_not_null() & (pl.col("participant") != ""))
    for p, name, source, when in named.select("participant", "participant_name", "name_source",
                                              "occurred_at").iter_rows():
        out[p].append((name, source or "recipient_header", when))
    ev = evidence.filter(pl.col("name").is_not_null() & (pl.col("a") != "self"))
    for a, name, rule, when in ev.select("a", "name", "rule", "observed_at").iter_rows():
        out[a].append((name, "slack_profile" if rule.startswith("slack_profile") else "calendar_cn", when))
    return out


def display_name(members: list[str], names: dict[str, list[tuple[str, str, Any]]], primary: str | None
                 ) -> tuple[str, str]:
    """(name, source) by the rule in the module docstring."""
    tally: dict[tuple[str, str], list[Any]] = defaultdict(list)
    for m in members:
        for name, source, when in names.get(m, []):
            tally[(name, source)].append(when)
    if tally:
        epoch = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)

        def score(kv: tuple[tuple[str, str], list[Any]]) -> tuple[int, int, dt.datetime, str]:
            (name, source), whens = kv
            return (NAME_RANK.get(source, 1), len(whens), max((w for w in whens if w is not None), default=epoch),
                    name)

        (name, source), _ = max(tally.items(), key=score)
        return name, source
    fallback = addr.name_from_address(primary) if primary else None
    if fallback:
        return fallback, "address"
    return value_of(members[0]), "identifier"


def build(user_id: str, interactions: pl.DataFrame, evidence: pl.DataFrame, decisions: list[Decision],
          settings: UserPeopleSettings, rules: addr.AddressRules, *, min_confidence: float,
          now: dt.datetime) -> UserPeople:
    """Links, identities and contacts of one user from their current interactions and evidence."""
    interactions = interactions.filter(pl.col("user_id") == user_id)
    evidence = evidence.filter(pl.col("user_id") == user_id)
    people_rows = interactions.filter(pl.col("participant") != "")
    own = set(settings.own) | set(evidence.filter(pl.col("a") == "self")["b"].to_list())
    nodes = set(people_rows["participant"].to_list()) | own
    names = _names(people_rows, evidence)
    name_sets = {k: {n for n, _, _ in v} for k, v in names.items()}
    links: list[Link] = evidence_links(evidence) + alias_links(nodes | set(evidence["b"].to_list()))
    links += name_links(name_sets, rules)
    res = resolve(user_id, nodes, links, decisions, own, min_confidence)
    # an address proven to be the user's after its items were read: their items were sent, not received
    mine = [n for pid in res.self_persons for n in res.members[pid]]
    by_me = pl.col("sender").is_in(mine)
    people_rows = people_rows.with_columns(
        pl.when(by_me & (pl.col("direction") == "received")).then(pl.lit("sent"))
        .when(by_me & (pl.col("direction") == "attended")).then(pl.lit("organised"))
        .otherwise(pl.col("direction")).alias("direction")
    )

    stats = _participant_stats(people_rows, now)
    identities = _identities(user_id, res, names, stats, evidence)
    contacts, excluded = _contacts(user_id, res, people_rows, names, settings, rules, now)
    return UserPeople(_links_frame(user_id, res.links), identities, contacts, res, excluded)


def _participant_stats(rows: pl.DataFrame, now: dt.datetime) -> dict[str, tuple[int, Any, Any]]:
    if rows.is_empty():
        return {}
    past = rows.filter(pl.col("occurred_at") <= now)
    agg = past.group_by("participant").agg(pl.col("item_key").n_unique().alias("n"),
                                           pl.col("occurred_at").min().alias("first"),
                                           pl.col("occurred_at").max().alias("last"))
    return {r[0]: (int(r[1]), r[2], r[3]) for r in agg.iter_rows()}


def _links_frame(user_id: str, links: list[Link]) -> pl.DataFrame:
    if not links:
        return IDENTITY_LINKS.empty()
    rows = [{"user_id": user_id, "a": x.a, "b": x.b, "rule": x.rule, "confidence": x.confidence, "reason": x.reason,
             "status": x.status, "evidence": x.evidence[:5], "evidence_count": x.evidence_count,
             "first_seen": x.first_seen, "last_seen": x.last_seen, "decision_id": x.decision_id} for x in links]
    df = pl.DataFrame(rows, schema=dict(IDENTITY_LINKS.schema), strict=False)
    return df.unique(["a", "b", "rule"], keep="first", maintain_order=True).sort(["a", "b", "rule"])


def _identities(user_id: str, res: Resolution, names: dict[str, list[tuple[str, str, Any]]],
                stats: dict[str, tuple[int, Any, Any]], evidence: pl.DataFrame) -> pl.DataFrame:
    seen_at: dict[str, tuple[Any, Any]] = {}
    for col in ("a", "b"):
        sub = evidence.filter(pl.col(col) != "self").group_by(col).agg(pl.col("observed_at").min().alias("f"),
                                                                        pl.col("observed_at").max().alias("l"))
        for ident, f, last in sub.iter_rows():
            prev = seen_at.get(ident)
            seen_at[ident] = (min(f, prev[0]) if prev else f, max(last, prev[1]) if prev else last)
    rows = []
    for ident, pid in sorted(res.person_of.items()):
        n, first, last = stats.get(ident, (0, None, None))
        if first is None and ident in seen_at:
            first, last = seen_at[ident]
        rows.append({"user_id": user_id, "identifier": ident, "kind": kind_of(ident), "value": value_of(ident),
                     "person_id": pid, "is_self": pid in res.self_persons,
                     "names": sorted({x for x, _, _ in names.get(ident, [])})[:5], "interactions": n,
                     "first_seen": first, "last_seen": last})
    return pl.DataFrame(rows, schema=dict(IDENTITIES.schema), strict=False) if rows else IDENTITIES.empty()


def _contacts(user_id: str, res: Resolution, rows: pl.DataFrame, names: dict[str, list[tuple[str, str, Any]]],
              settings: UserPeopleSettings, rules: addr.AddressRules, now: dt.datetime
              ) -> tuple[pl.DataFrame, dict[str, int]]:
    wanted = POLICY_DIRECTIONS[settings.contact_policy]
    excluded: dict[str, int] = defaultdict(int)
    if rows.is_empty():
        return CONTACTS.empty(), dict(excluded)
    rows = rows.with_columns(pl.col("participant").replace_strict(res.person_of, default=None).alias("person_id"))
    reasons = {ident: eligible(ident, settings, rules) for ident in rows["participant"].unique().to_list()}
    rows = rows.with_columns(pl.col("participant").replace_strict(reasons, default=None).alias("_blocked"))
    out = []
    for (pid,), group in rows.sort("occurred_at").group_by(["person_id"], maintain_order=True):
        if pid is None:
            continue
        if pid in res.self_persons:
            excluded["self"] += 1
            continue
        real = group.filter(~pl.col("is_bulk"))
        qualifying = real.filter(pl.col("_blocked").is_null() & pl.col("direction").is_in(list(wanted)))
        if qualifying.is_empty():
            if not wanted:
                excluded["policy_none"] += 1
            elif real.is_empty():
                excluded["bulk_only"] += 1
            elif real["_blocked"].is_null().any():
                excluded[f"policy_{settings.contact_policy}"] += 1
            else:
                excluded[str(real["_blocked"].drop_nulls().mode().sort()[0])] += 1
            continue
        out.append(_contact_row(user_id, pid, res.members[pid], real, qualifying, names, rules, now))
    if not out:
        return CONTACTS.empty(), dict(excluded)
    df = pl.DataFrame(out, schema=dict(CONTACTS.schema), strict=False)
    return df.sort(["last_interaction_at", "contact_id"], descending=[True, False], nulls_last=True), dict(excluded)


def _contact_row(user_id: str, pid: str, members: list[str], real: pl.DataFrame, qualifying: pl.DataFrame,
                 names: dict[str, list[tuple[str, str, Any]]], rules: addr.AddressRules, now: dt.datetime
                 ) -> dict[str, Any]:
    emails = [value_of(m) for m in members if kind_of(m) == "email"]
    used = real.filter(pl.col("participant").str.starts_with("email:")).group_by("participant").len()
    by_use = {value_of(p): n for p, n in used.iter_rows()}
    ranked = sorted(emails, key=lambda e: (rules.is_freemail(e) or rules.is_role(e), -by_use.get(e, 0), e))
    primary = ranked[0] if ranked else None
    org, domain = None, None
    for e in ranked:
        org, domain = addr.organisation(e, rules)
        if org:
            break
    name, source = display_name(members, names, primary)
    past = real.filter(pl.col("occurred_at") <= now)
    future_meetings = real.filter((pl.col("occurred_at") > now) & (pl.col("channel") == "meeting"))
    meetings = past.filter((pl.col("channel") == "meeting") & (pl.col("response_status").fill_null("") != "declined"))
    last = past.row(-1, named=True) if past.height else None
    first_q = qualifying.row(0, named=True)
    return {
        "user_id": user_id, "contact_id": pid, "display_name": name, "name_source": source, "primary_email": primary,
        "emails": sorted(emails), "phones": sorted(value_of(m) for m in members if kind_of(m) == "phone"),
        "slack_ids": sorted(value_of(m) for m in members if kind_of(m) == "slack"),
        "organisation": org, "organisation_domain": domain,
        "first_interaction_at": past["occurred_at"].min() if past.height else None,
        "last_interaction_at": past["occurred_at"].max() if past.height else None,
        "next_meeting_at": future_meetings["occurred_at"].min() if future_meetings.height else None,
        "emails_sent": _items(past, "email", "sent"), "emails_received": _items(past, "email", "received"),
        "slack_messages": past.filter(pl.col("channel") == "slack")["item_key"].n_unique(),
        "meetings": meetings["item_key"].n_unique(), "interactions": past["item_key"].n_unique(),
        "last_channel": last["channel"] if last else None, "last_subject": last["subject"] if last else None,
        "created_reason": f"{first_q['direction']} {first_q['channel']}",
        "alias_ids": sorted({person_id(user_id, m) for m in members} - {pid})[:MAX_ALIAS_IDS],
        "identifiers": len(members),
    }


def _items(df: pl.DataFrame, channel: str, direction: str) -> int:
    return df.filter((pl.col("channel") == channel) & (pl.col("direction") == direction))["item_key"].n_unique()
