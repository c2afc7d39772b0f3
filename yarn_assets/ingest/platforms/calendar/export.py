""".ics files -> one ``ics_calendar`` object per file (bronze keeps the whole calendar).

A calendar only makes sense whole: recurrence overrides, VTIMEZONEs and X-WR-TIMEZONE live beside
the events they change, so the file is not split here; the normalizer expands it. The resource is
the calendar: Google Takeout names each file after the calendar id (``alice@example.com.ics``,
the id the Calendar API uses), so the file stem is the resource id.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path

from resources.input_limits import DEFAULT_LIMITS, InputLimits
from yarn_assets.ingest.archive import open_regular, sample_bytes
from yarn_assets.ingest.objects import RawObject, Reject

_CALNAME = re.compile(rb"^X-WR-CALNAME[^:\r\n]*:(.*?)\r?$", re.MULTILINE)


def read_ics(path: Path, limits: InputLimits | None = None) -> Iterator[RawObject | Reject]:
    limits = limits or DEFAULT_LIMITS
    cap = limits.import_max_ics_bytes
    with open_regular(path) as fh:
        size = os.fstat(fh.fileno()).st_size
        raw = fh.read(cap + 1) if size <= cap else b""
    if size > cap or len(raw) > cap:
        yield Reject(reason=f".ics file of {max(size, len(raw))} bytes exceeds {limits.named('import_max_ics_bytes')}; "
                            "not read", raw=sample_bytes(path, limits.import_reject_sample_bytes), location=path.name,
                     object_type="ics_calendar")
        return
    if not raw.strip():
        yield Reject(reason="empty .ics file", raw=raw, location=path.name, object_type="ics_calendar")
        return
    stem = path.name[:-4] if path.name.lower().endswith(".ics") else path.name
    match = _CALNAME.search(raw)
    name = match.group(1).decode("utf-8", errors="replace").strip() if match else ""
    yield RawObject(
        object_type="ics_calendar",
        external_id=f"file:{path.name}",
        raw=raw,
        resource_id=stem,
        resource_name=name or stem,
        context={"file": path.name},
    )
