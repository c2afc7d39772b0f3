"""Identity matching for one user: identifiers -> links (rule, confidence, reason, evidence) -> persons.

Merge rules, strongest first (each link keeps its evidence, so every merge can be explained and
undone):

=========================  ==========  =======================================================
rule                       confidence  when
=========================  ==========  =======================================================
``manual``                 1.0         the user merged two contacts (``yarnnn contacts merge``)
``provider_alias``         1.0         two addresses the provider delivers to one mailbox
                                       (Gmail dots/+tags, googlemail.com, +tags at Outlook...)
``slack_profile_email``    1.0         a Slack profile (users.json / users.info) lists the email
``slack_profile_phone``    0.9         a Slack profile lists the phone (E.164); 0.3 when three or
                                       more profiles share the number (a switchboard)
``same_name_same_domain``  0.8         two addresses carry the same full personal name at the
                                       same organisation domain (not free mail)
``same_name``              0.4         the same name at different domains: a *candidate* only
=========================  ==========  =======================================================

Links at or above the threshold (``people_merge_min_confidence``, 0.75) are merged, strongest
first, with a union-find; a user's split is a cannot-link constraint: a link whose union would put
the split identifier together with what it was split from is ``vetoed`` (kept, with the decision
id). Everything is per user: a node is ``(user, identifier)``, so one person never merges across
users.

A person's id is derived from its smallest identifier (emails before Slack ids before phones), so
it is stable across runs; a merge keeps the id of the side with the smaller anchor and the other
id stays resolvable (``alias_ids``).
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field

import polars as pl

from yarn_assets.people import addresses as addr
from yarn_assets.people.decisions import Decision

KIND_RANK = {"email": 0, "slack": 1, "phone": 2}
MAX_EVIDENCE = 5
SHARED_PHONE_PROFILES = 3
MAX_ALIAS_IDS = 50


def kind_of(identifier: str) -> str:
    return identifier.split(":", 1)[0]


def value_of(identifier: str) -> str:
    return identifier.split(":", 1)[1] if ":" in identifier else identifier


def person_id(user_id: str, anchor: str) -> str:
    return "c_" + hashlib.sha256(f"{user_id}\x1f{anchor}".encode()).hexdigest()[:16]


def anchor_of(members: Iterable[str]) -> str:
    return min(members, key=lambda m: (KIND_RANK.get(kind_of(m), 9), m))


@dataclass
class Link:
    a: str
    b: str
    rule: str
    confidence: float
    reason: str
    evidence: list[str] = field(default_factory=list)
    evidence_count: int = 0
    first_seen: object = None
    last_seen: object = None
    status: str = "candidate"
    decision_id: str | None = None

    def __post_init__(self) -> None:
        if self.b < self.a:
            self.a, self.b = self.b, self.a


@dataclass
class Resolution:
    links: list[Link]
    person_of: dict[str, str]  # identifier -> person id
    members: dict[str, list[str]]  # person id -> identifiers
    self_persons: set[str]


class _UnionFind:
    def __init__(self, nodes: Iterable[str], cannot: dict[str, set[str]]) -> None:
        self.parent = {n: n for n in nodes}
        self.members = {n: {n} for n in self.parent}
        self.forbidden = {n: set(cannot.get(n, ())) for n in self.parent}

    def find(self, x: str) -> str:
        while self.parent[x] != x:
            self.parent[x] = self.parent[self.parent[x]]
            x = self.parent[x]
        return x

    def union(self, a: str, b: str) -> bool:
        """Join the sets of a and b unless a cannot-link pair would end up together."""
        ra, rb = self.find(a), self.find(b)
        if ra == rb:
            return True
        if self.members[ra] & self.forbidden[rb] or self.members[rb] & self.forbidden[ra]:
            return False
        if len(self.members[ra]) < len(self.members[rb]):
            ra, rb = rb, ra
        self.parent[rb] = ra
        self.members[ra] |= self.members.pop(rb)
        self.forbidden[ra] |= self.forbidden.pop(rb)
        return True


def evidence_links(evidence: pl.DataFrame) -> list[Link]:
    """Links stated by identity evidence (Slack profiles...), aggregated per (a, b, rule)."""
    rows = evidence.filter((pl.col("a") != "self") & (pl.col("a") != pl.col("b")))
    if rows.is_empty():
        return []
    grouped = rows.group_by(["a", "b", "rule"]).agg(
        pl.col("confidence").max(), pl.col("reason").first(), pl.col("ref").unique().sort().head(MAX_EVIDENCE),
        pl.col("ref").n_unique().alias("n"), pl.col("observed_at").min().alias("first"),
        pl.col("observed_at").max().alias("last"),
    ).sort(["a", "b", "rule"])
    links = [Link(r["a"], r["b"], r["rule"], float(r["confidence"]), r["reason"], list(r["ref"]), int(r["n"]),
                  r["first"], r["last"]) for r in grouped.iter_rows(named=True)]
    phones: dict[str, set[str]] = defaultdict(set)
    for link in links:
        if link.rule == "slack_profile_phone":
            phone = link.a if link.a.startswith("phone:") else link.b
            phones[phone].add(link.b if phone == link.a else link.a)
    for link in links:
        if link.rule == "slack_profile_phone":
            phone = link.a if link.a.startswith("phone:") else link.b
            if len(phones[phone]) >= SHARED_PHONE_PROFILES:
                link.confidence = 0.3
                link.reason = f"number shared by {len(phones[phone])} profiles (a switchboard): not a merge"
    return links


def alias_links(nodes: Iterable[str]) -> list[Link]:
    """provider_alias links between email identifiers of one mailbox."""
    groups: dict[str, list[str]] = defaultdict(list)
    for n in nodes:
        if n.startswith("email:"):
            groups[addr.mailbox_canonical(value_of(n))].append(n)
    links = []
    for members in groups.values():
        if len(members) < 2:
            continue
        first, *rest = sorted(members)
        links += [Link(first, m, "provider_alias", 1.0, addr.alias_reason(value_of(first), value_of(m)),
                       evidence_count=1) for m in rest]
    return links


def name_links(names: dict[str, set[str]], rules: addr.AddressRules) -> list[Link]:
    """same_name_same_domain links (0.8) and same_name candidates across domains (0.4)."""
    by_name: dict[str, dict[str, list[str]]] = defaultdict(lambda: defaultdict(list))
    for identifier, seen in names.items():
        if not identifier.startswith("email:"):
            continue
        email = value_of(identifier)
        if rules.is_role(email) or addr.is_no_reply(email):
            continue
        _, domain = addr.organisation(email, rules)
        for key in {k for k in (addr.name_key(n) for n in seen) if k}:
            by_name[key][domain or f"freemail:{email}"].append(identifier)
    links = []
    for key, domains in sorted(by_name.items()):
        heads = []
        for domain, members in sorted(domains.items()):
            first, *rest = sorted(set(members))
            heads.append(first)
            if not domain.startswith("freemail:"):
                links += [Link(first, m, "same_name_same_domain", 0.8, f"both named '{key}' at {domain}",
                               evidence_count=1) for m in rest]
        for i, h in enumerate(heads[1:], 1):
            links.append(Link(heads[0], h, "same_name", 0.4,
                              f"both named '{key}' at different domains: a candidate, not a merge",
                              evidence_count=1 + i * 0))
    return links


def resolve(user_id: str, nodes: Iterable[str], links: list[Link], decisions: list[Decision], own: set[str],
            min_confidence: float) -> Resolution:
    nodes = set(nodes) | {x for link in links for x in (link.a, link.b)}
    for d in decisions:
        nodes.add(d.identifier)
        nodes.update(d.others)
        if d.kind == "merge" and d.others:
            links.append(Link(d.identifier, d.others[0], "manual", 1.0, d.note or "merged by the user",
                              evidence=[f"decision:{d.id}"], evidence_count=1, first_seen=d.created_at,
                              last_seen=d.created_at, decision_id=d.id))
    cannot: dict[str, set[str]] = defaultdict(set)
    split_of: dict[frozenset[str], str] = {}
    for d in decisions:
        if d.kind == "split":
            for other in d.others:
                cannot[d.identifier].add(other)
                cannot[other].add(d.identifier)
                split_of[frozenset((d.identifier, other))] = d.id
    uf = _UnionFind(sorted(nodes), cannot)
    for link in sorted(links, key=lambda x: (-x.confidence, x.rule != "manual", x.a, x.b, x.rule)):
        if link.confidence < min_confidence:
            link.status = "candidate"
            continue
        if uf.union(link.a, link.b):
            link.status = "merged"
        else:
            link.status = "vetoed"
            side_a, side_b = uf.members[uf.find(link.a)], uf.members[uf.find(link.b)]
            link.decision_id = next((split_of[frozenset((x, y))] for x in side_a for y in side_b
                                     if frozenset((x, y)) in split_of), None)
    person_of: dict[str, str] = {}
    members: dict[str, list[str]] = {}
    for root in {uf.find(n) for n in nodes}:
        group = sorted(uf.members[root])
        pid = person_id(user_id, anchor_of(group))
        members[pid] = group
        for m in group:
            person_of[m] = pid
    self_persons = {person_of[n] for n in own if n in person_of}
    return Resolution(links=links, person_of=person_of, members=members, self_persons=self_persons)
