"""The inbox never reads or follows what is not a regular file or folder (issue 11 §2).

Symlinks (to files and folders), FIFOs, sockets, devices, hard links and folders holding any of
them are moved to ``_rejected`` with a ``.error.txt`` reason, without being opened; the files
they point at are untouched and never imported. User folders must be real folders named with a
valid user id.
"""

from __future__ import annotations

import os
import socket
import stat
from pathlib import Path

import pytest
from sqlalchemy import select

from control_plane import db
from control_plane.models import ImportJob, User
from yarn_assets.ingest import import_jobs

EML = b"From: Ann <ann@example.com>\nSubject: hi\nMessage-ID: <m1@example.com>\n\nhello\n"
SECRET = b"From: root\nSubject: secret\n\nthe service's own secret\n"


@pytest.fixture
def session_factory(settings):  # type: ignore[no-untyped-def]
    url = settings.resolved_control_plane_url
    db.ensure_schema(url, True)
    with db.session_scope(url) as s:
        s.add(User(id="alice", email="alice@example.com"))

    def make():  # type: ignore[no-untyped-def]
        return db.session_scope(url)

    return make


def _error(folder: Path, name: str) -> str:
    return (folder / "_rejected" / f"{name}.error.txt").read_text()


def test_links_devices_fifos_sockets_and_hard_links_are_refused_unread(session_factory, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    outside = tmp_path / "outside"
    outside.mkdir()
    secret = outside / "secret.eml"
    secret.write_bytes(SECRET)
    inbox = tmp_path / "inbox"
    alice = inbox / "alice"
    alice.mkdir(parents=True)
    (alice / "good.eml").write_bytes(EML)
    (alice / "link.eml").symlink_to(secret)
    (alice / "dirlink").symlink_to(outside, target_is_directory=True)
    os.mkfifo(alice / "fifo.eml")
    sock = socket.socket(socket.AF_UNIX)
    sock.bind(str(alice / "sock.eml"))
    os.link(secret, alice / "hard.eml")
    export = alice / "export"
    (export / "general").mkdir(parents=True)
    (export / "users.json").write_text("[]")
    (export / "general" / "2026-01-01.json").symlink_to(secret)
    device = None
    try:
        os.mknod(alice / "null.eml", stat.S_IFCHR | 0o600, os.makedev(1, 3))
        device = alice / "null.eml"
    except PermissionError:
        pass
    try:
        with session_factory() as s:
            created = import_jobs.scan_inbox(s, inbox, tmp_path / "archive")
    finally:
        sock.close()
    assert [j.original_name for j in created] == ["good.eml"]
    assert sorted(os.listdir(alice)) == ["_rejected"]  # everything left the inbox
    assert "a symlink" in _error(alice, "link.eml") and "never read or followed" in _error(alice, "link.eml")
    assert "a symlink" in _error(alice, "dirlink")
    assert "a FIFO" in _error(alice, "fifo.eml")
    assert "a socket" in _error(alice, "sock.eml")
    assert "a hard link" in _error(alice, "hard.eml")
    assert "export/general/2026-01-01.json: refused: a symlink" in _error(alice, "export")
    if device is not None:
        assert "a device" in _error(alice, "null.eml")
    # the links were moved as links, their targets never touched nor imported
    assert (alice / "_rejected" / "link.eml").is_symlink() and secret.read_bytes() == SECRET
    assert sorted(os.listdir(outside)) == ["secret.eml"]
    archived = [p.read_bytes() for p in (tmp_path / "archive").rglob("*") if p.is_file()]
    assert archived == [EML]
    with session_factory() as s:
        assert [j.original_name for j in s.scalars(select(ImportJob))] == ["good.eml"]


def test_user_folders_must_be_real_folders_named_by_a_valid_user_id(session_factory, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "mail.eml").write_bytes(SECRET)
    (inbox / "bob").symlink_to(elsewhere, target_is_directory=True)  # a user folder that is a link
    (inbox / "bad name").mkdir()
    (inbox / "bad name" / "x.eml").write_bytes(EML)
    (inbox / "README").write_text("drop files into <inbox>/<user_id>/")  # a stray file: left alone
    with session_factory() as s:
        assert import_jobs.scan_inbox(s, inbox, tmp_path / "archive") == []
    rejected = inbox / "_rejected"
    assert "bob: refused: a symlink" in (rejected / "bob.error.txt").read_text()
    assert (rejected / "bob").is_symlink() and (elsewhere / "mail.eml").read_bytes() == SECRET
    assert "invalid user id 'bad name'" in (rejected / "bad name.error.txt").read_text()
    assert (inbox / "README").exists()


def test_a_planted_rejected_link_is_not_followed(session_factory, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """``_rejected`` (and an ``.error.txt``) pre-planted as links would redirect the moves and writes."""
    inbox = tmp_path / "inbox"
    alice = inbox / "alice"
    alice.mkdir(parents=True)
    trap = tmp_path / "trap"
    trap.mkdir()
    (alice / "_rejected").symlink_to(trap, target_is_directory=True)
    os.mkfifo(alice / "pipe.eml")
    with session_factory() as s:
        import_jobs.scan_inbox(s, inbox, tmp_path / "archive")
    assert os.listdir(trap) == []
    assert (alice / "_rejected").is_dir() and not (alice / "_rejected").is_symlink()
    assert "a FIFO" in _error(alice, "pipe.eml")
    # the impostor was moved aside, not deleted
    assert any(n.startswith("_rejected.not-a-folder-") for n in os.listdir(alice))

    victim = tmp_path / "victim.txt"
    victim.write_text("keep me")
    os.mkfifo(alice / "again.eml")
    (alice / "_rejected" / "again.eml.error.txt").symlink_to(victim)
    with session_factory() as s:
        import_jobs.scan_inbox(s, inbox, tmp_path / "archive")
    assert victim.read_text() == "keep me"
    assert "a FIFO" in _error(alice, "again.eml") and not (alice / "_rejected" / "again.eml.error.txt").is_symlink()


def test_register_import_refuses_links_for_the_cli_too(session_factory, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    target = tmp_path / "real.eml"
    target.write_bytes(EML)
    link = tmp_path / "link.eml"
    link.symlink_to(target)
    with session_factory() as s, pytest.raises(import_jobs.ImportError_, match="refused: a symlink"):
        import_jobs.register_import(s, user_id="alice", path=link, archive_root=tmp_path / "archive")
    with session_factory() as s, pytest.raises(import_jobs.ImportError_, match="invalid user id"):
        import_jobs.register_import(s, user_id="../alice", path=target, archive_root=tmp_path / "archive")
    with session_factory() as s:  # the real file registers, and the same bytes again are the same job
        first, created = import_jobs.register_import(s, user_id="alice", path=target, archive_root=tmp_path / "a")
        again, created_again = import_jobs.register_import(s, user_id="alice", path=target, archive_root=tmp_path / "a")
        assert created and not created_again and first.id == again.id
        assert Path(first.stored_path).read_bytes() == EML


def test_folder_digest_is_unchanged_by_the_safe_copy(session_factory, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """Folder exports keep the digest they always had (relative path + bytes, in pathlib order)."""
    import hashlib

    folder = tmp_path / "export"
    (folder / "a-b").mkdir(parents=True)
    (folder / "a").mkdir()
    (folder / "a" / "b.json").write_text("[1]")
    (folder / "a-b" / "c.json").write_text("[2]")
    (folder / "users.json").write_text("[]")
    expected = hashlib.sha256()
    for member in sorted(p for p in folder.rglob("*") if p.is_file()):
        expected.update(str(member.relative_to(folder)).encode())
        expected.update(member.read_bytes())
    with session_factory() as s:
        job, _ = import_jobs.register_import(s, user_id="alice", path=folder, archive_root=tmp_path / "archive",
                                             provider="slack_export")
        assert job.file_sha256 == expected.hexdigest() and job.size_bytes == 8
