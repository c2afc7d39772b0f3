"""What can go wrong connecting an account, sorted by who must act."""

from __future__ import annotations


class ConnectError(ValueError):
    """A consent cannot go on; ``reason`` is a short machine code, the message is safe to show."""

    def __init__(self, message: str, reason: str = "error") -> None:
        super().__init__(message)
        self.reason = reason


class NotConfigured(ConnectError):
    """The operator has not configured this provider's OAuth client (id/secret settings)."""

    def __init__(self, message: str) -> None:
        super().__init__(message, "not_configured")


class CallbackRefused(ConnectError):
    """A callback was refused: unknown, expired or replayed ``state``, or the provider refused the code."""


class ReconnectNeeded(RuntimeError):
    """The provider refused the stored grant (``invalid_grant``): only the user can fix it, by reconnecting.

    Raised by :func:`yarn_assets.connect.tokens.fresh_credentials`; the connection's status is
    ``reconnect_needed`` and its ``last_error`` says why, so every listing shows it.
    """

    def __init__(self, message: str, connection_id: str | None = None, platform: str | None = None) -> None:
        super().__init__(message)
        self.connection_id = connection_id
        self.platform = platform


class RefreshFailed(RuntimeError):
    """A token refresh failed for a passing reason (network, 5xx): try again later, nothing to reconnect."""
