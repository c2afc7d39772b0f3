"""Markdown -> safe HTML (email) and Slack mrkdwn.

Deliverable text is model output grounded in untrusted content, so raw HTML in it is escaped
(Python-Markdown's raw-HTML processors are removed) and links keep only http(s)/mailto targets.
"""

from __future__ import annotations

import html
import re
import xml.etree.ElementTree as etree

import markdown
from markdown.treeprocessors import Treeprocessor

_SAFE_SCHEMES = ("http://", "https://", "mailto:")


class _SafeLinks(Treeprocessor):
    def run(self, root: etree.Element) -> None:
        for el in root.iter():
            for attr in ("href", "src"):
                value = el.get(attr)
                if value is not None and not value.strip().lower().startswith(_SAFE_SCHEMES):
                    del el.attrib[attr]


def markdown_to_html(text: str, title: str | None = None) -> str:
    md = markdown.Markdown(extensions=["extra", "sane_lists"])
    md.preprocessors.deregister("html_block")
    md.inlinePatterns.deregister("html")
    md.treeprocessors.register(_SafeLinks(md), "safe_links", 0)
    body = md.convert(text)
    head = f"<title>{html.escape(title)}</title>" if title else ""
    return (
        f"<!doctype html><html><head><meta charset=\"utf-8\">{head}</head>"
        f"<body style=\"font-family:-apple-system,Segoe UI,Helvetica,Arial,sans-serif;line-height:1.45;"
        f"max-width:680px\">{body}</body></html>"
    )


_LINK = re.compile(r"\[([^\]]+)\]\((https?://[^)\s]+)\)")
_BOLD = re.compile(r"\*\*(.+?)\*\*")
_HEADING = re.compile(r"^#{1,6}\s+(.*)$", re.M)


def markdown_to_mrkdwn(text: str) -> str:
    """Slack's mrkdwn: *bold* headings and emphasis, <url|label> links, & < > escaped."""
    out = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    out = _LINK.sub(lambda m: f"<{m.group(2)}|{m.group(1)}>", out)
    out = _BOLD.sub(r"*\1*", out)
    out = _HEADING.sub(r"*\1*", out)
    return out
