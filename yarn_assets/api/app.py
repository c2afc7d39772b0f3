"""The app factory: ``create_app(settings)`` assembles the routers over one :class:`ApiEnv`."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import dagster as dg
from fastapi import APIRouter, FastAPI

from resources.settings import YarnSettings
from yarn_assets.api import deliverables, health, memory, status, triggers, versions
from yarn_assets.api.auth import bearer_user
from yarn_assets.api.env import ApiEnv
from yarn_assets.connect import routes as connect_routes
from yarn_assets.connect.config import ConnectEnv

Asgi = Callable[..., Any]


class BodyLimit:
    """Refuse request bodies over ``max_bytes`` with 413: by the declared length, or (chunked bodies) by
    buffering at most ``max_bytes`` before the app sees any of it."""

    def __init__(self, app: Asgi, max_bytes: int) -> None:
        self.app, self.max_bytes = app, max_bytes

    async def __call__(self, scope: dict[str, Any], receive: Asgi, send: Asgi) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None:
            if not declared.isdigit() or int(declared) > self.max_bytes:
                await _too_large(send, self.max_bytes)
                return
            await self.app(scope, receive, send)
            return
        messages, seen = [], 0
        while True:
            message = await receive()
            messages.append(message)
            if message["type"] != "http.request":
                break
            seen += len(message.get("body", b""))
            if seen > self.max_bytes:
                await _too_large(send, self.max_bytes)
                return
            if not message.get("more_body"):
                break

        async def replay() -> dict[str, Any]:
            return messages.pop(0) if messages else await receive()

        await self.app(scope, replay, send)


async def _too_large(send: Asgi, limit: int) -> None:
    body = json.dumps({"detail": f"request body larger than {limit} bytes"}).encode()
    await send({"type": "http.response.start", "status": 413,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})


def create_app(settings: YarnSettings, *, instance: dg.DagsterInstance | None = None,
               extra_routers: list[APIRouter] | None = None) -> FastAPI:
    """The API over ``settings`` (the OAuth connection flows included); ``instance`` overrides DAGSTER_HOME's
    (tests), ``extra_routers`` are mounted too."""
    env = ApiEnv(settings, instance=instance)
    app = FastAPI(title="yarnnn API", version="1", description=__doc__ or "",
                  openapi_tags=[{"name": t} for t in ("health", "deliverables", "versions", "memory", "triggers",
                                                       "status")])
    app.state.env = env
    user = bearer_user(env.signing_key)
    app.include_router(health.build_router(env))
    for module in (deliverables, versions, memory, triggers, status):
        app.include_router(module.build_router(env, user))
    connect_env = ConnectEnv.from_settings(settings)  # the OAuth connection flows (yarn_assets.connect)
    app.include_router(connect_routes.build_router(lambda: connect_env, user))
    for router in extra_routers or []:
        app.include_router(router)
    app.add_middleware(BodyLimit, max_bytes=settings.api_max_body_bytes)
    return app
