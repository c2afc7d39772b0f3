"""Per-user signed tokens, shared by the HTTP API and the MCP server.

A token is a JWT (HS256, PyJWT) with ``sub`` = user id, ``iss`` = ``yarnnn``, an audience
(``api`` or ``mcp``), ``iat`` and ``exp``; the key is the ``auth_signing_key`` setting
(``YARNNN_AUTH_SIGNING_KEY``, at least 32 characters). :func:`verify` returns the user id or raises
:class:`InvalidToken` whose message is for logs only: callers answer 401 with no detail.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable
from typing import Annotated

import jwt
from fastapi import Header, HTTPException

from control_plane.user_ids import InvalidUserId, validate_user_id

ISSUER = "yarnnn"
ALGORITHM = "HS256"
AUDIENCES = ("api", "mcp")
MAX_TOKEN_CHARS = 4_096
MIN_KEY_CHARS = 32

log = logging.getLogger("yarnnn.auth")
DEFAULT_TTL = dt.timedelta(days=30)


class InvalidToken(Exception):
    """The token is missing, malformed, forged, expired or for another audience (detail for logs only)."""


class SigningKeyMissing(RuntimeError):
    """No usable signing key is configured."""


def _key(key: str | None) -> str:
    if not key or len(key) < MIN_KEY_CHARS:
        raise SigningKeyMissing(
            f"YARNNN_AUTH_SIGNING_KEY must be set to at least {MIN_KEY_CHARS} characters to issue or check user tokens"
        )
    return key


def issue(key: str | None, user_id: str, *, audience: str = "api", ttl: dt.timedelta = DEFAULT_TTL,
          now: dt.datetime | None = None) -> str:
    if audience not in AUDIENCES:
        raise ValueError(f"unknown audience {audience!r}; known: {', '.join(AUDIENCES)}")
    now = now or dt.datetime.now(dt.UTC)
    claims = {"sub": validate_user_id(user_id), "iss": ISSUER, "aud": audience, "iat": int(now.timestamp()),
              "exp": int((now + ttl).timestamp())}
    return jwt.encode(claims, _key(key), algorithm=ALGORITHM)


def verify(key: str | None, token: str | None, *, audience: str = "api", now: dt.datetime | None = None,
           leeway_seconds: int = 30) -> str:
    """The user id a valid token names; anything else raises :class:`InvalidToken`."""
    secret = _key(key)
    if not token or len(token) > MAX_TOKEN_CHARS:
        raise InvalidToken("missing or oversized token")
    options = {"require": ["sub", "exp", "iat", "iss", "aud"]}
    if now is not None:  # an explicit clock (tests): check expiry against it, not the wall clock
        options["verify_exp"] = False  # type: ignore[assignment]
    try:
        claims = jwt.decode(token, secret, algorithms=[ALGORITHM], audience=audience, issuer=ISSUER,
                            leeway=leeway_seconds, options=options)  # type: ignore[arg-type]
    except jwt.PyJWTError as exc:
        raise InvalidToken(f"{type(exc).__name__}: {exc}") from None
    if now is not None and int(claims["exp"]) + leeway_seconds < now.timestamp():
        raise InvalidToken("ExpiredSignatureError: token expired")
    try:
        return validate_user_id(str(claims["sub"]))
    except InvalidUserId as exc:
        raise InvalidToken(f"bad subject: {exc}") from None


def bearer_user(signing_key: Callable[[], str | None], audience: str = "api") -> Callable[..., str]:
    """A FastAPI dependency: the user id of a valid ``Authorization: Bearer`` token, else 401 with no
    detail (the reason goes to the log only). Shared by the API's routers and the OAuth routes."""

    def current_user(authorization: Annotated[str | None, Header(max_length=MAX_TOKEN_CHARS + 20)] = None) -> str:
        raw = authorization or ""
        token = raw[7:].strip() if raw[:7].lower() == "bearer " else None
        try:
            return verify(signing_key(), token, audience=audience)
        except InvalidToken as exc:
            log.info("refused a user token: %s", exc)
        except SigningKeyMissing as exc:
            log.error("%s", exc)
        raise HTTPException(401, "not authenticated", headers={"WWW-Authenticate": "Bearer"})

    return current_user
