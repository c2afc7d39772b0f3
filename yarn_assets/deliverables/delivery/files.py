"""File outbox: the embedded default destination. One Markdown file per version, written atomically.

Writing is idempotent (the path is a function of the version), so a retried delivery
rewrites the same file instead of adding a second one.
"""

from __future__ import annotations

import os
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path

_SAFE = re.compile(r"[^A-Za-z0-9._-]+")


def _safe(part: str) -> str:
    cleaned = _SAFE.sub("_", part).strip("._")
    return cleaned[:80] or "_"


@dataclass(frozen=True)
class FileOutbox:
    root: str

    def path_for(self, *, user_id: str, deliverable_id: str, version_number: int, version_id: str) -> Path:
        return (Path(self.root) / _safe(user_id) / _safe(deliverable_id)
                / f"v{version_number:04d}-{_safe(version_id)}.md")

    def send(self, *, user_id: str, deliverable_id: str, version_number: int, version_id: str, title: str,
             markdown_text: str, header: dict[str, str]) -> str:
        path = self.path_for(user_id=user_id, deliverable_id=deliverable_id, version_number=version_number,
                             version_id=version_id)
        path.parent.mkdir(parents=True, exist_ok=True)
        front = "\n".join(f"{k}: {' '.join(str(v).split())}" for k, v in header.items())
        body = f"---\n{front}\n---\n\n# {title}\n\n{markdown_text.rstrip()}\n"
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=".md")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                fh.write(body)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return str(path)
