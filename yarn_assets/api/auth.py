"""Per-user bearer tokens for the API: the shared format of :mod:`yarn_assets.core.auth` (audience ``api``).

The key is the ``auth_signing_key`` setting (``YARNNN_AUTH_SIGNING_KEY``, SecretStr, >= 32 characters);
``yarnnn users token USER`` mints one. Any failure — missing, malformed, forged, expired, another
audience — is the same 401 with no detail (the reason goes to the log only).
"""

from __future__ import annotations

from yarn_assets.core.auth import (
    ALGORITHM,
    AUDIENCES,
    ISSUER,
    InvalidToken,
    SigningKeyMissing,
    bearer_user,
    issue,
    verify,
)

__all__ = ["ALGORITHM", "AUDIENCES", "ISSUER", "InvalidToken", "SigningKeyMissing", "bearer_user", "issue", "verify"]
