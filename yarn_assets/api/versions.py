"""A version's content, and the user's verdict on it: approve, reject (with a reason), edit (the diff is kept)."""


from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Path
from pydantic import BaseModel, Field

from yarn_assets.api.deliverables import version_dict
from yarn_assets.api.env import ApiEnv
from yarn_assets.deliverables import feedback

Id = Annotated[str, Path(max_length=64)]


class RejectBody(BaseModel):
    reason: str | None = Field(default=None, max_length=feedback.MAX_REASON_CHARS)


class EditBody(BaseModel):
    content: str = Field(min_length=1, max_length=feedback.MAX_EDIT_CHARS, description="The version's new text.")


def build_router(env: ApiEnv, current_user: Any) -> APIRouter:
    router = APIRouter(prefix="/versions", tags=["versions"])
    User = Annotated[str, Depends(current_user)]

    @router.get("/{version_id}")
    def get_version(version_id: Id, user_id: User) -> dict[str, Any]:
        with env.session() as s:
            try:
                d, v = feedback.version_of_user(s, user_id, version_id)
            except feedback.NotFound:
                raise HTTPException(404, "not found") from None
            out = version_dict(v, feedback.latest_review(s, v.id))
        row = feedback.gold_version(env.store, d.id, v.id) or {}
        edits = feedback.feedback_rows(env.store, d.id, v.id)
        out.update({
            "title": row.get("title") or d.title, "draft_content": row.get("draft_content"),
            "final_content": row.get("final_content"), "model": row.get("model"), "offline": row.get("offline"),
            "feedback": [{"action": r["action"], "created_at": r["created_at"], "reason": r["reason"],
                          "diff": r["diff"], "edit_location": r["edit_location"]}
                         for r in edits.iter_rows(named=True)],
        })
        return out

    def _review(fn: Any, **kwargs: Any) -> dict[str, Any]:
        try:
            return fn(env.store, env.session, **kwargs).as_dict()
        except feedback.NotFound:
            raise HTTPException(404, "not found") from None
        except feedback.FeedbackError as exc:
            raise HTTPException(422, str(exc)) from None

    @router.post("/{version_id}/approve")
    def approve(version_id: Id, user_id: User) -> dict[str, Any]:
        return _review(feedback.approve, user_id=user_id, version_id=version_id)

    @router.post("/{version_id}/reject")
    def reject(version_id: Id, user_id: User, body: RejectBody | None = None) -> dict[str, Any]:
        return _review(feedback.reject, user_id=user_id, version_id=version_id, reason=body.reason if body else None,
                       block_days=env.settings.deliverables_rejection_block_days)

    @router.post("/{version_id}/edit")
    def edit(version_id: Id, body: EditBody, user_id: User) -> dict[str, Any]:
        return _review(feedback.edit, user_id=user_id, version_id=version_id, content=body.content)

    return router
