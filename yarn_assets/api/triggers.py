"""Work the user asks for now — a signal pass, a deliverable run, a platform sync — each **submitted to the
Dagster instance as a run** (``yarn_assets.core.submit.queue_run``: queued, launched by the daemon), never
executed here. Rate-limited per user (``api_trigger_rate_limit``); signal passes also keep the 5-minute
cooldown of manual triggers (``signals_manual_cooldown_seconds``)."""


import datetime as dt
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Path
from sqlalchemy import select

from control_plane.models import PlatformConnection
from yarn_assets.api.env import ApiEnv
from yarn_assets.core.partitions import ingest_key
from yarn_assets.core.submit import queue_run
from yarn_assets.deliverables import feedback
from yarn_assets.signals.manual import ManualTriggerRefused, claim_manual_trigger

Id = Annotated[str, Path(max_length=64)]
TRIGGER_TAG = "yarnnn/trigger"
REQUESTER_TAG = "yarnnn/requested_by"


def _run(run: Any) -> dict[str, Any]:
    return {"run_id": run.run_id, "job": run.job_name, "status": run.status.value,
            "partition": run.tags.get("dagster/partition")}


def build_router(env: ApiEnv, current_user: Any) -> APIRouter:
    router = APIRouter(prefix="/triggers", tags=["triggers"])
    User = Annotated[str, Depends(current_user)]

    @router.post("/signals", status_code=202)
    def trigger_signals(user_id: User) -> dict[str, Any]:
        from yarn_assets.signals.assets import hour_key

        env.rate_limit(user_id, "signals")
        now = dt.datetime.now(dt.UTC)
        instance = env.dagster()
        try:
            with env.session() as s:
                claim_manual_trigger(s, user_id, now=now, cooldown_seconds=env.settings.signals_manual_cooldown_seconds,
                                     excluded_tiers=env.settings.signals_excluded_tiers)
        except ManualTriggerRefused as exc:
            wait = exc.retry_after_seconds
            raise HTTPException(429 if wait else 403, str(exc).replace(f"user {user_id} ", "you "),
                                headers={"Retry-After": str(wait)} if wait else None) from None
        config = {"user_ids": [user_id], "ignore_wake_gate": True, "execute": True, "trigger": "manual"}
        run = queue_run(instance, env.job("signals_job"), partition_key=hour_key(now),
                         run_config={"ops": {"signal_passes": {"config": config}}},
                         tags={TRIGGER_TAG: "manual", REQUESTER_TAG: f"api:{user_id}"})
        return _run(run)

    @router.post("/deliverables/{deliverable_id}", status_code=202)
    def trigger_deliverable(deliverable_id: Id, user_id: User) -> dict[str, Any]:
        from yarn_assets.deliverables.assets import TRIGGER_TAG as DELIVERABLE_TRIGGER
        from yarn_assets.deliverables.assets import deliverable_partitions

        with env.session() as s:
            try:
                d = feedback.deliverable_of_user(s, user_id, deliverable_id)
            except feedback.NotFound:
                raise HTTPException(404, "not found") from None
            if d.status == "archived":
                raise HTTPException(409, "the deliverable is archived")
        env.rate_limit(user_id, "deliverables")
        instance = env.dagster()
        instance.add_dynamic_partitions(deliverable_partitions.name, [deliverable_id])
        run = queue_run(instance, env.job("deliverable_job"), partition_key=deliverable_id,
                         tags={DELIVERABLE_TRIGGER: "manual", REQUESTER_TAG: f"api:{user_id}"})
        return _run(run)

    @router.post("/sync/{platform}", status_code=202)
    def trigger_sync(platform: Annotated[str, Path(max_length=16)], user_id: User) -> dict[str, Any]:
        from yarn_assets.ingest.sync.asset import TAG_CONNECTIONS, TAG_PLATFORM

        with env.session() as s:
            conn = s.scalars(select(PlatformConnection).where(PlatformConnection.user_id == user_id,
                                                              PlatformConnection.platform == platform)).first()
            if conn is None:
                raise HTTPException(404, "not found")
            conn_id = conn.id
        env.rate_limit(user_id, "sync")
        today = dt.datetime.now(dt.UTC).date().isoformat()
        run = queue_run(env.dagster(), env.job("platform_sync_job"), partition_key=ingest_key(today, platform),
                         tags={TAG_CONNECTIONS: conn_id, TAG_PLATFORM: platform, TRIGGER_TAG: "api",
                               REQUESTER_TAG: f"api:{user_id}"})
        return _run(run)

    return router
