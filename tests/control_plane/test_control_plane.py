"""Control plane on SQLite and PostgreSQL: migrations, UTC round trips, constraints, encryption."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import inspect, select
from sqlalchemy.exc import IntegrityError

from control_plane import db
from control_plane.crypto import CredentialError, TokenCipher
from control_plane.models import PlatformConnection, SyncRegistry, User

EXPECTED_TABLES = {
    "users", "platform_connections", "sync_registry", "import_jobs", "deliverables",
    "deliverable_versions", "signal_history", "llm_usage",
}


def _exercise(url: str) -> None:
    rev = db.upgrade(url)
    assert rev == db.head_revision()
    assert set(inspect(db.get_engine(url)).get_table_names()) >= EXPECTED_TABLES
    when = dt.datetime(2026, 3, 1, 12, 30, tzinfo=dt.timezone(dt.timedelta(hours=2)))
    with db.session_scope(url) as s:
        s.add(User(id="alice", email="a@example.com", tier="pro", timezone="Europe/Paris"))
        s.flush()
        s.add(SyncRegistry(user_id="alice", platform="slack", resource_id="C1", last_synced_at=when))
    with db.session_scope(url) as s:
        row = s.scalars(select(SyncRegistry)).one()
        assert row.last_synced_at == when and row.last_synced_at.tzinfo is not None
        assert row.last_synced_at.utcoffset() == dt.timedelta(0)
    with pytest.raises(IntegrityError), db.session_scope(url) as s:
        s.add(SyncRegistry(user_id="alice", platform="slack", resource_id="C1"))
    with pytest.raises(Exception, match="naive datetime"), db.session_scope(url) as s:
        s.add(SyncRegistry(user_id="alice", platform="gmail", resource_id="x", last_synced_at=dt.datetime(2026, 1, 1)))
        s.flush()
    db.upgrade(url)  # idempotent


def test_sqlite_control_plane(settings) -> None:  # type: ignore[no-untyped-def]
    _exercise(settings.resolved_control_plane_url)


@pytest.mark.postgres
def test_postgres_control_plane(pg_url: str) -> None:
    _exercise(pg_url)


def test_schema_out_of_date_is_reported_when_auto_migrate_is_off(tmp_path) -> None:  # type: ignore[no-untyped-def]
    url = f"sqlite:///{tmp_path / 'cp.db'}"
    with pytest.raises(db.SchemaOutOfDate, match="yarnnn db upgrade"):
        db.ensure_schema(url, auto_migrate=False)
    db.ensure_schema(url, auto_migrate=True)
    db.ensure_schema(url, auto_migrate=False)


def test_credentials_are_encrypted_and_fail_loudly(settings) -> None:  # type: ignore[no-untyped-def]
    key = TokenCipher.generate_key()
    cipher = TokenCipher(key)
    token = cipher.encrypt({"bot_token": "xoxb-secret-123"})
    assert "xoxb-secret-123" not in token
    url = settings.resolved_control_plane_url
    db.upgrade(url)
    with db.session_scope(url) as s:
        s.add(User(id="bob", email="b@example.com"))
        s.flush()
        s.add(PlatformConnection(user_id="bob", platform="slack", credentials_encrypted=token))
    raw = db.get_engine(url).raw_connection()
    try:
        dump = "\n".join(str(r) for r in raw.cursor().execute("SELECT * FROM platform_connections").fetchall())
    finally:
        raw.close()
    assert "xoxb-secret-123" not in dump
    assert cipher.decrypt(token) == {"bot_token": "xoxb-secret-123"}
    with pytest.raises(CredentialError, match="YARNNN_ENCRYPTION_KEY is not set"):
        TokenCipher(None)
    with pytest.raises(CredentialError, match="cannot be decrypted"):
        TokenCipher(TokenCipher.generate_key()).decrypt(token, what="connection bob/slack")
    rotated = TokenCipher(f"{TokenCipher.generate_key()},{key}")
    assert rotated.decrypt(rotated.rotate(token)) == {"bot_token": "xoxb-secret-123"}
