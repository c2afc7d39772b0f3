"""``GET /status``: the read-only ``yarnnn status`` as JSON, for the authenticated user only (their
connections, sync freshness, last signal pass, deliverables, memory run, imports and run failures) plus
the daemons' health; the operator's own run failures are not shown to users."""


from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query

from yarn_assets.api.env import ApiEnv
from yarn_assets.ops.status import collect


def build_router(env: ApiEnv, current_user: Any) -> APIRouter:
    router = APIRouter(tags=["status"])
    User = Annotated[str, Depends(current_user)]

    @router.get("/status")
    def status(user_id: User, days: Annotated[int, Query(ge=1, le=90)] = 7) -> dict[str, Any]:
        try:
            instance = env.dagster()
        except Exception:
            instance = None
        result = collect(control_plane_url=env.url, store=env.store, instance=instance, user_id=user_id,
                         days=days).as_dict()
        return {"now": result["now"], "notes": [n for n in result["notes"] if "unknown user" not in n],
                "daemons": result["daemons"], "user": result["users"].get(user_id)}

    return router
