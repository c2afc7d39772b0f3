"""A deliverable whose sources do not fit its type is refused when it is created or edited."""

from __future__ import annotations

import pytest

from control_plane import db
from yarn_assets.deliverables import service


def test_platform_bound_types_refuse_other_platforms(workspace) -> None:  # type: ignore[no-untyped-def]
    with db.session_scope(workspace) as s, pytest.raises(service.DeliverableError) as err:
        service.create_deliverable(s, user_id="bob", deliverable_type="slack_channel_digest", title="digest",
                                   sources=["slack:C1", "gmail:INBOX", "calendar"])
    assert str(err.value) == ("slack_channel_digest reads slack only; gmail:INBOX, calendar does not fit "
                              "(allowed platforms: slack)")
    with db.session_scope(workspace) as s:
        digest = service.create_deliverable(s, user_id="bob", deliverable_type="slack_channel_digest",
                                            title="digest", sources=["slack:C1"])
        report = service.create_deliverable(s, user_id="bob", deliverable_type="status_report", title="all",
                                            sources=["slack:C1", "gmail:INBOX", "notion"])  # cross-platform
        assert [x["platform"] for x in report.sources] == ["slack", "gmail", "notion"]
        with pytest.raises(service.DeliverableError, match="allowed platforms: slack"):
            service.update_deliverable(s, digest.id, sources=["gmail:INBOX"])
        assert digest.sources == [{"platform": "slack", "resource_id": "C1", "resource_name": None}]
        # an explicit cross-platform binding in type_config lifts the restriction, as it does at run time
        service.update_deliverable(s, digest.id, sources=["gmail:INBOX"], type_config={"binding": "cross_platform"})


def test_unknown_types_are_deliverable_errors(workspace) -> None:  # type: ignore[no-untyped-def]
    with db.session_scope(workspace) as s, pytest.raises(service.DeliverableError, match="unknown deliverable type"):
        service.create_deliverable(s, user_id="bob", deliverable_type="horoscope", title="x")
