"""Staging export files for import jobs: what may be imported, and a copy that hashes as it goes.

Only regular files and folders are staged: links, devices, FIFOs and sockets are refused without
being opened (``O_NOFOLLOW``), and an inbox entry must stay inside the inbox (docs/OPERATIONS.md
"Input limits"). The copy under ``<home>/imports/<sha256>/`` is what a replay reads.
"""

from __future__ import annotations

import errno
import hashlib
import os
import stat
from pathlib import Path


class ImportError_(ValueError):
    """A file cannot be registered (unknown user, unknown type, unreadable)."""


CHUNK = 1 << 20


def _kind(mode: int) -> str:
    if stat.S_ISLNK(mode):
        return "a symlink"
    if stat.S_ISFIFO(mode):
        return "a FIFO"
    if stat.S_ISSOCK(mode):
        return "a socket"
    if stat.S_ISBLK(mode) or stat.S_ISCHR(mode):
        return "a device"
    return "not a regular file"


def refused(name: str, mode: int) -> ImportError_:
    return ImportError_(f"{name}: refused: {_kind(mode)} (only regular files and folders are imported; links, "
                        "devices, FIFOs and sockets are never read or followed)")


_NOFOLLOW = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)


def _copy_fd(fd: int, target: Path, h: hashlib._Hash) -> int:
    """Copy an open regular file into ``target`` while hashing it; returns its size."""
    os.set_blocking(fd, True)
    size = 0
    with os.fdopen(fd, "rb") as src, target.open("xb") as dst:
        while chunk := src.read(CHUNK):
            h.update(chunk)
            dst.write(chunk)
            size += len(chunk)
    return size


def _open_checked(name: str, dir_fd: int | None, shown: str) -> int:
    """An fd of a regular file, opened without following a link (or blocking on a FIFO)."""
    try:
        fd = os.open(name, _NOFOLLOW, dir_fd=dir_fd)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise ImportError_(f"{shown}: refused: a symlink (links are never read or followed)") from None
        raise ImportError_(f"{shown}: cannot be read ({exc.strerror})") from None
    st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode):
        os.close(fd)
        raise refused(shown, st.st_mode)
    return fd


def stage_file(path: Path, staging: Path) -> tuple[str, int]:
    """Copy one regular file into ``staging`` (hashing it on the way); (sha256, size)."""
    fd = _open_checked(str(path), None, path.name)
    h = hashlib.sha256()
    size = _copy_fd(fd, staging / path.name, h)
    return h.hexdigest(), size


def stage_folder(path: Path, staging: Path) -> tuple[str, int]:
    """Copy a folder export into ``staging`` through directory fds, refusing anything that is not a
    regular file or folder (a link anywhere inside refuses the whole export, naming it).

    The digest (relative path, then bytes, in path order) is computed from the staged copy, which
    holds only what was checked."""
    target_root = staging / path.name
    target_root.mkdir()
    files: list[str] = []
    top = os.open(path, os.O_RDONLY | os.O_DIRECTORY | getattr(os, "O_NOFOLLOW", 0))
    try:
        for dirpath, dirnames, filenames, dirfd in os.fwalk(".", dir_fd=top, follow_symlinks=False):
            for name in [*dirnames, *filenames]:
                rel = os.path.normpath(os.path.join(dirpath, name))
                st = os.stat(name, dir_fd=dirfd, follow_symlinks=False)
                if stat.S_ISDIR(st.st_mode):
                    (target_root / rel).mkdir()
                elif not stat.S_ISREG(st.st_mode):
                    raise refused(f"{path.name}/{rel}", st.st_mode)
                else:
                    fd = _open_checked(name, dirfd, f"{path.name}/{rel}")
                    _copy_fd(fd, target_root / rel, hashlib.sha256())
                    files.append(rel)
    finally:
        os.close(top)
    h = hashlib.sha256()
    size = 0
    for rel in sorted(files, key=lambda r: r.split("/")):  # pathlib's order, as digests always were
        h.update(rel.encode())
        with (target_root / rel).open("rb") as fh:
            while chunk := fh.read(CHUNK):
                h.update(chunk)
                size += len(chunk)
    return h.hexdigest(), size


def check_entry(path: Path, inbox: Path | None = None) -> os.stat_result:
    """What ``path`` is, without following it: a regular file or folder, else ImportError_.

    With ``inbox``: the entry must also resolve inside the inbox, on its filesystem, and a file
    must have no second name (a hard link to a file elsewhere).
    """
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        raise ImportError_(f"{path}: no such file") from None
    if not (stat.S_ISREG(st.st_mode) or stat.S_ISDIR(st.st_mode)):
        raise refused(path.name, st.st_mode)
    if inbox is not None:
        real, root = os.path.realpath(path), os.path.realpath(inbox)
        if os.path.commonpath([real, root]) != root:
            raise ImportError_(f"{path.name}: refused: resolves outside the inbox ({real})")
        if st.st_dev != os.stat(root).st_dev:
            raise ImportError_(f"{path.name}: refused: on another filesystem than the inbox")
        if stat.S_ISREG(st.st_mode) and st.st_nlink > 1:
            raise ImportError_(f"{path.name}: refused: a hard link (the same file has another name outside the "
                               "inbox); copy the file instead")
    return st
