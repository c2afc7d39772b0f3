"""A fake Slack Web API on loopback, speaking the methods the sync calls (form-encoded POSTs).

State is a tiny workspace: channels (membership of the bot, messages newest-first semantics),
thread replies, users. Message bodies are built from the corpus's real message objects
(texts, subtypes, files, blocks) with fresh ``ts`` values, so volume tests stay realistic.
"""

from __future__ import annotations

import copy
import itertools
import time
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from tests.fakes import corpus
from tests.fakes.loopback import LoopbackServer, Request, Response

BOT_TOKEN = "xoxb-test-0123456789-abcdefSECRET"


@dataclass
class Channel:
    id: str
    name: str
    num_members: int
    is_member: bool = True
    messages: dict[str, dict[str, Any]] = field(default_factory=dict)  # ts -> message
    replies: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)  # thread ts -> ts -> reply


class FakeSlack(LoopbackServer):
    def __init__(self, start_ts: float | None = None) -> None:
        super().__init__("slack")
        self.tokens: dict[str, str] = {BOT_TOKEN: "ok"}
        self.channels: dict[str, Channel] = {}
        self.users = {u["id"]: u for u in corpus.slack_users()}
        self.known_users = sorted(uid for uid, u in self.users.items() if not u.get("is_bot"))
        self.templates = corpus.slack_message_templates()
        self._cycle = itertools.cycle(range(len(self.templates)))
        self._ts = Decimal(str(int(start_ts if start_ts is not None else time.time() - 4 * 86400)))
        self.max_page = 200
        for method in ("auth.test", "conversations.list", "conversations.history", "conversations.replies",
                       "conversations.join", "users.info"):
            self.route("POST", rf"/api/{method.replace('.', '[.]')}", self._wrap(method))

    @property
    def base_url(self) -> str:
        return self.url + "/api/"

    # ------------------------------------------------------------------ workspace building
    def next_ts(self, step: float = 1.0) -> str:
        self._ts += Decimal(str(step))
        return f"{self._ts:.6f}"

    def advance(self, seconds: float) -> None:
        """Move the workspace clock (the next message's ts) forward."""
        self._ts += Decimal(str(seconds))

    def add_channel(self, cid: str, name: str, num_members: int, is_member: bool = True) -> Channel:
        ch = Channel(cid, name, num_members, is_member)
        self.channels[cid] = ch
        return ch

    def post(self, cid: str, text: str | None = None, *, user: str = "U023BECGF", thread_ts: str | None = None,
             subtype: str | None = None, template: bool = False, ts: str | None = None) -> dict[str, Any]:
        ch = self.channels[cid]
        ts = ts or self.next_ts()
        if template:
            msg = copy.deepcopy(self.templates[next(self._cycle)])
            for k in ("reply_count", "replies", "latest_reply", "reply_users", "reply_users_count", "thread_ts",
                      "parent_user_id"):
                msg.pop(k, None)
            if msg.get("subtype") != "bot_message":  # authors the fake's users.info knows
                msg["user"] = self.known_users[int(ts.split(".")[0]) % len(self.known_users)]
        else:
            msg = {"type": "message", "user": user, "text": text or f"message {ts}"}
            if subtype:
                msg["subtype"] = subtype
        if text is not None and template:
            msg["text"] = text
        msg["ts"] = ts
        if thread_ts:
            msg["thread_ts"] = thread_ts
            msg.setdefault("parent_user_id", ch.messages[thread_ts].get("user"))
            ch.replies.setdefault(thread_ts, {})[ts] = msg
        else:
            ch.messages[ts] = msg
        return msg

    def fill(self, cid: str, n: int, *, template: bool = False, every: float = 1.0) -> list[str]:
        """``n`` top-level messages ``every`` seconds apart: plain user messages, or corpus messages."""
        users = self.known_users
        out = []
        for i in range(n):
            self.advance(every - 1.0)
            out.append(self.post(cid, template=True)["ts"] if template
                       else self.post(cid, f"note {i} about the launch plan", user=users[i % len(users)])["ts"])
        return out

    def edit(self, cid: str, ts: str, text: str) -> None:
        ch = self.channels[cid]
        msg = ch.messages.get(ts) or next(r[ts] for r in ch.replies.values() if ts in r)
        msg["text"] = text
        msg["edited"] = {"user": msg.get("user"), "ts": self.next_ts(0.001)}

    def delete(self, cid: str, ts: str) -> None:
        ch = self.channels[cid]
        if ch.replies.get(ts):  # Slack keeps a placeholder for a parent with replies
            ch.messages[ts] = {"type": "message", "subtype": "tombstone", "text": "This message was deleted.",
                               "ts": ts, "user": "USLACKBOT", "hidden": True}
        else:
            ch.messages.pop(ts, None)

    # ------------------------------------------------------------------ API
    def _wrap(self, method: str) -> Any:
        def handler(req: Request, _m: Any) -> Response:
            state = self.tokens.get(req.bearer or "")
            if state is None:
                return Response.json({"ok": False, "error": "invalid_auth"})
            if state != "ok":
                return Response.json({"ok": False, "error": state})
            return getattr(self, "_" + method.replace(".", "_"))(req)

        return handler

    def _auth_test(self, req: Request) -> Response:
        return Response.json({"ok": True, "team": "Test Workspace", "user": "yarnnn-bot", "team_id": "T111",
                              "user_id": "UBOT"})

    def _page(self, items: list[Any], req: Request) -> tuple[list[Any], str | None]:
        limit = min(int(req.param("limit") or 100), self.max_page)
        start = int((req.param("cursor") or "offset:0").split(":")[1] or 0)
        page = items[start:start + limit]
        nxt = f"offset:{start + limit}" if start + limit < len(items) else None
        return page, nxt

    def _conversations_list(self, req: Request) -> Response:
        template = corpus.slack_channel_template()
        chans = []
        for ch in self.channels.values():
            obj = copy.deepcopy(template)
            obj.update({"id": ch.id, "name": ch.name, "name_normalized": ch.name, "num_members": ch.num_members,
                        "is_member": ch.is_member, "is_general": False})
            chans.append(obj)
        page, nxt = self._page(chans, req)
        return Response.json({"ok": True, "channels": page, "response_metadata": {"next_cursor": nxt or ""}})

    def _with_thread_fields(self, ch: Channel, msg: dict[str, Any]) -> dict[str, Any]:
        out = copy.deepcopy(msg)
        replies = ch.replies.get(msg["ts"])
        if replies:
            out["thread_ts"] = msg["ts"]
            out["reply_count"] = len(replies)
            out["latest_reply"] = max(replies, key=Decimal)
            out["reply_users"] = sorted({r.get("user") for r in replies.values() if r.get("user")})
        return out

    def _channel(self, req: Request) -> Channel | Response:
        ch = self.channels.get(req.param("channel") or "")
        if ch is None:
            return Response.json({"ok": False, "error": "channel_not_found"})
        if not ch.is_member:
            return Response.json({"ok": False, "error": "not_in_channel"})
        return ch

    def _conversations_history(self, req: Request) -> Response:
        ch = self._channel(req)
        if isinstance(ch, Response):
            return ch
        oldest = Decimal(req.param("oldest") or "0")
        latest = Decimal(req.param("latest") or "1e12")
        items = sorted((m for ts, m in ch.messages.items() if oldest < Decimal(ts) < latest),
                       key=lambda m: Decimal(m["ts"]), reverse=True)
        page, nxt = self._page([self._with_thread_fields(ch, m) for m in items], req)
        return Response.json({"ok": True, "messages": page, "has_more": nxt is not None,
                              "response_metadata": {"next_cursor": nxt or ""}})

    def _conversations_replies(self, req: Request) -> Response:
        ch = self._channel(req)
        if isinstance(ch, Response):
            return ch
        ts = req.param("ts") or ""
        if ts not in ch.messages:
            return Response.json({"ok": False, "error": "thread_not_found"})
        oldest = Decimal(req.param("oldest") or "0")
        replies = sorted((r for rts, r in ch.replies.get(ts, {}).items() if Decimal(rts) > oldest),
                         key=lambda m: Decimal(m["ts"]))
        page, nxt = self._page(replies, req)
        if not req.param("cursor"):
            page = [self._with_thread_fields(ch, ch.messages[ts]), *page]
        return Response.json({"ok": True, "messages": page, "has_more": nxt is not None,
                              "response_metadata": {"next_cursor": nxt or ""}})

    def _conversations_join(self, req: Request) -> Response:
        ch = self.channels.get(req.param("channel") or "")
        if ch is None:
            return Response.json({"ok": False, "error": "channel_not_found"})
        ch.is_member = True
        return Response.json({"ok": True, "channel": {"id": ch.id, "name": ch.name}})

    def _users_info(self, req: Request) -> Response:
        user = self.users.get(req.param("user") or "")
        if user is None:
            return Response.json({"ok": False, "error": "user_not_found"})
        return Response.json({"ok": True, "user": user})
