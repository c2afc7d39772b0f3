"""Live API sync definitions (Slack, Gmail, Notion, Google Calendar)."""

from __future__ import annotations

import dagster as dg


def definitions() -> dg.Definitions:
    return dg.Definitions()
