"""Users connect their own accounts: OAuth consent flows for Slack, Google (Gmail + Calendar) and Notion.

* :mod:`.flow` starts a consent (``state`` + PKCE, stored server-side, single use, expiring),
  completes it at the callback (code exchange, tokens stored encrypted, ``integration_connected``)
  and disconnects (provider revoke, credentials wiped, ``integration_disconnected``);
* :mod:`.tokens` hands out fresh credentials (refresh on expiry); a refresh the provider refuses
  (``invalid_grant``) puts the connection in the ``reconnect_needed`` state, shown by
  ``yarnnn connections list`` / ``yarnnn status`` and raised as :class:`~.errors.ReconnectNeeded`;
* :mod:`.slack`, :mod:`.google`, :mod:`.notion`: what differs per provider (endpoints, scopes, token
  response shapes, client authentication);
* :mod:`.routes`: the flow as a FastAPI ``APIRouter`` (mounted by the API app).

The stored credential payloads keep the keys the sync clients read (``bot_token``; ``refresh_token``
+ ``client_id`` + ``client_secret``; ``token``), so a connection made here syncs like one added with
``yarnnn connections add``.
"""
