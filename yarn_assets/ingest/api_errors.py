"""What can go wrong in a sync, sorted by how far the damage reaches.

* :class:`CredentialProblem`: the whole connection is unusable (key missing or wrong, token
  revoked or expired). The run fails naming the connection; nothing is reported as synced.
* :class:`ResourceFailure`: one channel, label, page or calendar failed after bounded retries;
  it is recorded in ``sync_registry.last_error`` and the sync carries on with the others.
* :class:`CursorExpired`: the provider forgot our cursor (Gmail history 404, Calendar 410);
  fetchers catch it and fall back to a bounded window resync.
"""

from __future__ import annotations


class SyncError(RuntimeError):
    """Base of every sync error; messages never contain secrets."""


class CredentialProblem(SyncError):
    """The connection cannot authenticate. ``status`` is what the connection becomes."""

    def __init__(self, message: str, status: str = "error") -> None:
        super().__init__(message)
        self.status = status  # error | revoked | expired | reconnect_needed


class ResourceFailure(SyncError):
    """One resource could not be fetched; the others still sync."""


class ApiUnavailable(ResourceFailure):
    """Retries exhausted (429s, 5xx or network errors) for one call."""


class NotFound(ResourceFailure):
    """The provider says the object does not exist or is not shared with us (404/403)."""


class CursorExpired(SyncError):
    """A stored incremental cursor was rejected (Gmail 404 on history, Calendar 410)."""
