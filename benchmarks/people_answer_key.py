"""Hand-labelled answer key for contact extraction on corpus mailboxes (``shared/corpus/mbox_eml``).

A mailbox is a set of corpus messages as one user would hold them, plus a few *variants* built from
corpus originals (a header changed; the source file is named) for cases the corpus lacks: a
newsletter with List-Unsubscribe, an auto-reply, a Gmail alias pair. The key lists the people a
careful human would put in the user's contacts under ``sent_and_received`` (each person as the set
of their addresses: aliases merged), and what must not become a contact, with why.

Labelling notes (the judgement calls):

* ``flanker__relative.eml`` is "Bob Simple <example@example.com>" writing to "Bob Simple
  <bob@example.com>": one person's two addresses. In bob@'s mailbox example@ is the user's own
  alias; in example@'s mailbox bob@ is. Neither is a contact.
* ``hello@example.com`` ("Hello") is a role mailbox; ``ppp@zzz.org`` / ``ppp-request@`` /
  ``ppp-admin@`` are a Mailman list's addresses (a digest).
* ``cravindogs@cravindogs.com`` ("Dingus Lovers") is a group, not a person: a human leaves it out;
  nothing in the headers says so, so the extractor is expected to get it wrong (precision < 1).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class Variant:
    name: str
    source: str  # corpus file it is built from
    replace: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Mailbox:
    user_id: str
    owner: str
    files: tuple[str, ...]
    variants: tuple[Variant, ...]
    contacts: tuple[frozenset[str], ...]  # people (their addresses) the user should have as contacts
    not_contacts: dict[str, str]  # address -> why it must not be a contact


MAILBOXES = (
    Mailbox(
        user_id="bob", owner="bob@example.com",
        files=("flanker__bilingual-simple.eml", "flanker__enclosed.eml", "flanker__relative.eml",
               "flanker__missing-final-boundary.eml"),
        variants=(
            Variant("rita_gmail", "flanker__enclosed.eml", {
                "From": "Rita Marley <rita.marley+lists@gmail.com>", "Message-ID": "<rita-1@key.example>",
                "Subject": "Photos"}),
            Variant("rita_googlemail", "flanker__enclosed.eml", {
                "From": "Rita Marley <ritamarley@googlemail.com>", "Message-ID": "<rita-2@key.example>",
                "Subject": "More photos"}),
        ),
        contacts=(frozenset({"bob@example.net"}), frozenset({"me@example.com"}), frozenset({"hithere@example.com"}),
                  frozenset({"rita.marley+lists@gmail.com", "ritamarley@googlemail.com"})),
        not_contacts={"bob@example.com": "the user", "example@example.com": "the user's other address (same name)",
                      "hello@example.com": "role mailbox"},
    ),
    Mailbox(
        user_id="example", owner="example@example.com",
        files=("flanker__iphone.eml", "flanker__relative.eml", "cpython__msg_02.txt"),
        variants=(
            Variant("newsletter", "flanker__iphone.eml", {
                "From": "Somewhere Deals <deals@somewhere.com>", "Message-ID": "<deals-1@key.example>",
                "List-Unsubscribe": "<mailto:unsubscribe@somewhere.com>", "Subject": "This week's deals"}),
            Variant("auto_reply", "flanker__iphone.eml", {
                "From": "Ticket Robot <robot@tickets.somewhere.com>", "Message-ID": "<robot-1@key.example>",
                "Auto-Submitted": "auto-replied", "Subject": "We received your request"}),
        ),
        contacts=(frozenset({"someone@somewhere.com"}),),
        not_contacts={"example@example.com": "the user", "bob@example.com": "the user's other address (same name)",
                      "ppp@zzz.org": "mailing list", "ppp-request@zzz.org": "list software",
                      "deals@somewhere.com": "newsletter (List-Unsubscribe)",
                      "robot@tickets.somewhere.com": "auto-reply (Auto-Submitted)"},
    ),
    Mailbox(
        user_id="mrc", owner="mrc@cac.washington.edu",
        files=("flanker__torture-part.eml", "cpython__msg_10.txt", "flanker__attached-pdf.eml"),
        variants=(),
        contacts=(frozenset({"barry@python.org"}),),
        not_contacts={"mrc@cac.washington.edu": "the user (MRC@CAC.Washington.EDU: case)",
                      "cravindogs@cravindogs.com": "a group ('Dingus Lovers')"},
    ),
)


def write_variant(corpus: Path, variant: Variant, out_dir: Path) -> Path:
    msg = message_from_bytes((corpus / "mbox_eml" / variant.source).read_bytes(), policy=policy.compat32)
    for header, value in variant.replace.items():
        del msg[header]
        msg[header] = value
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"{variant.name}.eml"
    path.write_bytes(msg.as_bytes())
    return path


def mailbox_files(corpus: Path, box: Mailbox, scratch: Path) -> list[Path]:
    return [corpus / "mbox_eml" / f for f in box.files] + [write_variant(corpus, v, scratch / box.user_id)
                                                          for v in box.variants]


@dataclass
class Score:
    predicted: list[frozenset[str]]
    truth: list[frozenset[str]]
    true_positives: int
    wrong: list[frozenset[str]]
    missed: list[frozenset[str]]

    @property
    def precision(self) -> float:
        return self.true_positives / len(self.predicted) if self.predicted else 1.0

    @property
    def recall(self) -> float:
        return self.true_positives / len(self.truth) if self.truth else 1.0


def score(predicted: list[frozenset[str]], box: Mailbox) -> Score:
    """A predicted contact is right when it holds exactly the addresses of one true person."""
    truth = list(box.contacts)
    right = [p for p in predicted if p in truth]
    return Score(predicted=predicted, truth=truth, true_positives=len(right),
                 wrong=[p for p in predicted if p not in truth], missed=[t for t in truth if t not in predicted])


def run_mailboxes(resources: dict[str, Any], corpus: Path, scratch: Path, day: dt.date) -> dict[str, Score]:
    """Import every mailbox through the real assets (bronze -> silver -> people) and score the contacts."""
    import dagster as dg

    from control_plane.models import User
    from io_managers.predicates import Eq
    from yarn_assets.core.partitions import ingest_key
    from yarn_assets.ingest.assets import bronze_imported_items, silver_platform_content
    from yarn_assets.ingest.import_jobs import register_import
    from yarn_assets.people.assets import content_vectors, people_contacts, people_timeline
    from yarn_assets.people.tables import CONTACTS

    cp = resources["control_plane"]
    with cp.session() as session:
        for box in MAILBOXES:
            if session.get(User, box.user_id) is None:
                session.add(User(id=box.user_id, email=box.owner, name=box.user_id, tier="pro", timezone="UTC"))
        session.flush()
        for box in MAILBOXES:
            for path in mailbox_files(corpus, box, scratch):
                register_import(session, user_id=box.user_id, path=path, archive_root=scratch / "archive",
                                provider="eml", partition_date=day)
    result = dg.materialize([bronze_imported_items, silver_platform_content, people_timeline, people_contacts,
                             content_vectors], partition_key=ingest_key(day.isoformat(), "gmail"),
                            resources=resources, instance=dg.DagsterInstance.ephemeral())
    assert result.success
    store = resources["warehouse"].store
    out = {}
    for box in MAILBOXES:
        contacts = store.read(CONTACTS, Eq("user_id", box.user_id))
        predicted = [frozenset(e) for e in contacts["emails"].to_list()]
        out[box.user_id] = score(predicted, box)
    return out
