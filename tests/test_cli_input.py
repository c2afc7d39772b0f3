"""Bad CLI input gets a clean message and a non-zero exit, never a traceback (issue 11 §2)."""

from __future__ import annotations

import os
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from yarn_assets.cli import main

EML = b"From: Ann <ann@example.com>\nSubject: hi\nMessage-ID: <m1@example.com>\n\nhello\n"


def run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, list(args))
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise AssertionError(f"traceback for {args}: {result.exception!r}\n{result.output}")
    return result.exit_code, result.output


@pytest.fixture
def alice() -> None:
    code, out = run("users", "add", "alice", "--email", "alice@example.com")
    assert code == 0, out


@pytest.mark.parametrize("user_id", ["../etc", "", "a/b", "bo\x01b", ".hidden", "x" * 65, "two words"])
def test_users_add_refuses_ids_outside_the_character_set(user_id: str) -> None:
    code, out = run("users", "add", user_id, "--email", "x@example.com")
    assert code == 2 and "invalid user id" in out and "Traceback" not in out
    assert run("users", "list")[1].strip() == "(none)"


def test_users_add_accepts_the_documented_set() -> None:
    for user_id in ("alice", "a.b-c_d@corp", "0" * 64):
        assert run("users", "add", user_id, "--email", "x@example.com")[0] == 0


def test_import_add_dates_users_and_paths(alice: None, tmp_path: Path) -> None:
    mail = tmp_path / "m.eml"
    mail.write_bytes(EML)
    code, out = run("import", "add", "--user", "alice", "--date", "03/12/2026", str(mail))
    assert code == 2 and "'03/12/2026' is not a date in the format YYYY-MM-DD" in out
    code, out = run("import", "add", "--user", "../alice", str(mail))
    assert code == 2 and "invalid user id" in out
    code, out = run("import", "add", "--user", "ghost", str(mail))
    assert code == 1 and "unknown user 'ghost'" in out
    link = tmp_path / "link.eml"
    link.symlink_to(mail)
    fifo = tmp_path / "fifo.eml"
    os.mkfifo(fifo)
    code, out = run("import", "add", "--user", "alice", "--date", "2026-03-12", str(link), str(fifo), str(mail),
                    str(tmp_path / "missing.eml"))
    assert code == 1 and "Error: 3 of 4 path(s) refused" in out
    assert "link.eml: refused: a symlink" in out and "fifo.eml: refused: a FIFO" in out and "no such file" in out
    assert "registered: " in out and "-> partition 2026-03-12|gmail" in out  # the good one still registers
    assert "m.eml" in run("import", "list")[1]


def test_unknown_ids_and_mismatched_deliverables(alice: None) -> None:
    code, out = run("deliverables", "show", "no-such-id")
    assert code == 1 and out.strip().endswith("Error: no deliverable 'no-such-id'")
    code, out = run("deliverables", "create", "--user", "alice", "--type", "slack_channel_digest", "--title", "x",
                    "--source", "gmail:INBOX")
    assert code == 1 and "slack_channel_digest reads slack only; gmail:INBOX does not fit (allowed platforms: slack)" \
        in out
    code, out = run("deliverables", "create", "--user", "ghost", "--type", "status_report", "--title", "x")
    assert code == 1 and "unknown user 'ghost'" in out
    assert run("memory", "show", "--user", "ghost")[1].strip() == "Error: unknown user 'ghost'"


def test_the_top_level_handler_converts_validation_errors_only() -> None:
    """A product validation error raised deep in a command is 'Error: ...'; a bug keeps its traceback."""
    from yarn_assets.deliverables.service import DeliverableError

    @main.command("_raise_validation", hidden=True)
    def _validation() -> None:
        raise DeliverableError("the deliverable does not fit")

    @main.command("_raise_bug", hidden=True)
    def _bug() -> None:
        raise KeyError("a real bug")

    try:
        code, out = run("_raise_validation")
        assert code == 1 and out.strip() == "Error: the deliverable does not fit"
        result = CliRunner().invoke(main, ["_raise_bug"])
        assert isinstance(result.exception, KeyError)
    finally:
        main.commands.pop("_raise_validation")
        main.commands.pop("_raise_bug")
    assert isinstance(main, click.Group)
