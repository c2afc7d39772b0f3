"""Builds every resource from the validated settings: the one place configuration meets code.

Secrets are passed as ``EnvVar`` so Dagster resolves them at run time and shows only the
variable's name in the UI and run config.
"""

from __future__ import annotations

import os
from typing import Any

import dagster as dg

from io_managers.json_steps import JsonStepIOManager
from resources.control_plane import ControlPlane
from resources.credentials import CredentialVault
from resources.delivery import DeliveryChannels
from resources.embeddings import Embeddings
from resources.input_limits import InputLimits
from resources.llm import LLM
from resources.llm_batches import LLMBatches
from resources.mailer import MemoryMailer
from resources.maintenance import Maintenance
from resources.notifier import Notifier
from resources.people import PeoplePolicy
from resources.platform_clients import PlatformClients
from resources.recipes import RecipeLimits
from resources.runtime import Runtime
from resources.search import WebSearch
from resources.settings import YarnSettings
from resources.signal_policy import SignalPolicy
from resources.warehouse import Warehouse


def _secret(settings_value: object, variable: str) -> Any:
    """EnvVar when the variable is set in the environment, the literal value otherwise (tests)."""
    if settings_value is None:
        return None
    if os.environ.get(variable):
        return dg.EnvVar(variable)
    getter = getattr(settings_value, "get_secret_value", None)
    return getter() if getter else settings_value


def build_resources(settings: YarnSettings) -> dict[str, Any]:
    home = settings.resolved_home
    root = settings.resolved_warehouse_root
    options = dict(settings.warehouse_storage_options)
    control_plane_url: Any = settings.resolved_control_plane_url
    if settings.control_plane_url and os.environ.get("YARNNN_CONTROL_PLANE_URL"):
        control_plane_url = dg.EnvVar("YARNNN_CONTROL_PLANE_URL")
    control_plane = ControlPlane(url=control_plane_url, auto_migrate=settings.control_plane_auto_migrate)
    llm = build_llm(settings, control_plane)
    return {
        "warehouse": Warehouse(root=root, storage_options=options),
        "control_plane": control_plane,
        "llm": llm,
        "signal_policy": SignalPolicy(
            excluded_tiers=list(settings.signals_excluded_tiers),
            wake_gate=settings.signals_wake_gate,
            followup_days=settings.signals_followup_days,
            manual_cooldown_seconds=settings.signals_manual_cooldown_seconds,
        ),
        "llm_batches": LLMBatches(
            llm=llm,
            threshold=settings.memory_batch_threshold,
            poll_seconds=settings.memory_batch_poll_seconds,
            timeout_seconds=settings.memory_batch_timeout_seconds,
        ),
        "memory_mailer": MemoryMailer(
            **_smtp(settings),
            outbox_dir=str(home / "outbox"),
        ),
        "credentials": CredentialVault(encryption_key=_secret(settings.encryption_key, "YARNNN_ENCRYPTION_KEY")),
        "platform_clients": PlatformClients(
            slack_base_url=settings.slack_base_url,
            google_api_base_url=settings.google_api_base_url,
            google_token_uri=settings.google_token_uri,
            notion_base_url=settings.notion_base_url,
            timeout_seconds=settings.platform_timeout_seconds,
            max_attempts=settings.platform_max_attempts,
            backoff_seconds=settings.platform_backoff_seconds,
            rate_limits=dict(settings.platform_rate_limits),
        ),
        "input_limits": InputLimits.from_settings(settings),
        "maintenance": Maintenance(vacuum_retention_hours=settings.vacuum_retention_hours),
        "notifier": Notifier(
            **_smtp(settings),
            slack_base_url=settings.slack_base_url,
            slack_token=_secret(settings.slack_delivery_token, "YARNNN_SLACK_DELIVERY_TOKEN"),
            operator_email=settings.operator_email,
            operator_slack_channel=settings.operator_slack_channel,
            alert_channels=list(settings.alert_channels),
            ui_base_url=settings.dagster_webserver_url,
        ),
        "runtime": Runtime(
            home=str(home),
            inbox_dir=str(settings.resolved_inbox_dir),
            archive_dir=str(home / "imports"),
            outbox_dir=str(home / "outbox"),
            import_max_attempts=settings.import_max_attempts,
            stale_after_seconds=settings.import_stale_minutes * 60,
            silver_max_catchup_runs=settings.silver_max_catchup_runs,
        ),
        "search": build_search(settings),
        "delivery": build_delivery(settings),
        "recipe_io_manager": JsonStepIOManager(base_dir=str(home / "recipe_steps"),
                                               max_bytes=settings.recipe_max_output_bytes),
        "recipe_limits": RecipeLimits(max_rows=settings.recipe_max_rows, max_loop_items=settings.recipe_max_loop_items,
                                      max_wait_minutes=settings.recipe_max_wait_minutes),
        "people_policy": build_people_policy(settings),
        "embeddings": build_embeddings(settings),
    }


def build_people_policy(settings: YarnSettings) -> PeoplePolicy:
    return PeoplePolicy(
        contact_policy=settings.people_contact_policy,
        exclude_role_addresses=settings.people_exclude_role_addresses,
        exclude_freemail=settings.people_exclude_freemail,
        role_localparts=list(settings.people_role_localparts),
        freemail_domains=list(settings.people_freemail_domains),
        merge_min_confidence=settings.people_merge_min_confidence,
        max_recipients=settings.people_max_recipients,
        phone_region=settings.people_phone_region,
        calendar_history_days=settings.people_calendar_history_days,
        calendar_future_days=settings.people_calendar_future_days,
        max_instances_per_series=settings.people_max_instances_per_series,
        retrieval_max_k=settings.retrieval_max_k,
        retrieval_cache_mb=settings.retrieval_cache_mb,
    )


def build_embeddings(settings: YarnSettings) -> Embeddings:
    """The embedder the people domain uses: WordLlama from its wheel unless an HTTP API is configured."""
    return Embeddings(
        backend=settings.embedding_backend,
        model=settings.embedding_model,
        base_url=settings.embedding_base_url,
        api_key=_secret(settings.embedding_api_key, "YARNNN_EMBEDDING_API_KEY"),
        batch_size=settings.embedding_batch_size,
        chunk_chars=settings.embedding_chunk_chars,
        max_chunks_per_item=settings.embedding_max_chunks_per_item,
    )


def build_search(settings: YarnSettings) -> WebSearch:
    """Web search for research deliverables; the default provider is Anthropic's web search tool."""
    return WebSearch(
        provider=settings.search_provider,
        base_url=settings.search_base_url,
        api_key=_secret(settings.search_api_key, "YARNNN_SEARCH_API_KEY"),
        model=settings.search_model,
        arxiv_base_url=settings.arxiv_base_url,
    )


def _smtp(settings: YarnSettings) -> dict[str, Any]:
    """The SMTP fields every mailing resource takes (delivery, memory mail, operator alerts)."""
    return {
        "smtp_host": settings.smtp_host,
        "smtp_port": settings.smtp_port,
        "smtp_username": settings.smtp_username,
        "smtp_password": _secret(settings.smtp_password, "YARNNN_SMTP_PASSWORD"),
        "smtp_starttls": settings.smtp_starttls,
        "mail_from": settings.mail_from,
    }


def build_delivery(settings: YarnSettings) -> DeliveryChannels:
    return DeliveryChannels(
        outbox_dir=str(settings.resolved_home / "outbox"),
        **_smtp(settings),
        slack_token=_secret(settings.slack_delivery_token, "YARNNN_SLACK_DELIVERY_TOKEN"),
        slack_base_url=settings.slack_base_url,
    )


def build_llm(settings: YarnSettings, control_plane: ControlPlane) -> LLM:
    """The LLM resource; offline (labelled ``offline-rules``) unless a key is set and the mode allows it."""
    offline = settings.llm_offline
    return LLM(
        control_plane=control_plane,
        api_key=None if offline else _secret(settings.anthropic_api_key, "ANTHROPIC_API_KEY"),
        offline=offline,
        base_url=settings.anthropic_base_url,
        timeout_seconds=settings.llm_timeout_seconds,
        max_retries=settings.llm_max_retries,
        model_signals=settings.llm_model_signals,
        model_generation=settings.llm_model_generation,
        model_memory=settings.llm_model_memory,
        model_analysis=settings.llm_model_analysis,
        daily_token_budgets=dict(settings.llm_daily_token_budgets),
        price_overrides={k: dict(v) for k, v in settings.llm_price_overrides.items()},
    )
