"""Encryption of platform credentials at rest (Fernet; several keys allow rotation)."""

from __future__ import annotations

import json
from typing import Any

from cryptography.fernet import Fernet, InvalidToken, MultiFernet


class CredentialError(RuntimeError):
    """Credentials cannot be used: key missing, key wrong, or payload unreadable."""


KEY_VARIABLE = "YARNNN_ENCRYPTION_KEY"


class TokenCipher:
    """Encrypts and decrypts credential payloads. The first key encrypts; any key decrypts."""

    def __init__(self, keys: str | None) -> None:
        parts = [k.strip() for k in (keys or "").split(",") if k.strip()]
        if not parts:
            raise CredentialError(
                f"{KEY_VARIABLE} is not set: platform credentials cannot be encrypted or decrypted"
            )
        try:
            self._fernet = MultiFernet([Fernet(k.encode()) for k in parts])
        except (ValueError, TypeError) as exc:
            raise CredentialError(f"{KEY_VARIABLE} is not a valid Fernet key") from exc

    @staticmethod
    def generate_key() -> str:
        return Fernet.generate_key().decode()

    def encrypt(self, payload: dict[str, Any]) -> str:
        return self._fernet.encrypt(json.dumps(payload, sort_keys=True).encode()).decode()

    def decrypt(self, token: str | None, what: str = "credentials") -> dict[str, Any]:
        if not token:
            raise CredentialError(f"{what}: no credentials are stored")
        try:
            data = self._fernet.decrypt(token.encode())
        except InvalidToken as exc:
            raise CredentialError(
                f"{what}: credentials cannot be decrypted with the configured {KEY_VARIABLE} "
                "(wrong or rotated key)"
            ) from exc
        return json.loads(data)

    def rotate(self, token: str) -> str:
        return self._fernet.rotate(token.encode()).decode()
