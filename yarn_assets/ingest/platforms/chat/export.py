"""Reader for chat JSONL exports: one chat message per line (schema in docs/chat_import.md).

The reader only splits the file: each non-blank line becomes one raw object, exactly as written.
A line that is not a JSON object cannot even be addressed, so it is a reject (with its line
number); field validation happens when silver normalizes the batch.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO

from resources.input_limits import DEFAULT_LIMITS, InputLimits
from yarn_assets.ingest.archive import LINE_PIECE, ExportArchive, open_regular
from yarn_assets.ingest.objects import RawObject, Reject

OBJECT_TYPE = "chat_message"


def read_chat_jsonl(path: Path, limits: InputLimits | None = None) -> Iterator[RawObject | Reject]:
    limits = limits or DEFAULT_LIMITS
    if os.path.isdir(path) and not os.path.islink(path):
        with ExportArchive(path, limits) as archive:
            for location, reason in archive.bad:
                yield Reject(reason=reason, location=location, object_type=OBJECT_TYPE)
            files = [m for m in archive.members if m.name.endswith(".jsonl")]
            yield from _read_files([(m.name, m.opener, m.size) for m in files], limits)
        return
    yield from _read_files([(path.name, lambda: open_regular(path), os.lstat(path).st_size)], limits)


Opener = Callable[[], IO[bytes]]


def _read_files(files: list[tuple[str, Opener, int]], limits: InputLimits) -> Iterator[RawObject | Reject]:
    cap = limits.import_max_message_bytes
    total = sum(size for _, _, size in files)
    if total > limits.import_max_total_bytes:
        yield Reject(reason=f"chat export of {total} bytes exceeds {limits.named('import_max_total_bytes')}; not read",
                     location=files[0][0] if len(files) == 1 else "", object_type=OBJECT_TYPE)
        return
    landed = 0
    for name, opener, _ in files:
        with opener() as fh:
            lineno = 0
            while line := fh.readline(cap + 1):
                lineno += 1
                location = f"{name}:{lineno}"
                if len(line) > cap and not line.endswith(b"\n"):  # skip the rest of an over-long line
                    length = len(line)
                    while more := fh.readline(LINE_PIECE):
                        length += len(more)
                        if more.endswith(b"\n"):
                            break
                    yield Reject(reason=f"line {lineno} of {length} bytes exceeds "
                                        f"{limits.named('import_max_message_bytes')}",
                                 raw=line[: limits.import_reject_sample_bytes], location=location,
                                 object_type=OBJECT_TYPE)
                    continue
                raw = line.rstrip(b"\r\n")
                if not raw.strip():
                    continue
                if landed >= limits.import_max_objects:
                    yield Reject(reason=f"import stops at {limits.named('import_max_objects')} lines: line "
                                        f"{lineno} and the lines after it were not landed", location=location,
                                 object_type=OBJECT_TYPE)
                    return
                try:
                    data = json.loads(raw)
                except RecursionError:
                    yield Reject(reason=f"line {lineno} nests too deep for the JSON parser", raw=raw,
                                 location=location, object_type=OBJECT_TYPE)
                    continue
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
                landed += 1
                yield RawObject(
                    object_type=OBJECT_TYPE,
                    external_id=external_id,
                    raw=raw,
                    resource_id=session,
                    resource_name=str(data.get("session_type") or ""),
                    context={"file": name, "line": lineno},
                )
