"""The consent flow over HTTP: an ``APIRouter`` the API app mounts.

* ``GET /connect`` the user's connections (status; ``action: reconnect`` when needed)
* ``POST /connect/{provider}/start`` the authorize URL to send the browser to
* ``GET /connect/{provider}/callback`` where the provider sends the browser back (no user token:
  the server-side ``state`` says whose consent it is)
* ``DELETE /connect/{provider}`` revoke and disconnect

Usage: ``app.include_router(router_from_settings(settings))`` (or :func:`build_router` with your own
environment and user dependency). Handlers are plain
functions (FastAPI runs them in its thread pool: the provider calls block). No ``from __future__
import annotations`` here: FastAPI resolves the handlers' annotations, some of them local.
"""

import logging
from collections.abc import Callable
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query
from pydantic import BaseModel, Field

from yarn_assets.connect import flow
from yarn_assets.connect.config import ConnectEnv
from yarn_assets.connect.errors import CallbackRefused, ConnectError
from yarn_assets.core import auth

log = logging.getLogger("yarnnn.connect")

STATUS = {"unknown_provider": 404, "not_connected": 404, "unknown_user": 404, "not_configured": 503,
          "unknown_platform": 422, "provider_unreachable": 502}
MAX_PARAM = 2_000


class StartBody(BaseModel):
    platforms: list[str] | None = Field(default=None, max_length=4,
                                        description="google: gmail and/or calendar (default both)")


def _http(exc: ConnectError) -> HTTPException:
    if isinstance(exc, CallbackRefused):
        return HTTPException(400, {"error": exc.reason, "message": str(exc)})
    return HTTPException(STATUS.get(exc.reason, 400), {"error": exc.reason, "message": str(exc)})


def router_from_settings(settings: Any) -> APIRouter:
    """The router wired to the settings: flow environment, and user tokens checked with ``auth_signing_key``."""
    env = ConnectEnv.from_settings(settings)
    key = settings.auth_signing_key
    return build_router(lambda: env, auth.bearer_user(lambda: key.get_secret_value() if key else None))


def build_router(env: Callable[[], ConnectEnv], current_user: Callable[..., str]) -> APIRouter:
    router = APIRouter(prefix="/connect", tags=["connections"])
    User = Annotated[str, Depends(current_user)]

    @router.get("")
    def list_connections(user_id: User) -> dict[str, Any]:
        return {"connections": flow.list_connections(env(), user_id)}

    @router.post("/{provider}/start")
    def start(provider: str, user_id: User, body: StartBody | None = None) -> dict[str, Any]:
        try:
            started = flow.start(env(), user_id=user_id, provider_name=provider,
                                 platforms=body.platforms if body else None)
        except ConnectError as exc:
            raise _http(exc) from None
        return {"provider": started.provider, "platforms": started.platforms,
                "authorize_url": started.authorize_url, "expires_at": started.expires_at.isoformat()}

    @router.get("/{provider}/callback")
    def callback(provider: str, state: Annotated[str | None, Query(max_length=MAX_PARAM)] = None,
                 code: Annotated[str | None, Query(max_length=MAX_PARAM)] = None,
                 error: Annotated[str | None, Query(max_length=MAX_PARAM)] = None) -> dict[str, Any]:
        try:
            done = flow.complete(env(), provider_name=provider, state=state, code=code, error=error)
        except ConnectError as exc:
            raise _http(exc) from None
        return {"connected": done.platforms, "provider": done.provider, "account": done.account_label,
                "connection_ids": done.connection_ids}

    @router.delete("/{provider}")
    def disconnect(provider: str, user_id: User) -> dict[str, Any]:
        try:
            done = flow.disconnect(env(), user_id=user_id, provider_name=provider)
        except ConnectError as exc:
            raise _http(exc) from None
        return {"disconnected": done.platforms, "provider": done.provider, "revoke": done.revoke,
                "revoked": done.revoked}

    return router
