"""Credential decryption as a resource: the key is an EnvVar, so it never shows in run config."""

from __future__ import annotations

import dagster as dg
from pydantic import Field

from control_plane.crypto import TokenCipher


class CredentialVault(dg.ConfigurableResource):
    """Holds the Fernet key(s); a missing key fails at first use with the variable's name."""

    encryption_key: str | None = Field(default=None, description="Fernet key(s), comma-separated.")

    def cipher(self) -> TokenCipher:
        return TokenCipher(self.encryption_key)
