"""Tokens and wall time per deliverable type, offline and against the loopback Anthropic server.

usage: python -m benchmarks.deliverables_bench [--runs 3]

Seeds one user with a realistic mix (60 Slack messages in 3 channels, 20 emails, 8 Notion pages,
10 events), creates one deliverable per type (file outbox) and runs each ``--runs`` times in both
modes. API mode talks to ``tests/fakes/anthropic_server.py`` (a real HTTP server; the model's
replies are canned and its token counts are ~characters/4 of what was sent, like the real
tokenizer's order of magnitude), so it measures the platform's own overhead plus prompt size,
not model latency. Prints a Markdown table.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import statistics
import sys
import tempfile
import warnings
from pathlib import Path


def _content(user: str, now: dt.datetime) -> list[dict]:
    from tests.deliverables.helpers import item

    h = dt.timedelta(hours=1)
    rows = []
    for c, channel in enumerate(("C01GENERAL", "C02ENG", "C03SALES")):
        for i in range(20):
            text = ["Status: the billing revamp is on track for Friday.", "Who can review PR 481?",
                    "Decided: we go with Postgres 16 for the new cluster.", "Customer escalation, ASAP please."][i % 4]
            rows.append(item(user, "slack", channel, f"s{c}-{i}", f"{text} ({i})", at=now - (i + c) * h,
                             resource_name=f"#{channel[3:].lower()}", author=f"user{i % 5}", thread_id=f"t{c}-{i % 7}"))
    for i in range(20):
        rows.append(item(user, "gmail", "label:INBOX", f"g{i}", "Could you review the attached proposal by "
                         f"Thursday? Details follow in paragraph {i}. " * 3, at=now - i * 2 * h,
                         title=f"Proposal {i}", author=f"Sender {i}"))
    for i in range(8):
        rows.append(item(user, "notion", f"page-{i}", f"n{i}", f"Page {i}. Goals, owners and open items. " * 10,
                         at=now - i * 5 * h, title=f"Spec {i}", resource_name=f"Spec {i}"))
    for i in range(10):
        rows.append(item(user, "calendar", "primary", f"c{i}", f"Agenda for meeting {i}", at=now + (i * 9 + 2) * h,
                         ends_at=now + (i * 9 + 3) * h, title=f"Meeting {i}", fetched_at=now - h,
                         participants=[f"p{j}@example.com" for j in range(i % 4 + 1)]))
    return rows


def _api_responder():  # type: ignore[no-untyped-def]
    from tests.fakes.anthropic_server import Reply

    def respond(req):  # type: ignore[no-untyped-def]
        import uuid

        tools = req.body.get("tools") or []
        if tools and tools[0].get("type", "").startswith("web_search"):
            tid = "srvtoolu_" + uuid.uuid4().hex[:16]
            content = [{"type": "server_tool_use", "id": tid, "name": "web_search", "input": {"query": "q"}},
                       {"type": "web_search_tool_result", "tool_use_id": tid, "content": [
                           {"type": "web_search_result", "url": f"https://example.org/{k}", "title": f"Result {k}",
                            "encrypted_content": "e"} for k in range(3)]},
                       {"type": "text", "text": "Findings."}]
            usage = {"input_tokens": 2000, "output_tokens": 150, "server_tool_use": {"web_search_requests": 1}}
            body = {"id": "msg_" + uuid.uuid4().hex[:20], "type": "message", "role": "assistant",
                    "model": req.body["model"], "content": content, "stop_reason": "end_turn", "usage": usage}
            return Reply(body=body)
        if tools:
            block = {"type": "tool_use", "id": "toolu_" + uuid.uuid4().hex[:16], "name": tools[0]["name"],
                     "input": {"search_terms": ["search ranking"], "academic": False}}
            return Reply(body={"id": "msg_x", "type": "message", "role": "assistant", "model": req.body["model"],
                               "content": [block], "stop_reason": "tool_use"})
        draft = "## Summary\n" + "\n".join(f"- point {k}: grounded in the material" for k in range(40))
        return Reply(body={"id": "msg_y", "type": "message", "role": "assistant", "model": req.body["model"],
                           "content": [{"type": "text", "text": draft}], "stop_reason": "end_turn"})

    return respond


def run(runs: int) -> list[dict]:
    from control_plane import db
    from resources.settings import load_settings
    from tests.deliverables.helpers import NOW, add_user, create, run_resources, seed_silver
    from tests.fakes.anthropic_server import FakeAnthropic
    from yarn_assets.deliverables.run import run_deliverable
    from yarn_assets.deliverables.types import TYPES

    results = []
    for mode in ("offline", "api"):
        home = Path(tempfile.mkdtemp(prefix=f"yarnnn-bench-{mode}-"))
        os.environ["YARNNN_HOME"] = str(home)
        for k in ("ANTHROPIC_API_KEY", "YARNNN_ANTHROPIC_BASE_URL"):
            os.environ.pop(k, None)
        db.dispose_all()
        url = load_settings().resolved_control_plane_url
        add_user(url, "alice", tz="Europe/Paris", tier="pro")
        res = run_resources()
        seed_silver(res.store, _content("alice", NOW))
        api = None
        if mode == "api":
            api = FakeAnthropic(default=_api_responder()).__enter__()
            os.environ["ANTHROPIC_API_KEY"] = "bench-key"
            os.environ["YARNNN_ANTHROPIC_BASE_URL"] = api.base_url
            res = run_resources()
        for name in TYPES:
            did = create(url, "alice", name, type_config={"focus": "search ranking"})
            walls, rows = [], []
            for r in range(runs):
                out = run_deliverable(res, deliverable_id=did, run_id=f"{mode}-{name}-{r}", now=NOW)
                assert out.status == "delivered", (name, out.reason)
                walls.append(out.wall_ms)
                rows.append(out.row)
            last = rows[-1]
            results.append({"mode": mode, "type": name, "wall_ms_median": statistics.median(walls),
                            "input_tokens": last["input_tokens"], "output_tokens": last["output_tokens"],
                            "cost_usd": last["cost_usd"], "prompt_chars": last["prompt_chars"],
                            "items": last["items_in_prompt"]})
        if api is not None:
            api.__exit__(None, None, None)
    return results


def main() -> int:
    warnings.filterwarnings("ignore")
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    rows = run(args.runs)
    print("| mode | type | items in prompt | prompt chars | input tokens | output tokens | cost USD "
          "| wall ms (median) |")
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['mode']} | {r['type']} | {r['items']} | {r['prompt_chars']} | {r['input_tokens']} | "
              f"{r['output_tokens']} | {r['cost_usd']:.4f} | {r['wall_ms_median']:.0f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
