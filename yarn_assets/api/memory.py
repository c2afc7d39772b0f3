"""The user's memory: list, correct (a statement of the user's own: ``user_stated`` outranks every
inferred value, the priority rule of ``yarn_assets.memory.user_context``), delete (kept as retracted)."""


import datetime as dt
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Path
from pydantic import BaseModel, Field

from yarn_assets.api.env import ApiEnv
from yarn_assets.memory import user_context

Key = Annotated[str, Path(max_length=200)]


class FactBody(BaseModel):
    value: str = Field(min_length=1, max_length=user_context.MAX_VALUE_CHARS)


def build_router(env: ApiEnv, current_user: Any) -> APIRouter:
    router = APIRouter(prefix="/memory", tags=["memory"])
    User = Annotated[str, Depends(current_user)]

    @router.get("")
    def list_memory(user_id: User) -> dict[str, Any]:
        with env.session() as s:
            return {"facts": [{"key": r.key, "value": r.value, "source": r.source, "confidence": r.confidence,
                               "valid_from": r.valid_from} for r in user_context.current(s, user_id)]}

    @router.put("/{key}")
    def correct(key: Key, body: FactBody, user_id: User) -> dict[str, Any]:
        now = dt.datetime.now(dt.UTC)
        try:
            assertion = user_context.Assertion(user_id=user_id, key=key, value=body.value, source="user_stated",
                                               confidence=1.0, observed_at=now, source_ref=f"api:{now.isoformat()}")
        except user_context.InvalidAssertion as exc:
            raise HTTPException(422, str(exc)) from None
        with env.session() as s:
            outcome = user_context.upsert(s, assertion, now=now)
        return {"key": key, "action": outcome.action, "value": outcome.current_value, "source": outcome.current_source,
                "replaced": outcome.replaced_value}

    @router.delete("/{key}")
    def forget(key: Key, user_id: User) -> dict[str, Any]:
        with env.session() as s:
            if not user_context.retract(s, user_id, key, reason="removed by the user (API)"):
                raise HTTPException(404, "not found")
        return {"key": key, "action": "retracted"}

    return router
