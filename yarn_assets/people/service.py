"""What other domains (deliverables, signals, the CLI) may ask about people: the domain's API.

Every function takes one ``user_id`` and reads only that user's rows.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import polars as pl

from io_managers.delta_store import DeltaStore
from io_managers.predicates import Eq
from yarn_assets.people import addresses as addr
from yarn_assets.people import retrieval, timeline
from yarn_assets.people.identity import value_of
from yarn_assets.people.tables import CONTACTS, IDENTITIES, IDENTITY_LINKS

MAX_PEOPLE = 8
LAST_INTERACTIONS = 3
OPEN_THREADS = 3


def identifier_for(value: str) -> str | None:
    """``dana@x.com`` / ``email:dana@x.com`` / ``slack:U1`` / ``U1`` -> an identifier key."""
    text = (value or "").strip()
    if text.startswith(("email:", "slack:", "phone:")):
        kind, _, rest = text.partition(":")
        return addr.email_key(rest) if kind == "email" else text
    if "@" in text:
        return addr.email_key(text)
    if text[:1] in ("U", "W") and text[1:].isalnum():
        return f"slack:{text}"
    return None


def contacts(store: DeltaStore, user_id: str) -> pl.DataFrame:
    """The user's contacts, most recent interaction first."""
    return store.read(CONTACTS, Eq("user_id", user_id))


def identities(store: DeltaStore, user_id: str) -> pl.DataFrame:
    return store.read(IDENTITIES, Eq("user_id", user_id))


def links(store: DeltaStore, user_id: str) -> pl.DataFrame:
    return store.read(IDENTITY_LINKS, Eq("user_id", user_id))


def find_contact(store: DeltaStore, user_id: str, ref: str) -> dict[str, Any] | None:
    """A contact by id, former id (before a merge), or any of its identifiers."""
    df = contacts(store, user_id)
    if df.is_empty():
        return None
    hit = df.filter((pl.col("contact_id") == ref) | pl.col("alias_ids").list.contains(ref))
    if hit.is_empty() and (ident := identifier_for(ref)) is not None:
        ids = identities(store, user_id).filter(pl.col("identifier") == ident)
        if ids.height:
            hit = df.filter(pl.col("contact_id") == ids["person_id"][0])
    return hit.row(0, named=True) if hit.height else None


def person_members(store: DeltaStore, user_id: str, person_id: str) -> list[str]:
    ids = identities(store, user_id).filter(pl.col("person_id") == person_id)
    return sorted(ids["identifier"].to_list())


def labels_for(store: DeltaStore, user_id: str, values: Iterable[str]) -> dict[str, dict[str, Any]]:
    """address/Slack id -> {contact_id, name, organisation} for the values that are known contacts."""
    wanted = {v: identifier_for(v) for v in values}
    wanted = {v: k for v, k in wanted.items() if k}
    if not wanted:
        return {}
    ids = identities(store, user_id).filter(pl.col("identifier").is_in(list(set(wanted.values()))))
    person = dict(zip(ids["identifier"].to_list(), ids["person_id"].to_list(), strict=True))
    df = contacts(store, user_id).filter(pl.col("contact_id").is_in(list(set(person.values()))))
    by_id = {r["contact_id"]: r for r in df.iter_rows(named=True)}
    out = {}
    for value, ident in wanted.items():
        c = by_id.get(person.get(ident, ""))
        if c is not None:
            out[value] = {"contact_id": c["contact_id"], "name": c["display_name"], "organisation": c["organisation"]}
    return out


@dataclass
class PersonContext:
    contact_id: str
    name: str
    organisation: str | None
    identifiers: list[str]
    last_interactions: list[dict[str, Any]] = field(default_factory=list)
    open_threads: list[dict[str, Any]] = field(default_factory=list)
    interactions: int = 0

    def render(self, zone: Any = dt.UTC) -> str:
        head = f"- **{self.name}**" + (f" ({self.organisation})" if self.organisation else "")
        head += f", {self.interactions} past interaction(s)"
        lines = [head]
        for i in self.last_interactions:
            when = i["occurred_at"].astimezone(zone).strftime("%Y-%m-%d") if i["occurred_at"] else "?"
            lines.append(f"  - last: {when} {i['direction']} {i['channel']}: {i['subject'] or '(no subject)'}")
        for t in self.open_threads:
            when = t["occurred_at"].astimezone(zone).strftime("%Y-%m-%d") if t["occurred_at"] else "?"
            lines.append(f"  - open thread ({t['channel']}, waiting on you since {when}): "
                         f"{t['subject'] or '(no subject)'}")
        return "\n".join(lines)


def people_context(store: DeltaStore, user_id: str, participants: Sequence[str], now: dt.datetime,
                   max_people: int = MAX_PEOPLE) -> list[PersonContext]:
    """Who these participants are to the user: last interactions and threads waiting on the user."""
    idents = [k for k in dict.fromkeys(identifier_for(p) for p in participants) if k]
    if not idents:
        return []
    ids = identities(store, user_id)
    if ids.is_empty():
        return []
    mapped = ids.filter(pl.col("identifier").is_in(idents) & ~pl.col("is_self"))
    persons = list(dict.fromkeys(mapped.sort("identifier")["person_id"].to_list()))[:max_people]
    if not persons:
        return []
    book = contacts(store, user_id).filter(pl.col("contact_id").is_in(persons))
    cards = {r["contact_id"]: r for r in book.iter_rows(named=True)}
    members = ids.filter(pl.col("person_id").is_in(persons))
    member_of = dict(zip(members["identifier"].to_list(), members["person_id"].to_list(), strict=True))
    rows = timeline.interactions_of(store, [user_id]).filter(pl.col("occurred_at") <= now)
    out = []
    for pid in persons:
        mine = [i for i, p in member_of.items() if p == pid]
        card = cards.get(pid)
        theirs = rows.filter(pl.col("participant").is_in(mine) & ~pl.col("is_bulk")).sort("occurred_at")
        name = card["display_name"] if card else (mapped.filter(pl.col("person_id") == pid)["names"].explode()
                                                  .drop_nulls().head(1).to_list() or [value_of(mine[0])])[0]
        ctx = PersonContext(contact_id=pid, name=name, organisation=card["organisation"] if card else None,
                            identifiers=mine, interactions=theirs["item_key"].n_unique())
        last = theirs.unique("item_key", keep="last", maintain_order=True).tail(LAST_INTERACTIONS).reverse()
        ctx.last_interactions = last.select("occurred_at", "channel", "direction", "subject").to_dicts()
        ctx.open_threads = _open_threads(rows, mine)
        out.append(ctx)
    return out


def _open_threads(rows: pl.DataFrame, person: list[str]) -> list[dict[str, Any]]:
    """Threads whose latest message came from this person (nobody has answered it since)."""
    threads = rows.filter(pl.col("thread_id").is_not_null() & pl.col("channel").is_in(["email", "slack"]))
    involved = threads.filter(pl.col("participant").is_in(person))["thread_id"].unique()
    if involved.is_empty():
        return []
    last = (threads.filter(pl.col("thread_id").is_in(involved.implode())).sort("occurred_at")
            .group_by("thread_id", maintain_order=True).last())
    waiting = last.filter(pl.col("sender").is_in(person) & ~pl.col("is_bulk")).sort("occurred_at", descending=True)
    return waiting.head(OPEN_THREADS).select("occurred_at", "channel", "subject", "thread_id").to_dicts()


@dataclass
class DeliverablePeople:
    """What a deliverable's prompt gets from the people domain."""

    people: list[PersonContext] = field(default_factory=list)
    related: list[retrieval.Hit] = field(default_factory=list)
    text: str = ""


def for_deliverable(store: DeltaStore, *, user_id: str, rows: pl.DataFrame, queries: Sequence[str],
                    now: dt.datetime, embedder: Any | None, timezone: str = "UTC", related_k: int = 5
                    ) -> DeliverablePeople:
    """People in the material (attendees, correspondents) and the items closest in meaning to it."""
    from zoneinfo import ZoneInfo

    participants: list[str] = []
    for r in rows.iter_rows(named=True) if rows.height else []:
        participants.extend(p for p in (r.get("participants") or []) if p)
    out = DeliverablePeople(people=people_context(store, user_id, participants, now))
    if embedder is not None:
        exclude = frozenset()
        if rows.height and {"user_id", "platform", "resource_id", "external_id"} <= set(rows.columns):
            from yarn_assets.people.tables import with_item_key

            exclude = frozenset(with_item_key(rows.select("user_id", "platform", "resource_id",
                                                          "external_id"))["item_key"].to_list())
        out.related = retrieval.closest(store, user_id, list(queries), related_k, embedder=embedder,
                                        exclude=exclude, now=now)
    zone = ZoneInfo(timezone)
    blocks = []
    if out.people:
        blocks.append("## People in this material\n" + "\n".join(p.render(zone) for p in out.people))
    if out.related:
        lines = [_related_line(h, zone) for h in out.related]
        blocks.append("## Related items (closest in meaning)\n" + "\n".join(lines))
    out.text = "\n\n".join(blocks)
    return out


def _related_line(h: retrieval.Hit, zone: Any) -> str:
    when = h.occurred_at.astimezone(zone).strftime("%Y-%m-%d") if h.occurred_at else "undated"
    title = f'"{h.title}": ' if h.title else ""
    return f"- [{when}] ({h.platform}: {h.resource_name or h.resource_id}) {title}{h.snippet[:240]}"
