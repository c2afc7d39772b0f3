"""Per-user bearer tokens: JWT HS256 (PyJWT) with ``sub`` = user id, ``iss`` = yarnnn, ``aud`` = api.

The key is the ``auth_signing_key`` setting (``YARNNN_AUTH_SIGNING_KEY``, SecretStr, >= 32 characters);
``yarnnn users token USER`` mints one. Any failure — missing, malformed, forged, expired, another
audience — is the same 401 with no detail (the reason goes to the log only).
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable
from typing import Annotated

import jwt
from fastapi import Header, HTTPException

from control_plane.user_ids import InvalidUserId, validate_user_id

log = logging.getLogger("yarnnn.api")

ISSUER = "yarnnn"
ALGORITHM = "HS256"
AUDIENCE = "api"
MAX_TOKEN_CHARS = 4_096
MIN_KEY_CHARS = 32


class InvalidToken(Exception):
    """Why a token was refused: for logs only, never for the client."""


class SigningKeyMissing(RuntimeError):
    """No usable signing key is configured."""


def _key(key: str | None) -> str:
    if not key or len(key) < MIN_KEY_CHARS:
        raise SigningKeyMissing(f"YARNNN_AUTH_SIGNING_KEY must be set to at least {MIN_KEY_CHARS} characters "
                                "to issue or check user tokens")
    return key


def issue(key: str | None, user_id: str, *, ttl: dt.timedelta, now: dt.datetime | None = None,
          audience: str = AUDIENCE) -> str:
    now = now or dt.datetime.now(dt.UTC)
    claims = {"sub": validate_user_id(user_id), "iss": ISSUER, "aud": audience, "iat": int(now.timestamp()),
              "exp": int((now + ttl).timestamp())}
    return jwt.encode(claims, _key(key), algorithm=ALGORITHM)


def verify(key: str | None, token: str | None, *, audience: str = AUDIENCE, leeway_seconds: int = 30) -> str:
    """The user id a valid token names; anything else raises :class:`InvalidToken`."""
    secret = _key(key)
    if not token or len(token) > MAX_TOKEN_CHARS:
        raise InvalidToken("missing or oversized token")
    try:
        claims = jwt.decode(token, secret, algorithms=[ALGORITHM], audience=audience, issuer=ISSUER,
                            leeway=leeway_seconds, options={"require": ["sub", "exp", "iat", "iss", "aud"]})
        return validate_user_id(str(claims["sub"]))
    except jwt.PyJWTError as exc:
        raise InvalidToken(f"{type(exc).__name__}: {exc}") from None
    except InvalidUserId as exc:
        raise InvalidToken(f"bad subject: {exc}") from None


def bearer_user(signing_key: Callable[[], str | None]) -> Callable[..., str]:
    """A FastAPI dependency: the user id of a valid ``Authorization: Bearer`` token, else 401 (no detail)."""

    def current_user(authorization: Annotated[str | None, Header()] = None) -> str:
        raw = authorization or ""
        token = raw[7:].strip() if raw[:7].lower() == "bearer " else None
        try:
            return verify(signing_key(), token)
        except InvalidToken as exc:
            log.info("refused a user token: %s", exc)
        except SigningKeyMissing as exc:
            log.error("%s", exc)
        raise HTTPException(401, "not authenticated", headers={"WWW-Authenticate": "Bearer"})

    return current_user
