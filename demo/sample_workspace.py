"""A small, realistic sample workspace in the REAL export formats (generated, never downloaded).

Per user: a Slack workspace export zip (users.json, channels.json, day files), a Gmail Takeout
mbox (X-Gmail-Labels, X-GM-THRID), a Google Calendar .ics (VTIMEZONEs, a weekly series, a
meeting in the next 24 h with external attendees) and a Notion Markdown & CSV export (a zip
holding ``Export-<uuid>-Part-1.zip``). Everything is dated relative to ``now`` and byte-for-byte
deterministic for a given ``now`` (zip timestamps included), so re-generating is a no-op import.

Each user's content carries a unique marker (``ALICE-CANARY-7Q2``…) in several items on every
platform: isolation tests grep prompts and deliverables for the other users' markers.
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import io
import json
import uuid
import zipfile
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.utils import format_datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import icalendar


@dataclass(frozen=True)
class SampleUser:
    id: str
    email: str
    name: str
    tier: str
    timezone: str
    marker: str = ""  # unique string that appears in several of this user's items
    platforms: tuple[str, ...] = ("slack", "gmail", "calendar", "notion")


@dataclass(frozen=True)
class SampleExport:
    user_id: str
    provider: str
    path: Path


@dataclass
class SampleWorkspace:
    users: list[SampleUser]
    exports: list[SampleExport]
    facts: dict[str, dict[str, Any]] = field(default_factory=dict)  # per user: what tests may assert

    def exports_of(self, user_id: str) -> list[SampleExport]:
        return [e for e in self.exports if e.user_id == user_id]


USERS = [
    SampleUser("alice", "alice@northwind.example", "Alice Moreau", "pro", "Europe/Paris", "ALICE-CANARY-7Q2"),
    SampleUser("bob", "bob@contoso.example", "Bob Okafor", "starter", "America/New_York", "BOB-CANARY-4K9"),
    SampleUser("carol", "carol@fabrikam.example", "Carol Tanaka", "free", "Asia/Tokyo", "CAROL-CANARY-2X5",
               platforms=("gmail", "calendar")),
]

# --------------------------------------------------------------------------- scenarios (per user)

SCENARIOS: dict[str, dict[str, Any]] = {
    "alice": {
        "workspace": "Northwind",
        "colleagues": [("U0A1MARC", "marc", "Marc Dubois", "Marc"), ("U0A2PRIY", "priya", "Priya Shah", ""),
                       ("U0A3LEA0", "lea", "Léa Martin", "Léa")],
        "channels": [("C0A1GENR", "general", "Company-wide announcements"),
                     ("C0A2LNCH", "launch-q4", "Q4 launch of Northwind Atlas")],
        "externals": [("Dana Lee", "dana@partnerco.example"), ("Sam Ito", "sam@partnerco.example"),
                      ("Jordan Reyes", "jordan@acme-retail.example")],
        "project": "Atlas launch",
        "meeting_tz": "America/New_York",
        "second_tz": "Asia/Tokyo",
        "series": ("Launch stand-up", "MO", (9, 30)),
        "ask": ("review the pricing deck before Thursday?", "Pricing deck v3", "deck"),
        "review": "Reviewed: slide 7 needs the updated numbers &amp; a source.",
        "decision": "go/no-go date",
        "notion_page": "Q4 Launch Plan",
        "database": "Launch Tasks",
    },
    "bob": {
        "workspace": "Contoso",
        "colleagues": [("U0B1ANA0", "ana", "Ana Souza", "Ana"), ("U0B2WEI0", "wei", "Wei Chen", ""),
                       ("U0B3TOM0", "tom", "Tom Becker", "Tom B.")],
        "channels": [("C0B1GENR", "general", "Contoso everyone"),
                     ("C0B2MIGR", "ops-migration", "Warehouse migration to the new cluster")],
        "externals": [("Rita Gomez", "rita@vendorly.example"), ("Ken Park", "ken@vendorly.example"),
                      ("Olu Ade", "olu@bigbank.example")],
        "project": "warehouse migration",
        "meeting_tz": "Europe/London",
        "second_tz": "America/Los_Angeles",
        "series": ("Migration check-in", "TU", (10, 0)),
        "ask": ("sign off the cutover runbook by Wednesday?", "Cutover runbook", "runbook"),
        "review": "Signed off, but step 12 needs a rollback owner &amp; a timeout.",
        "decision": "cutover weekend",
        "notion_page": "Data Migration Runbook",
        "database": "Migration Tickets",
    },
    "carol": {
        "workspace": "Fabrikam",
        "colleagues": [],
        "channels": [],
        "externals": [("Mina Sato", "mina@studio-sato.example"), ("Leo Grant", "leo@grant-media.example")],
        "project": "brand refresh",
        "meeting_tz": "Asia/Tokyo",
        "second_tz": "Europe/Berlin",
        "series": ("Client design review", "TH", (14, 0)),
        "ask": ("", "", ""),
        "review": "",
        "decision": "",
        "notion_page": "",
        "database": "",
    },
}

_WEEKDAYS = ["MO", "TU", "WE", "TH", "FR", "SA", "SU"]


def _stable_id(*parts: str) -> str:
    return hashlib.sha1("|".join(parts).encode()).hexdigest()


def _zip(members: dict[str, bytes], now: dt.datetime) -> bytes:
    """A deterministic zip: sorted members, fixed timestamps."""
    buf = io.BytesIO()
    stamp = (max(now.year, 1980), now.month, now.day, 0, 0, 0)
    with zipfile.ZipFile(buf, "w") as zf:
        for name in sorted(members):
            info = zipfile.ZipInfo(name, date_time=stamp)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            zf.writestr(info, members[name])
    return buf.getvalue()


def _day(moment: dt.datetime) -> str:
    """Notion's date style, "November 23, 2026" (portable: no %-d)."""
    return f"{moment:%B} {moment.day}, {moment.year}"


def _at(now: dt.datetime, tz: str, days: int, hour: int, minute: int = 0) -> dt.datetime:
    """``days`` from now at a local wall-clock time in ``tz`` (aware)."""
    local = now.astimezone(ZoneInfo(tz)) + dt.timedelta(days=days)
    return local.replace(hour=hour, minute=minute, second=0, microsecond=0)


# --------------------------------------------------------------------------- Slack


def _slack_ts(moment: dt.datetime, seq: int) -> str:
    return f"{int(moment.timestamp())}.{seq:06d}"


def _slack_export(user: SampleUser, sc: dict[str, Any], now: dt.datetime, out: Path) -> tuple[Path, dict[str, Any]]:
    me_id = "U0" + user.id.upper()[:3] + "ME0"
    people = [(me_id, user.id, user.name, user.name.split()[0]), *sc["colleagues"]]
    members = [
        {
            "id": uid, "team_id": "T0" + sc["workspace"].upper()[:6], "name": handle, "deleted": False,
            "real_name": real, "tz": user.timezone, "is_bot": False,
            "profile": {"real_name": real, "display_name": display, "email": f"{handle}@{user.email.split('@')[1]}"},
        }
        for uid, handle, real, display in people
    ]
    members.append({"id": "U0DEPLOYB", "name": "deploybot", "deleted": False, "is_bot": True,
                    "profile": {"real_name": "Deploy Bot", "display_name": "", "bot_id": "B0DEPLOY1"}})
    (c_gen, gen, _), (c_proj, proj, _) = sc["channels"]
    channels = [
        {"id": cid, "name": name, "created": str(int((now - dt.timedelta(days=400)).timestamp())),
         "creator": me_id, "is_archived": False, "is_general": name == "general",
         "members": [p[0] for p in people], "topic": {"value": "", "creator": "", "last_set": "0"},
         "purpose": {"value": purpose, "creator": me_id, "last_set": "0"}}
        for cid, name, purpose in sc["channels"]
    ]
    c1, c2, c3 = (p[0] for p in sc["colleagues"])
    marker, project = user.marker, sc["project"]
    ask, label, slug = sc["ask"]
    t = lambda days, hours: now - dt.timedelta(days=days, hours=hours)  # noqa: E731
    parent = _slack_ts(t(1, 5), 10)
    script: list[tuple[str, dt.datetime, dict[str, Any]]] = [
        (proj, t(4, 2), {"user": c3, "subtype": "channel_join", "text": f"<@{c3}> has joined the channel"}),
        (gen, t(3, 6), {"user": me_id, "text": f"Welcome <@{c3}> to the {project} team :tada:"}),
        (proj, t(3, 1), {"user": c1, "text": f"Kick-off notes for the {project} are in Notion ({marker})."}),
        (proj, t(2, 4), {"user": c2, "text": f"<@{me_id}> can you {ask}? "
                                             f"<https://docs.{user.email.split('@')[1]}/{slug}|{label}>"}),
        (proj, t(2, 3), {"user": me_id, "text": sc["review"],
                         "edited": {"user": me_id, "ts": _slack_ts(t(2, 2), 0)}}),
        (proj, t(1, 5), {"user": c1, "text": f"Decision needed on the {sc['decision']} — thread here 🧵",
                         "thread_ts": parent, "reply_count": 2, "reply_users": [c2, me_id],
                         "replies": [{"user": c2}, {"user": me_id}]}),
        (proj, t(1, 4), {"user": c2, "text": "I vote for the later date, QA needs two more days.",
                         "thread_ts": parent, "parent_user_id": c1}),
        (proj, t(1, 3), {"user": me_id,
                         "text": f"Agreed — moving the {sc['decision']} to Friday. Tracking as {marker}.",
                         "thread_ts": parent, "parent_user_id": c1,
                         "reactions": [{"name": "+1", "users": [c1, c2], "count": 2}]}),
        (proj, t(0, 6), {"subtype": "bot_message", "bot_id": "B0DEPLOY1", "username": "deploybot", "text": "",
                         "attachments": [{"fallback": "Deploy #412 succeeded", "color": "2eb886",
                                          "text": "Deploy #412 to staging succeeded"}]}),
        (gen, t(0, 3), {"user": c2, "text": f"Reminder: all-hands tomorrow, questions in <#{c_proj}|{proj}>."}),
        (proj, t(0, 1), {"user": c3, "text": f"<@{me_id}> the partner asked for the {project} timeline, "
                                             "can you send it today?"}),
    ]
    files: dict[str, list[dict[str, Any]]] = {}
    for i, (channel, moment, fields) in enumerate(script):
        ts = parent if fields.get("thread_ts") == parent and "reply_count" in fields else _slack_ts(moment, 100 + i)
        message = {"type": "message", **fields, "ts": ts}
        day = dt.datetime.fromtimestamp(int(ts.split(".")[0]), dt.UTC).date().isoformat()
        files.setdefault(f"{channel}/{day}.json", []).append(message)
    members_json = {
        "users.json": json.dumps(members, indent=4, ensure_ascii=False).encode(),
        "channels.json": json.dumps(channels, indent=4, ensure_ascii=False).encode(),
        "integration_logs.json": json.dumps([{"user_id": me_id, "user_name": user.id, "service_type": "Deploy Bot",
                                              "change_type": "added", "date": str(int(t(30, 0).timestamp()))}],
                                            indent=4).encode(),
    }
    for name, messages in files.items():
        members_json[name] = json.dumps(sorted(messages, key=lambda m: m["ts"]), indent=4,
                                        ensure_ascii=False).encode()
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"{sc['workspace']} Slack export.zip"
    path.write_bytes(_zip(members_json, now))
    facts = {"thread_ts": parent, "thread_replies": 2, "channel_ids": [c_gen, c_proj], "me_slack_id": me_id,
             "edited_text": sc["review"].replace("&amp;", "&")}
    return path, facts


# --------------------------------------------------------------------------- Gmail Takeout mbox


def _mbox(user: SampleUser, sc: dict[str, Any], now: dt.datetime, out: Path) -> tuple[Path, dict[str, Any]]:
    domain = user.email.split("@")[1]
    (x1_name, x1), (x2_name, x2) = sc["externals"][:2]
    colleague = (sc["colleagues"][0][2], f"{sc['colleagues'][0][1]}@{domain}") if sc["colleagues"] else (
        "Ops Desk", f"ops@{domain}")
    me = (user.name, user.email)
    project, marker = sc["project"], user.marker
    ago = lambda days, hours=0: now - dt.timedelta(days=days, hours=hours)  # noqa: E731
    threads: list[dict[str, Any]] = [
        {"subject": f"Timeline for the {project}", "labels": ["Inbox", "Important"], "messages": [
            (x1_name, x1, [me], ago(2, 5), f"Hi {user.name.split()[0]},\n\nCould you share the current timeline for "
             f"the {project}? Our board meets next week.\n\nThanks,\n{x1_name}", False),
            (*me, [(x1_name, x1)], ago(2, 1), f"Hi {x1_name.split()[0]},\n\nSure — draft attached by Friday. "
             f"Internal reference {marker}.\n\nBest,\n{user.name}", False),
            (x1_name, x1, [me], ago(0, 4), "Great, thank you! Could we also get the pricing assumptions?", False),
        ]},
        {"subject": "Contract renewal — action needed", "labels": ["Inbox", "Important", "Unread"], "messages": [
            (x2_name, x2, [me], ago(5, 3), f"Hello {user.name.split()[0]},\n\nOur contract renews at the end of the "
             "month. Please confirm the seat count and the billing contact by Friday.\n\nRegards,\n" + x2_name, False),
        ]},
        {"subject": f"Weekly digest: {sc['workspace']} product news", "labels": ["Category Updates", "Opened"],
         "messages": [("Product Updates", f"news@updates.{domain}", [me], ago(1, 8),
                       "<html><body><h1>This week</h1><p>Three <b>new</b> dashboards shipped.</p>"
                       "<p><a href='https://example.com/news'>Read more</a></p></body></html>", True)]},
        {"subject": f"Notes from today ({marker})", "labels": ["Sent"], "messages": [
            (*me, [colleague], ago(0, 2), f"Quick notes: the {project} risks are tracked in Notion; "
             f"please add yours. {marker}", False),
        ]},
    ]
    chunks: list[bytes] = []
    unanswered: str | None = None
    for ti, thread in enumerate(threads):
        thrid = 1_780_000_000_000_000_000 + int(_stable_id(user.id, "thread", str(ti))[:12], 16)
        refs: list[str] = []
        for mi, (from_name, from_addr, to, sent, body, is_html) in enumerate(thread["messages"]):
            msg = EmailMessage()
            mid = f"<{_stable_id(user.id, str(ti), str(mi))[:20]}@mail.{from_addr.split('@')[1]}>"
            msg["From"] = f"{from_name} <{from_addr}>"
            msg["To"] = ", ".join(f"{n} <{a}>" for n, a in to)
            msg["Subject"] = ("Re: " if mi else "") + thread["subject"]
            msg["Date"] = format_datetime(sent.astimezone(ZoneInfo(user.timezone)))
            msg["Message-ID"] = mid
            if refs:
                msg["In-Reply-To"] = refs[-1]
                msg["References"] = " ".join(refs)
            msg["X-GM-THRID"] = str(thrid)
            if is_html:  # the newsletter: list mail, never a contact
                msg["List-Unsubscribe"] = f"<mailto:unsubscribe@updates.{domain}>"
            labels = thread["labels"] if from_addr != user.email else ["Sent"]
            msg["X-Gmail-Labels"] = ",".join([*labels, "Opened"] if "Opened" not in labels else labels)
            if is_html:
                msg.set_content(body, subtype="html")
            else:
                msg.set_content(body)
            refs.append(mid)
            msgid = thrid + mi
            utc = sent.astimezone(dt.UTC)
            envelope = f"From {msgid}@xxx {utc:%a %b %d %H:%M:%S} +0000 {utc.year}\n"
            chunks.append(envelope.encode() + msg.as_bytes().replace(b"\nFrom ", b"\n>From ") + b"\n")
            if ti == 1:
                unanswered = mid.strip("<>")
    out.mkdir(parents=True, exist_ok=True)
    path = out / "All mail Including Spam and Trash.mbox"
    path.write_bytes(b"".join(chunks))
    return path, {"unanswered_message_id": unanswered, "messages": sum(len(t["messages"]) for t in threads)}


# --------------------------------------------------------------------------- Calendar .ics


def _event(uid: str, summary: str, start: dt.datetime | dt.date, end: dt.datetime | dt.date, *, now: dt.datetime,
           organizer: tuple[str, str], attendees: list[tuple[str, str]], description: str = "",
           location: str = "", created: dt.datetime, rrule: dict[str, Any] | None = None,
           status: str = "CONFIRMED") -> icalendar.Event:
    ev = icalendar.Event()
    ev.add("uid", uid)
    ev.add("summary", summary)
    ev.add("dtstart", start)
    ev.add("dtend", end)
    ev.add("dtstamp", now.astimezone(dt.UTC))
    ev.add("created", created.astimezone(dt.UTC))
    ev.add("last-modified", created.astimezone(dt.UTC))
    ev.add("status", status)
    org = icalendar.vCalAddress(f"mailto:{organizer[1]}")
    org.params["CN"] = icalendar.vText(organizer[0])
    ev.add("organizer", org)
    for name, addr in attendees:
        att = icalendar.vCalAddress(f"mailto:{addr}")
        att.params["CN"] = icalendar.vText(name)
        att.params["PARTSTAT"] = icalendar.vText("ACCEPTED")
        ev.add("attendee", att)
    if description:
        ev.add("description", description)
    if location:
        ev.add("location", location)
    if rrule:
        ev.add("rrule", rrule)
    return ev


def _ics(user: SampleUser, sc: dict[str, Any], now: dt.datetime, out: Path) -> tuple[Path, dict[str, Any]]:
    domain = user.email.split("@")[1]
    me = (user.name, user.email)
    team = [(c[2], f"{c[1]}@{domain}") for c in sc["colleagues"]] or [("Studio Assistant", f"studio@{domain}")]
    externals = sc["externals"]
    uid = lambda name: f"{_stable_id(user.id, name)[:26]}@google.com"  # noqa: E731
    cal = icalendar.Calendar()
    cal.add("prodid", "-//Google Inc//Google Calendar 70.9054//EN")
    cal.add("version", "2.0")
    cal.add("calscale", "GREGORIAN")
    cal.add("method", "PUBLISH")
    cal.add("x-wr-calname", user.email)
    cal.add("x-wr-timezone", user.timezone)

    title, byday, (hh, mm) = sc["series"]
    weekday = _WEEKDAYS.index(byday)
    first = _at(now, user.timezone, -42, hh, mm)
    first += dt.timedelta(days=(weekday - first.weekday()) % 7)
    cal.add_component(_event(
        uid("series"), title, first, first + dt.timedelta(minutes=30), now=now, organizer=me,
        attendees=[me, *team], description=f"Weekly {sc['project']} sync. Notes: {user.marker}",
        location="Room 4 / Meet", created=first - dt.timedelta(days=3), rrule={"freq": "weekly", "byday": [byday]},
    ))
    # The meeting in the next 24 h with >= 2 external attendees, in another time zone.
    soon = (now + dt.timedelta(hours=5)).astimezone(ZoneInfo(sc["meeting_tz"]))
    soon = soon.replace(minute=0 if soon.minute < 30 else 30, second=0, microsecond=0)
    cal.add_component(_event(
        uid("external"), f"{sc['project'].capitalize()} review with partners", soon, soon + dt.timedelta(hours=1),
        now=now, organizer=externals[0], attendees=[me, *externals],
        description=f"Agenda: status of the {sc['project']}, open questions, next steps. Ref {user.marker}",
        location="https://meet.example/abc-defg-hij", created=now - dt.timedelta(days=6),
    ))
    offsite = (now.astimezone(ZoneInfo(user.timezone)) + dt.timedelta(days=3)).date()
    cal.add_component(_event(
        uid("allday"), f"{sc['workspace']} offsite", offsite, offsite + dt.timedelta(days=1), now=now,
        organizer=me, attendees=[me, *team], created=now - dt.timedelta(days=20),
    ))
    far = _at(now, sc["second_tz"], 2, 9)
    cal.add_component(_event(
        uid("faraway"), f"Call with the {sc['second_tz'].split('/')[-1].replace('_', ' ')} team", far,
        far + dt.timedelta(minutes=45), now=now, organizer=me, attendees=[me, externals[-1]],
        created=now - dt.timedelta(days=9),
    ))
    past = _at(now, "UTC", -2, 15)
    cal.add_component(_event(
        uid("past"), "Pricing workshop", past, past + dt.timedelta(hours=2), now=now, organizer=me,
        attendees=[me, *team], description="Outcome: keep three tiers.", created=now - dt.timedelta(days=14),
    ))
    cancelled = _at(now, user.timezone, 1, 16)
    cal.add_component(_event(
        uid("cancelled"), "Budget sync", cancelled, cancelled + dt.timedelta(minutes=30), now=now, organizer=me,
        attendees=[me, *team], created=now - dt.timedelta(days=4), status="CANCELLED",
    ))
    cal.add_missing_timezones()
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"{user.email}.ics"
    path.write_bytes(cal.to_ical())
    return path, {"series_uid": uid("series"), "external_meeting_uid": uid("external"),
                  "external_meeting_start": soon.astimezone(dt.UTC), "cancelled_uid": uid("cancelled")}


# --------------------------------------------------------------------------- Notion export


def _notion(user: SampleUser, sc: dict[str, Any], now: dt.datetime, out: Path) -> tuple[Path, dict[str, Any]]:
    pid = lambda name: _stable_id(user.id, "notion", name)[:32]  # noqa: E731
    export = f"Export-{uuid.UUID(_stable_id(user.id, 'export')[:32])}"
    project, marker = sc["project"], user.marker
    page, db = sc["notion_page"], sc["database"]
    page_id, sub_id, notes_id, db_id = pid(page), pid("risks"), pid("notes"), pid(db)
    owners = [c[2] for c in sc["colleagues"]] or [user.name]
    q = lambda text: text.replace(" ", "%20")  # noqa: E731
    files: dict[str, bytes] = {}
    files[f"{export}/{page} {page_id}.md"] = (
        f"# {page}\n\n## 🎯 Goal\n\nShip the {project} with the partners by the end of the quarter.\n\n"
        f"---\n\n- [x]  Agree on scope\n- [ ]  Confirm the go/no-go date\n- [ ]  \n\n"
        f"See [Risks]({q(page)}%20{page_id}/{q('Risks')}%20{sub_id}.md) and the "
        f"[partner brief](https://wiki.example/{user.id}/brief).\n\n**Tracking code:** {marker}\n"
    ).encode()
    files[f"{export}/{page} {page_id}/Risks {sub_id}.md"] = (
        f"# Risks\n\n1. QA capacity is short by two days.\n2. Pricing sign-off pending — owner {owners[0]}.\n"
    ).encode()
    files[f"{export}/Meeting notes {notes_id}.md"] = (
        f"# Meeting notes\n\n### {_day(now - dt.timedelta(days=1))}\n\n- Partners want the timeline "
        f"this week\n- Decision: go/no-go moves to Friday ({marker})\n"
    ).encode()
    rows = [
        ("Draft timeline", "In progress", owners[0], now + dt.timedelta(days=1)),
        ("Pricing sign-off", "Blocked", owners[-1], now + dt.timedelta(days=3)),
        ("QA plan", "Done", owners[0], now - dt.timedelta(days=2)),
        (f"Partner brief {marker}", "Not started", user.name, now + dt.timedelta(days=6)),
    ]
    plain, full = io.StringIO(), io.StringIO()
    w_plain, w_full = csv.writer(plain, lineterminator="\r\n"), csv.writer(full, lineterminator="\r\n")
    w_plain.writerow(["Name", "Status", "Owner", "Due"])
    w_full.writerow(["Name", "Status", "Owner", "Due", "Created time"])
    for i, (name, status, owner, due) in enumerate(rows):
        due_s = _day(due)
        created = (now - dt.timedelta(days=10 - i)).astimezone(dt.UTC)
        w_plain.writerow([name, status, owner, due_s])
        w_full.writerow([name, status, owner, due_s, f"{_day(created)} {created.hour % 12 or 12}:{created:%M %p}"])
        body = f"# {name}\n\nStatus: {status}\nOwner: {owner}\nDue: {due_s}\n"
        if i == 1:
            body += f"\nBlocked on finance; escalate if not signed by {due_s}.\n"
        files[f"{export}/{db} {db_id}/{name} {pid('row' + str(i))}.md"] = body.encode()
    files[f"{export}/{db} {db_id}.csv"] = ("\ufeff" + plain.getvalue()).encode()
    files[f"{export}/{db} {db_id}_all.csv"] = ("\ufeff" + full.getvalue()).encode()
    inner = _zip(files, now)
    outer = _zip({f"{export}-Part-1.zip": inner}, now)
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"Notion export {user.id}.zip"
    path.write_bytes(outer)
    return path, {"page_id": str(uuid.UUID(page_id)), "database_id": str(uuid.UUID(db_id)), "rows": len(rows)}


# --------------------------------------------------------------------------- entry point

_BUILDERS = {
    "slack": ("slack_export", _slack_export, "slack"),
    "gmail": ("mbox", _mbox, "mail"),
    "calendar": ("ics", _ics, "calendar"),
    "notion": ("notion_export", _notion, "notion"),
}


def generate_workspace(root: Path, now: dt.datetime) -> SampleWorkspace:
    """Write every user's export files under ``root/<user>/<platform>/`` and describe them."""
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    now = now.astimezone(dt.UTC).replace(microsecond=0)
    exports: list[SampleExport] = []
    facts: dict[str, dict[str, Any]] = {}
    for user in USERS:
        sc = SCENARIOS[user.id]
        facts[user.id] = {"marker": user.marker}
        for platform in user.platforms:
            provider, build, folder = _BUILDERS[platform]
            path, platform_facts = build(user, sc, now, root / user.id / folder)
            exports.append(SampleExport(user.id, provider, path))
            facts[user.id][platform] = platform_facts
    return SampleWorkspace(users=list(USERS), exports=exports, facts=facts)
