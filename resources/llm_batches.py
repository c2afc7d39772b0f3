"""The Anthropic Message Batches API (half price) on top of the LLM resource, for nightly bulk work.

``LLMBatches.run(task=..., requests=[BatchRequest(...)], scope=...)`` answers every request:

* up to ``threshold`` requests, or in offline mode: one ``llm.structured`` call each (offline
  answers are the callers' deterministic rules, labelled ``offline-rules``);
* above it, one batch: the exact ``messages.create`` parameters of each call
  (``LLM.build_request``) are submitted, the batch is polled every ``poll_seconds`` until it
  ends, and the results JSONL is read and validated (``LLM.parse_structured``). Usage is
  recorded per request with the batch discount. A request that errored, expired or came back
  malformed is retried once as a normal call (which also gets the one correction round).

Resumable: the batch id is stored in the control plane under a fingerprint of all requests, so
a run that fails while polling (timeout, crash, retry policy) picks the same batch up again
instead of submitting and paying for it twice, and tokens are recorded only once per batch.
Per-user budgets are checked before submitting; a user over budget gets errors, not a call.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import time
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

import dagster as dg
from pydantic import BaseModel, Field
from sqlalchemy import select

from control_plane.models import LlmBatch, utcnow
from resources.llm import LLM, LLMError, LLMScope, LLMUsage

log = logging.getLogger(__name__)

T = TypeVar("T", bound=BaseModel)


class BatchTimeout(LLMError):
    """The batch did not end within ``timeout_seconds``; a retried run resumes it."""


@dataclass(frozen=True)
class BatchRequest(Generic[T]):
    """One structured call; ``custom_id`` must be unique in the batch ([A-Za-z0-9_-], ≤ 64)."""

    custom_id: str
    user_id: str | None
    system: str
    prompt: str
    output: type[T]
    offline: Callable[[], T | Mapping[str, Any]]
    max_tokens: int = 1024


@dataclass(frozen=True)
class BatchResult(Generic[T]):
    custom_id: str
    value: T | None
    error: str | None
    usage: LLMUsage
    model: str
    offline: bool
    via: str  # sync | batch | batch+sync (retried as a normal call) | offline


@dataclass
class BatchRun:
    """What happened, for asset metadata."""

    mode: str = "sync"  # sync | batch | offline
    batch_id: str | None = None
    resumed: bool = False
    polls: int = 0
    requests: int = 0
    succeeded: int = 0
    failed: int = 0
    retried_sync: int = 0
    usage: LLMUsage = field(default_factory=LLMUsage)

    def as_metadata(self, prefix: str = "llm_") -> dict[str, Any]:
        return {
            f"{prefix}mode": self.mode,
            f"{prefix}batch_id": self.batch_id or "-",
            f"{prefix}batch_resumed": self.resumed,
            f"{prefix}batch_polls": self.polls,
            f"{prefix}requests": self.requests,
            f"{prefix}failed": self.failed,
            f"{prefix}retried_sync": self.retried_sync,
            **self.usage.as_metadata(prefix),
        }


class LLMBatches(dg.ConfigurableResource):
    """Routes bulk structured calls through the Message Batches API above ``threshold`` requests."""

    llm: LLM
    threshold: int = Field(default=25, ge=0, description="More requests than this go through a batch.")
    poll_seconds: float = Field(default=30.0, gt=0, description="Seconds between batch status polls.")
    timeout_seconds: float = Field(default=6 * 3600, gt=0, description="Give up polling after this long.")

    def run(
        self,
        *,
        task: str,
        requests: Sequence[BatchRequest[Any]],
        scope: LLMScope | None = None,
        force_batch: bool | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> tuple[dict[str, BatchResult[Any]], BatchRun]:
        ids = [r.custom_id for r in requests]
        if len(set(ids)) != len(ids):
            raise ValueError("batch custom_ids must be unique")
        use_batch = force_batch if force_batch is not None else len(requests) > self.threshold
        run = BatchRun(requests=len(requests))
        if self.llm.is_offline or not use_batch or not requests:
            run.mode = "offline" if self.llm.is_offline else "sync"
            results = {r.custom_id: self._sync(task, r, scope, via=run.mode) for r in requests}
        else:
            run.mode = "batch"
            results = self._batch(task, list(requests), scope, run, sleep)
        for res in results.values():
            run.usage = run.usage + res.usage
            if res.error is None:
                run.succeeded += 1
            else:
                run.failed += 1
        return results, run

    # ------------------------------------------------------------------ sync path
    def _sync(self, task: str, r: BatchRequest[Any], scope: LLMScope | None, via: str,
              prior: LLMUsage | None = None) -> BatchResult[Any]:
        prior = prior or LLMUsage()
        try:
            res = self.llm.structured(task=task, user_id=r.user_id, system=r.system, prompt=r.prompt, output=r.output,
                                      offline=r.offline, scope=scope, max_tokens=r.max_tokens)
        except LLMError as exc:
            usage = prior + (getattr(exc, "usage", None) or LLMUsage())
            return BatchResult(r.custom_id, None, str(exc), usage, self.llm.model_for(task), self.llm.is_offline, via)
        return BatchResult(r.custom_id, res.value, None, prior + res.usage, res.model, res.offline, via)

    # ------------------------------------------------------------------ batch path
    def _batch(self, task: str, requests: list[BatchRequest[Any]], scope: LLMScope | None, run: BatchRun,
               sleep: Callable[[float], None]) -> dict[str, BatchResult[Any]]:
        results: dict[str, BatchResult[Any]] = {}
        model = self.llm.model_for(task)
        allowed: list[BatchRequest[Any]] = []
        estimates: dict[str | None, int] = defaultdict(int)
        for r in requests:
            estimates[r.user_id] += (len(r.system) + len(r.prompt)) // 4 + 1
        over: dict[str | None, str] = {}
        for user_id, estimate in estimates.items():
            try:
                self.llm.check_budget(user_id, estimate)
            except LLMError as exc:
                over[user_id] = str(exc)
        for r in requests:
            if r.user_id in over:
                results[r.custom_id] = BatchResult(r.custom_id, None, over[r.user_id], LLMUsage(), model, False,
                                                   "batch")
            else:
                allowed.append(r)
        if not allowed:
            return results
        params = {
            r.custom_id: self.llm.build_request(task=task, system=r.system, prompt=r.prompt, max_tokens=r.max_tokens,
                                                output=r.output)
            for r in allowed
        }
        fingerprint = hashlib.sha256(json.dumps(params, sort_keys=True, default=str).encode()).hexdigest()
        client = self.llm.client()
        record = self._existing(fingerprint)
        if record is not None:
            run.resumed = True
            batch_id = record.id
            log.info("resuming message batch %s (%d requests)", batch_id, len(allowed))
        else:
            batch = client.messages.batches.create(
                requests=[{"custom_id": cid, "params": p} for cid, p in params.items()]  # type: ignore[misc]
            )
            batch_id = batch.id
            self._save(LlmBatch(id=batch_id, task=task, fingerprint=fingerprint, request_count=len(allowed),
                                status="in_progress", run_id=scope.run_id if scope else None,
                                asset_key=scope.asset_key if scope else None,
                                partition_key=scope.partition_key if scope else None))
            log.info("submitted message batch %s with %d requests", batch_id, len(allowed))
        run.batch_id = batch_id
        started = time.monotonic()
        batch = client.messages.batches.retrieve(batch_id)
        while batch.processing_status != "ended":
            if time.monotonic() - started > self.timeout_seconds:
                raise BatchTimeout(f"message batch {batch_id} still {batch.processing_status} after "
                                   f"{self.timeout_seconds:.0f}s; a retried run resumes it")
            sleep(self.poll_seconds)
            run.polls += 1
            batch = client.messages.batches.retrieve(batch_id)
        record_usage = not self._usage_recorded(batch_id)
        by_id = {r.custom_id: r for r in allowed}
        seen: set[str] = set()
        for item in client.messages.batches.results(batch_id):
            r = by_id.get(item.custom_id)
            if r is None:
                log.warning("message batch %s returned an unknown custom_id %s", batch_id, item.custom_id)
                continue
            seen.add(r.custom_id)
            outcome = item.result
            if outcome.type == "succeeded":
                message = outcome.message
                usage = self._usage(task, r, model, scope, message) if record_usage else LLMUsage()
                try:
                    value = self.llm.parse_structured(message, r.output)
                except ValueError as exc:
                    run.retried_sync += 1
                    log.warning("batch %s: %s answer malformed (%s); retrying as a normal call",
                                batch_id, r.custom_id, exc)
                    results[r.custom_id] = self._sync(task, r, scope, "batch+sync", usage)
                    continue
                results[r.custom_id] = BatchResult(r.custom_id, value, None, usage, model, False, "batch")
            else:
                run.retried_sync += 1
                detail = getattr(getattr(outcome, "error", None), "error", None)
                log.warning("batch %s: %s %s (%s); retrying as a normal call", batch_id, r.custom_id, outcome.type,
                            getattr(detail, "message", "") if detail else "")
                results[r.custom_id] = self._sync(task, r, scope, "batch+sync")
        for r in allowed:
            if r.custom_id not in seen:
                run.retried_sync += 1
                results[r.custom_id] = self._sync(task, r, scope, "batch+sync")
        self._finish(batch_id, batch)
        return results

    def _usage(self, task: str, r: BatchRequest[Any], model: str, scope: LLMScope | None, message: Any) -> LLMUsage:
        u = message.usage
        return self.llm.record_usage(
            task=task, user_id=r.user_id, model=model, scope=scope, input_tokens=int(u.input_tokens or 0),
            output_tokens=int(u.output_tokens or 0), cache_read_tokens=int(u.cache_read_input_tokens or 0),
            cache_write_tokens=int(u.cache_creation_input_tokens or 0), batch=True,
        )

    # ------------------------------------------------------------------ bookkeeping
    def _existing(self, fingerprint: str) -> LlmBatch | None:
        with self.llm.control_plane.session() as session:
            row = session.scalars(select(LlmBatch).where(LlmBatch.fingerprint == fingerprint)).first()
            if row is None or row.status in ("canceled", "failed"):
                return None
            session.expunge(row)
            return row

    def _save(self, row: LlmBatch) -> None:
        with self.llm.control_plane.session() as session:
            stale = session.scalars(select(LlmBatch).where(LlmBatch.fingerprint == row.fingerprint)).first()
            if stale is not None:  # a canceled/failed batch of the same requests: replaced by this one
                session.delete(stale)
                session.flush()
            session.add(row)

    def _usage_recorded(self, batch_id: str) -> bool:
        with self.llm.control_plane.session() as session:
            row = session.get(LlmBatch, batch_id)
            return row is not None and row.usage_recorded_at is not None

    def _finish(self, batch_id: str, batch: Any) -> None:
        counts = batch.request_counts
        with self.llm.control_plane.session() as session:
            row = session.get(LlmBatch, batch_id)
            if row is None:
                return
            now = utcnow()
            row.status = "ended"
            row.ended_at = row.ended_at or (batch.ended_at.astimezone(dt.UTC) if batch.ended_at else now)
            row.usage_recorded_at = row.usage_recorded_at or now
            row.counts = {k: int(getattr(counts, k, 0) or 0)
                          for k in ("succeeded", "errored", "canceled", "expired", "processing")}
