"""The shared SMTP transport against a real server (aiosmtpd): what every mail of yarnnn goes through."""

import smtplib
from email.message import EmailMessage

import pytest

from resources.smtp import SmtpServer
from tests.fakes.smtp import SmtpServer as FakeSmtp


def _message(to: str) -> EmailMessage:
    msg = EmailMessage()
    msg["From"], msg["To"], msg["Subject"] = "yarnnn <noreply@yarnnn.test>", to, "Hello"
    msg.set_content("body")
    return msg


def test_sends_with_the_envelope_it_is_given() -> None:
    with FakeSmtp() as server:
        refused = SmtpServer("127.0.0.1", server.port).send(
            _message("a@x.example"), from_addr="noreply@yarnnn.test", to_addrs=["a@x.example", "b@x.example"])
        mails = server.wait_for(1)
    assert refused == {}
    assert [(m.mail_from, m.rcpt_tos, m.subject) for m in mails] == [
        ("noreply@yarnnn.test", ["a@x.example", "b@x.example"], "Hello")]


def test_a_login_without_its_password_fails_before_connecting() -> None:
    transport = SmtpServer("127.0.0.1", 1, username="mailer")  # port 1: a connection attempt would fail differently
    with pytest.raises(ValueError, match="YARNNN_SMTP_PASSWORD"):
        transport.send(_message("a@x.example"), from_addr="noreply@yarnnn.test", to_addrs=["a@x.example"])
    assert "s3cret" not in repr(SmtpServer("h", username="u", password="s3cret"))  # never in logs via repr


def test_server_errors_reach_the_caller() -> None:
    with FakeSmtp() as server:
        server.fail_next.append("550 5.1.1 mailbox unavailable")
        with pytest.raises(smtplib.SMTPDataError) as err:
            SmtpServer("127.0.0.1", server.port).send(
                _message("a@x.example"), from_addr="noreply@yarnnn.test", to_addrs=["a@x.example"])
    assert err.value.smtp_code == 550 and not server.inbox
