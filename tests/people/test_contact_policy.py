"""Contact creation policy through the real assets, on corpus messages (variants built from
``flanker__iphone.eml``, the changed headers named in each test): sent / sent_and_received / none,
bulk mail, no-reply, role and free-mail addresses, the user's own addresses, and the answer key."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from benchmarks.people_answer_key import MAILBOXES, run_mailboxes
from resources.registry import build_people_policy
from resources.settings import load_settings
from tests.people.helpers import PeopleHarness, corpus_variant
from yarn_assets.people import refresh
from yarn_assets.people import settings as people_settings

SOURCE = "flanker__iphone.eml"  # Danielle <someone@somewhere.com> -> Ewan McGregor <example@example.com>


def _mail(corpus: Path, out: Path, name: str, headers: dict[str, str]) -> Path:
    return corpus_variant(corpus, SOURCE, out / f"{name}.eml",
                          replace={"Message-ID": f"<{name}@test.example>", "Subject": name, **headers},
                          drop=("Delivered-To",))


@pytest.fixture
def ann(people: PeopleHarness, corpus: Path, tmp_path: Path) -> PeopleHarness:
    """Ann's mailbox: people she wrote to and who wrote to her, bulk mail of every kind, role and free-mail
    senders, and mail to and from her own addresses."""
    people.add_user("ann", "ann@example.com")
    mails = {
        "from_danielle": {"To": "Ann <ANN@Example.com>"},  # received; her address in another case
        "to_carl": {"From": "Ann <ann@example.com>", "To": "Carl Ray <carl@ray.example>"},  # sent
        "from_gail": {"From": "Gail <gail.friend@gmail.com>", "To": "ann@example.com"},  # free mail
        "from_support": {"From": "Vendor Support <support@vendor.example>", "To": "ann@example.com"},  # role
        "newsletter": {"From": "Shop <news@shop.example>", "To": "ann@example.com",
                       "List-Unsubscribe": "<mailto:u@shop.example>"},
        "list_post": {"From": "Lee Ng <lee@lists.example>", "To": "dev@lists.example",
                      "List-Id": "<dev.lists.example>"},
        "promo": {"From": "Quinn Vale <quinn@q.example>", "To": "ann@example.com", "Precedence": "bulk"},
        "auto_reply": {"From": "Pat Reed <pat@reed.example>", "To": "ann@example.com",
                       "Auto-Submitted": "auto-replied"},
        "human_auto_no": {"From": "Rae Lin <rae@lin.example>", "To": "ann@example.com", "Auto-Submitted": "no"},
        "noreply": {"From": "GitHub <noreply@github.com>", "To": "ann@example.com"},
        # her second mailbox: Delivered-To proves it is hers, so what it sends is *sent*
        "alias_in": {"From": "Tom Hale <tom@hale.example>", "To": "ann.alias@example.org",
                     "Delivered-To": "ann.alias@example.org"},
        "alias_out": {"From": "Ann <ann.alias@example.org>", "To": "Uma Dey <uma@dey.example>"},
    }
    for name, headers in mails.items():
        people.register("ann", _mail(corpus, tmp_path / "mail", name, headers), "eml")
    people.run("gmail")
    return people


def _emails(df: pl.DataFrame) -> set[str]:
    return {e for row in df["emails"].to_list() for e in row}


def _recompute(h: PeopleHarness, user: str, **prefs: Any) -> pl.DataFrame:
    with h.resources["control_plane"].session() as session:
        people_settings.set_policy(session, user, **prefs)
    policy = build_people_policy(load_settings())
    refresh.refresh_users(h.store, h.resources["control_plane"].session, [user], policy, dt.datetime.now(dt.UTC))
    return h.contacts(user)


def test_sent_and_received_default(ann: PeopleHarness) -> None:
    contacts = ann.contacts("ann")
    assert _emails(contacts) == {"someone@somewhere.com", "carl@ray.example", "gail.friend@gmail.com",
                                 "rae@lin.example", "tom@hale.example", "uma@dey.example"}
    by_email = {r["primary_email"]: r for r in contacts.iter_rows(named=True)}
    assert by_email["carl@ray.example"]["emails_sent"] == 1 and by_email["carl@ray.example"]["created_reason"] == \
        "sent email"
    assert by_email["someone@somewhere.com"]["emails_received"] == 1
    assert by_email["someone@somewhere.com"]["display_name"] == "Danielle"  # her From name
    assert by_email["carl@ray.example"]["display_name"] == "Carl Ray"  # the name Ann gave him
    assert by_email["uma@dey.example"]["created_reason"] == "sent email"  # from her second address


def test_bulk_mail_is_recorded_but_never_creates_contacts(ann: PeopleHarness) -> None:
    rows = ann.interactions("ann").filter(pl.col("participant") != "")
    reasons = dict(rows.filter(pl.col("is_bulk")).select("participant", "bulk_reason").iter_rows())
    assert reasons["email:news@shop.example"] == "list_unsubscribe"
    assert reasons["email:lee@lists.example"] == "list_id"
    assert reasons["email:quinn@q.example"] == "precedence_bulk"
    assert reasons["email:pat@reed.example"] == "auto_submitted"
    assert reasons["email:noreply@github.com"] == "no_reply_sender"
    assert "email:rae@lin.example" not in reasons  # Auto-Submitted: no is a person's mail
    emails = _emails(ann.contacts("ann"))
    assert not emails & {"news@shop.example", "lee@lists.example", "dev@lists.example", "quinn@q.example",
                         "pat@reed.example", "noreply@github.com"}


def test_never_the_users_own_addresses(ann: PeopleHarness) -> None:
    contacts = ann.contacts("ann")
    assert not _emails(contacts) & {"ann@example.com", "ann.alias@example.org"}
    ids = ann.identities("ann")
    own = set(ids.filter(pl.col("is_self"))["identifier"])
    assert {"email:ann@example.com", "email:ann.alias@example.org"} <= own
    # her address written ANN@Example.com is the same identifier (case folded)
    assert "email:ANN@Example.com" not in set(ids["identifier"])


def test_role_addresses_are_excluded_unless_the_user_includes_them(ann: PeopleHarness) -> None:
    assert "support@vendor.example" not in _emails(ann.contacts("ann"))
    with ann.resources["control_plane"].session() as session:
        from control_plane.models import User

        user = session.get(User, "ann")
        assert user is not None
        user.preferences = {"contacts": {"exclude_role_addresses": False}}
    policy = build_people_policy(load_settings())
    refresh.refresh_users(ann.store, ann.resources["control_plane"].session, ["ann"], policy, dt.datetime.now(dt.UTC))
    assert "support@vendor.example" in _emails(ann.contacts("ann"))


def test_sent_policy_keeps_only_people_the_user_wrote_to(ann: PeopleHarness) -> None:
    assert _emails(_recompute(ann, "ann", creation_policy="sent")) == {"carl@ray.example", "uma@dey.example"}


def test_none_policy_creates_no_contact(ann: PeopleHarness) -> None:
    assert _recompute(ann, "ann", creation_policy="none").is_empty()
    assert ann.identities("ann").height > 0  # identities are still resolved


def test_free_mail_exclusion(ann: PeopleHarness) -> None:
    assert "gail.friend@gmail.com" not in _emails(_recompute(ann, "ann", exclude_freemail=True))


def test_bad_policy_is_refused(ann: PeopleHarness) -> None:
    with ann.resources["control_plane"].session() as session, pytest.raises(ValueError, match="unknown contact"):
        people_settings.set_policy(session, "ann", creation_policy="everyone")


def test_answer_key_mailboxes(resources: dict[str, Any], corpus: Path, tmp_path: Path) -> None:
    """The corpus mailboxes against the hand-labelled key: every true contact found with its aliases
    merged, nothing the key rules out, except the one group address the headers cannot reveal."""
    scores = run_mailboxes(resources, corpus, tmp_path, dt.datetime.now(dt.UTC).date())
    assert set(scores) == {b.user_id for b in MAILBOXES}
    for box in MAILBOXES:
        s = scores[box.user_id]
        assert s.recall == 1.0, (box.user_id, s.missed)
        predicted = {e for p in s.predicted for e in p}
        assert not predicted & (set(box.not_contacts) - {"cravindogs@cravindogs.com"}), (box.user_id, predicted)
    assert scores["mrc"].wrong == [frozenset({"cravindogs@cravindogs.com"})]
