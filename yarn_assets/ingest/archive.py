"""Export containers: a zip, a zip of zips (Notion's ``Export-…-Part-N.zip``) or an extracted folder.

Readers see one flat list of members with POSIX paths relative to the export root, whatever the
container, so a user may upload the zip as downloaded or the folder they unpacked.

Nothing here trusts the container (see ``InputLimits``): the member count is taken from the zip's
central directory before ``zipfile`` parses it; a member is read only when a reader asks for it,
refused first from its header (declared size, compression ratio, what the import has read so far)
and then counted byte by byte while it streams through ``ZipFile.open``, so a header that lies
cannot make the process allocate more than the limits (``zipfile`` also stops at the declared
size and fails the CRC: a header that understates only shrinks what is read). Inner zips are spooled to a temporary file
within the same limits; a zip deeper than ``import_max_archive_depth`` is refused. Folders are
walked without following links: symlinks, FIFOs, sockets and devices are refused, never opened.
A member over a limit becomes a reject naming the limit; the other members still land.
"""

from __future__ import annotations

import os
import stat
import struct
import tempfile
import zipfile
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import IO, Any

from resources.input_limits import DEFAULT_LIMITS, InputLimits, LimitExceeded

CHUNK = 1 << 20
#: Inner zips are kept in memory up to this size, on disk beyond (always within import_max_member_bytes).
SPOOL_IN_MEMORY = 1 << 20


class UnreadableArchive(ValueError):
    """The container itself cannot be opened (the whole import fails with this reason)."""


class MemberUnreadable(ValueError):
    """One member cannot be read (corrupt data, a CRC that does not match a lying header…)."""


#: What a reader catches around ``Member.read``: the member becomes a reject, the rest lands.
#: Line readers (mbox, chat JSONL) read lines in pieces of at most this many bytes (a file without
#: newlines cannot fill memory).
LINE_PIECE = 1 << 20

MEMBER_ERRORS = (LimitExceeded, MemberUnreadable)


@dataclass
class Budget:
    """What one import has spent so far (shared by every member of every level)."""

    limits: InputLimits
    bytes_read: int = 0
    members: int = 0

    def take(self, n: int) -> None:
        self.bytes_read += n
        if self.bytes_read > self.limits.import_max_total_bytes:
            raise LimitExceeded(f"not read: the import is over {self.limits.named('import_max_total_bytes')} "
                                "(decompressed bytes read in total)")

    def check_room(self, declared: int) -> None:
        if self.bytes_read + declared > self.limits.import_max_total_bytes:
            raise LimitExceeded(f"not read: {declared} more bytes would take the import over "
                                f"{self.limits.named('import_max_total_bytes')}")

    def add_members(self, n: int, where: str) -> None:
        """Count ``n`` more members, or refuse them (leaving the count as it was)."""
        if self.members + n > self.limits.import_max_members:
            raise LimitExceeded(f"{where} has {n} members: the export would exceed "
                                f"{self.limits.named('import_max_members')}")
        self.members += n


@dataclass(frozen=True)
class Member:
    path: str  # POSIX, relative to the export root (inner zips are expanded in place)
    size: int  # as declared by the header (zip) or stat (folder); reads are counted, not trusted
    opener: Callable[[], IO[bytes]] = field(repr=False)
    compressed: int = field(default=0, repr=False)  # compressed size per the header (0 for folders)
    budget: Budget | None = field(default=None, repr=False, compare=False)

    @property
    def name(self) -> str:
        return PurePosixPath(self.path).name

    @property
    def parent(self) -> str:
        return str(PurePosixPath(self.path).parent)

    def read(self) -> bytes:
        """The member's bytes, within the limits; raises one of :data:`MEMBER_ERRORS`."""
        chunks: list[bytes] = []
        _copy(self, chunks.append)
        return b"".join(chunks)

    def head(self, n: int) -> bytes:
        """At most ``n`` bytes from the start (a sample kept with a reject; not counted as read)."""
        if n <= 0:
            return b""
        try:
            with self.opener() as fh:
                return fh.read(n)
        except (OSError, zipfile.BadZipFile, EOFError, ValueError, RuntimeError):
            return b""


def _copy(member: Member, write: Callable[[bytes], Any]) -> int:
    """Stream ``member`` into ``write`` in chunks, checking the header first and every chunk after."""
    budget = member.budget or Budget(DEFAULT_LIMITS)
    limits = budget.limits
    cap = limits.import_max_member_bytes
    if member.size > cap:
        raise LimitExceeded(f"member declares {member.size} bytes, over {limits.named('import_max_member_bytes')}")
    ratio_cap, ratio_from = limits.import_max_compression_ratio, limits.import_ratio_min_bytes
    if member.compressed and member.size >= ratio_from and member.size / member.compressed > ratio_cap:
        raise LimitExceeded(f"member declares a compression ratio of {member.size / member.compressed:.0f}, over "
                            f"{limits.named('import_max_compression_ratio')}")
    budget.check_room(member.size)
    done = 0
    try:
        with member.opener() as fh:
            while chunk := fh.read(CHUNK):
                done += len(chunk)
                if done > cap:
                    raise LimitExceeded(f"member exceeds {limits.named('import_max_member_bytes')} "
                                        f"(its header declared {member.size})")
                if member.compressed and done >= ratio_from and done / member.compressed > ratio_cap:
                    raise LimitExceeded(f"member exceeds {limits.named('import_max_compression_ratio')} while "
                                        f"decompressing (its header declared {member.size} bytes)")
                budget.take(len(chunk))
                write(chunk)
    except MEMBER_ERRORS:
        raise
    except (OSError, zipfile.BadZipFile, EOFError, NotImplementedError, RuntimeError, ValueError) as exc:
        raise MemberUnreadable(f"member unreadable: {type(exc).__name__}: {exc}") from None
    except Exception as exc:  # zlib.error, lzma/bz2 errors: corrupt compressed data
        if type(exc).__module__ in ("zlib", "_lzma", "lzma", "_bz2", "bz2"):
            raise MemberUnreadable(f"member unreadable: {type(exc).__name__}: {exc}") from None
        raise
    return done


# --- zip central directory, read before zipfile parses it ------------------------------------------

_CD_SIG = b"PK\x01\x02"
_CD_FIXED = struct.Struct("<4s4B4HL2L5H2L")  # zipfile.structCentralDir


def _directory_entries(fp: IO[bytes], stop_after: int) -> int:
    """Entries of the zip's central directory, counted from its bytes (stops past ``stop_after``).

    ``zipfile`` builds a ``ZipInfo`` (~500 bytes) per entry before anything can be checked, so a
    directory of a million 47-byte entries would cost half a gigabyte; counting first costs a read.
    The declared entry count is not trusted: ``zipfile`` parses ``size_cd`` bytes, so those are counted.
    """
    endrec = zipfile._EndRecData(fp)  # type: ignore[attr-defined]
    if not endrec:
        raise zipfile.BadZipFile("File is not a zip file")
    size_cd, offset_cd = endrec[zipfile._ECD_SIZE], endrec[zipfile._ECD_OFFSET]  # type: ignore[attr-defined]
    declared = endrec[zipfile._ECD_ENTRIES_TOTAL]  # type: ignore[attr-defined]
    if declared > stop_after:
        return declared
    concat = endrec[zipfile._ECD_LOCATION] - size_cd - offset_cd  # type: ignore[attr-defined]
    if endrec[zipfile._ECD_SIGNATURE] == zipfile.stringEndArchive64:  # type: ignore[attr-defined]
        concat -= zipfile.sizeEndCentDir64 + zipfile.sizeEndCentDir64Locator  # type: ignore[attr-defined]
    fp.seek(max(0, offset_cd + concat))
    count, left, buf = 0, size_cd, b""
    while left > 0 and count <= stop_after:
        more = fp.read(min(CHUNK, left))
        if not more:
            break  # truncated: zipfile reports it
        left -= len(more)
        buf += more
        pos = 0
        while len(buf) - pos >= _CD_FIXED.size:
            fixed = _CD_FIXED.unpack_from(buf, pos)
            if fixed[0] != _CD_SIG:
                return count  # malformed: zipfile reports it
            entry = _CD_FIXED.size + fixed[12] + fixed[13] + fixed[14]
            if len(buf) - pos < entry:
                break
            pos += entry
            count += 1
        buf = buf[pos:]
    return count


def _open_zip(fp: IO[bytes], where: str, budget: Budget) -> zipfile.ZipFile:
    room = budget.limits.import_max_members - budget.members
    try:
        entries = _directory_entries(fp, room)
        if entries > room:
            budget.add_members(entries, where)  # raises, naming the limit
        fp.seek(0)
        zf = zipfile.ZipFile(fp)
    except (zipfile.BadZipFile, OSError, EOFError, struct.error, NotImplementedError, ValueError) as exc:
        if isinstance(exc, LimitExceeded):
            raise
        raise MemberUnreadable(f"not a readable zip file ({exc})") from None
    budget.add_members(len(zf.infolist()), where)
    return zf


class ExportArchive:
    """The members of one export and the parts that could not be opened (a context manager).

    ``members`` are sorted by path; ``bad`` holds (location, reason) for inner zips or folder
    entries that were refused. Temporary spools of inner zips live until the archive is closed.
    """

    def __init__(self, path: Path, limits: InputLimits | None = None, *, expand_zips: bool = False) -> None:
        self.path = Path(path)
        self.budget = Budget(limits or DEFAULT_LIMITS)
        self.expand_zips = expand_zips
        self.members: list[Member] = []
        self.bad: list[tuple[str, str]] = []
        self._stack = ExitStack()

    @property
    def limits(self) -> InputLimits:
        return self.budget.limits

    def __enter__(self) -> ExportArchive:
        try:
            st = os.lstat(self.path)
        except OSError as exc:
            raise UnreadableArchive(f"{self.path.name}: cannot be read ({exc.strerror})") from None
        if stat.S_ISDIR(st.st_mode):
            self.members = list(self._folder_members())
        elif stat.S_ISREG(st.st_mode):
            fp = self._stack.enter_context(open_regular(self.path))
            try:
                zf = self._stack.enter_context(_open_zip(fp, self.path.name, self.budget))
            except (MemberUnreadable, LimitExceeded) as exc:
                self._stack.close()
                raise UnreadableArchive(f"{self.path.name}: {exc}") from None
            self.members = list(self._zip_members(zf, "", depth=1))
        else:
            raise UnreadableArchive(f"{self.path.name}: {_kind(st.st_mode)}, not a file or folder: refused")
        self.members.sort(key=lambda m: m.path)
        return self

    def __exit__(self, *exc: object) -> None:
        self._stack.close()

    def _zip_members(self, zf: zipfile.ZipFile, prefix: str, depth: int) -> Iterator[Member]:
        for info in zf.infolist():
            if info.is_dir():
                continue
            path = prefix + info.filename
            member = Member(path=path, size=info.file_size, compressed=info.compress_size, budget=self.budget,
                            opener=lambda zf=zf, info=info: zf.open(info))
            if self.expand_zips and info.filename.lower().endswith(".zip"):
                yield from self._inner_zip(member, depth)
                continue
            yield member

    def _inner_zip(self, member: Member, depth: int) -> Iterator[Member]:
        if depth + 1 > self.limits.import_max_archive_depth:
            self.bad.append((member.path, f"nested zip not opened: it is zip level {depth + 1}, over "
                                          f"{self.limits.named('import_max_archive_depth')}"))
            return
        spool = self._stack.enter_context(tempfile.SpooledTemporaryFile(max_size=SPOOL_IN_MEMORY))  # noqa: SIM115
        try:
            _copy(member, spool.write)
            spool.seek(0)
            inner = self._stack.enter_context(_open_zip(spool, member.path, self.budget))  # type: ignore[arg-type]
        except (MemberUnreadable, LimitExceeded) as exc:
            self.bad.append((member.path, f"inner zip not opened: {exc}"))
            return
        # Notion nests exports as Part-N.zip whose members already carry the export folder.
        parent = member.parent
        yield from self._zip_members(inner, "" if parent == "." else parent + "/", depth + 1)

    def _folder_members(self) -> Iterator[Member]:
        root = self.path
        for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
            here = Path(dirpath)
            for name in sorted([*dirnames, *filenames]):
                full = here / name
                rel = full.relative_to(root).as_posix()
                try:
                    st = os.lstat(full)
                except OSError as exc:
                    self.bad.append((rel, f"cannot be read ({exc.strerror})"))
                    continue
                if stat.S_ISDIR(st.st_mode):
                    continue
                if not stat.S_ISREG(st.st_mode):
                    self.bad.append((rel, f"{_kind(st.st_mode)} in the export folder: refused, never read"))
                    if name in dirnames:
                        dirnames.remove(name)  # os.walk does not descend into links; be explicit
                    continue
                try:
                    self.budget.add_members(1, root.name)
                except LimitExceeded as exc:
                    self.bad.append((rel, str(exc)))
                    continue
                yield Member(path=rel, size=st.st_size, budget=self.budget,
                             opener=lambda full=full: open_regular(full))


def _kind(mode: int) -> str:
    return ("a symlink" if stat.S_ISLNK(mode) else "a FIFO" if stat.S_ISFIFO(mode) else
            "a socket" if stat.S_ISSOCK(mode) else "a device" if stat.S_ISBLK(mode) or stat.S_ISCHR(mode)
            else "not a regular file")


def open_regular(path: Path) -> IO[bytes]:
    """Open a regular file for reading without following a link or blocking on a FIFO."""
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0))
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise MemberUnreadable(f"{_kind(st.st_mode)}: refused, never read")
        os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def sample_bytes(path: Path, n: int) -> bytes:
    """The first ``n`` bytes of a regular file (what a reject keeps of a file too big to read)."""
    if n <= 0:
        return b""
    try:
        with open_regular(path) as fh:
            return fh.read(n)
    except (OSError, MemberUnreadable):
        return b""
