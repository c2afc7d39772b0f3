"""Bulk mail: messages nobody wrote to the user personally, so they never create a contact.

A message is bulk when any of these holds (the first that fires is the reason):

* ``List-Unsubscribe`` or ``List-Id`` is present (RFC 2369/2919: sent through a list or a mailer);
* ``Precedence: bulk | list | junk`` (RFC 3834's de-facto marker);
* ``Auto-Submitted`` is anything but ``no`` (RFC 3834: auto-replied or auto-generated);
* the sender is a no-reply / mailer-daemon / bounce address;
* the sender (From or Sender) is a list's own address (``-request``, ``-bounces``, ``-owner``,
  ``-admin``, ``owner-``): list software, e.g. a Mailman digest;
* the message has more recipients than the configured maximum (mass mail).

Its interactions are still recorded (flagged ``is_bulk`` with the reason): the timeline is complete,
the contact list is not polluted.
"""

from __future__ import annotations

from collections.abc import Mapping

from yarn_assets.people.addresses import is_no_reply

BULK_PRECEDENCE = frozenset({"bulk", "list", "junk"})
LIST_SUFFIXES = ("-request", "-bounces", "-bounce", "-owner", "-admin")


def is_list_address(address: str | None) -> bool:
    local = (address or "").split("@", 1)[0].lower()
    return bool(local) and (local.endswith(LIST_SUFFIXES) or local.startswith("owner-"))


def bulk_reason(headers: Mapping[str, str | None], sender: str | None, recipients: int,
                max_recipients: int, list_sender: str | None = None) -> str | None:
    """Why a message is bulk, or None. ``headers`` keys are lower-case header names."""
    if headers.get("list-unsubscribe"):
        return "list_unsubscribe"
    if headers.get("list-id"):
        return "list_id"
    precedence = (headers.get("precedence") or "").strip().lower()
    if precedence in BULK_PRECEDENCE:
        return f"precedence_{precedence}"
    auto = (headers.get("auto-submitted") or "").strip().lower()
    if auto and auto.split(";", 1)[0].strip() != "no":
        return "auto_submitted"
    if sender and is_no_reply(sender):
        return "no_reply_sender"
    if is_list_address(sender) or is_list_address(list_sender):
        return "list_sender"
    if recipients > max_recipients:
        return "mass_recipients"
    return None
