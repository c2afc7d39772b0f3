"""The user's deliverables and their versions (configuration and history; text is under /versions)."""


from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Path, Query
from sqlalchemy import select

from control_plane.models import Deliverable, DeliverableVersion
from yarn_assets.api.env import ApiEnv
from yarn_assets.deliverables import feedback

Id = Annotated[str, Path(max_length=64)]


def deliverable_dict(d: Deliverable) -> dict[str, Any]:
    return {"id": d.id, "title": d.title, "type": d.deliverable_type, "status": d.status, "origin": d.origin,
            "description": d.description, "schedule": d.schedule, "destination": d.destination,
            "sources": d.sources, "next_run_at": d.next_run_at, "last_run_at": d.last_run_at,
            "created_at": d.created_at}


def version_dict(v: DeliverableVersion, review: Any = None) -> dict[str, Any]:
    return {"id": v.id, "deliverable_id": v.deliverable_id, "version_number": v.version_number, "status": v.status,
            "trigger": v.trigger, "delivery_status": v.delivery_status, "delivery_error": v.delivery_error,
            "created_at": v.created_at, "generated_at": v.generated_at, "delivered_at": v.delivered_at,
            "review": review.action if review is not None else None}


def build_router(env: ApiEnv, current_user: Any) -> APIRouter:
    router = APIRouter(prefix="/deliverables", tags=["deliverables"])
    User = Annotated[str, Depends(current_user)]

    @router.get("")
    def list_deliverables(user_id: User, include_archived: bool = False) -> dict[str, Any]:
        with env.session() as s:
            q = select(Deliverable).where(Deliverable.user_id == user_id).order_by(Deliverable.created_at)
            if not include_archived:
                q = q.where(Deliverable.status != "archived")
            return {"deliverables": [deliverable_dict(d) for d in s.scalars(q)]}

    @router.get("/{deliverable_id}")
    def get_deliverable(deliverable_id: Id, user_id: User) -> dict[str, Any]:
        with env.session() as s:
            try:
                return deliverable_dict(feedback.deliverable_of_user(s, user_id, deliverable_id))
            except feedback.NotFound:
                raise HTTPException(404, "not found") from None

    @router.get("/{deliverable_id}/versions")
    def list_versions(deliverable_id: Id, user_id: User,
                      limit: Annotated[int, Query(ge=1, le=200)] = 20) -> dict[str, Any]:
        with env.session() as s:
            try:
                d = feedback.deliverable_of_user(s, user_id, deliverable_id)
            except feedback.NotFound:
                raise HTTPException(404, "not found") from None
            versions = s.scalars(select(DeliverableVersion).where(DeliverableVersion.deliverable_id == d.id)
                                 .order_by(DeliverableVersion.version_number.desc()).limit(limit))
            return {"deliverable_id": d.id,
                    "versions": [version_dict(v, feedback.latest_review(s, v.id)) for v in versions]}

    return router
