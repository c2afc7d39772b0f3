"""Identifier rules: email normalization (case, IDNA, provider aliases), roles, free mail, organisations,
phone numbers in E.164, and the bulk-mail header rules."""

from __future__ import annotations

import pytest

from yarn_assets.people import addresses as addr
from yarn_assets.people.bulk import bulk_reason

RULES = addr.AddressRules.build()


@pytest.mark.parametrize("raw,expected", [
    ("Dana.Lee@PartnerCo.Example", "dana.lee@partnerco.example"),
    ("mailto:Sam@Example.COM", "sam@example.com"),
    ("<jo@bücher.example>", "jo@xn--bcher-kva.example"),  # IDNA: the same domain as its punycode
    ("jo@xn--bcher-kva.example", "jo@xn--bcher-kva.example"),
    ("not an address", None),
    ("nobody@localhost", None),
    ("", None),
    ("a" * 400 + "@x.example", None),
])
def test_normalize_email(raw: str, expected: str | None) -> None:
    assert addr.normalize_email(raw) == expected


@pytest.mark.parametrize("address,canonical", [
    ("j.doe+news@gmail.com", "jdoe@gmail.com"),  # Gmail ignores dots and +tags
    ("jdoe@googlemail.com", "jdoe@gmail.com"),  # googlemail.com is gmail.com
    ("j.doe+x@outlook.com", "j.doe@outlook.com"),  # Outlook ignores +tags, not dots
    ("j.doe+x@company.example", "j.doe+x@company.example"),  # unknown provider: nothing folded
])
def test_mailbox_canonical_folds_only_what_the_provider_ignores(address: str, canonical: str) -> None:
    assert addr.mailbox_canonical(address) == canonical


@pytest.mark.parametrize("raw,region,expected", [
    ("+1 415-555-0132", None, "+14155550132"),
    ("(415) 555-0132", "US", "+14155550132"),
    ("(415) 555-0132", None, None),  # no country code and no region: unknown, not guessed
    ("+33 1 42 68 53 00", None, "+33142685300"),
    ("+1 555", None, None),  # not a valid number
    ("call me", "US", None),
])
def test_phone_numbers_in_e164(raw: str, region: str | None, expected: str | None) -> None:
    assert addr.phone_e164(raw, region) == expected


def test_role_no_reply_and_freemail_rules_are_configurable() -> None:
    assert RULES.is_role("info@acme.example") and RULES.is_role("ppp-request@zzz.org")
    assert not RULES.is_role("dana@acme.example")
    assert addr.is_no_reply("no-reply@github.com") and addr.is_no_reply("mailer-daemon@x.example")
    assert addr.is_no_reply("notifications@calendar.example") and not addr.is_no_reply("dana@x.example")
    assert RULES.is_freemail("someone@gmail.com") and not RULES.is_freemail("someone@acme.example")
    custom = addr.AddressRules.build(role_localparts=["founders"], freemail_domains=["mail.example"])
    assert custom.is_role("founders@acme.example") and custom.is_freemail("x@mail.example")
    assert not RULES.is_role("founders@acme.example")


@pytest.mark.parametrize("address,org,domain", [
    ("jordan@acme-retail.example", "Acme Retail", "acme-retail.example"),
    ("news@updates.northwind.example", "Northwind", "northwind.example"),
    ("a@mail.bbc.co.uk", "Bbc", "bbc.co.uk"),
    ("friend@gmail.com", None, None),
])
def test_organisation_from_the_registrable_domain(address: str, org: str | None, domain: str | None) -> None:
    assert addr.organisation(address, RULES) == (org, domain)


def test_names_and_name_keys() -> None:
    assert addr.clean_name('"Dana Lee"', "dana@x.example") == "Dana Lee"
    assert addr.clean_name("dana@x.example") is None and addr.clean_name("dana", "dana@x.example") is None
    assert addr.name_from_address("dana.lee@x.example") == "Dana Lee"
    assert addr.name_key("Léa  MARTIN") == addr.name_key("lea martin") == "lea martin"
    assert addr.name_key("Support") is None  # one word is not a personal name


@pytest.mark.parametrize("headers,sender,recipients,reason", [
    ({"list-unsubscribe": "<mailto:u@x.example>"}, "news@x.example", 1, "list_unsubscribe"),
    ({"list-id": "<dev.lists.example>"}, "dana@x.example", 1, "list_id"),
    ({"precedence": "bulk"}, "dana@x.example", 1, "precedence_bulk"),
    ({"precedence": "List"}, "dana@x.example", 1, "precedence_list"),
    ({"auto-submitted": "auto-replied"}, "dana@x.example", 1, "auto_submitted"),
    ({"auto-submitted": "no"}, "dana@x.example", 1, None),  # RFC 3834: "no" means a person wrote it
    ({}, "noreply@x.example", 1, "no_reply_sender"),
    ({}, "dana@x.example", 51, "mass_recipients"),
    ({}, "dana@x.example", 50, None),
])
def test_bulk_rules(headers: dict[str, str], sender: str, recipients: int, reason: str | None) -> None:
    assert bulk_reason(headers, sender, recipients, max_recipients=50) == reason
