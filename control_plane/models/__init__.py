"""Control-plane schema: mutable configuration and state that needs transactions.

Content never lives here (it is in the Delta warehouse); these tables hold who the users are,
how to reach their platforms, where each sync left off, which deliverables exist and when they
are due. SQLite by default, PostgreSQL in production; the schema is managed by Alembic
(``control_plane/migrations``).
"""


from control_plane.models.accounts import ApiRateBudget, PlatformConnection, SyncRegistry, User
from control_plane.models.base import NAMING, Base, Timestamps, UTCDateTime, new_id, utcnow
from control_plane.models.deliverables import (
    Deliverable,
    DeliverableDelivery,
    DeliverableRunRequest,
    DeliverableVersion,
    SignalHistory,
)
from control_plane.models.ingest import BronzeBatch, ImportJob
from control_plane.models.llm import LlmBatch, LlmUsage
from control_plane.models.memory import ChatSession, NotificationLog, SessionMessage, UserContext, UserContextHistory
from control_plane.models.people import PeopleDecision

__all__ = [
    "NAMING",
    "ApiRateBudget",
    "Base",
    "BronzeBatch",
    "ChatSession",
    "Deliverable",
    "DeliverableDelivery",
    "DeliverableRunRequest",
    "DeliverableVersion",
    "ImportJob",
    "LlmBatch",
    "LlmUsage",
    "NotificationLog",
    "PeopleDecision",
    "PlatformConnection",
    "SessionMessage",
    "SignalHistory",
    "SyncRegistry",
    "Timestamps",
    "UTCDateTime",
    "User",
    "UserContext",
    "UserContextHistory",
    "new_id",
    "utcnow",
]
