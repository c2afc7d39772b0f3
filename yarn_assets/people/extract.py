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
import json
import re
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from email import policy as email_policy
from email.parser import BytesHeaderParser
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import icalendar
import polars as pl
import recurring_ical_events

from io_managers.delta_store import DeltaStore
from yarn_assets.core.tables import UNDATED
from yarn_assets.ingest import bronze
from yarn_assets.ingest.mime import decode_bytes, decode_header_value, split_labels
from yarn_assets.ingest.normalize import BatchContext, context_only, normalize_batch_frame
from yarn_assets.ingest.platforms.calendar.normalize import to_utc
from yarn_assets.ingest.platforms.calendar.normalize_api import event_time
from yarn_assets.ingest.platforms.slack.normalize import slack_users
from yarn_assets.people import addresses as addr
from yarn_assets.people.bulk import bulk_reason
from yarn_assets.people.tables import CALENDAR_EVENTS, IDENTITY_EVIDENCE, INTERACTIONS, item_key_expr

#: Most participants recorded per item (a 2 000-person announcement keeps its first 200).
MAX_PARTICIPANTS_PER_ITEM = 200
_MENTION = re.compile(r"<@([UW][A-Z0-9]{2,})(?:\|[^>]*)?>")
_PARENT = re.compile(r'"parent_user_id"\s*:\s*"([UW][A-Z0-9]+)"')


@dataclass(frozen=True)
class Limits:
    max_recipients: int = 50
    phone_region: str | None = None
    history_days: int = 3650
    future_days: int = 180
    max_instances: int = 1000


@dataclass
class Extract:
    interactions: list[dict[str, Any]] = field(default_factory=list)
    events: list[dict[str, Any]] = field(default_factory=list)
    evidence: list[dict[str, Any]] = field(default_factory=list)
    stats: Counter[str] = field(default_factory=Counter)
    users: set[str] = field(default_factory=set)
    expired: set[tuple[str, int]] = field(default_factory=set)  # (batch_id, seq) whose body is gone

    def frames(self) -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame]:
        interactions = _frame(INTERACTIONS, self.interactions)
        if interactions.height:
            interactions = interactions.with_columns(item_key_expr(
                pl.col("user_id"), pl.col("platform"), pl.col("resource_id"), pl.col("external_id")).alias("item_key"))
        events = _frame(CALENDAR_EVENTS, self.events)
        if events.height:
            events = events.with_columns(item_key_expr(
                pl.col("user_id"), pl.lit("calendar"), pl.col("calendar_id"), pl.col("instance_id")).alias("item_key"))
        return interactions, events, _frame(IDENTITY_EVIDENCE, self.evidence)


def _frame(spec: Any, rows: list[dict[str, Any]]) -> pl.DataFrame:
    if not rows:
        return spec.empty()
    df = pl.DataFrame(rows, schema=dict(spec.schema), strict=False)
    return df.sort([c for c in ("user_id", "batch_id", "seq") if c in df.columns])


def _day(value: dt.datetime | None) -> str:
    return value.astimezone(dt.UTC).date().isoformat() if value is not None else UNDATED


class _Batch:
    """What one bronze batch shares: its user, landing facts and self addresses."""

    def __init__(self, frame: pl.DataFrame, own: frozenset[str], limits: Limits, out: Extract) -> None:
        first = frame.row(0, named=True)
        self.user_id: str = first["user_id"]
        self.platform: str = first["platform"]
        self.ingest_date: dt.date = first["ingest_date"]
        self.batch_id: str = first["batch_id"]
        self.fetched_at: dt.datetime = first["fetched_at"]
        self.own = set(own)
        self.limits = limits
        self.out = out

    def evidence(self, a: str, b: str, rule: str, confidence: float, reason: str, seq: int,
                 name: str | None = None) -> None:
        self.out.evidence.append({
            "user_id": self.user_id, "platform": self.platform, "ingest_date": self.ingest_date, "a": a, "b": b,
            "rule": rule, "confidence": confidence, "reason": reason, "name": name,
            "ref": f"{self.batch_id}:{seq}", "observed_at": self.fetched_at, "batch_id": self.batch_id, "seq": seq,
        })

    def self_evidence(self, identifier: str, rule: str, reason: str, seq: int) -> None:
        if identifier not in self.own:
            self.own.add(identifier)
        self.evidence("self", identifier, rule, 1.0, reason, seq)

    def row(self, item: dict[str, Any], *, participant: str, address: str, name: str | None, name_source: str | None,
            role: str, direction: str, response: str | None = None) -> None:
        self.out.interactions.append({
            **item, "participant": participant, "participant_address": address, "participant_name": name,
            "name_source": name_source if name else None, "role": role, "direction": direction,
            "response_status": response, "is_self": participant in self.own, "is_deleted": False,
        })

    def tombstone(self, item: dict[str, Any]) -> None:
        self.out.interactions.append({**item, "participant": "", "participant_address": "", "participant_name": None,
                                      "name_source": None, "role": "tombstone", "direction": "none",
                                      "response_status": None, "is_self": False, "is_deleted": True})

    def item(self, *, channel: str, resource_id: str, resource_name: str | None, external_id: str,
             created_day: str, thread_id: str | None, occurred_at: dt.datetime | None, subject: str | None,
             sender: str | None, seq: int, is_bulk: bool = False, bulk: str | None = None) -> dict[str, Any]:
        return {
            "user_id": self.user_id, "platform": self.platform, "ingest_date": self.ingest_date, "channel": channel,
            "item_key": None, "resource_id": resource_id,
            "resource_name": resource_name, "external_id": external_id, "created_day": created_day,
            "thread_id": thread_id, "occurred_at": occurred_at, "subject": (subject or "")[:300] or None,
            "sender": sender, "is_bulk": is_bulk, "bulk_reason": bulk, "fetched_at": self.fetched_at,
            "batch_id": self.batch_id, "seq": seq,
        }


# ----------------------------------------------------------------------------------------- partition
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


def _items(frame: pl.DataFrame) -> pl.DataFrame:
    items, _rejects = normalize_batch_frame(frame)  # rejects are silver's business (bronze/rejects)
    return items


# --------------------------------------------------------------------------------------------- email
_HEADER_PARSER = BytesHeaderParser(policy=email_policy.compat32)
_BULK_HEADERS = ("list-unsubscribe", "list-id", "precedence", "auto-submitted")


def _header(msg: Any, name: str) -> str | None:
    values = msg.get_all(name) or []
    return " ".join(filter(None, (decode_header_value(v) for v in values))) or None


def _addresses(msg: Any, name: str) -> list[tuple[str, str]]:
    values = [decode_header_value(v) for v in msg.get_all(name) or []]
    return addr.parse_addresses(values)


def _emails(batch: _Batch, frame: pl.DataFrame) -> None:
    items = _items(frame)
    if items.is_empty():
        return
    raws = dict(zip(frame["seq"].to_list(), frame["raw"].to_list(), strict=True))
    contexts = dict(zip(frame["seq"].to_list(), frame["context"].to_list(), strict=True))
    parsed = []
    for it in items.iter_rows(named=True):
        try:
            msg = _HEADER_PARSER.parsebytes(raws.get(it["seq"]) or b"")
        except Exception:  # a header block the parser rejects: the item keeps its normalized participants
            msg = None
        batch.out.stats["emails"] += 1
        parsed.append(_headers(batch, it, msg, json.loads(contexts.get(it["seq"]) or "{}")))
    for it, facts in parsed:  # every self address of the batch is known before directions are decided
        _email(batch, it, facts)


def _headers(batch: _Batch, it: dict[str, Any], msg: Any, context: dict[str, Any]) -> tuple[dict[str, Any], Any]:
    seq = int(it["seq"])
    if msg is not None:
        senders = _addresses(msg, "From") or _addresses(msg, "Sender")
        list_sender = next((a for _, a in _addresses(msg, "Sender")), None)
        to, cc, bcc = _addresses(msg, "To"), _addresses(msg, "Cc"), _addresses(msg, "Bcc")
        delivered = _addresses(msg, "Delivered-To") + _addresses(msg, "X-Original-To")
        headers = {h: _header(msg, h) for h in _BULK_HEADERS}
        labels = split_labels(decode_header_value(msg.get("X-Gmail-Labels")))
    else:
        senders = [("", it["author_id"])] if it["author_id"] else []
        to, cc, bcc, delivered, headers, labels = [("", p) for p in it["participants"] or []], [], [], [], {}, []
        list_sender = None
    labels = labels + [str(x) for x in (context.get("labels") or []) + (context.get("label_ids") or [])]
    sender_name, sender_raw = senders[0] if senders else ("", "")
    sender = addr.email_key(sender_raw)
    for _, d in delivered:
        if (k := addr.email_key(d)) is not None:
            batch.self_evidence(k, "self_delivered_to", "Delivered-To header of the user's mailbox", seq)
    if sender and any(label.lower() in ("sent", "sent mail") for label in labels):
        batch.self_evidence(sender, "self_sent_label", "From address of a message in the user's Sent folder", seq)
    recipients = [(n, a, role) for role, group in (("to", to), ("cc", cc), ("bcc", bcc)) for n, a in group]
    return it, (sender_name, sender_raw, sender, recipients, headers, list_sender)


def _email(batch: _Batch, it: dict[str, Any], facts: Any) -> None:
    seq = int(it["seq"])
    sender_name, sender_raw, sender, recipients, headers, list_sender = facts
    reason = bulk_reason(headers, addr.normalize_email(sender_raw), len(recipients), batch.limits.max_recipients,
                         addr.normalize_email(list_sender))
    if reason:
        batch.out.stats["bulk_emails"] += 1
    item = batch.item(channel="email", resource_id=it["resource_id"], resource_name=it["resource_name"],
                      external_id=it["external_id"], created_day=_day(it["source_created_at"]),
                      thread_id=it["thread_id"], occurred_at=it["occurred_at"], subject=it["title"], sender=sender,
                      seq=seq, is_bulk=reason is not None, bulk=reason)
    if it["is_deleted"]:
        batch.tombstone(item)
        return
    sent = sender is not None and sender in batch.own
    if sent and (own_name := addr.clean_name(sender_name, sender_raw)):
        batch.evidence(sender, sender, "self_name", 1.0, "the name the user sends mail with", seq, own_name)
    for name, raw_addr, _ in recipients:
        key = addr.email_key(raw_addr)
        if key is not None and key in batch.own and (own_name := addr.clean_name(name, raw_addr)):
            batch.evidence(key, key, "self_name", 1.0, "the name the user's mail is addressed to", seq, own_name)
    seen: set[str] = set()
    if sender and not sent:
        seen.add(sender)
        batch.row(item, participant=sender, address=sender_raw, name=addr.clean_name(sender_name, sender_raw),
                  name_source="from_header", role="from", direction="received")
    for name, raw_addr, role in recipients[:MAX_PARTICIPANTS_PER_ITEM]:
        key = addr.email_key(raw_addr)
        if key is None or key in seen or key == sender or key in batch.own:
            continue
        seen.add(key)
        batch.row(item, participant=key, address=raw_addr, name=addr.clean_name(name, raw_addr),
                  name_source="recipient_header", role=role, direction="sent" if sent else "received")


# ------------------------------------------------------------------------------------------ calendar
def _slot(value: dt.datetime, all_day: bool) -> str:
    return value.strftime("%Y%m%d") if all_day else value.strftime("%Y%m%dT%H%M%SZ")


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, list):
        value = value[0] if value else ""
    return str(value).strip()


def _tzid(prop: Any) -> str | None:
    params = getattr(prop, "params", None)
    return params.get("TZID") if params is not None else None


def _zone(name: str) -> dt.tzinfo | None:
    try:
        return ZoneInfo(name) if name else None
    except (ZoneInfoNotFoundError, ValueError):
        return None


def _vaddress(value: Any) -> tuple[str, str, dict[str, str]]:
    raw = str(value).strip()
    params = {str(k).upper(): str(v) for k, v in getattr(value, "params", {}).items()}
    return raw[7:] if raw.lower().startswith("mailto:") else raw, params.get("CN", "").strip(), params


def _ics_attendees(event: Any) -> list[dict[str, Any]]:
    value = event.get("ATTENDEE")
    values = value if isinstance(value, list) else [value] if value is not None else []
    out, seen = [], set()
    for v in values:
        raw, cn, params = _vaddress(v)
        email = addr.normalize_email(raw)
        if email is None or email in seen or params.get("CUTYPE", "").upper() in ("ROOM", "RESOURCE"):
            continue
        seen.add(email)
        out.append({"email": email, "name": addr.clean_name(cn, email),
                    "response_status": (params.get("PARTSTAT") or "NEEDS-ACTION").lower(),
                    "role": (params.get("ROLE") or "REQ-PARTICIPANT").lower(), "raw": raw})
    return out


def _calendars(batch: _Batch, frame: pl.DataFrame) -> None:
    for row in frame.iter_rows(named=True):
        if row["object_type"] == "ics_calendar":
            _ics(batch, row)
        elif row["object_type"] == "gcal_api_event":
            _gcal(batch, row)


def _ics(batch: _Batch, obj: dict[str, Any]) -> None:
    try:
        text = decode_bytes(obj["raw"] or b"", "utf-8").lstrip("\ufeff")
        calendars = icalendar.Calendar.from_ical(text, multiple=True)
    except Exception:  # silver rejects the file with the reason; nothing to learn here
        batch.out.stats["unreadable_calendars"] += 1
        return
    fetched = batch.fetched_at
    window = (fetched - dt.timedelta(days=batch.limits.history_days),
              fetched + dt.timedelta(days=batch.limits.future_days))
    for cal in calendars:
        if cal.name == "VEVENT":
            wrapper = icalendar.Calendar()
            wrapper.add_component(cal)
            cal = wrapper
        default_tz = _zone(_text(cal.get("X-WR-TIMEZONE")))
        calname = _text(cal.get("X-WR-CALNAME")) or obj["resource_name"] or ""
        groups: dict[str, list[Any]] = {}
        for event in cal.walk("VEVENT"):
            uid = _text(event.get("UID"))
            if uid:
                groups.setdefault(uid, []).append(event)
        for uid, events in groups.items():
            try:
                for instance, rid, flags in _instances(cal, events, window, batch.limits.max_instances, default_tz,
                                                       batch.out.stats):
                    _event_instance(batch, obj, calname, uid, instance, rid, flags, default_tz)
            except Exception:  # one broken series never costs the others
                batch.out.stats["broken_series"] += 1


def _instances(cal: Any, events: list[Any], window: tuple[dt.datetime, dt.datetime], cap: int,
               default_tz: dt.tzinfo | None, stats: Counter[str]) -> Iterator[tuple[Any, Any, set[str]]]:
    """(VEVENT of one instance, its RECURRENCE-ID or None for a single event, flags)."""
    master = next((e for e in events if e.get("RECURRENCE-ID") is None), None)
    overrides = [e for e in events if e.get("RECURRENCE-ID") is not None]
    recurring = master is not None and (master.get("RRULE") is not None or master.get("RDATE") is not None)
    if not recurring:
        if master is not None:
            yield master, None, set()
        for o in overrides:
            yield o, o.get("RECURRENCE-ID"), set()
        return
    assert master is not None
    if _text(master.get("STATUS")).upper() == "CANCELLED":
        yield master, None, {"series_cancelled"}
        return
    series = icalendar.Calendar()
    for tz in cal.walk("VTIMEZONE"):
        series.add_component(tz)
    for e in (master, *overrides):
        series.add_component(e)
    instances = list(recurring_ical_events.of(series, skip_bad_series=True).between(*window))
    if len(instances) > cap:
        stats["instances_over_cap"] += len(instances) - cap
        instances = instances[-cap:]  # the most recent history and what is coming
    for inst in instances:
        yield inst, inst.get("RECURRENCE-ID") or inst.get("DTSTART"), set()
    exdates = master.get("EXDATE")
    for ex in exdates if isinstance(exdates, list) else [exdates] if exdates is not None else []:
        for value in getattr(ex, "dts", []):
            start, _ = to_utc(value.dt, default_tz, set(), _tzid(value))
            if window[0] <= start <= window[1]:
                cancelled = master.copy()
                cancelled["DTSTART"] = value
                cancelled["STATUS"] = "CANCELLED"
                yield cancelled, value, {"exdate"}


def _event_instance(batch: _Batch, obj: dict[str, Any], calname: str, uid: str, event: Any, rid: Any,
                    flags: set[str], default_tz: dt.tzinfo | None) -> None:
    dtstart = event.get("DTSTART")
    if dtstart is None:
        return
    start, all_day = to_utc(dtstart.dt, default_tz, set(), dtstart.params.get("TZID"))
    dtend = event.get("DTEND")
    if dtend is not None:
        end, _ = to_utc(dtend.dt, default_tz, set(), dtend.params.get("TZID"))
    elif event.get("DURATION") is not None:
        end = start + event.decoded("DURATION")
    else:
        end = start + (dt.timedelta(days=1) if all_day else dt.timedelta(0))
    if rid is not None:
        rid_utc, rid_all_day = to_utc(rid.dt, default_tz, set(), _tzid(rid))
        instance_id, recurrence_id = f"{uid}/{_slot(rid_utc, rid_all_day)}", rid_utc.isoformat()
    else:
        instance_id, recurrence_id = uid, None
    created = event.get("CREATED")
    created_at = to_utc(created.dt, default_tz, set(), None)[0] if created is not None else None
    org_raw, org_cn, _ = _vaddress(event.get("ORGANIZER")) if event.get("ORGANIZER") is not None else ("", "", {})
    organizer = addr.normalize_email(org_raw)
    attendees = _ics_attendees(event)
    status = _text(event.get("STATUS")).upper() or "CONFIRMED"
    _store_event(batch, obj, source="ics", calendar_name=calname, uid=uid, instance_id=instance_id,
                 created_day=_day(created_at), recurrence_id=recurrence_id, start=start, end=end, all_day=all_day,
                 title=_text(event.get("SUMMARY")), location=_text(event.get("LOCATION")), organizer=organizer,
                 organizer_name=addr.clean_name(org_cn, organizer), attendees=attendees, status=status,
                 cancelled=status == "CANCELLED", recurring=rid is not None or bool(flags - {"exdate"}))


def _gcal(batch: _Batch, obj: dict[str, Any]) -> None:
    try:
        event = json.loads(obj["raw"] or b"{}")
    except ValueError:
        return
    if not isinstance(event, dict) or not event.get("id"):
        return
    context = json.loads(obj["context"] or "{}")
    tz = context.get("calendar_time_zone")
    start, all_day = event_time(event.get("start"), tz)
    end, _ = event_time(event.get("end"), tz)
    seq = int(obj["seq"])
    attendees = []
    for a in event.get("attendees") or []:
        if not isinstance(a, dict) or a.get("resource"):
            continue
        email = addr.normalize_email(a.get("email"))
        if email is None:
            continue
        if a.get("self"):
            batch.self_evidence(f"email:{email}", "self_calendar_attendee", "Calendar API marks this attendee self",
                                seq)
        attendees.append({"email": email, "name": addr.clean_name(a.get("displayName"), email),
                          "response_status": str(a.get("responseStatus") or "needsAction").lower(),
                          "role": "opt-participant" if a.get("optional") else "req-participant",
                          "raw": str(a.get("email"))})
    org = event.get("organizer") or {}
    organizer = addr.normalize_email(org.get("email"))
    if organizer and org.get("self"):
        batch.self_evidence(f"email:{organizer}", "self_calendar_organizer", "Calendar API marks the organizer self",
                            seq)
    created = event.get("created")
    try:
        created_at = dt.datetime.fromisoformat(str(created).replace("Z", "+00:00")) if created else start
    except ValueError:
        created_at = start
    cancelled = obj["is_tombstone"] or event.get("status") == "cancelled"
    if start is None:
        return
    _store_event(batch, obj, source="gcal_api", calendar_name=context.get("calendar_name") or obj["resource_name"],
                 uid=str(event.get("recurringEventId") or event["id"]), instance_id=str(event["id"]),
                 created_day=_day(created_at), recurrence_id=str((event.get("originalStartTime") or {}).get("dateTime")
                                                                 or "") or None,
                 start=start, end=end or start, all_day=all_day, title=str(event.get("summary") or ""),
                 location=str(event.get("location") or ""), organizer=organizer,
                 organizer_name=addr.clean_name(org.get("displayName"), organizer), attendees=attendees,
                 status=str(event.get("status") or "confirmed").upper(), cancelled=bool(cancelled),
                 recurring=bool(event.get("recurringEventId")))


def _store_event(batch: _Batch, obj: dict[str, Any], *, source: str, calendar_name: str, uid: str, instance_id: str,
                 created_day: str, recurrence_id: str | None, start: dt.datetime, end: dt.datetime, all_day: bool,
                 title: str, location: str, organizer: str | None, organizer_name: str | None,
                 attendees: list[dict[str, Any]], status: str, cancelled: bool, recurring: bool) -> None:
    seq = int(obj["seq"])
    resource_id = obj["resource_id"] or ""
    own = batch.own
    self_response = next((a["response_status"] for a in attendees if f"email:{a['email']}" in own), None)
    batch.out.events.append({
        "user_id": batch.user_id, "ingest_date": batch.ingest_date, "source": source, "calendar_id": resource_id,
        "calendar_name": calendar_name, "event_uid": uid, "instance_id": instance_id,
        "item_key": None, "created_day": created_day, "recurrence_id": recurrence_id,
        "starts_at": start, "ends_at": end, "all_day": all_day, "title": title or None, "location": location or None,
        "organizer": organizer, "organizer_name": organizer_name,
        "attendees": [{k: a[k] for k in ("email", "name", "response_status", "role")} for a in attendees],
        "self_response": self_response, "status": status, "is_cancelled": cancelled, "is_recurring": recurring,
        "fetched_at": batch.fetched_at, "batch_id": batch.batch_id, "seq": seq,
    })
    batch.out.stats["event_instances"] += 1
    sender = f"email:{organizer}" if organizer else None
    item = batch.item(channel="meeting", resource_id=resource_id, resource_name=calendar_name,
                      external_id=instance_id, created_day=created_day, thread_id=uid, occurred_at=start,
                      subject=title, sender=sender, seq=seq)
    if cancelled or self_response == "declined" or (all_day and not attendees):
        batch.tombstone(item)  # no meeting happened (or none with anyone): hide older versions
        batch.out.stats["cancelled_instances" if cancelled else "not_attended"] += 1
        return
    organised = sender is not None and sender in own
    if sender and not organised:
        batch.row(item, participant=sender, address=organizer or "", name=organizer_name, name_source="calendar_cn",
                  role="organizer", direction="attended")
    for a in attendees[:MAX_PARTICIPANTS_PER_ITEM]:
        key = f"email:{a['email']}"
        if key == sender or key in own or addr.is_not_person_domain(a["email"]):
            continue
        batch.row(item, participant=key, address=a["raw"], name=a["name"], name_source="calendar_cn",
                  role="attendee", direction="organised" if organised else "attended", response=a["response_status"])


# --------------------------------------------------------------------------------------------- slack
def _slack_profiles(batch: _Batch, ctx: BatchContext, seq_of: dict[str, int]) -> dict[str, dict[str, Any]]:
    """users.json / users.info profiles -> evidence (Slack id <-> email, phone) and the user's own ids."""
    profiles = {}
    for uid, user in slack_users(ctx).items():
        profile = user.get("profile") if isinstance(user.get("profile"), dict) else {}
        key = f"slack:{uid}"
        name = addr.clean_name(user.get("real_name") or profile.get("real_name") or profile.get("display_name"))
        bot = bool(user.get("is_bot")) or uid == "USLACKBOT"
        profiles[uid] = {"name": name, "bot": bot}
        if bot:
            continue
        seq = seq_of.get(uid, 0)
        email = addr.email_key(profile.get("email"))
        if email:
            batch.evidence(key, email, "slack_profile_email", 1.0, "the Slack profile lists this email", seq, name)
            if email in batch.own:
                batch.self_evidence(key, "self_slack_profile", "the user's own Slack profile (its email is theirs)",
                                    seq)
        phone = addr.phone_e164(profile.get("phone"), batch.limits.phone_region)
        if phone:
            batch.evidence(key, f"phone:{phone}", "slack_profile_phone", 0.9, "the Slack profile lists this phone", seq,
                           name)
        elif name:
            batch.evidence(key, key, "slack_profile_name", 1.0, "the Slack profile's name", seq, name)
    return profiles


def _dm_members(ctx: BatchContext) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for obj in ctx.of_type("slack_channels"):
        if obj.context.get("kind") not in ("dm", "mpim", "group"):
            continue
        try:
            data = json.loads(obj.raw)
        except ValueError:
            continue
        convs = data.get("channels", data) if isinstance(data, dict) else data
        for conv in convs if isinstance(convs, list) else []:
            if isinstance(conv, dict) and conv.get("id") and isinstance(conv.get("members"), list) \
                    and obj.context.get("kind") in ("dm", "mpim"):
                out[str(conv["id"])] = list(dict.fromkeys(str(m) for m in conv["members"]))
    return out


def _slack(batch: _Batch, frame: pl.DataFrame) -> None:
    from yarn_assets.ingest.bronze import to_objects

    ctx = BatchContext(to_objects(frame.filter(pl.col("object_type").is_in(list(context_only())))))
    seq_of: dict[str, int] = {}
    for obj in ctx.of_type("slack_users"):
        for uid in _user_ids(obj.raw):
            seq_of.setdefault(uid, obj.seq)
    profiles = _slack_profiles(batch, ctx, seq_of)
    members = _dm_members(ctx)
    items = _items(frame)
    if items.is_empty():
        return
    raw_text = frame.select("seq", pl.col("raw").cast(pl.Utf8, strict=False).alias("text"))
    extras = raw_text.select(
        "seq",
        pl.col("text").str.extract_all(_MENTION.pattern).alias("mentions"),
        pl.col("text").str.extract(_PARENT.pattern, 1).alias("parent"),
    )
    joined = items.join(extras, on="seq", how="left")
    for it in joined.iter_rows(named=True):
        batch.out.stats["slack_messages"] += 1
        author_id = it["author_id"]
        sender = f"slack:{author_id}" if author_id else None
        item = batch.item(channel="slack", resource_id=it["resource_id"], resource_name=it["resource_name"],
                          external_id=it["external_id"], created_day=_day(it["source_created_at"]),
                          thread_id=it["thread_id"], occurred_at=it["occurred_at"], subject=None, sender=sender,
                          seq=int(it["seq"]), is_bulk=bool(author_id and author_id.startswith("B")),
                          bulk="bot" if author_id and author_id.startswith("B") else None)
        if it["is_deleted"]:
            batch.tombstone(item)
            continue
        if not author_id or profiles.get(author_id, {}).get("bot") or author_id.startswith("B"):
            continue
        if sender not in batch.own:
            batch.row(item, participant=sender, address=author_id, name=profiles.get(author_id, {}).get("name")
                      or it["author"], name_source="slack_profile" if author_id in profiles else "slack_author",
                      role="author", direction="received")
            continue
        targets: list[tuple[str, str]] = [(m, "member") for m in members.get(it["resource_id"], [])]
        targets += [(m.split("|")[0][2:].rstrip(">"), "mention") for m in it["mentions"] or []]
        if it["parent"]:
            targets.append((it["parent"], "parent"))
        seen: set[str] = set()
        for uid, role in targets:
            key = f"slack:{uid}"
            if key in batch.own or key in seen or profiles.get(uid, {}).get("bot"):
                continue
            seen.add(key)
            batch.row(item, participant=key, address=uid, name=profiles.get(uid, {}).get("name"),
                      name_source="slack_profile", role=role, direction="sent")


def _user_ids(raw: bytes) -> list[str]:
    try:
        data = json.loads(raw)
    except ValueError:
        return []
    members = data.get("members", data) if isinstance(data, dict) else data
    return [str(u["id"]) for u in members if isinstance(u, dict) and u.get("id")] if isinstance(members, list) else []
