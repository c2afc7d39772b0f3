"""User ids: one documented character set, because a user id becomes a folder name.

Inbox folders (``<inbox>/<user_id>/``), outbox folders and log lines carry the id, so ``../``,
``/``, control characters and the empty string are refused where ids are made (``yarnnn users
add``) and wherever an id arrives from outside (an inbox folder, an import registration).
"""

from __future__ import annotations

import hashlib
import re

#: 1-64 characters (the column's width): a letter or digit, then letters, digits, ``.``, ``_``, ``@``, ``-``.
USER_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$"
_USER_ID = re.compile(USER_ID_PATTERN)


class InvalidUserId(ValueError):
    """A user id outside the documented character set."""


def validate_user_id(value: str) -> str:
    """``value`` unchanged when it is a valid user id; otherwise an error that says what is allowed."""
    if not isinstance(value, str) or not _USER_ID.fullmatch(value):
        shown = repr(value) if isinstance(value, str) and len(value) <= 80 else "the given id"
        raise InvalidUserId(
            f"invalid user id {shown}: use 1-64 characters, a letter or digit first, then letters, digits, "
            "'.', '_', '@' or '-' (no '/', no '..' path, no spaces or control characters)"
        )
    return value


def path_segment(user_id: str) -> str:
    """A folder name for ``user_id``: the id itself when valid, else a safe, distinct stand-in.

    For ids created before validation existed; a valid id is never rewritten.
    """
    if _USER_ID.fullmatch(user_id or ""):
        return user_id
    cleaned = re.sub(r"[^A-Za-z0-9._@-]+", "_", user_id or "").strip("._") or "user"
    return f"{cleaned[:40]}-{hashlib.sha256((user_id or '').encode()).hexdigest()[:12]}"
