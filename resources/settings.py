"""One settings model for the whole platform, read from the environment when definitions load.

Nothing in the codebase reads ``os.environ`` at import time: :func:`load_settings` is called by
``yarn_assets.definitions.defs`` (and by the CLI), so a missing or malformed variable is reported
once, at load, with the variable's name.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

ENV_PREFIX = "YARNNN_"


class SettingsError(RuntimeError):
    """Raised when the environment does not describe a usable configuration."""


class YarnSettings(BaseSettings):
    """Platform configuration. Every field maps to ``YARNNN_<FIELD>`` unless noted."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="ignore", populate_by_name=True)

    # --- storage -----------------------------------------------------------------------------
    home: Path = Field(default=Path(".yarnnn"), description="Local state folder (warehouse, db, inbox).")
    warehouse_root: str | None = Field(
        default=None, description="Delta warehouse root: a folder or an object-store URI (s3://, gs://, az://)."
    )
    warehouse_storage_options: dict[str, Any] = Field(
        default_factory=dict,
        description="Non-secret object-store options as JSON; credentials come from the store's own env vars.",
    )
    control_plane_url: str | None = Field(
        default=None, description="SQLAlchemy URL of the control plane; SQLite file under home by default."
    )
    control_plane_auto_migrate: bool = Field(
        default=True, description="Upgrade the control-plane schema on first use (off in production)."
    )
    inbox_dir: Path | None = Field(default=None, description="Folder watched for export files to import.")

    # --- secrets (never logged, never in run config) -----------------------------------------
    encryption_key: SecretStr | None = Field(
        default=None, description="Fernet key that encrypts platform credentials at rest."
    )
    anthropic_api_key: SecretStr | None = Field(
        default=None,
        validation_alias="ANTHROPIC_API_KEY",
        description="Anthropic API key; without it the LLM runs in the labelled offline mode.",
    )

    user_shards: int = Field(
        default=1, ge=1, le=256,
        description="User shards of the hourly signals and nightly memory partitions (hash(user_id) mod N): one run "
        "per (hour, shard) and (day, shard), so N workers take one hour or night in parallel. Changing it re-keys "
        "those partitions.",
    )

    # --- LLM -----------------------------------------------------------------------------------
    llm_mode: Literal["auto", "api", "offline"] = Field(
        default="auto", description="auto = api when a key is set, else offline; api without a key is an error."
    )
    anthropic_base_url: str | None = Field(default=None, description="Messages API base URL (tests: loopback).")
    llm_model_signals: str = "claude-haiku-4-5-20251001"
    llm_model_generation: str = "claude-sonnet-4-6"
    llm_model_memory: str = "claude-sonnet-4-6"
    llm_model_analysis: str = "claude-sonnet-4-6"
    llm_timeout_seconds: float = 60.0
    llm_max_retries: int = Field(
        default=4, ge=0, description="SDK retries on 408/409/429/5xx/529 and timeouts (honouring retry-after)."
    )
    llm_max_concurrency: int = Field(
        default=8, ge=1, le=256, description="Anthropic calls in flight at once per process (signals, deliverables)."
    )
    llm_requests_per_minute: int | None = Field(default=None, ge=1, description="Client-side RPM limit (null: none).")
    llm_tokens_per_minute: int | None = Field(
        default=None, ge=1, description="Client-side input tokens per minute (null: none)."
    )
    llm_daily_token_budgets: dict[str, int | None] = Field(
        default_factory=lambda: {"free": 50_000, "starter": 250_000, "pro": None},
        description="Per-user daily LLM token budget by tier as JSON; null = unlimited; unknown tiers count as free.",
    )
    llm_price_overrides: dict[str, dict[str, float]] = Field(
        default_factory=dict,
        description='USD per million tokens by model prefix, e.g. {"claude-x": {"input": 1, "output": 5}}.',
    )

    # --- signals -------------------------------------------------------------------------------
    signals_excluded_tiers: list[str] = Field(
        default_factory=lambda: ["free"], description="Tiers without hourly signal processing (free, as the original)."
    )
    signals_wake_gate: bool = Field(
        default=True, description="Skip a user's pass when nothing changed since their last evaluated pass."
    )
    signals_followup_days: int = Field(default=3, ge=1, description="An unanswered thread older than this is a signal.")
    signals_manual_cooldown_seconds: int = Field(default=300, ge=0, description="Cooldown of a manual trigger.")

    # --- memory --------------------------------------------------------------------------------
    memory_batch_threshold: int = Field(
        default=25, ge=0, description="More LLM requests than this in one run go through the Message Batches API."
    )
    memory_batch_poll_seconds: float = Field(default=30.0, gt=0, description="Seconds between batch status polls.")
    memory_batch_timeout_seconds: float = Field(
        default=6 * 3600.0, gt=0, description="Stop polling a batch after this long (a retried run resumes it)."
    )

    # --- people (contacts, identities, embeddings, retrieval) -----------------------------------
    people_contact_policy: Literal["sent", "sent_and_received", "none"] = Field(
        default="sent_and_received",
        description="Default contact creation policy; a user overrides it with `yarnnn contacts policy`.",
    )
    people_exclude_role_addresses: bool = Field(
        default=True, description="Never create contacts from group/role addresses (info@, team@, *-request@...)."
    )
    people_exclude_freemail: bool = Field(
        default=False, description="Never create contacts from free-mail addresses (gmail.com, outlook.com...)."
    )
    people_role_localparts: list[str] = Field(
        default_factory=list, description="Extra role/group local parts as JSON, added to the built-in list."
    )
    people_freemail_domains: list[str] = Field(
        default_factory=list, description="Extra free-mail domains as JSON, added to the built-in list."
    )
    people_merge_min_confidence: float = Field(
        default=0.75, ge=0, le=1, description="Identity links below this confidence are kept as candidates, not merged."
    )
    people_max_recipients: int = Field(
        default=50, ge=1, description="A message to more recipients than this is mass mail (no contacts from it)."
    )
    people_phone_region: str | None = Field(
        default=None, description="Region (ISO 3166, e.g. US) for phone numbers written without a + country code."
    )
    people_calendar_history_days: int = Field(
        default=3650, ge=1, description="How far back recurring series are expanded into the calendar_events cache."
    )
    people_calendar_future_days: int = Field(
        default=180, ge=1, description="How far ahead recurring series are expanded into the calendar_events cache."
    )
    people_max_instances_per_series: int = Field(
        default=1000, ge=1, description="Cap on the instances of one recurring series (the rest are counted, not kept)."
    )
    embedding_backend: Literal["wordllama", "http"] = Field(
        default="wordllama", description="wordllama (weights shipped in the wheel, offline) or a voyage-style HTTP API."
    )
    embedding_base_url: str | None = Field(default=None, description="Base URL of the HTTP embedding API.")
    embedding_model: str = Field(default="l2_supercat_256", description="Model name (HTTP backend: sent as `model`).")
    embedding_api_key: SecretStr | None = Field(default=None, description="Key of the HTTP embedding API.")
    embedding_batch_size: int = Field(default=64, ge=1, le=4096, description="Texts per embedding call.")
    embedding_chunk_chars: int = Field(default=1000, ge=100, description="Characters per embedded chunk.")
    embedding_max_chunks_per_item: int = Field(default=12, ge=1, description="Chunks embedded per item (rest skipped).")
    retrieval_max_k: int = Field(default=100, ge=1, description="Largest k `search` accepts.")
    retrieval_cache_mb: int = Field(
        default=512, ge=0, description="Per-process cache of users' vector matrices (LRU, MiB; 0 = no cache)."
    )

    # --- platform APIs (base URLs so tests can serve them on loopback) -------------------------
    slack_base_url: str = "https://slack.com/api/"
    google_api_base_url: str | None = None
    google_token_uri: str = "https://oauth2.googleapis.com/token"
    notion_base_url: str = "https://api.notion.com"
    platform_timeout_seconds: float = Field(default=30.0, description="Timeout of one platform API request.")
    platform_max_attempts: int = Field(default=4, description="Attempts per platform API call (429/5xx/network).")
    platform_backoff_seconds: float = Field(default=1.0, description="First 5xx/network back-off; doubles per attempt.")
    platform_rate_limits: dict[str, float] = Field(
        default_factory=dict,
        description='Requests per minute overriding the built-in budgets, JSON: {"slack": 50, "notion:*": 180}.',
    )
    # --- OAuth connection flows (yarn_assets.connect); endpoints are settings so tests use loopback --
    oauth_redirect_base_url: str = Field(
        default="http://127.0.0.1:8000", description="Public base URL of the API: callbacks are <this>/connect/*."
    )
    oauth_state_ttl_seconds: int = Field(default=600, ge=30, description="Life of an OAuth `state` (single use).")
    slack_client_id: str | None = None
    slack_client_secret: SecretStr | None = None
    slack_authorize_url: str = "https://slack.com/oauth/v2/authorize"
    google_client_id: str | None = None
    google_client_secret: SecretStr | None = None
    google_authorize_url: str = "https://accounts.google.com/o/oauth2/v2/auth"
    google_revoke_url: str = "https://oauth2.googleapis.com/revoke"
    notion_client_id: str | None = None
    notion_client_secret: SecretStr | None = None
    search_base_url: str | None = None
    search_provider: Literal["anthropic", "exa", "offline"] = Field(
        default="anthropic", description="Web search for research deliverables (offline when the LLM is offline)."
    )
    search_api_key: SecretStr | None = Field(default=None, description="Key of the 'exa' search provider.")
    search_model: str = "claude-haiku-4-5-20251001"
    arxiv_base_url: str = "https://export.arxiv.org/api/query"

    # --- delivery ------------------------------------------------------------------------------
    smtp_host: str | None = None
    smtp_port: int = 25
    smtp_username: str | None = None
    smtp_password: SecretStr | None = None
    smtp_starttls: bool = False
    mail_from: str = "yarnnn <noreply@yarnnn.local>"
    slack_delivery_token: SecretStr | None = Field(
        default=None, description="Operator bot token: alerts, and the fallback for a user without a Slack connection."
    )
    delivery_default_channels: list[Literal["email", "slack", "file"]] = Field(
        default_factory=lambda: ["email", "slack"],
        description="Where a deliverable without a destination goes, each once: the user's email (the file outbox, "
        "the demo's transport, when SMTP is unset), a Slack DM through the user's own Slack connection.",
    )
    deliverables_rejection_block_days: int = Field(
        default=30, ge=0,
        description="A rejected signal-created deliverable's signal (type, ref) is not proposed again for this long.",
    )
    operator_email: str | None = Field(default=None, description="Where run-failure alerts are mailed.")
    operator_slack_channel: str | None = None

    # --- HTTP API (yarn_assets.api; `yarnnn serve api`) -------------------------------------------
    api_host: str = Field(default="127.0.0.1", description="Address the API listens on.")
    api_port: int = Field(default=8000, ge=1, le=65535, description="Port the API listens on.")
    auth_signing_key: SecretStr | None = Field(
        default=None, description="HMAC key (>= 32 characters) of per-user tokens (API and MCP; `yarnnn users token`)."
    )
    api_token_ttl_hours: int = Field(
        default=24 * 30, ge=1, description="Life of a token minted by `yarnnn users token`."
    )
    api_max_body_bytes: int = Field(default=1 << 20, ge=1024, description="Larger request bodies are refused (413).")
    api_trigger_rate_limit: str = Field(
        default="10/minute", description="Trigger routes per user (`limits` notation, e.g. 10/minute;30/hour)."
    )

    # --- import lifecycle and crash recovery ------------------------------------------------------
    import_max_attempts: int = Field(
        default=3, ge=1,
        description="Claims of one import job (the first try and the retries after a crash) before it is failed.",
    )
    import_stale_minutes: float = Field(
        default=10.0, gt=0,
        description="A processing import job or landing sync batch whose run is unknown to the instance is "
        "presumed dead after this long (runs the instance knows are judged by their status).",
    )
    silver_max_catchup_runs: int = Field(
        default=3, ge=1,
        description="Catch-up runs requested to merge one bronze batch into silver before it is marked failed.",
    )

    # --- operations ----------------------------------------------------------------------------
    operator_alerts: Literal["auto", "email", "slack", "both", "off"] = Field(
        default="auto",
        description="Run-failure alert channels; auto = every channel whose target and credentials are set.",
    )
    executor: Literal["multiprocess", "in_process", "celery", "k8s"] = Field(
        default="multiprocess",
        description="Run executor: multiprocess (spawn, default), in_process (one process), celery (steps on "
        "Celery workers, YARNNN_CELERY_BROKER_URL) or k8s (one Kubernetes Job per step): core/executors.py.",
    )
    executor_max_concurrent: int = Field(default=2, ge=1, description="Steps in parallel per run (multiprocess, k8s).")
    celery_broker_url: SecretStr | None = Field(
        default=None, description="Celery broker (redis://… or amqp://…) of executor=celery; may hold a password."
    )
    celery_backend_url: SecretStr | None = Field(
        default=None, description="Celery result backend; default: the broker for redis://, rpc:// for amqp://."
    )
    k8s_image: str | None = Field(default=None, description="User-code image of executor=k8s step pods.")
    k8s_namespace: str = Field(default="yarnnn", description="Namespace of executor=k8s step Jobs.")
    k8s_env_secrets: list[str] = Field(
        default_factory=lambda: ["yarnnn-secrets"], description="Secrets (JSON list) mounted as env into step pods."
    )
    dagster_webserver_url: str = Field(
        default="http://127.0.0.1:3000", description="Dagster UI/GraphQL URL (alert links, `yarnnn backfill`)."
    )
    vacuum_retention_hours: int = Field(
        default=168, ge=0, description="Daily vacuum keeps files unreferenced for less than this (Delta minimum 168)."
    )
    pool_limits: dict[str, int] = Field(
        default_factory=dict, description="JSON {pool: limit} overriding the default pool limits (`yarnnn pools`)."
    )

    # --- input limits (docs/OPERATIONS.md "Input limits"; an import over one becomes a reject) ---
    import_max_total_bytes: int = Field(
        default=1 << 30, ge=1,
        description="Bytes one import may read: an archive's members decompressed, summed, or one "
        "mbox/.jsonl file. The reader holds an import's objects in memory, so this bounds the worker's RAM.",
    )
    import_max_member_bytes: int = Field(
        default=128 << 20, ge=1,
        description="One archive member (Slack JSON, Notion page or CSV, an inner zip) decompressed, "
        "counted while it streams; a lying header cannot raise it.",
    )
    import_max_members: int = Field(
        default=100_000, ge=1,
        description="Members of one archive, inner zips' members included (from the zip's directory, "
        "before it is parsed).",
    )
    import_max_compression_ratio: float = Field(
        default=200.0, gt=1,
        description="Decompressed/compressed size of one member (zip bombs reach 1000); checked from the "
        "header and while streaming, once a member has produced import_ratio_min_bytes.",
    )
    import_ratio_min_bytes: int = Field(
        default=1 << 20, ge=0, description="Members smaller than this are never refused for their ratio."
    )
    import_max_archive_depth: int = Field(
        default=2, ge=1,
        description="Zip levels: the export zip is level 1, Notion's Export-…-Part-N.zip level 2; a zip "
        "deeper than this is a reject.",
    )
    import_max_json_depth: int = Field(
        default=64, ge=2, description="Nesting of a Slack export JSON file (a message is ~8 deep)."
    )
    import_max_message_bytes: int = Field(
        default=64 << 20, ge=1,
        description="One email (an mbox entry or an .eml file) or one chat JSONL line.",
    )
    import_max_objects: int = Field(
        default=500_000, ge=1,
        description="Objects (messages, lines, pages) one import may produce; the rest is one reject.",
    )
    import_max_ics_bytes: int = Field(
        default=16 << 20, ge=1, description="One .ics file (parsed whole: icalendar needs ~30x its size)."
    )
    import_reject_sample_bytes: int = Field(
        default=64 << 10, ge=0,
        description="Bytes of an over-limit object kept with its reject (the whole file stays in the "
        "import archive).",
    )
    ics_max_instances_per_series: int = Field(
        default=1000, ge=1,
        description="Instances of one recurring event kept in the calendar window; the rest are counted "
        "on the rows as dropped.",
    )
    ics_max_rule_steps: int = Field(
        default=200_000, ge=1,
        description="Occurrences a recurrence rule may be walked through before the window; a longer walk "
        "starts closer to the window along the rule's own steps, or the series is kept unexpanded.",
    )
    ics_max_expansion_seconds: float = Field(
        default=10.0, gt=0,
        description="Time budget for expanding the recurring series of one .ics file; series left over "
        "are kept as one item each, flagged.",
    )

    # --- recipes (declarative pipelines) --------------------------------------------------------
    recipe_max_file_bytes: int = Field(default=262_144, ge=1024, description="Largest recipe YAML file accepted.")
    recipe_max_yaml_depth: int = Field(default=32, ge=4, description="Deepest nesting of a recipe YAML file.")
    recipe_max_steps: int = Field(default=200, ge=1, description="Most steps in one recipe, nested ones included.")
    recipe_max_rows: int = Field(default=5000, ge=1, description="Most rows one read_asset/data_transform step reads.")
    recipe_max_loop_items: int = Field(default=200, ge=1, description="Most items one loop step iterates over.")
    recipe_max_output_bytes: int = Field(default=5_000_000, ge=1024, description="Largest stored step output (JSON).")
    recipe_max_wait_minutes: float = Field(default=60.0, gt=0, description="Longest a wait_for_asset step waits.")

    @field_validator("warehouse_storage_options", mode="before")
    @classmethod
    def _parse_options(cls, value: Any) -> Any:
        if isinstance(value, str):
            try:
                parsed = json.loads(value) if value.strip() else {}
            except json.JSONDecodeError as exc:
                raise ValueError(f"must be a JSON object: {exc.msg}") from exc
            if not isinstance(parsed, dict):
                raise ValueError("must be a JSON object")
            value = parsed
        if isinstance(value, dict):
            return {str(k): str(v) for k, v in value.items()}
        return value

    @field_validator("platform_rate_limits", "pool_limits", mode="before")
    @classmethod
    def _parse_rates(cls, value: Any) -> Any:
        if isinstance(value, str):
            try:
                value = json.loads(value) if value.strip() else {}
            except json.JSONDecodeError as exc:
                raise ValueError(f"must be a JSON object: {exc.msg}") from exc
        return value

    @field_validator("encryption_key")
    @classmethod
    def _check_fernet(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None or not value.get_secret_value():
            return None
        from cryptography.fernet import Fernet

        try:
            Fernet(value.get_secret_value().encode())
        except (ValueError, TypeError) as exc:
            raise ValueError("is not a valid Fernet key (32 url-safe base64-encoded bytes)") from exc
        return value

    @model_validator(mode="after")
    def _check_executor(self) -> YarnSettings:
        if self.executor == "celery" and self.celery_broker_url is None:
            raise ValueError("YARNNN_EXECUTOR=celery needs YARNNN_CELERY_BROKER_URL to be set")
        if self.executor == "k8s" and not self.k8s_image:
            raise ValueError("YARNNN_EXECUTOR=k8s needs YARNNN_K8S_IMAGE to be set")
        return self

    @model_validator(mode="after")
    def _check_llm_mode(self) -> YarnSettings:
        if self.llm_mode == "api" and self.anthropic_api_key is None:
            raise ValueError("YARNNN_LLM_MODE=api needs ANTHROPIC_API_KEY to be set")
        return self

    @model_validator(mode="after")
    def _check_operator_alerts(self) -> YarnSettings:
        wanted = {"email": ("email",), "slack": ("slack",), "both": ("email", "slack")}.get(self.operator_alerts, ())
        needs = {
            "email": {"YARNNN_OPERATOR_EMAIL": self.operator_email, "YARNNN_SMTP_HOST": self.smtp_host},
            "slack": {"YARNNN_OPERATOR_SLACK_CHANNEL": self.operator_slack_channel,
                      "YARNNN_SLACK_DELIVERY_TOKEN": self.slack_delivery_token},
        }
        missing = [name for channel in wanted for name, value in needs[channel].items() if not value]
        if missing:
            raise ValueError(f"YARNNN_OPERATOR_ALERTS={self.operator_alerts} needs {', '.join(missing)} to be set")
        return self

    @property
    def alert_channels(self) -> tuple[str, ...]:
        """Channels run-failure alerts go to (resolved from ``operator_alerts`` and what is configured)."""
        if self.operator_alerts == "off":
            return ()
        if self.operator_alerts != "auto":
            return {"email": ("email",), "slack": ("slack",), "both": ("email", "slack")}[self.operator_alerts]
        channels = []
        if self.operator_email and self.smtp_host:
            channels.append("email")
        if self.operator_slack_channel and self.slack_delivery_token:
            channels.append("slack")
        return tuple(channels)

    # --- derived -------------------------------------------------------------------------------
    @property
    def resolved_home(self) -> Path:
        return self.home.expanduser().resolve()

    @property
    def resolved_warehouse_root(self) -> str:
        if self.warehouse_root:
            if "://" in self.warehouse_root:
                return self.warehouse_root
            return str(Path(self.warehouse_root).expanduser().resolve())
        return str(self.resolved_home / "warehouse")

    @property
    def resolved_control_plane_url(self) -> str:
        return self.control_plane_url or f"sqlite:///{self.resolved_home / 'control_plane.db'}"

    @property
    def resolved_inbox_dir(self) -> Path:
        return (self.inbox_dir or self.resolved_home / "inbox").expanduser().resolve()

    @property
    def llm_offline(self) -> bool:
        return self.llm_mode == "offline" or (self.llm_mode == "auto" and self.anthropic_api_key is None)


def _env_name(loc: tuple[Any, ...]) -> str:
    field = str(loc[0]) if loc else "?"
    info = YarnSettings.model_fields.get(field)
    alias = info.validation_alias if info is not None else None
    if isinstance(alias, str):
        return alias
    return f"{ENV_PREFIX}{field.upper()}"


def load_settings(**overrides: Any) -> YarnSettings:
    """Read and validate the environment; errors name the offending variable."""
    try:
        return YarnSettings(**overrides)
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            loc = err.get("loc", ())
            name = _env_name(loc) if loc else "configuration"
            problems.append(f"{name}: {err.get('msg')}")
        raise SettingsError("invalid yarnnn configuration: " + "; ".join(problems)) from None
