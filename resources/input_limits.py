"""Input limits as a resource: what the export readers and the calendar normalizer may spend.

The fields are the ``import_*`` / ``ics_*`` settings of the same name (``YARNNN_<FIELD>``); their
defaults and descriptions live once, on :class:`resources.settings.YarnSettings`. Readers and
normalizers take an ``InputLimits`` argument (the defaults when a caller passes none), so no code
path reads a limit from anywhere else.
"""

from __future__ import annotations

from typing import Any

import dagster as dg
from pydantic import Field

from resources.settings import YarnSettings


def _same_as_setting(name: str) -> Any:
    info = YarnSettings.model_fields[name]
    return Field(default=info.default, description=f"{info.description} (YARNNN_{name.upper()})")


class InputLimits(dg.ConfigurableResource):
    """Size, count, depth and time limits of every export reader (see docs/OPERATIONS.md)."""

    import_max_total_bytes: int = _same_as_setting("import_max_total_bytes")
    import_max_member_bytes: int = _same_as_setting("import_max_member_bytes")
    import_max_members: int = _same_as_setting("import_max_members")
    import_max_compression_ratio: float = _same_as_setting("import_max_compression_ratio")
    import_ratio_min_bytes: int = _same_as_setting("import_ratio_min_bytes")
    import_max_archive_depth: int = _same_as_setting("import_max_archive_depth")
    import_max_json_depth: int = _same_as_setting("import_max_json_depth")
    import_max_message_bytes: int = _same_as_setting("import_max_message_bytes")
    import_max_objects: int = _same_as_setting("import_max_objects")
    import_max_ics_bytes: int = _same_as_setting("import_max_ics_bytes")
    import_reject_sample_bytes: int = _same_as_setting("import_reject_sample_bytes")
    ics_max_instances_per_series: int = _same_as_setting("ics_max_instances_per_series")
    ics_max_rule_steps: int = _same_as_setting("ics_max_rule_steps")
    ics_max_expansion_seconds: float = _same_as_setting("ics_max_expansion_seconds")

    @classmethod
    def from_settings(cls, settings: YarnSettings) -> InputLimits:
        return cls(**{name: getattr(settings, name) for name in cls.model_fields})

    def named(self, name: str) -> str:
        """``yarnnn import_max_member_bytes=134217728``: how a reject reason names the limit it hit."""
        value = getattr(self, name)
        return f"yarnnn {name}={value:g}" if isinstance(value, float) else f"yarnnn {name}={value}"


class LimitExceeded(ValueError):
    """An object (or the rest of an import) is over a limit; the message names the limit and its value."""


DEFAULT_LIMITS = InputLimits()
