"""``GET /health``: the process answers and its stores are reachable (no authentication, no user data)."""


from typing import Any

from fastapi import APIRouter
from sqlalchemy import text

from yarn_assets.api.env import ApiEnv


def build_router(env: ApiEnv) -> APIRouter:
    router = APIRouter(tags=["health"])

    @router.get("/health")
    def health() -> dict[str, Any]:
        checks: dict[str, str] = {}
        try:
            with env.session() as s:
                s.execute(text("SELECT 1"))
            checks["control_plane"] = "ok"
        except Exception as exc:  # reported, not raised: health says what is wrong
            checks["control_plane"] = f"error: {type(exc).__name__}"
        return {"status": "ok" if all(v == "ok" for v in checks.values()) else "degraded", "checks": checks}

    return router
