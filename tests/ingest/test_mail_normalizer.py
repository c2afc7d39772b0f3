"""MIME parsing, mbox/.eml/Takeout readers and the email normalizer, on the corpus and built variants."""

from __future__ import annotations

import datetime as dt
from email.message import EmailMessage
from pathlib import Path

import pytest

from tests.ingest.helpers import meta, read_and_normalize
from yarn_assets.ingest.mime import decode_bytes, decode_header_value, html_to_text, parse_message
from yarn_assets.ingest.objects import RawObject
from yarn_assets.ingest.platforms.gmail.export import envelope_date, label_resource, read_mbox


def _mail(corpus: Path, name: str) -> bytes:
    return (corpus / "mbox_eml" / name).read_bytes()


def test_misdeclared_charset_is_decoded(corpus: Path) -> None:
    """iso-8859-1 declared, Windows-1252 bytes (0x85, 0xA0) in the Subject header and the body."""
    parsed = parse_message(_mail(corpus, "flanker__spam_broken-headers.eml"))
    assert parsed.subject == "Forget Asking For A Link Exchange…"
    assert "insider *secrets*:\xa0" in parsed.body_text
    assert "\ufffd" not in parsed.body_text + (parsed.subject or "")


def test_raw_8bit_headers_and_broken_boundary(corpus: Path) -> None:
    parsed = parse_message(_mail(corpus, "flanker__mailformed-headers.eml"))
    assert parsed.from_display == "Юникод запрещенñ"  # UTF-8 with one stray byte read as Windows-1252
    assert parsed.from_address == "headers@gmail.com"
    assert parsed.subject == "´!"
    assert parsed.body_text == "Hello"  # boundary mismatch recovered; "base64" part that is plain text
    assert parsed.body_source == "text/html"


def test_encoded_words_missing_final_boundary_and_transfer_encodings(corpus: Path) -> None:
    bilingual = parse_message(_mail(corpus, "flanker__bilingual-simple.eml"))
    assert bilingual.subject == "Simple text. How are you? Как ты поживаешь?"
    assert bilingual.body_text == "This line is in English\nА эта линия по-русски."
    assert parse_message(_mail(corpus, "flanker__missing-final-boundary.eml")).body_text == "Some body"
    lyrics = parse_message(_mail(corpus, "cpython__msg_10.txt"))
    assert lyrics.body_text.split("\n\n") == [  # multipart/mixed: every inline part, in order
        "This is a 7bit encoded message.", "¡This is a Quoted Printable encoded message!",
        "This is a Base64 encoded message.", "This is a Base64 encoded message.",
        "This has no Content-Transfer-Encoding: header."]


def test_attachments_are_listed_not_inlined(corpus: Path) -> None:
    pdf = parse_message(_mail(corpus, "flanker__attached-pdf.eml"))
    assert pdf.attachments == ["test.pdf"] and pdf.body_text == "Test - body content"
    enclosed = parse_message(_mail(corpus, "flanker__enclosed.eml"))
    assert enclosed.attachments == ["thanks.eml"] and enclosed.body_text == "Hello"
    assert "kicking" not in enclosed.body_text  # the forwarded message stays an attachment
    iphone = parse_message(_mail(corpus, "flanker__iphone.eml"))
    assert iphone.attachments == ["photo.JPG"] and iphone.body_text == "Hello\n\n~Danielle"


def test_plain_text_preferred_html_fallback() -> None:
    msg = EmailMessage()
    msg["From"], msg["Subject"] = "a@x.example", "both"
    msg.set_content("plain body")
    msg.add_alternative("<p>html <b>body</b></p>", subtype="html")
    assert parse_message(msg.as_bytes()).body_text == "plain body"
    html_only = EmailMessage()
    html_only["From"] = "a@x.example"
    html_only.set_content("<html><body><p>Hello <b>there</b>,</p><p>line two<br>line three</p>"
                          "<script>x()</script></body></html>", subtype="html")
    parsed = parse_message(html_only.as_bytes())
    assert parsed.body_text == "Hello there,\n\nline two\nline three" and parsed.body_source == "text/html"


def test_charset_rules() -> None:
    assert decode_bytes("café".encode(), "us-ascii") == "café"  # labelled ASCII, really UTF-8
    assert decode_bytes(b"caf\xe9 \x93ok\x94", "iso-8859-1") == "café “ok”"  # Latin-1 label read as cp1252
    assert decode_bytes(b"caf\xe9", "utf-8") == "café"  # wrong label
    assert decode_bytes("привет".encode("koi8-r"), "koi8-r") == "привет"
    assert decode_bytes(b"x\x81y", "x-unknown-charset") == "x\x81y"  # a hole of cp1252 -> Latin-1
    assert decode_header_value("=?x-bogus?q?caf=E9?= ok") == "café ok"
    assert html_to_text("<p>a\n b</p><pre>x\n  y</pre>") == "a b\n\nx\ny"  # <pre> keeps its line breaks


def test_dates_fall_back_to_received_then_mbox_envelope(corpus: Path) -> None:
    items, _, rejects, _ = read_and_normalize(corpus / "mbox_eml" / "cpython__msg_15.txt", "eml")
    row = items.row(0, named=True)
    assert row["occurred_at"] == dt.datetime(2001, 4, 30, 10, 17, 50, tzinfo=dt.UTC)
    assert meta(row)["date_source"] == "received_header"
    items, _, rejects, _ = read_and_normalize(corpus / "mbox_eml" / "cpython__mailbox_01.mbox", "mbox")
    assert not rejects and items.height == 1  # "From time to time" in the body is not a separator
    row = items.row(0, named=True)
    assert row["content"] == "Hello\n\nFrom time to time"
    assert row["occurred_at"] == dt.datetime(2022, 8, 7, 11, 40, 37, tzinfo=dt.UTC)
    assert meta(row)["date_source"] == "mbox_envelope"
    items, _, _, _ = read_and_normalize(corpus / "mbox_eml" / "cpython__msg_47.txt", "eml")
    assert items["occurred_at"].to_list() == [None]  # hour 27, no Received: undated, not invented


@pytest.mark.parametrize("name", ["emailreplyparser__email_1_2.txt", "emailreplyparser__email_iPhone.txt"])
def test_body_only_files_are_rejected_with_reason(corpus: Path, name: str) -> None:
    items, read_rejects, rejects, _ = read_and_normalize(corpus / "mbox_eml" / name, "eml")
    assert items.is_empty() and not read_rejects
    assert [r.reason for r in rejects] == ["not an RFC 5322 message: no header block"]
    assert rejects[0].raw == _mail(corpus, name)


def _takeout_message(mid: str, thrid: int, labels: str, subject: str, sent: str, body: str,
                     reply_to: str | None = None) -> bytes:
    msg = EmailMessage()
    msg["X-GM-THRID"] = str(thrid)
    msg["X-Gmail-Labels"] = labels
    msg["From"] = "Dana Lee <dana@partner.example>"
    msg["To"] = "me@example.com"
    msg["Subject"] = subject
    msg["Date"] = sent
    msg["Message-ID"] = f"<{mid}>"
    if reply_to:
        msg["In-Reply-To"] = f"<{reply_to}>"
        msg["References"] = f"<{reply_to}>"
    msg.set_content(body)
    return msg.as_bytes()


def test_takeout_mbox_labels_threads_and_ids(tmp_path: Path) -> None:
    thrid = 1593816457238405118
    box = tmp_path / "All mail Including Spam and Trash.mbox"
    box.write_bytes(
        b"From 1593816457238405118@xxx Thu Mar 19 10:39:37 +0000 2020\n"
        + _takeout_message("m1@x", thrid, "Inbox,Important,Opened", "Plan", "Thu, 19 Mar 2020 11:39:37 +0100",
                           "first") + b"\n"
        + b"From 1593816457238405119@xxx Thu Mar 19 11:00:00 +0000 2020\n"
        + _takeout_message("m2@x", thrid, 'Opened,"Clients, 2020",Category Updates', "Re: Plan",
                           "Thu, 19 Mar 2020 11:00:00 +0000", "second", reply_to="m1@x") + b"\n"
        + b"From 1593816457238405120@xxx Thu Mar 19 12:00:00 +0000 2020\n"
        + _takeout_message("m3@x", thrid + 1, "Archived,Opened", "Other", "Thu, 19 Mar 2020 12:00:00 +0000", "x")
    )
    objects = [o for o in read_mbox(box) if isinstance(o, RawObject)]
    assert [(o.resource_id, o.resource_name) for o in objects] == [
        ("label:INBOX", "Inbox"), ("label:Clients, 2020", "Clients, 2020"), ("label:ARCHIVED", "Archived")]
    assert objects[0].context["label_ids"] == ["INBOX", "IMPORTANT"]
    assert objects[0].context["gmail_id"] == format(1593816457238405118, "x")
    items, _, rejects, _ = read_and_normalize(box, "mbox")
    assert not rejects
    rows = {r["external_id"]: r for r in items.iter_rows(named=True)}
    assert rows["m1@x"]["thread_id"] == rows["m2@x"]["thread_id"] == format(thrid, "x")  # the API's thread id
    assert rows["m1@x"]["occurred_at"] == dt.datetime(2020, 3, 19, 10, 39, 37, tzinfo=dt.UTC)
    assert meta(rows["m2@x"])["labels"] == ["Opened", "Clients, 2020", "Category Updates"]
    assert meta(rows["m2@x"])["in_reply_to"] == "m1@x"


def test_label_resource_and_envelope_helpers() -> None:
    assert label_resource([]) is None
    assert label_resource(["Sent", "Important"]) == ("label:SENT", "Sent", ["SENT", "IMPORTANT"])
    assert label_resource(["Unread", "Starred"])[0] == "label:STARRED"
    assert envelope_date("From x@y Mon Feb  3 04:05:06 -0500 2025") == dt.datetime(2025, 2, 3, 9, 5, 6, tzinfo=dt.UTC)
    assert envelope_date("From time to time") is None


def test_not_an_mbox_is_a_reject(tmp_path: Path) -> None:
    path = tmp_path / "notes.mbox"
    path.write_bytes(b"just some text\n")
    out = list(read_mbox(path))
    assert len(out) == 1 and not isinstance(out[0], RawObject)
    assert "not an mbox file" in out[0].reason and out[0].raw == b"just some text\n"
