"""The ``LLM`` ConfigurableResource (see :mod:`resources.llm` for the interface and behaviour)."""

from __future__ import annotations

import datetime as dt
import json
import logging
import re
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import anthropic
import dagster as dg
from pydantic import BaseModel, Field, PrivateAttr, ValidationError
from sqlalchemy import func, select

from control_plane.models import LlmUsage, User
from resources.control_plane import ControlPlane
from resources.llm.helpers import (
    _api_message,
    _estimate_tokens,
    _short,
    _strip_fences,
    _text_of,
    opaque_user_id,
)
from resources.llm.types import (
    FALLBACK_TIER,
    TASKS,
    LLMBudgetExceeded,
    LLMCallError,
    LLMConfigError,
    LLMOutputError,
    LLMScope,
    LLMUsage,
    StructuredResult,
    T,
    TextResult,
    _Malformed,
)
from resources.llm_limits import Limiter, limiter_for
from resources.llm_pricing import OFFLINE_MODEL, cost_usd

log = logging.getLogger(__name__)


# ------------------------------------------------------------------------------------------ resource
class LLM(dg.ConfigurableResource):
    """Anthropic Messages API (or the labelled offline mode) with usage, cost and budgets recorded."""

    control_plane: ControlPlane
    api_key: str | None = Field(default=None, description="Anthropic API key (an EnvVar; never logged).")
    offline: bool = Field(default=True, description="Offline mode: answers come from the callers' rules.")
    base_url: str | None = Field(default=None, description="Messages API base URL (None = Anthropic's).")
    timeout_seconds: float = Field(default=60.0, description="Per-request timeout.")
    max_retries: int = Field(default=4, description="SDK retries on 429/529/5xx/timeouts (retry-after honoured).")
    model_signals: str = "claude-haiku-4-5-20251001"
    model_generation: str = "claude-sonnet-4-6"
    model_memory: str = "claude-sonnet-4-6"
    model_analysis: str = "claude-sonnet-4-6"
    daily_token_budgets: dict[str, int | None] = Field(
        default_factory=lambda: {"free": 50_000, "starter": 250_000, "pro": None},
        description="Daily tokens per user by tier; null = unlimited.",
    )
    price_overrides: dict[str, dict[str, float]] = Field(default_factory=dict)
    max_concurrency: int = Field(default=8, ge=1, description="API calls in flight at once (per process and key).")
    requests_per_minute: int | None = Field(default=None, description="Client-side request limit (None: none).")
    tokens_per_minute: int | None = Field(default=None, description="Client-side input-token limit (None: none).")

    _client: Any = PrivateAttr(default=None)

    # -------------------------------------------------------------- configuration
    @property
    def is_offline(self) -> bool:
        return self.offline

    def model_for(self, task: str) -> str:
        if task not in TASKS:
            raise ValueError(f"unknown LLM task {task!r}; expected one of {', '.join(TASKS)}")
        return OFFLINE_MODEL if self.offline else getattr(self, f"model_{task}")

    def client(self) -> anthropic.Anthropic:
        if self.offline:
            raise LLMConfigError("the LLM resource is in offline mode; there is no API client")
        if self._client is None:
            if not self.api_key:
                raise LLMConfigError(
                    "ANTHROPIC_API_KEY is not set but the LLM is in online mode; set the key or YARNNN_LLM_MODE=offline"
                )
            limiter = self.limiter()
            hooks = {  # every attempt (SDK retries included) waits for the shared pause and the buckets
                "request": [lambda req: limiter.admit(len(req.content or b"") // 4)],
                "response": [lambda resp: limiter.observe(resp.status_code, resp.headers)],
            }
            self._client = anthropic.Anthropic(
                api_key=self.api_key,
                base_url=self.base_url or None,
                timeout=self.timeout_seconds,
                max_retries=self.max_retries,
                http_client=anthropic.DefaultHttpxClient(event_hooks=hooks),
            )
        return self._client

    def limiter(self) -> Limiter:
        """The process-wide backpressure of this endpoint and key (see :mod:`resources.llm_limits`)."""
        return limiter_for(self.base_url, self.api_key, self.max_concurrency, self.requests_per_minute,
                           self.tokens_per_minute)

    # -------------------------------------------------------------- budget
    def budget_for(self, user_id: str) -> tuple[str, int | None]:
        with self.control_plane.session() as session:
            user = session.get(User, user_id)
            tier = user.tier if user is not None else FALLBACK_TIER
        if tier not in self.daily_token_budgets:
            tier = FALLBACK_TIER
        return tier, self.daily_token_budgets.get(tier)

    def tokens_used_today(self, user_id: str, day: dt.date | None = None) -> int:
        day = day or dt.datetime.now(dt.UTC).date()
        total = (
            LlmUsage.input_tokens + LlmUsage.output_tokens + LlmUsage.cache_read_tokens + LlmUsage.cache_write_tokens
        )
        with self.control_plane.session() as session:
            used = session.scalar(
                select(func.coalesce(func.sum(total), 0)).where(
                    LlmUsage.user_id == user_id, LlmUsage.usage_date == day.isoformat(), LlmUsage.offline.is_(False)
                )
            )
        return int(used or 0)

    def check_budget(self, user_id: str | None, estimated_tokens: int) -> None:
        """Raise :class:`LLMBudgetExceeded` when this call would take the user past today's budget."""
        if user_id is None:
            return
        tier, budget = self.budget_for(user_id)
        if budget is None:
            return
        used = self.tokens_used_today(user_id)
        if used + estimated_tokens > budget:
            raise LLMBudgetExceeded(user_id, tier, used, budget, estimated_tokens)

    # -------------------------------------------------------------- usage
    def record_usage(
        self,
        *,
        task: str,
        user_id: str | None,
        model: str,
        scope: LLMScope | None,
        input_tokens: int = 0,
        output_tokens: int = 0,
        cache_read_tokens: int = 0,
        cache_write_tokens: int = 0,
        offline: bool = False,
        batch: bool = False,
    ) -> LLMUsage:
        """One ``llm_usage`` row; returns the same numbers as an :class:`LLMUsage`."""
        cost = 0.0 if offline else cost_usd(
            model, input_tokens=input_tokens, output_tokens=output_tokens, cache_write_tokens=cache_write_tokens,
            cache_read_tokens=cache_read_tokens, batch=batch, overrides=self.price_overrides,
        )
        scope = scope or LLMScope()
        now = dt.datetime.now(dt.UTC)
        with self.control_plane.session() as session:
            session.add(
                LlmUsage(
                    user_id=user_id, task=task, model=model, offline=offline, input_tokens=input_tokens,
                    output_tokens=output_tokens, cache_read_tokens=cache_read_tokens,
                    cache_write_tokens=cache_write_tokens, cost_usd=cost, run_id=scope.run_id,
                    asset_key=scope.asset_key, partition_key=scope.partition_key, usage_date=now.date().isoformat(),
                    created_at=now,
                )
            )
        return LLMUsage(
            calls=1, offline_calls=1 if offline else 0, input_tokens=input_tokens, output_tokens=output_tokens,
            cache_read_tokens=cache_read_tokens, cache_write_tokens=cache_write_tokens, cost_usd=cost,
            models=(model,),
        )

    def _record_message(self, task: str, user_id: str | None, model: str, scope: LLMScope | None,
                        message: Any, batch: bool = False) -> LLMUsage:
        u = message.usage
        return self.record_usage(
            task=task, user_id=user_id, model=model, scope=scope, input_tokens=int(u.input_tokens or 0),
            output_tokens=int(u.output_tokens or 0), cache_read_tokens=int(u.cache_read_input_tokens or 0),
            cache_write_tokens=int(u.cache_creation_input_tokens or 0), batch=batch,
        )

    # -------------------------------------------------------------- requests
    @staticmethod
    def tool_name_for(output: type[BaseModel]) -> str:
        name = re.sub(r"(?<!^)(?=[A-Z])", "_", output.__name__).lower()
        return f"record_{name}"[:64]

    def build_request(
        self,
        *,
        task: str,
        system: str,
        prompt: str,
        max_tokens: int,
        output: type[BaseModel] | None = None,
        system_suffix: str | None = None,
        tool_name: str | None = None,
        tool_description: str | None = None,
        messages: Sequence[Mapping[str, Any]] | None = None,
        user_id: str | None = None,
    ) -> dict[str, Any]:
        """The ``messages.create`` parameters of one call (also a Message Batches ``params`` entry).

        ``metadata.user_id`` is an opaque hash of the user id (Anthropic's abuse signal; never the id).
        """
        system_blocks: list[dict[str, Any]] = [
            {"type": "text", "text": system, "cache_control": {"type": "ephemeral"}}
        ]
        if system_suffix:
            system_blocks.append({"type": "text", "text": system_suffix})
        params: dict[str, Any] = {
            "model": getattr(self, f"model_{task}") if task in TASKS else self.model_for(task),
            "max_tokens": max_tokens,
            "system": system_blocks,
            "messages": list(messages) if messages else [{"role": "user", "content": prompt}],
        }
        if user_id is not None:
            params["metadata"] = {"user_id": opaque_user_id(user_id)}
        if output is not None:
            name = tool_name or self.tool_name_for(output)
            params["tools"] = [
                {
                    "name": name,
                    "description": tool_description
                    or (output.__doc__ or f"Record the answer as {output.__name__}.").strip(),
                    "input_schema": output.model_json_schema(),
                }
            ]
            params["tool_choice"] = {"type": "tool", "name": name}
        return params

    def _create(self, task: str, params: dict[str, Any]) -> Any:
        client = self.client()
        try:
            with self.limiter().call():
                return client.messages.create(**params)
        except anthropic.APIStatusError as exc:
            code = exc.status_code
            transient = code in (408, 409, 429) or code >= 500
            raise LLMCallError(
                f"{task}: Anthropic API returned HTTP {code} after {self.max_retries} retries: {_api_message(exc)}",
                status_code=code, transient=transient,
            ) from exc
        except anthropic.APITimeoutError as exc:
            raise LLMCallError(
                f"{task}: Anthropic API timed out after {self.timeout_seconds}s ({self.max_retries} retries)",
                transient=True,
            ) from exc
        except anthropic.APIConnectionError as exc:
            raise LLMCallError(f"{task}: cannot reach the Anthropic API: {exc}", transient=True) from exc

    # -------------------------------------------------------------- parsing
    @staticmethod
    def parse_structured(message: Any, output: type[T], tool_name: str | None = None) -> T:
        """Validate a returned message: the forced tool call's input, else JSON in the text."""
        name = tool_name or LLM.tool_name_for(output)
        blocks = list(getattr(message, "content", []) or [])
        tool_inputs = [b.input for b in blocks if getattr(b, "type", None) == "tool_use" and b.name == name]
        if tool_inputs:
            try:
                return output.model_validate(tool_inputs[0])
            except ValidationError as exc:
                raise _Malformed(f"tool input does not match {output.__name__}: {_short(exc)}") from None
        text = "".join(getattr(b, "text", "") for b in blocks if getattr(b, "type", None) == "text").strip()
        if not text:
            raise _Malformed(f"no {name} tool call and no text in the answer (stop_reason={message.stop_reason})")
        try:
            data = json.loads(_strip_fences(text))
        except json.JSONDecodeError as exc:
            raise _Malformed(f"answer is not JSON ({exc.msg} at char {exc.pos})") from None
        try:
            return output.model_validate(data)
        except ValidationError as exc:
            raise _Malformed(f"JSON does not match {output.__name__}: {_short(exc)}") from None

    # -------------------------------------------------------------- calls
    def structured(
        self,
        *,
        task: str,
        user_id: str | None,
        system: str,
        prompt: str,
        output: type[T],
        offline: Callable[[], T | Mapping[str, Any]],
        scope: LLMScope | None = None,
        max_tokens: int = 1024,
        system_suffix: str | None = None,
        tool_name: str | None = None,
        tool_description: str | None = None,
    ) -> StructuredResult[T]:
        """A validated ``output`` instance (see the module docstring)."""
        model = self.model_for(task)
        if self.offline:
            produced = offline()
            try:
                value = produced if isinstance(produced, output) else output.model_validate(produced)
            except ValidationError as exc:
                raise LLMOutputError(
                    f"{task}: the offline rules produced an invalid {output.__name__}: {_short(exc)}",
                    task=task, user_id=user_id, model=OFFLINE_MODEL, attempts=1, usage=LLMUsage(),
                ) from None
            usage = self.record_usage(task=task, user_id=user_id, model=OFFLINE_MODEL, scope=scope, offline=True)
            return StructuredResult(value=value, usage=usage, model=OFFLINE_MODEL, offline=True)

        name = tool_name or self.tool_name_for(output)
        params = self.build_request(
            task=task, system=system, prompt=prompt, max_tokens=max_tokens, output=output,
            system_suffix=system_suffix, tool_name=name, tool_description=tool_description, user_id=user_id,
        )
        schema_chars = len(json.dumps(params["tools"][0]["input_schema"]))
        self.check_budget(user_id, _estimate_tokens(system, system_suffix, prompt) + schema_chars // 4)
        usage = LLMUsage()
        problem = ""
        for attempt in (1, 2):
            started = time.monotonic()
            message = self._create(task, params)
            usage = usage + self._record_message(task, user_id, model, scope, message)
            log.info("llm %s user=%s model=%s attempt=%d tokens in=%d out=%d cache r/w=%d/%d in %.2fs",
                     task, user_id, model, attempt, message.usage.input_tokens, message.usage.output_tokens,
                     message.usage.cache_read_input_tokens or 0, message.usage.cache_creation_input_tokens or 0,
                     time.monotonic() - started)
            try:
                value = self.parse_structured(message, output, name)
            except _Malformed as exc:
                problem = str(exc)
                if attempt == 2:
                    break
                log.warning("llm %s user=%s: malformed answer (%s); asking once more", task, user_id, problem)
                params = self._correction(params, message, problem, name)
                continue
            return StructuredResult(value=value, usage=usage, model=model, offline=False, attempts=attempt,
                                    raw_text=_text_of(message))
        raise LLMOutputError(
            f"{task}: the model's answer was malformed twice (last: {problem})",
            task=task, user_id=user_id, model=model, attempts=2, usage=usage,
        )

    def text(
        self,
        *,
        task: str,
        user_id: str | None,
        system: str,
        prompt: str,
        offline: Callable[[], str],
        scope: LLMScope | None = None,
        max_tokens: int = 1024,
        system_suffix: str | None = None,
    ) -> TextResult:
        """Free text (e.g. a deliverable draft); an empty answer is retried once, then LLMOutputError."""
        model = self.model_for(task)
        if self.offline:
            produced = offline()
            if not isinstance(produced, str) or not produced.strip():
                raise LLMOutputError(f"{task}: the offline rules produced no text", task=task, user_id=user_id,
                                     model=OFFLINE_MODEL, attempts=1, usage=LLMUsage())
            usage = self.record_usage(task=task, user_id=user_id, model=OFFLINE_MODEL, scope=scope, offline=True)
            return TextResult(text=produced, usage=usage, model=OFFLINE_MODEL, offline=True)
        params = self.build_request(task=task, system=system, prompt=prompt, max_tokens=max_tokens,
                                    system_suffix=system_suffix, user_id=user_id)
        self.check_budget(user_id, _estimate_tokens(system, system_suffix, prompt))
        usage = LLMUsage()
        for attempt in (1, 2):
            message = self._create(task, params)
            usage = usage + self._record_message(task, user_id, model, scope, message)
            text = _text_of(message).strip()
            if text:
                return TextResult(text=text, usage=usage, model=model, offline=False, attempts=attempt)
        raise LLMOutputError(f"{task}: the model returned no text twice", task=task, user_id=user_id, model=model,
                             attempts=2, usage=usage)

    @staticmethod
    def _correction(params: dict[str, Any], message: Any, problem: str, tool_name: str) -> dict[str, Any]:
        """The conversation so far plus the validation error, so the model can fix its answer."""
        assistant: list[dict[str, Any]] = []
        tool_ids: list[str] = []
        for block in message.content or []:
            kind = getattr(block, "type", None)
            if kind == "text" and block.text:
                assistant.append({"type": "text", "text": block.text})
            elif kind == "tool_use":
                assistant.append({"type": "tool_use", "id": block.id, "name": block.name, "input": block.input})
                tool_ids.append(block.id)
        note = (f"Your answer was invalid: {problem}. "
                f"Call the {tool_name} tool again with input that matches its schema.")
        if tool_ids:
            reply: list[dict[str, Any]] = [
                {"type": "tool_result", "tool_use_id": tid, "is_error": True, "content": note} for tid in tool_ids
            ]
        else:
            reply = [{"type": "text", "text": note}]
        fixed = dict(params)
        messages = list(params["messages"])
        if assistant:  # otherwise nothing usable came back: ask again from the same prompt
            messages += [{"role": "assistant", "content": assistant}, {"role": "user", "content": reply}]
        fixed["messages"] = messages
        if getattr(message, "stop_reason", None) == "max_tokens":  # truncated: give the retry more room
            fixed["max_tokens"] = min(int(params["max_tokens"]) * 2, 16_000)
        return fixed
