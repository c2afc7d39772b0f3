"""Slack: channel history, threads, deletions and edits into bronze ``slack_api_message`` objects.

The original's rules, kept: 200 messages per page, at most 1000 on a channel's first sync and
500 per incremental sync, threads with ``reply_count >= 2`` expanded via conversations.replies
(parent skipped) at most 20 per channel per sync, system subtypes filtered, author names from
users.info (cached), a ``not_in_channel`` error joins once and retries.

What the original (and every peer) missed, added here:

* **Replies to older threads.** Each incremental sync re-reads a short lookback (24 h before the
  cursor), so parents there whose ``latest_reply`` is newer than what we expanded get their new
  replies; parents older than that stay on a watch list (7 days of activity) and the most
  recently active few are rechecked per sync.
* **Edits and deletions.** Messages of the lookback window are fingerprinted (text + edit time);
  a changed fingerprint lands a new version, a message that vanished from a fully covered
  window lands a tombstone, and so do the ``tombstone`` stand-ins Slack leaves for deleted parents.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from yarn_assets.ingest.api_errors import NotFound
from yarn_assets.ingest.fetch import Prior, Resource, ResourceResult, dumps
from yarn_assets.ingest.objects import RawObject
from yarn_assets.ingest.platforms.slack.client import SlackApi
from yarn_assets.ingest.platforms.slack.normalize import FILTERED_SUBTYPES
from yarn_assets.ingest.platforms.slack.normalize import ts_to_datetime as ts_datetime

#: System subtypes never stored (yarnnn-original.md §2): the export normalizer's list, so both paths agree.
SKIP_SUBTYPES = FILTERED_SUBTYPES
USERS_ROW = "__users__"
_MENTION = re.compile(r"<@([UW][A-Z0-9]+)(?:\|[^>]*)?>")


@dataclass(frozen=True)
class SlackLimits:
    first_sync: int = 1000
    incremental: int = 500
    page_size: int = 200
    threads_per_channel: int = 20
    replies_per_thread: int = 1000
    lookback: dt.timedelta = dt.timedelta(hours=24)
    lookback_max_messages: int = 1000
    thread_watch: dt.timedelta = dt.timedelta(days=7)
    thread_rechecks: int = 5
    watched_threads_kept: int = 200
    user_cache_ttl: dt.timedelta = dt.timedelta(days=7)


def _d(ts: str | None) -> Decimal:
    try:
        return Decimal(str(ts))
    except (InvalidOperation, TypeError):
        return Decimal(0)


def _ts_minus(ts: str, delta: dt.timedelta) -> str:
    return f"{_d(ts) - Decimal(int(delta.total_seconds())):.6f}"


def fingerprint(message: dict[str, Any]) -> str:
    edited = (message.get("edited") or {}).get("ts") or ""
    files = ",".join(str(f.get("id", "")) for f in message.get("files") or [] if isinstance(f, dict))
    text = f"{message.get('subtype') or ''}\x1f{message.get('text') or ''}\x1f{edited}\x1f{files}"
    return hashlib.sha1(text.encode("utf-8")).hexdigest()[:16]


def _minimal_user(user: dict[str, Any]) -> dict[str, Any]:
    profile = user.get("profile") or {}
    return {
        "id": user.get("id"), "name": user.get("name"), "real_name": user.get("real_name"),
        "profile": {"display_name": profile.get("display_name"), "real_name": profile.get("real_name")},
        "is_bot": bool(user.get("is_bot")), "deleted": bool(user.get("deleted")),
    }


class SlackFetcher:
    platform = "slack"
    provider = "slack_api"

    def __init__(self, api: SlackApi, limits: SlackLimits | None = None) -> None:
        self.api = api
        self.limits = limits or SlackLimits()
        self.users: dict[str, dict[str, Any]] = {}
        self._users_dirty = False

    # ------------------------------------------------------------------ landscape
    def landscape(self) -> list[Resource]:
        out: list[Resource] = []
        cursor: str | None = None
        for _ in range(50):
            data = self.api.conversations_list(cursor=cursor)
            for ch in data.get("channels") or []:
                if ch.get("is_archived") or ch.get("is_im") or ch.get("is_mpim"):
                    continue
                out.append(Resource(
                    id=str(ch["id"]), name=str(ch.get("name") or ch["id"]), type="channel",
                    metadata={"num_members": int(ch.get("num_members") or 0), "is_private": bool(ch.get("is_private")),
                              "is_member": bool(ch.get("is_member"))},
                ))
            cursor = (data.get("response_metadata") or {}).get("next_cursor") or None
            if not cursor:
                break
        return out

    # ------------------------------------------------------------------ users
    def prepare(self, selected: list[Resource], priors: dict[str, Prior], now: dt.datetime) -> None:
        cached = priors.get(USERS_ROW)
        self.users = dict((cached.state.get("users") if cached else None) or {})
        self._now = now

    def _resolve(self, user_ids: set[str]) -> list[dict[str, Any]]:
        out = []
        for uid in sorted(u for u in user_ids if u):
            entry = self.users.get(uid)
            stale = True
            if entry:
                fetched = dt.datetime.fromisoformat(entry.get("fetched_at", "1970-01-01T00:00:00+00:00"))
                stale = self._now - fetched > self.limits.user_cache_ttl
            if stale:
                try:
                    user = _minimal_user(self.api.users_info(uid).get("user") or {"id": uid})
                except NotFound:
                    user = {"id": uid, "unresolved": True}
                entry = {"user": user, "fetched_at": self._now.isoformat()}
                self.users[uid] = entry
                self._users_dirty = True
            out.append(entry["user"])
        return out

    def finish(self) -> dict[str, tuple[str | None, dict[str, Any]]]:
        if not self._users_dirty:
            return {}
        return {USERS_ROW: (None, {"users": self.users})}

    # ------------------------------------------------------------------ fetch
    def _history(self, channel: Resource, oldest: str | None, limit: int, cursor: str | None,
                 result: ResourceResult) -> tuple[list[dict[str, Any]], bool, bool]:
        """(messages newest first, capped by the new-message limit, window read completely)."""
        messages: list[dict[str, Any]] = []
        new = reread = 0
        page: str | None = None
        joined = False
        while True:
            try:
                data = self.api.history(channel.id, oldest=oldest, cursor=page,
                                        limit=max(1, min(self.limits.page_size, limit - new)))
            except NotFound as exc:
                if "not_in_channel" in str(exc) and not joined:
                    self.api.join(channel.id)
                    joined = True
                    result.notes.append("joined the channel (not_in_channel)")
                    continue
                raise
            for m in data.get("messages") or []:
                messages.append(m)
                if cursor is None or _d(m.get("ts")) > _d(cursor):
                    new += 1
                else:
                    reread += 1
                if new >= limit:
                    return messages, True, False
                if reread >= self.limits.lookback_max_messages:
                    result.notes.append(f"lookback re-read stopped at {reread} messages")
                    return messages, False, False
            page = (data.get("response_metadata") or {}).get("next_cursor") or None
            if not page or not data.get("has_more", True):
                return messages, False, True

    def _replies(self, channel: Resource, parent_ts: str, after: str | None) -> tuple[dict[str, Any] | None,
                                                                                      list[dict[str, Any]]]:
        parent: dict[str, Any] | None = None
        replies: list[dict[str, Any]] = []
        page: str | None = None
        while len(replies) < self.limits.replies_per_thread:
            data = self.api.replies(channel.id, parent_ts, oldest=after, cursor=page, limit=self.limits.page_size)
            for r in data.get("messages") or []:
                if r.get("ts") == parent_ts:
                    parent = r
                elif after is None or _d(r.get("ts")) > _d(after):
                    replies.append(r)
            page = (data.get("response_metadata") or {}).get("next_cursor") or None
            if not page or not data.get("has_more", True):
                break
        return parent, replies[: self.limits.replies_per_thread]

    def _object(self, channel: Resource, m: dict[str, Any], *, reply_of: str | None = None) -> RawObject:
        context: dict[str, Any] = {"channel_id": channel.id, "channel_name": channel.name}
        if reply_of:
            context.update({"thread_ts": reply_of, "is_reply": True})
        return RawObject(object_type="slack_api_message", external_id=str(m["ts"]), raw=dumps(m),
                         resource_id=channel.id, resource_name=channel.name, context=context)

    def _tombstone(self, channel: Resource, ts: str, reason: str) -> RawObject:
        return RawObject(object_type="slack_api_message", external_id=ts,
                         raw=dumps({"ts": ts, "deleted": True, "reason": reason}),
                         resource_id=channel.id, resource_name=channel.name,
                         context={"channel_id": channel.id, "channel_name": channel.name, "reason": reason},
                         is_tombstone=True)

    def fetch(self, resource: Resource, prior: Prior, now: dt.datetime) -> ResourceResult:
        lim = self.limits
        result = ResourceResult(resource)
        cursor = prior.cursor
        first = cursor is None
        window_start = None if first else _ts_minus(cursor, lim.lookback)  # type: ignore[arg-type]
        messages, capped, complete = self._history(resource, window_start,
                                                   lim.first_sync if first else lim.incremental, cursor, result)
        result.capped = capped
        result.bump("fetched", len(messages))
        prior_recent: dict[str, str] = dict(prior.state.get("recent") or {})
        threads: dict[str, dict[str, Any]] = dict(prior.state.get("threads") or {})
        fetched_ts: set[str] = set()
        users: set[str] = set()
        objects: list[RawObject] = []
        seen_fp: dict[str, str] = {}
        new_cursor = cursor
        for m in messages:
            ts = str(m.get("ts") or "")
            if not ts:
                continue
            fetched_ts.add(ts)
            if new_cursor is None or _d(ts) > _d(new_cursor):
                new_cursor = ts
            subtype = m.get("subtype")
            if subtype in SKIP_SUBTYPES:
                result.bump("filtered")
                continue
            if subtype == "tombstone":  # a deleted parent that still has replies
                objects.append(self._tombstone(resource, ts, "deleted parent (slack tombstone)"))
                result.bump("tombstones")
                continue
            self._watch(threads, m)
            fp = fingerprint(m)
            seen_fp[ts] = fp
            is_new = first or _d(ts) > _d(cursor)
            if not is_new and prior_recent.get(ts) == fp:
                result.bump("unchanged")
                continue
            result.bump("new" if is_new else ("edited" if ts in prior_recent else "backfilled"))
            objects.append(self._object(resource, m))
            users.add(str(m.get("user") or ""))
            users.update(_MENTION.findall(str(m.get("text") or "")))

        # deletions: a remembered message missing from a window we read completely. ``oldest`` is
        # exclusive, so the window is (window_start, now]; a partial read covers [oldest fetched, now]
        def covered(ts: str) -> bool:
            if first:
                return False
            if complete:
                return _d(ts) > _d(window_start)
            return bool(messages) and _d(ts) >= min(_d(m.get("ts")) for m in messages)

        for ts in sorted(prior_recent):
            if covered(ts) and ts not in fetched_ts:
                objects.append(self._tombstone(resource, ts, "no longer in conversations.history"))
                result.bump("tombstones")

        # threads: new or grown parents in the window first, then rechecks of older watched ones
        expanded = 0
        grown = sorted(
            ((_d(t["latest_reply"]), ts) for ts, t in threads.items()
             if ts in fetched_ts and t.get("reply_count", 0) >= 2
             and (t.get("expanded_to") is None or _d(t["latest_reply"]) > _d(t.get("expanded_to")))),
            reverse=True,
        )
        for _, parent_ts in grown:
            if expanded >= lim.threads_per_channel:
                result.notes.append(f"thread cap {lim.threads_per_channel} reached; the rest wait for the next sync")
                break
            expanded += 1
            users |= self._expand(resource, parent_ts, threads, objects, result)
        horizon = now - lim.thread_watch
        watched = sorted(
            ((_d(t.get("latest_reply") or ts), ts) for ts, t in threads.items()
             if ts not in fetched_ts and (ts_datetime(t.get("latest_reply") or ts) or now) >= horizon),
            reverse=True,
        )
        for _, parent_ts in watched[: lim.thread_rechecks] if not first else []:
            if expanded >= lim.threads_per_channel:
                break
            result.bump("thread_rechecks")
            before = result.counts.get("replies", 0)
            users |= self._expand(resource, parent_ts, threads, objects, result)
            if result.counts.get("replies", 0) > before:
                expanded += 1
        result.counts["threads_expanded"] = expanded

        if objects:
            members = self._resolve(users)
            if members:
                objects.insert(0, RawObject(
                    object_type="slack_users", external_id=f"users:{resource.id}",
                    raw=dumps({"members": members}), resource_id=resource.id, resource_name=resource.name,
                    context={"source": "users.info (cached)"},
                ))
        result.objects = objects
        result.cursor = new_cursor
        keep_from = _d(_ts_minus(new_cursor, lim.lookback)) if new_cursor else Decimal(0)
        # remember what the next sync's window (keep_from, now] will re-read
        recent = {ts: fp for ts, fp in prior_recent.items() if _d(ts) > keep_from and ts not in fetched_ts
                  and not covered(ts)}
        recent.update({ts: fp for ts, fp in seen_fp.items() if _d(ts) > keep_from})
        active = sorted(threads.items(), key=lambda kv: _d(kv[1].get("latest_reply") or kv[0]), reverse=True)
        threads = {ts: t for ts, t in active[: lim.watched_threads_kept]
                   if (ts_datetime(t.get("latest_reply") or ts) or now) >= horizon}
        result.state = {"recent": recent, "threads": threads}
        result.source_latest_at = ts_datetime(new_cursor)
        return result

    @staticmethod
    def _watch(threads: dict[str, dict[str, Any]], m: dict[str, Any]) -> None:
        count = int(m.get("reply_count") or 0)
        if count < 1:
            return
        ts = str(m["ts"])
        entry = threads.setdefault(ts, {"expanded_to": None})
        entry["reply_count"] = count
        entry["latest_reply"] = str(m.get("latest_reply") or entry.get("latest_reply") or ts)

    def _expand(self, channel: Resource, parent_ts: str, threads: dict[str, dict[str, Any]],
                objects: list[RawObject], result: ResourceResult) -> set[str]:
        entry = threads.setdefault(parent_ts, {"expanded_to": None, "reply_count": 0, "latest_reply": parent_ts})
        try:
            parent, replies = self._replies(channel, parent_ts, entry.get("expanded_to"))
        except NotFound:  # parent deleted since we saw it
            threads.pop(parent_ts, None)
            return set()
        if parent is not None:
            self._watch(threads, parent)
        if int(entry.get("reply_count") or 0) < 2:
            return set()
        users: set[str] = set()
        for r in replies:
            if r.get("subtype") in SKIP_SUBTYPES:
                result.bump("filtered")
                continue
            objects.append(self._object(channel, r, reply_of=parent_ts))
            result.bump("replies")
            users.add(str(r.get("user") or ""))
            users.update(_MENTION.findall(str(r.get("text") or "")))
        latest = max([_d(r.get("ts")) for r in replies] + [_d(entry.get("expanded_to"))])
        if latest > 0:
            entry["expanded_to"] = f"{latest:.6f}"
        return users



def rank(resources: list[Resource]) -> list[Resource]:
    """Channels with the most members first."""
    return sorted(resources, key=lambda r: (-int(r.metadata.get("num_members") or 0), r.name))
