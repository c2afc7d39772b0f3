"""Identifiers of people: email normalization, provider aliases, role and no-reply addresses,
free-mail domains, organisations from domains, phone numbers in E.164.

Two levels of email normalization, on purpose:

* :func:`email_key` is what an address *is* (``email:<local>@<domain>``): lower-cased, the domain
  in IDNA (punycode) form, so ``Dana@Bücher.example`` and ``dana@xn--bcher-kva.example`` are one
  identifier. Nothing that could name a different mailbox is folded here;
* :func:`mailbox_canonical` is what the provider *delivers to*: Gmail ignores dots and ``+tags``
  (``googlemail.com`` is ``gmail.com``); Outlook, iCloud, Fastmail and Proton ignore ``+tags``.
  Two keys with the same canonical mailbox are joined by a ``provider_alias`` link, a merge that is
  recorded (and reversible like any other), not an identity rewrite.

Phone numbers are parsed with ``phonenumbers`` (never regexes) and kept only when valid.
"""

from __future__ import annotations

import email.utils
import re
from collections.abc import Iterable
from dataclasses import dataclass, field

import idna
import phonenumbers

MAX_ADDRESS_CHARS = 320

#: Providers that ignore dots in the local part, and aliases of their domain.
DOTS_IGNORED = frozenset({"gmail.com"})
DOMAIN_ALIASES = {"googlemail.com": "gmail.com"}
#: Providers that deliver ``local+tag@`` to ``local@``.
PLUS_IGNORED = frozenset({
    "gmail.com", "outlook.com", "hotmail.com", "live.com", "msn.com", "icloud.com", "me.com", "mac.com",
    "fastmail.com", "fastmail.fm", "proton.me", "protonmail.com", "pm.me",
})

#: Free-mail domains (no organisation; optionally no contacts). Extendable in settings.
FREEMAIL_DOMAINS = frozenset({
    "gmail.com", "googlemail.com", "yahoo.com", "yahoo.co.uk", "yahoo.fr", "ymail.com", "outlook.com",
    "hotmail.com", "hotmail.co.uk", "hotmail.fr", "live.com", "msn.com", "aol.com", "icloud.com", "me.com",
    "mac.com", "proton.me", "protonmail.com", "pm.me", "gmx.com", "gmx.de", "gmx.net", "web.de", "mail.com",
    "yandex.com", "yandex.ru", "mail.ru", "zoho.com", "fastmail.com", "fastmail.fm", "qq.com", "163.com",
    "126.com", "naver.com", "hey.com", "tutanota.com", "orange.fr", "free.fr", "laposte.net", "libero.it",
})

#: Local parts of automated senders: never a person.
NO_REPLY = re.compile(
    r"^(no[-_.]?reply|do[-_.]?not[-_.]?reply|donotreply|noreply[-_.].*|.*[-_.]no[-_.]?reply|mailer[-_.]daemon|"
    r"postmaster|bounces?|bounce[-_.+].*|.*[-_.]bounces?|notifications?|notify|alerts?|automated|"
    r"calendar[-_.]notification|daemon)$"
)

#: Local parts of group/role mailboxes (a team or a function, not a person). Extendable in settings.
ROLE_LOCALPARTS = frozenset({
    "info", "team", "hello", "hi", "contact", "support", "help", "helpdesk", "sales", "billing", "invoices",
    "accounts", "accounting", "finance", "admin", "administrator", "office", "hr", "jobs", "careers",
    "recruiting", "marketing", "news", "newsletter", "press", "media", "security", "abuse", "webmaster",
    "hostmaster", "legal", "privacy", "compliance", "ops", "operations", "it", "dev", "devops", "engineering",
    "all", "everyone", "staff", "community", "feedback", "service", "customerservice", "orders", "shop", "store",
    "reservations", "bookings", "events", "partners", "updates", "list", "lists", "announce", "digest",
})
ROLE_SUFFIXES = ("-request", "-owner", "-admin", "-bounces", "-announce", "-digest", "-devel", "-users", "-list")

#: Calendar resources and group calendars are rooms and lists, not people.
NOT_PEOPLE_DOMAINS = ("resource.calendar.google.com", "group.calendar.google.com", "group.v.calendar.google.com",
                      "import.calendar.google.com")

#: Second-level public suffixes under which the organisation is the third label (co.uk, com.au...).
_SECOND_LEVEL = frozenset({
    "co.uk", "org.uk", "ac.uk", "gov.uk", "ltd.uk", "plc.uk", "me.uk", "com.au", "net.au", "org.au", "edu.au",
    "gov.au", "co.nz", "org.nz", "co.jp", "ne.jp", "or.jp", "ac.jp", "com.br", "com.mx", "com.ar", "com.cn",
    "com.hk", "com.sg", "com.tr", "co.in", "co.za", "co.kr", "co.il", "com.tw", "com.my", "co.id",
})
#: Leading labels that name a mail system rather than the organisation.
_MAIL_LABELS = frozenset({"mail", "email", "e", "m", "mx", "smtp", "updates", "news", "info", "notifications",
                          "newsletter", "go", "lists", "list", "em", "mg", "bounce", "reply", "send"})


@dataclass(frozen=True)
class AddressRules:
    """The configurable parts of the rules (built-ins plus settings)."""

    role_localparts: frozenset[str] = ROLE_LOCALPARTS
    freemail_domains: frozenset[str] = FREEMAIL_DOMAINS
    extra: dict[str, str] = field(default_factory=dict)

    @classmethod
    def build(cls, role_localparts: Iterable[str] = (), freemail_domains: Iterable[str] = ()) -> AddressRules:
        return cls(
            role_localparts=ROLE_LOCALPARTS | {r.strip().lower() for r in role_localparts if r.strip()},
            freemail_domains=FREEMAIL_DOMAINS | {d.strip().lower() for d in freemail_domains if d.strip()},
        )

    def is_role(self, address: str) -> bool:
        local = address.split("@", 1)[0].lower()
        return local in self.role_localparts or local.endswith(ROLE_SUFFIXES)

    def is_freemail(self, address: str) -> bool:
        return domain_of(address) in self.freemail_domains


def _idna_domain(domain: str) -> str | None:
    domain = domain.strip().strip(".").lower()
    if not domain:
        return None
    if domain.isascii():
        return domain if re.fullmatch(r"[a-z0-9.-]+|\[[0-9a-f:.]+\]", domain) else None
    try:
        return idna.encode(domain, uts46=True).decode("ascii")
    except idna.IDNAError:
        return None


def normalize_email(raw: str | None) -> str | None:
    """``Local@Domain`` -> ``local@domain`` with an IDNA domain; None when it is not an address."""
    if not raw:
        return None
    text = raw.strip()
    if text.lower().startswith("mailto:"):
        text = text[7:]
    text = text.strip().strip("<>").strip()
    if len(text) > MAX_ADDRESS_CHARS or "@" not in text or any(c.isspace() for c in text):
        return None
    local, _, domain = text.rpartition("@")
    local = local.strip('"').lower()
    if not local or "@" in local:
        return None
    ascii_domain = _idna_domain(domain)
    if ascii_domain is None or "." not in ascii_domain:
        return None
    return f"{local}@{ascii_domain}"


def email_key(raw: str | None) -> str | None:
    addr = normalize_email(raw)
    return f"email:{addr}" if addr else None


def domain_of(address: str) -> str:
    return address.rsplit("@", 1)[-1].lower()


def mailbox_canonical(address: str) -> str:
    """The mailbox the provider delivers ``address`` to (dots and +tags folded where it ignores them)."""
    local, _, domain = address.rpartition("@")
    domain = DOMAIN_ALIASES.get(domain, domain)
    if domain in PLUS_IGNORED and "+" in local:
        local = local.split("+", 1)[0]
    if domain in DOTS_IGNORED:
        local = local.replace(".", "")
    return f"{local}@{domain}"


def alias_reason(a: str, b: str) -> str:
    domain = DOMAIN_ALIASES.get(domain_of(a), domain_of(a))
    ignored = [what for what, on in (("dots", domain in DOTS_IGNORED), ("+tags", domain in PLUS_IGNORED)) if on]
    return f"{domain} delivers both to {mailbox_canonical(a)} (ignores {' and '.join(ignored) or 'the alias'})"


def is_no_reply(address: str) -> bool:
    return bool(NO_REPLY.match(address.split("@", 1)[0].lower()))


def is_not_person_domain(address: str) -> bool:
    return domain_of(address).endswith(NOT_PEOPLE_DOMAINS)


def organisation(address: str, rules: AddressRules) -> tuple[str | None, str | None]:
    """(organisation name, registrable domain) from an address; (None, None) for free mail."""
    domain = domain_of(address)
    if not domain or rules.is_freemail(address) or domain.startswith("["):
        return None, None
    try:
        unicode_domain = idna.decode(domain)
    except idna.IDNAError:
        unicode_domain = domain
    labels = [x for x in unicode_domain.split(".") if x]
    if len(labels) < 2:
        return None, None
    size = 3 if ".".join(labels[-2:]) in _SECOND_LEVEL and len(labels) >= 3 else 2
    registrable = ".".join(labels[-size:])
    name_label = labels[-size]
    name = " ".join(part.capitalize() for part in re.split(r"[-_]", name_label) if part)
    return name or None, registrable


def parse_addresses(values: Iterable[str | None]) -> list[tuple[str, str]]:
    """(display name, address) pairs of header values (RFC 5322 lists, quoted names)."""
    out = []
    for name, addr in email.utils.getaddresses([v for v in values if v]):
        if addr:
            out.append((" ".join(name.split()).strip().strip('"').strip("'").strip(), addr))
    return out


_NOT_A_NAME = re.compile(r"@|^(unknown|undisclosed[- ]recipients|me|you)$", re.I)


def clean_name(name: str | None, address: str | None = None) -> str | None:
    """A display name worth keeping: not empty, not an address, not the address's own local part."""
    if not name:
        return None
    text = " ".join(str(name).split()).strip().strip("'\"").strip()
    if not text or len(text) > 120 or _NOT_A_NAME.search(text):
        return None
    if address and text.lower() == address.split("@", 1)[0].lower():
        return None
    return text


def name_from_address(address: str) -> str | None:
    """``dana.lee@…`` -> ``Dana Lee`` (the last resort for a display name)."""
    local = address.split("@", 1)[0].split("+", 1)[0]
    parts = [p for p in re.split(r"[._-]+", local) if p.isalpha() and len(p) > 1]
    return " ".join(p.capitalize() for p in parts) or None


def phone_e164(raw: str | None, region: str | None = None) -> str | None:
    """A valid phone number in E.164 (``+14155550100``), or None."""
    if not raw or len(raw) > 64:
        return None
    try:
        number = phonenumbers.parse(raw, region.upper() if region else None)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_valid_number(number):
        return None
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def name_key(name: str | None) -> str | None:
    """A comparable personal name: at least two words, case and accents folded."""
    import unicodedata

    if not name:
        return None
    folded = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode().lower()
    words = re.findall(r"[a-z]+", folded)
    if len(words) < 2:
        return None
    return " ".join(words)
