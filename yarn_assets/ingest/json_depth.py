"""How deep a JSON document nests, checked before a parser recurses into it.

msgspec and ``json`` recurse per level (msgspec stops at the interpreter's recursion limit with a
``RecursionError``); a cap of our own keeps every later parse (the normalizers decode each message
again) shallow. The check runs at C speed on the bracket skeleton of the bytes, and only when that
skeleton looks too deep are strings removed to rule out brackets inside text.
"""

from __future__ import annotations

import re

_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")
_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"', re.S)
_PAIR = re.compile(rb"\[\]|\{\}")  # one pass removes exactly one level (no rescan of what it joins)


def _deeper_than(skeleton: bytes, limit: int) -> bool:
    """Each round removes the innermost pairs; a document of depth d is empty after d rounds."""
    for _ in range(limit):
        if not skeleton:
            return False
        shorter = _PAIR.sub(b"", skeleton)
        if shorter == skeleton:  # unbalanced: malformed, the parser reports it
            return False
        skeleton = shorter
    return bool(skeleton) and _PAIR.sub(b"", skeleton) != skeleton


def json_deeper_than(data: bytes, limit: int) -> bool:
    """True when ``data`` nests arrays/objects more than ``limit`` levels deep."""
    skeleton = data.translate(None, _NOT_BRACKETS)
    if len(skeleton) <= 2 * limit or not _deeper_than(skeleton, limit):
        return False
    return _deeper_than(_STRING.sub(b"", data).translate(None, _NOT_BRACKETS), limit)
