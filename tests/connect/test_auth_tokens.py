"""Per-user signed tokens (yarn_assets.core.auth): what verifies and what does not."""

from __future__ import annotations

import datetime as dt

import jwt
import pytest

from yarn_assets.core import auth

KEY = "s" * 64  # long enough for the HS512 forgery below not to warn


def test_round_trip_and_audience() -> None:
    token = auth.issue(KEY, "ada", audience="mcp")
    assert auth.verify(KEY, token, audience="mcp") == "ada"
    with pytest.raises(auth.InvalidToken):
        auth.verify(KEY, token, audience="api")


@pytest.mark.parametrize("token", [
    None, "", "x" * 5000, "not.a.jwt",
    auth.issue("o" * 40, "ada"),  # another key
    jwt.encode({"sub": "ada", "iss": "yarnnn", "aud": "api", "iat": 0, "exp": 2**40}, KEY, algorithm="HS512"),
    jwt.encode({"sub": "ada", "iss": "yarnnn", "aud": "api", "iat": 0, "exp": 2**40}, None, algorithm="none"),
    jwt.encode({"sub": "../etc", "iss": "yarnnn", "aud": "api", "iat": 0, "exp": 2**40}, KEY, algorithm="HS256"),
    jwt.encode({"sub": "ada", "iss": "other", "aud": "api", "iat": 0, "exp": 2**40}, KEY, algorithm="HS256"),
    jwt.encode({"sub": "ada", "iss": "yarnnn", "aud": "api", "iat": 0}, KEY, algorithm="HS256"),  # no exp
])
def test_forged_or_malformed_tokens_are_refused(token: str | None) -> None:
    with pytest.raises(auth.InvalidToken):
        auth.verify(KEY, token)


def test_expiry_follows_the_given_clock() -> None:
    now = dt.datetime.now(dt.UTC)
    token = auth.issue(KEY, "ada", ttl=dt.timedelta(hours=1), now=now)
    assert auth.verify(KEY, token, now=now + dt.timedelta(minutes=59)) == "ada"
    with pytest.raises(auth.InvalidToken, match="expired"):
        auth.verify(KEY, token, now=now + dt.timedelta(hours=2))


def test_a_short_key_is_a_configuration_error() -> None:
    with pytest.raises(auth.SigningKeyMissing, match="YARNNN_AUTH_SIGNING_KEY"):
        auth.issue("short", "ada")
    with pytest.raises(auth.SigningKeyMissing):
        auth.verify(None, "x")


def test_router_from_settings_mounts_the_four_routes() -> None:
    from resources.settings import load_settings
    from yarn_assets.connect.routes import router_from_settings

    router = router_from_settings(load_settings(auth_signing_key=KEY))
    assert {(r.path, *sorted(r.methods)) for r in router.routes} == {  # type: ignore[attr-defined]
        ("/connect", "GET"), ("/connect/{provider}/start", "POST"), ("/connect/{provider}/callback", "GET"),
        ("/connect/{provider}", "DELETE")}
