"""The upsert rule (priority, then confidence, then time), bi-temporal history, replays, retraction."""

import datetime as dt
import itertools
import re

import pytest

from control_plane import db
from control_plane.models import UserContext, UserContextHistory
from yarn_assets.memory import user_context as uc

T0 = dt.datetime(2026, 11, 16, 9, 0, tzinfo=dt.UTC)


def _a(value: str, source: str, confidence: float, hours: int = 0, key: str = "fact:role", ref: str | None = None,
       user: str = "alice") -> uc.Assertion:
    return uc.Assertion(user_id=user, key=key, value=value, source=source, confidence=confidence,
                        observed_at=T0 + dt.timedelta(hours=hours), source_ref=ref or f"r{hours}{source}{value}")


# (current source, confidence, hour) -> (new source, confidence, hour) -> expected action
RULES = [
    # priority decides first, whatever the confidence
    (("user_stated", 1.0, 0), ("conversation", 0.99, 5), "outranked"),
    (("user_stated", 0.5, 0), ("conversation", 1.0, 5), "outranked"),
    (("conversation", 0.9, 0), ("user_stated", 0.5, 5), "replaced"),
    (("conversation", 0.9, 0), ("feedback", 1.0, 5), "outranked"),
    (("feedback", 0.7, 0), ("conversation", 0.3, 5), "replaced"),
    (("pattern", 0.6, 0), ("feedback", 0.7, 5), "replaced"),
    (("feedback", 0.7, 0), ("pattern", 0.99, 5), "outranked"),
    (("conversation", 0.9, 0), ("pattern", 1.0, 5), "outranked"),
    (("user_stated", 1.0, 0), ("pattern", 0.6, 5), "outranked"),
    # equal priority: confidence decides (the original ignored it: last write won)
    (("conversation", 0.8, 0), ("conversation", 0.9, 5), "replaced"),
    (("conversation", 0.9, 0), ("conversation", 0.8, 5), "outranked"),
    (("pattern", 0.6, 0), ("pattern", 0.5, 5), "outranked"),
    # equal priority and confidence: the later statement wins, an earlier one (a backfill) does not
    (("conversation", 0.8, 0), ("conversation", 0.8, 5), "replaced"),
    (("conversation", 0.8, 5), ("conversation", 0.8, 0), "outranked"),
    (("user_stated", 1.0, 0), ("user_stated", 1.0, 5), "replaced"),
]


@pytest.mark.parametrize(("cur", "new", "expected"), RULES, ids=[f"{c[0]}{c[1]}->{n[0]}{n[1]}@{n[2]}"
                                                                  for c, n, _ in RULES])
def test_upsert_rule_table(cp, cur, new, expected) -> None:  # type: ignore[no-untyped-def]
    with cp.session() as s:
        assert uc.upsert(s, _a("old value", *cur)).action == "inserted"
        out = uc.upsert(s, _a("new value", *new))
        assert out.action == expected
        current = s.query(UserContext).one()
        assert current.value == ("new value" if expected == "replaced" else "old value")
        statuses = sorted((h.value, h.status) for h in s.query(UserContextHistory))
    if expected == "replaced":
        assert statuses == [("new value", "current"), ("old value", "superseded")]
    else:
        assert statuses == [("new value", "outranked"), ("old value", "current")]


SAME_VALUE = [
    (("conversation", 0.7, 0), ("user_stated", 1.0, 5), "upgraded"),
    (("conversation", 0.7, 0), ("conversation", 0.9, 5), "upgraded"),
    (("conversation", 0.9, 0), ("conversation", 0.9, 5), "unchanged"),  # a restatement is no news
    (("user_stated", 1.0, 0), ("conversation", 0.9, 5), "unchanged"),
]


@pytest.mark.parametrize(("cur", "new", "expected"), SAME_VALUE)
def test_restating_the_current_value(cp, cur, new, expected) -> None:  # type: ignore[no-untyped-def]
    with cp.session() as s:
        uc.upsert(s, _a("Head of Ops", *cur))
        out = uc.upsert(s, _a("head of ops.", *new))  # case and punctuation do not make a new value
        assert out.action == expected
        row = s.query(UserContext).one()
        assert row.value == "Head of Ops"
        assert row.valid_from == T0  # the value has been true since it was first said
        assert row.source == (new[0] if expected == "upgraded" else cur[0])
        assert s.query(UserContextHistory).count() == (2 if expected == "upgraded" else 1)


def test_history_is_bitemporal_on_supersede(cp) -> None:  # type: ignore[no-untyped-def]
    with cp.session() as s:
        first = uc.upsert(s, _a("Head of Ops", "conversation", 0.8, 0), now=T0 + dt.timedelta(days=1))
        second = uc.upsert(s, _a("COO", "conversation", 0.9, 48), now=T0 + dt.timedelta(days=3))
        old = s.get(UserContextHistory, first.assertion_id)
        new = s.get(UserContextHistory, second.assertion_id)
        assert second.replaced_value == "Head of Ops"
        assert (old.status, old.valid_from, old.valid_to) == ("superseded", T0, T0 + dt.timedelta(hours=48))
        assert old.superseded_by == new.id and old.expired_at == T0 + dt.timedelta(days=3)
        assert old.recorded_at == T0 + dt.timedelta(days=1)
        assert (new.status, new.valid_to) == ("current", None)
        assert [h.value for h in uc.history(s, "alice", "fact:role")] == ["Head of Ops", "COO"]


def test_replaying_an_assertion_changes_nothing(cp) -> None:  # type: ignore[no-untyped-def]
    a = _a("Head of Ops", "conversation", 0.8)
    with cp.session() as s:
        uc.upsert(s, a)
        uc.upsert(s, _a("COO", "conversation", 0.9, 5))
    with cp.session() as s:
        before = sorted((h.id, h.status, h.valid_to) for h in s.query(UserContextHistory))
        out = uc.upsert(s, a)  # the night of ``a`` re-run after a later night replaced it
        assert (out.action, out.history_status) == ("replayed", "superseded")
        assert s.query(UserContext).one().value == "COO"
        assert sorted((h.id, h.status, h.valid_to) for h in s.query(UserContextHistory)) == before


def test_current_value_is_independent_of_processing_order(cp) -> None:  # type: ignore[no-untyped-def]
    """Backfilling nights in any order ends with the same winner (the max by priority, confidence, time)."""
    assertions = [_a("A", "conversation", 0.8, 0), _a("B", "conversation", 0.8, 5), _a("C", "pattern", 0.9, 9),
                  _a("D", "conversation", 0.7, 12)]
    winners = set()
    for order in itertools.permutations(assertions):
        with cp.session() as s:
            s.query(UserContext).delete()
            s.query(UserContextHistory).delete()
            for a in order:
                uc.upsert(s, a)
            winners.add(s.query(UserContext).one().value)
    assert winners == {"B"}


def test_retract_keeps_the_value_in_history(cp) -> None:  # type: ignore[no-untyped-def]
    with cp.session() as s:
        out = uc.upsert(s, _a("Head of Ops", "user_stated", 1.0))
        assert uc.retract(s, "alice", "fact:role", now=T0 + dt.timedelta(days=2))
        assert s.query(UserContext).count() == 0
        h = s.get(UserContextHistory, out.assertion_id)
        assert (h.status, h.valid_to) == ("retracted", T0 + dt.timedelta(days=2))
        assert not uc.retract(s, "alice", "fact:role")


@pytest.mark.parametrize(("key", "source", "confidence", "value", "message"), [
    ("role", "conversation", 0.8, "x", "must look like"),
    ("fact:Role", "conversation", 0.8, "x", "must look like"),
    ("secret:role", "conversation", 0.8, "x", "must look like"),
    ("fact:role", "tp_extracted", 0.8, "x", "unknown memory source"),
    ("fact:role", "conversation", 1.2, "x", "outside [0, 1]"),
    ("fact:role", "conversation", 0.8, "  ", "empty value"),
])
def test_invalid_assertions_fail_clearly(key, source, confidence, value, message) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(uc.InvalidAssertion, match=re.escape(message)):
        uc.Assertion(user_id="alice", key=key, value=value, source=source, confidence=confidence, observed_at=T0)


def test_users_do_not_share_keys(cp) -> None:  # type: ignore[no-untyped-def]
    with cp.session() as s:
        uc.upsert(s, _a("Head of Ops", "user_stated", 1.0, user="alice"))
        assert uc.upsert(s, _a("PM", "conversation", 0.5, user="bob")).action == "inserted"
        assert [r.value for r in uc.current(s, "bob")] == ["PM"]
        assert [r.value for r in uc.current(s, "alice")] == ["Head of Ops"]


@pytest.mark.postgres
def test_upsert_rule_on_postgresql(pg_url) -> None:  # type: ignore[no-untyped-def]
    from control_plane.models import User

    db.upgrade(pg_url)
    with db.session_scope(pg_url) as s:
        s.add(User(id="alice", email="a@example.com"))
    with db.session_scope(pg_url) as s:
        uc.upsert(s, _a("Head of Ops", "user_stated", 1.0, 0))
        assert uc.upsert(s, _a("PM", "conversation", 0.9, 5)).action == "outranked"
        assert uc.upsert(s, _a("Head of Ops", "user_stated", 1.0, 0)).action == "replayed"
    with db.session_scope(pg_url) as s:
        assert [(h.value, h.status) for h in uc.history(s, "alice")] == [("Head of Ops", "current"),
                                                                          ("PM", "outranked")]
