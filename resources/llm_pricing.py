"""Anthropic list prices per model family, so every call's cost can be recorded.

Prices are USD per million tokens (input, output, 5-minute cache write, cache read) as published
by Anthropic. A model is priced by the longest matching prefix, then by family keyword (opus,
sonnet, haiku), so a newly released model of a known family is priced without a code change;
``YARNNN_LLM_PRICE_OVERRIDES`` corrects or adds entries. The Message Batches API bills half.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Price:
    input: float
    output: float
    cache_write: float
    cache_read: float

    @classmethod
    def from_mapping(cls, values: Mapping[str, float]) -> Price:
        inp = float(values["input"])
        return cls(
            input=inp,
            output=float(values["output"]),
            cache_write=float(values.get("cache_write", inp * 1.25)),
            cache_read=float(values.get("cache_read", inp * 0.1)),
        )


#: Longest prefix wins.
PRICES: dict[str, Price] = {
    "claude-opus-4-5": Price(5.0, 25.0, 6.25, 0.50),
    "claude-opus-4-6": Price(5.0, 25.0, 6.25, 0.50),
    "claude-opus-4": Price(15.0, 75.0, 18.75, 1.50),
    "claude-3-opus": Price(15.0, 75.0, 18.75, 1.50),
    "claude-sonnet-4": Price(3.0, 15.0, 3.75, 0.30),
    "claude-3-7-sonnet": Price(3.0, 15.0, 3.75, 0.30),
    "claude-3-5-sonnet": Price(3.0, 15.0, 3.75, 0.30),
    "claude-haiku-4": Price(1.0, 5.0, 1.25, 0.10),
    "claude-3-5-haiku": Price(0.80, 4.0, 1.0, 0.08),
    "claude-3-haiku": Price(0.25, 1.25, 0.30, 0.03),
}

#: Newest list price of each family, for model names no prefix matches.
FAMILY_FALLBACK: dict[str, Price] = {
    "opus": Price(5.0, 25.0, 6.25, 0.50),
    "sonnet": Price(3.0, 15.0, 3.75, 0.30),
    "haiku": Price(1.0, 5.0, 1.25, 0.10),
}

#: Priced like a Sonnet-class model when nothing matches (logged, so the operator adds an override).
DEFAULT_PRICE = FAMILY_FALLBACK["sonnet"]

BATCH_DISCOUNT = 0.5

OFFLINE_MODEL = "offline-rules"


def price_for(model: str, overrides: Mapping[str, Mapping[str, float]] | None = None) -> Price:
    if model == OFFLINE_MODEL:
        return Price(0.0, 0.0, 0.0, 0.0)
    table: dict[str, Price] = dict(PRICES)
    for prefix, values in (overrides or {}).items():
        table[prefix] = Price.from_mapping(values)
    matches = [p for p in table if model.startswith(p)]
    if matches:
        return table[max(matches, key=len)]
    for family, price in FAMILY_FALLBACK.items():
        if family in model:
            return price
    log.warning("no price known for model %r; costing it as a Sonnet-class model (set YARNNN_LLM_PRICE_OVERRIDES)",
                model)
    return DEFAULT_PRICE


def cost_usd(
    model: str,
    *,
    input_tokens: int,
    output_tokens: int,
    cache_write_tokens: int = 0,
    cache_read_tokens: int = 0,
    batch: bool = False,
    overrides: Mapping[str, Mapping[str, float]] | None = None,
) -> float:
    """Cost of one call. Anthropic's ``input_tokens`` already excludes cached tokens."""
    p = price_for(model, overrides)
    total = (
        input_tokens * p.input
        + output_tokens * p.output
        + cache_write_tokens * p.cache_write
        + cache_read_tokens * p.cache_read
    ) / 1_000_000
    return round(total * (BATCH_DISCOUNT if batch else 1.0), 8)
