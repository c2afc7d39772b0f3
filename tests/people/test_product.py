"""The product uses people: meeting prep knows who the attendees are (last interactions, threads waiting
on the user) and pulls the items closest in meaning; the signal pass names contacts; the CLI."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import polars as pl
import pytest
from click.testing import CliRunner

from tests.deliverables.helpers import create, run_resources
from tests.people.helpers import PeopleHarness
from yarn_assets.cli import main
from yarn_assets.deliverables.run import run_deliverable
from yarn_assets.people import service


@pytest.fixture
def alice(people: PeopleHarness, tmp_path: Path) -> tuple[PeopleHarness, dt.datetime]:
    from demo.sample_workspace import generate_workspace

    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    ws = generate_workspace(tmp_path / "ws", now=now)
    for user in ws.users:
        if user.id in ("alice", "bob"):
            people.add_user(user.id, user.email)
            for e in ws.exports_of(user.id):
                people.register(user.id, e.path, e.provider)
    for platform in ("slack", "gmail", "calendar", "notion"):
        people.run(platform)
    return people, now


def test_meeting_prep_gets_the_attendees_and_the_closest_items(alice, settings) -> None:  # type: ignore[no-untyped-def]
    _, now = alice
    did = create(settings.resolved_control_plane_url, "alice", "meeting_prep", now=now)
    outcome = run_deliverable(run_resources(), deliverable_id=did, run_id="run-1", now=now)
    assert outcome.status == "delivered", outcome.reason
    step = next(s for s in outcome.steps if s.name == "people")
    assert step.detail["people"] >= 3 and step.detail["related_items"] > 0
    text = outcome.row["final_content"]
    assert "## People in this material" in text and "## Related items (closest in meaning)" in text
    assert "**Dana Lee** (Partnerco)" in text and "**Jordan Reyes** (Acme Retail)" in text
    # Dana's last mail asked for the pricing assumptions and nobody answered: a thread waiting on alice
    assert "open thread (email, waiting on you" in text and "Timeline for the Atlas launch" in text
    assert "BOB-CANARY" not in text


def test_people_context_reads_one_user_only(alice) -> None:  # type: ignore[no-untyped-def]
    h, now = alice
    ctx = service.people_context(h.store, "bob", ["dana@partnerco.example", "rita@vendorly.example"], now)
    assert [p.name for p in ctx] == ["Rita Gomez"]  # alice's Dana is not bob's contact
    labels = service.labels_for(h.store, "alice", ["dana@partnerco.example", "Sam@PartnerCo.example", "x@y.example"])
    assert labels["dana@partnerco.example"]["name"] == "Dana Lee"
    assert labels["Sam@PartnerCo.example"]["organisation"] == "Partnerco" and "x@y.example" not in labels


def test_signal_pass_names_the_contacts_of_a_meeting(alice) -> None:  # type: ignore[no-untyped-def]
    from yarn_assets.signals.context import UserProfile
    from yarn_assets.signals.extraction import extract
    from yarn_assets.signals.processing import load_silver
    from yarn_assets.signals.rules import offline_decision

    h, _ = alice
    profile = UserProfile(id="alice", email="alice@northwind.example", name="Alice", tier="pro", timezone="UTC",
                          status="active", addresses=frozenset({"alice@northwind.example"}))
    as_of = dt.datetime.now(dt.UTC)  # after the imports landed (fetched_at <= as_of)
    rows = load_silver(h.store, ["alice"], as_of)["alice"]
    summary = extract(rows, user_id="alice", pass_name="calendar_only", as_of=as_of, selected_sources={})
    decision = offline_decision(summary, profile=profile, deliverables=[], followup_days=3,
                                contacts=lambda values: service.labels_for(h.store, "alice", values))
    prep = next(a for a in decision.actions if a.signal_type == "meeting_prep")
    assert "Dana Lee (Partnerco)" in prep.description and "Jordan Reyes (Acme Retail)" in prep.description
    names = {c["name"] for c in prep.signal_context["contacts"]}
    assert {"Dana Lee", "Sam Ito", "Jordan Reyes"} <= names


def test_cli_contacts_and_search(alice, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    h, _ = alice
    runner = CliRunner()
    out = runner.invoke(main, ["contacts", "list", "--user", "alice"], catch_exceptions=False)
    assert out.exit_code == 0 and "Dana Lee" in out.output and "Marc Dubois" in out.output
    listed = [json.loads(line) for line in runner.invoke(main, ["contacts", "list", "--user", "alice", "--json"])
              .output.splitlines()]
    dana = next(c for c in listed if c["display_name"] == "Dana Lee")
    sam = next(c for c in listed if c["display_name"] == "Sam Ito")
    out = runner.invoke(main, ["contacts", "show", "--user", "alice", "dana@partnerco.example"])
    assert out.exit_code == 0 and dana["contact_id"] in out.output and "recent interactions" in out.output

    out = runner.invoke(main, ["contacts", "merge", "--user", "alice", dana["contact_id"], sam["contact_id"],
                               "--note", "test"])
    assert out.exit_code == 0, out.output
    merged = service.find_contact(h.store, "alice", "sam@partnerco.example")
    assert merged is not None and set(merged["emails"]) == {"dana@partnerco.example", "sam@partnerco.example"}
    assert service.find_contact(h.store, "alice", sam["contact_id"])["contact_id"] == merged["contact_id"]  # type: ignore[index]
    shown = runner.invoke(main, ["contacts", "show", "--user", "alice", merged["contact_id"]]).output
    assert "manual" in shown and "merged" in shown

    out = runner.invoke(main, ["contacts", "split", "--user", "alice", merged["contact_id"], "sam@partnerco.example"])
    assert out.exit_code == 0, out.output
    assert service.find_contact(h.store, "alice", "sam@partnerco.example")["contact_id"] == sam["contact_id"]  # type: ignore[index]
    assert service.find_contact(h.store, "alice", "dana@partnerco.example")["contact_id"] == dana["contact_id"]  # type: ignore[index]
    vetoed = service.links(h.store, "alice").filter(pl.col("rule") == "manual")
    assert vetoed.height == 0 or set(vetoed["status"]) == {"vetoed"}  # the merge decision was revoked

    out = runner.invoke(main, ["contacts", "split", "--user", "alice", dana["contact_id"], "nobody@x.example"])
    assert out.exit_code == 1 and "is not one of" in out.output
    out = runner.invoke(main, ["contacts", "show", "--user", "alice", "ghost@x.example"])
    assert out.exit_code == 1 and "has no contact" in out.output
    out = runner.invoke(main, ["contacts", "policy", "--user", "alice", "--set", "sent"])
    assert out.exit_code == 0 and "creation policy sent" in out.output
    assert service.contacts(h.store, "alice").height < len(listed)

    out = runner.invoke(main, ["search", "--user", "alice", "pricing deck review", "-k", "3"])
    assert out.exit_code == 0 and "pricing deck" in out.output.lower() and "BOB-CANARY" not in out.output
    out = runner.invoke(main, ["search", "--user", "alice", "x", "-k", "0"])
    assert out.exit_code == 1 and "k must be" in out.output
    out = runner.invoke(main, ["search", "--user", "nobody", "x"])
    assert out.exit_code == 1 and "unknown user" in out.output
