"""Reader for chat JSONL exports: one chat message per line (schema in docs/chat_import.md).

The reader only splits the file: each non-blank line becomes one raw object, exactly as written.
A line that is not a JSON object cannot even be addressed, so it is a reject (with its line
number); field validation happens when silver normalizes the batch.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

from yarn_assets.ingest.objects import RawObject, Reject

OBJECT_TYPE = "chat_message"


def read_chat_jsonl(path: Path) -> Iterator[RawObject | Reject]:
    files = sorted(p for p in path.rglob("*.jsonl") if p.is_file()) if path.is_dir() else [path]
    for file in files:
        with file.open("rb") as fh:
            for lineno, line in enumerate(fh, start=1):
                raw = line.rstrip(b"\r\n")
                if not raw.strip():
                    continue
                location = f"{file.name}:{lineno}"
                try:
                    data = json.loads(raw)
                except ValueError as exc:
                    yield Reject(reason=f"line {lineno} is not JSON: {exc}", raw=raw, location=location,
                                 object_type=OBJECT_TYPE)
                    continue
                if not isinstance(data, dict):
                    yield Reject(reason=f"line {lineno} is a JSON {type(data).__name__}, not an object",
                                 raw=raw, location=location, object_type=OBJECT_TYPE)
                    continue
                session = str(data.get("session_id") or "")
                sequence = data.get("sequence")
                external_id = f"{session}:{sequence}" if session and sequence is not None else f"{location}"
                yield RawObject(
                    object_type=OBJECT_TYPE,
                    external_id=external_id,
                    raw=raw,
                    resource_id=session,
                    resource_name=str(data.get("session_type") or ""),
                    context={"file": file.name, "line": lineno},
                )
