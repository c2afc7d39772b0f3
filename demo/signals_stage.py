"""Demo stage: this hour's signal passes for every eligible sample user (offline rules without a key)."""

from __future__ import annotations

from demo.context import DemoContext
from yarn_assets.signals.assets import hour_key


def signals_stage(ctx: DemoContext) -> None:
    key = hour_key(ctx.now)
    result = ctx.run_job("signals_job", partition_key=key, tags={"yarnnn/trigger": "demo"})
    meta = {m.asset_key.to_user_string(): m.metadata for m in result.asset_materializations_for_node("signal_passes")}
    summaries, actions = meta["gold/signal_summaries"], meta["gold/signal_actions"]

    def value(entries: dict, name: str) -> object:  # type: ignore[type-arg]
        entry = entries.get(name)
        return getattr(entry, "value", entry)

    ctx.note(
        f"signals [{key}]: {value(summaries, 'users')} users, {value(summaries, 'evaluated')} passes evaluated, "
        f"{value(summaries, 'skipped_too_few_items')} skipped (< 3 items), "
        f"{value(summaries, 'skipped_wake_gate')} skipped (nothing new); "
        f"{value(actions, 'deliverables_created')} deliverables created, "
        f"{value(actions, 'deliverables_triggered')} triggered; LLM: {value(summaries, 'llm_calls')} calls "
        f"({value(summaries, 'llm_models')}), ${value(summaries, 'llm_cost_usd')}"
    )
