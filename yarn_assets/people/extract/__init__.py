"""One bronze (day, platform) partition -> interactions, calendar event instances, identity evidence.

The items come from the ingest normalizers themselves (``normalize_batch_frame``), so an
interaction's ``item_key`` is exactly the key of its silver row; what silver does not keep is read
from the raw object next to it:

* **email** (mbox, .eml, Gmail API): every address header with its display name (From, To, Cc, Bcc,
  Delivered-To), the bulk headers (List-Unsubscribe, List-Id, Precedence, Auto-Submitted) and the
  Sent label (Takeout ``X-Gmail-Labels``, the API's ``SENT``), which with ``Delivered-To`` tells
  which addresses are the user's own;
* **calendar** (.ics, Calendar API): every instance of a series over the history window (years of
  imported history, not silver's sync window), attendees with PARTSTAT / responseStatus, cancelled
  instances (``STATUS:CANCELLED``, ``EXDATE``) as tombstones;
* **slack** (export, API): the author, DM/MPIM members (dms.json / mpims.json), ``<@mentions>`` and
  the thread parent; users.json / users.info profiles give Slack id <-> email and phone evidence.

Direction: an item the user sent (or organised) yields ``sent``/``organised`` rows for the other
people in it; anything else yields ``received``/``attended`` rows for its sender and the other
recipients. The user is never a row of their own (self evidence goes to identity_evidence).
"""

from __future__ import annotations

import datetime as dt

import polars as pl

from io_managers.delta_store import DeltaStore
from yarn_assets.ingest import bronze
from yarn_assets.people.extract.batch import Extract, Limits, _Batch
from yarn_assets.people.extract.calendars import _calendars
from yarn_assets.people.extract.mail import _emails
from yarn_assets.people.extract.slack import _slack

__all__ = ["Extract", "Limits", "extract_partition"]


def extract_partition(store: DeltaStore, platform: str, day: dt.date, own: dict[str, frozenset[str]],
                      limits: Limits) -> Extract:
    """Everything the people timeline learns from one bronze partition (read batch by batch)."""
    out = Extract()
    lf = bronze.scan_partition(store, platform, day)
    ids = lf.select("batch_id").unique().collect().get_column("batch_id").to_list()
    for batch_id in sorted(ids, key=str):
        frame = lf.filter(pl.col("batch_id") == batch_id).collect().sort("seq")
        if frame.is_empty():
            continue
        expired = frame.get_column("body_expired_at").is_not_null()
        out.expired |= {(batch_id, int(s)) for s in frame.filter(expired).get_column("seq").to_list()}
        live = frame.filter(~expired)
        if live.is_empty():
            continue
        out.users.add(str(live["user_id"][0]))
        batch = _Batch(live, own.get(str(live["user_id"][0]), frozenset()), limits, out)
        out.stats["objects"] += live.height
        if platform == "gmail":
            _emails(batch, live)
        elif platform == "calendar":
            _calendars(batch, live)
        elif platform == "slack":
            _slack(batch, live)
    return out

