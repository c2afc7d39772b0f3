"""Merge rules, one by one, on a user's interactions and evidence (the identity pass as a function):
each rule that must merge does, with its confidence and reason; the merges that must not happen
don't; a user's split vetoes links and is reversible; nothing merges across users."""

from __future__ import annotations

import datetime as dt
from typing import Any

import polars as pl

from yarn_assets.people import addresses as addr
from yarn_assets.people.contacts import build
from yarn_assets.people.decisions import Decision
from yarn_assets.people.settings import UserPeopleSettings
from yarn_assets.people.tables import IDENTITY_EVIDENCE, INTERACTIONS

NOW = dt.datetime.now(dt.UTC)
RULES = addr.AddressRules.build()


def settings(user: str = "u1", policy: str = "sent_and_received", **kw: Any) -> UserPeopleSettings:
    return UserPeopleSettings(user_id=user, own=frozenset({f"email:{user}@me.example"}), contact_policy=policy,
                              exclude_freemail=kw.get("exclude_freemail", False),
                              exclude_role_addresses=kw.get("exclude_role_addresses", True))


def mail(participant: str, name: str | None = None, *, user: str = "u1", direction: str = "received",
         item: str | None = None, days_ago: float = 1, bulk: str | None = None, channel: str = "email",
         source: str = "from_header") -> dict[str, Any]:
    when = NOW - dt.timedelta(days=days_ago)
    sender = participant if direction == "received" else f"email:{user}@me.example"
    return {"user_id": user, "platform": "gmail", "ingest_date": when.date(), "channel": channel,
            "item_key": item or f"{participant}-{days_ago}", "resource_id": "r", "external_id": item or participant,
            "created_day": when.date().isoformat(), "occurred_at": when, "subject": "hello", "sender": sender,
            "direction": direction, "role": "from" if direction == "received" else "to", "participant": participant,
            "participant_address": participant.split(":", 1)[1], "participant_name": name, "name_source": source,
            "is_self": False, "is_bulk": bulk is not None, "bulk_reason": bulk, "is_deleted": False,
            "fetched_at": when, "batch_id": "b", "seq": 0}


def evidence(a: str, b: str, rule: str, confidence: float, *, user: str = "u1", name: str | None = None,
             ref: str = "b:0") -> dict[str, Any]:
    return {"user_id": user, "platform": "slack", "ingest_date": NOW.date(), "a": a, "b": b, "rule": rule,
            "confidence": confidence, "reason": rule, "name": name, "ref": ref, "observed_at": NOW, "batch_id": "b",
            "seq": 0}


def run(rows: list[dict[str, Any]], ev: list[dict[str, Any]] | None = None, decisions: list[Decision] | None = None,
        user: str = "u1", **kw: Any):  # type: ignore[no-untyped-def]
    inter = pl.DataFrame(rows, schema=dict(INTERACTIONS.schema), strict=False) if rows else INTERACTIONS.empty()
    evid = pl.DataFrame(ev, schema=dict(IDENTITY_EVIDENCE.schema), strict=False) if ev else IDENTITY_EVIDENCE.empty()
    return build(user, inter, evid, decisions or [], settings(user, **kw), RULES, min_confidence=0.75, now=NOW)


def person(out, identifier: str) -> str:  # type: ignore[no-untyped-def]
    return out.resolution.person_of[identifier]


def link(out, rule: str) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    rows = out.links.filter(pl.col("rule") == rule)
    assert rows.height == 1, out.links
    return rows.row(0, named=True)


def test_provider_alias_merges_gmail_dots_and_tags() -> None:
    out = run([mail("email:j.doe+news@gmail.com", "J Doe"), mail("email:jdoe@googlemail.com", "J Doe", days_ago=2)])
    assert person(out, "email:j.doe+news@gmail.com") == person(out, "email:jdoe@googlemail.com")
    lk = link(out, "provider_alias")
    assert lk["status"] == "merged" and lk["confidence"] == 1.0 and "ignores dots and +tags" in lk["reason"]
    assert out.contacts.height == 1 and out.contacts["identifiers"][0] == 2


def test_plus_tag_at_an_unknown_provider_is_not_an_alias() -> None:
    out = run([mail("email:dana+crm@acme.example"), mail("email:dana@acme.example", days_ago=2)])
    assert person(out, "email:dana+crm@acme.example") != person(out, "email:dana@acme.example")


def test_slack_profile_email_joins_slack_id_and_address() -> None:
    rows = [mail("email:marc@northwind.example", "Marc"),
            {**mail("slack:U0A1MARC", "marc", channel="slack", source="slack_author"), "platform": "slack"}]
    out = run(rows, [evidence("slack:U0A1MARC", "email:marc@northwind.example", "slack_profile_email", 1.0,
                              name="Marc Dubois")])
    assert person(out, "slack:U0A1MARC") == person(out, "email:marc@northwind.example")
    c = out.contacts.row(0, named=True)
    assert c["slack_ids"] == ["U0A1MARC"] and c["emails"] == ["marc@northwind.example"]
    assert (c["display_name"], c["name_source"]) == ("Marc Dubois", "slack_profile")  # the directory name wins


def test_shared_phone_merges_two_profiles_but_a_switchboard_does_not() -> None:
    two = run([], [evidence("slack:U1", "phone:+14155550132", "slack_profile_phone", 0.9),
                   evidence("slack:U2", "phone:+14155550132", "slack_profile_phone", 0.9, ref="b:1")])
    assert person(two, "slack:U1") == person(two, "slack:U2")
    board = run([], [evidence(f"slack:U{i}", "phone:+14155550100", "slack_profile_phone", 0.9, ref=f"b:{i}")
                     for i in range(3)])
    assert len({person(board, f"slack:U{i}") for i in range(3)}) == 3
    reasons = board.links.filter(pl.col("rule") == "slack_profile_phone")
    assert (reasons["status"] == "candidate").all() and reasons["reason"].str.contains("switchboard").all()


def test_same_name_same_domain_merges() -> None:
    out = run([mail("email:dana@partnerco.example", "Dana Lee"),
               mail("email:d.lee@partnerco.example", "Dana  LEE", days_ago=3)])
    assert person(out, "email:dana@partnerco.example") == person(out, "email:d.lee@partnerco.example")
    lk = link(out, "same_name_same_domain")
    assert lk["confidence"] == 0.8 and lk["status"] == "merged" and "partnerco.example" in lk["reason"]


def test_same_name_at_different_organisations_must_not_merge() -> None:
    """Two John Smiths at two companies are two people: a candidate link at most, never a merge."""
    out = run([mail("email:john@acme.example", "John Smith"),
               mail("email:john.smith@globex.example", "John Smith", days_ago=2),
               mail("email:jsmith@gmail.com", "John Smith", days_ago=3)])
    addresses = ("john@acme.example", "john.smith@globex.example", "jsmith@gmail.com")
    persons = {person(out, f"email:{a}") for a in addresses}
    assert len(persons) == 3 and out.contacts.height == 3
    candidates = out.links.filter(pl.col("rule") == "same_name")
    assert candidates.height >= 1 and (candidates["status"] == "candidate").all()
    assert (candidates["confidence"] < 0.75).all()


def test_manual_merge_and_reversible_split() -> None:
    rows = [mail("email:dana@partnerco.example", "Dana Lee"), mail("email:dana.lee@gmail.com", "Dana", days_ago=2)]
    apart = run(rows)
    assert person(apart, "email:dana@partnerco.example") != person(apart, "email:dana.lee@gmail.com")
    merge = Decision("d1", "u1", "merge", "email:dana.lee@gmail.com", ("email:dana@partnerco.example",), "same person",
                     NOW)
    merged = run(rows, decisions=[merge])
    pid = person(merged, "email:dana@partnerco.example")
    assert pid == person(merged, "email:dana.lee@gmail.com") and merged.contacts.height == 1
    assert link(merged, "manual")["decision_id"] == "d1"
    # the merged contact keeps the id of the smaller anchor; the other id still resolves (alias_ids)
    other = person(apart, "email:dana@partnerco.example")
    c = merged.contacts.row(0, named=True)
    assert other in {c["contact_id"], *c["alias_ids"]} and person(apart, "email:dana.lee@gmail.com") in \
        {c["contact_id"], *c["alias_ids"]}
    # the user splits it again: the split wins (the merge decision was revoked by the CLI; here both are active
    # and the cannot-link constraint still keeps them apart), the link is kept as vetoed with the decision id
    split = Decision("d2", "u1", "split", "email:dana.lee@gmail.com", ("email:dana@partnerco.example",), None, NOW)
    undone = run(rows, decisions=[merge, split])
    assert person(undone, "email:dana@partnerco.example") != person(undone, "email:dana.lee@gmail.com")
    vetoed = link(undone, "manual")
    assert vetoed["status"] == "vetoed" and vetoed["decision_id"] == "d2"
    assert undone.contacts.height == 2


def test_split_vetoes_an_automatic_merge_too() -> None:
    rows = [mail("email:dana@partnerco.example", "Dana Lee"),
            mail("email:d.lee@partnerco.example", "Dana Lee", days_ago=2)]
    split = Decision("d3", "u1", "split", "email:d.lee@partnerco.example", ("email:dana@partnerco.example",), None, NOW)
    out = run(rows, decisions=[split])
    assert person(out, "email:dana@partnerco.example") != person(out, "email:d.lee@partnerco.example")
    lk = link(out, "same_name_same_domain")
    assert lk["status"] == "vetoed" and lk["decision_id"] == "d3"


def test_person_ids_are_stable_and_never_shared_across_users() -> None:
    a1 = run([mail("email:dana@partnerco.example", "Dana Lee", user="u1")], user="u1")
    a2 = run([mail("email:dana@partnerco.example", "Dana Lee", user="u1")], user="u1")
    b = run([mail("email:dana@partnerco.example", "Dana Lee", user="u2")], user="u2")
    assert a1.contacts["contact_id"].to_list() == a2.contacts["contact_id"].to_list()  # deterministic
    assert a1.contacts["contact_id"][0] != b.contacts["contact_id"][0]  # same address, other user: other person
    assert set(b.identities["user_id"]) == {"u2"} and set(b.contacts["user_id"]) == {"u2"}
    # the other user's rows in the input are ignored, not merged
    both = pl.concat([pl.DataFrame([mail("email:x@acme.example", user="u2")], schema=dict(INTERACTIONS.schema),
                                   strict=False),
                      pl.DataFrame([mail("email:y@acme.example", user="u1")], schema=dict(INTERACTIONS.schema),
                                   strict=False)])
    out = build("u1", both, IDENTITY_EVIDENCE.empty(), [], settings("u1"), RULES, min_confidence=0.75, now=NOW)
    assert set(out.identities["identifier"]) == {"email:y@acme.example", "email:u1@me.example"}
