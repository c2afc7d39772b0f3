"""The LLM as a Dagster resource: one Anthropic client shared by signals, deliverables and memory.

Interface (stable; every LLM use goes through it)::

    result = llm.structured(
        task="signals",                 # picks the model: llm_model_signals|generation|memory|analysis
        user_id="u1",                   # budget + usage attribution (None for system-level calls)
        system=STABLE_SYSTEM_PROMPT,    # cached (cache_control) - keep per-user text out of it
        prompt=user_prompt,             # the per-call content
        output=MyPydanticModel,         # the answer is validated against this model
        offline=lambda: MyPydanticModel(...),   # the deterministic answer used in offline mode
        scope=LLMScope.from_context(context),   # run id, asset key, partition key for llm_usage
        max_tokens=1000,
    )
    result.value      # a validated MyPydanticModel
    result.usage      # LLMUsage: calls, tokens (input/output/cache), cost_usd -> result.usage.as_metadata()
    result.model, result.offline       # "offline-rules", True in offline mode

    llm.text(task="generation", user_id=..., system=..., prompt=..., offline=lambda: "...", scope=...)

Behaviour:

* **Online** (an API key is set and offline mode is off): the official ``anthropic`` client with the
  configured base URL, timeout and ``max_retries`` (the SDK retries 408/409/429/5xx/529 and
  connection errors with exponential backoff and honours ``retry-after``/``retry-after-ms``).
  Structured answers are requested as a forced tool call whose ``input_schema`` is the pydantic
  model's JSON schema; a JSON text answer (code fences stripped) is accepted too. A malformed
  answer is sent back to the model once with the validation error; a second failure raises
  :class:`LLMOutputError`, which callers record as a failure of that user's pass. An API failure
  after the retries raises :class:`LLMCallError`. The offline function is **never** a fallback here.
* **Offline** (no key, or ``YARNNN_LLM_MODE=offline``): the caller's ``offline`` function produces
  the answer; it is validated the same way and labelled ``model="offline-rules"``, ``offline=True``.
* **Usage**: every API response (including a malformed first attempt) and every offline answer is
  a row in the control-plane ``llm_usage`` table (user, task, model, tokens, cost, run id, asset
  key, partition key); offline rows cost nothing.
* **Budget**: before an online call, the user's tokens today (UTC) plus the estimated input of this
  call must stay within the tier's daily budget (``YARNNN_LLM_DAILY_TOKEN_BUDGETS``; unknown tiers
  count as free), else :class:`LLMBudgetExceeded`. Concurrent runs may overshoot by one call.
* **Caching**: ``system`` is sent as one text block with ``cache_control: ephemeral`` (tools and
  system form the cached prefix); ``system_suffix`` is appended uncached for per-call instructions.
* **Batches** (for later use): :meth:`LLM.build_request` returns the exact ``messages.create``
  parameters of a call (usable as a Message Batches ``params`` entry), :meth:`LLM.parse_structured`
  validates a returned message, and :meth:`LLM.record_usage` records it (``batch=True`` halves the cost).

The package: :mod:`resources.llm.resource` (the resource), :mod:`resources.llm.types` (errors and
values), :mod:`resources.llm.helpers`; backpressure in :mod:`resources.llm_limits`, prices in
:mod:`resources.llm_pricing`, Message Batches in :mod:`resources.llm_batches`.
"""

from resources.llm.helpers import opaque_user_id
from resources.llm.resource import LLM
from resources.llm.types import (
    FALLBACK_TIER,
    TASKS,
    LLMBudgetExceeded,
    LLMCallError,
    LLMConfigError,
    LLMError,
    LLMOutputError,
    LLMScope,
    LLMUsage,
    StructuredResult,
    TextResult,
)

__all__ = ["FALLBACK_TIER", "LLM", "TASKS", "LLMBudgetExceeded", "LLMCallError", "LLMConfigError", "LLMError",
           "LLMOutputError", "LLMScope", "LLMUsage", "StructuredResult", "TextResult", "opaque_user_id"]
