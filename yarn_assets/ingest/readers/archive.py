"""Export containers: a zip, a zip of zips (Notion's ``Export-…-Part-N.zip``) or an extracted folder.

Readers see one flat list of members with POSIX paths relative to the export root, whatever the
container, so a user may upload the zip as downloaded or the folder they unpacked.
"""

from __future__ import annotations

import io
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath


@dataclass(frozen=True)
class Member:
    path: str  # POSIX, relative to the export root (inner zips are expanded in place)
    size: int
    read: Callable[[], bytes]

    @property
    def name(self) -> str:
        return PurePosixPath(self.path).name

    @property
    def parent(self) -> str:
        return str(PurePosixPath(self.path).parent)


class UnreadableArchive(ValueError):
    """The container itself cannot be opened (the whole import fails with this reason)."""


def _zip_members(zf: zipfile.ZipFile, prefix: str, expand_zips: bool, bad: list[tuple[str, str]]) -> Iterator[Member]:
    for info in zf.infolist():
        if info.is_dir():
            continue
        path = prefix + info.filename
        if expand_zips and info.filename.lower().endswith(".zip"):
            try:
                inner = zipfile.ZipFile(io.BytesIO(zf.read(info)))
            except (zipfile.BadZipFile, OSError) as exc:
                bad.append((path, f"inner zip unreadable: {exc}"))
                continue
            # Notion nests exports as Part-N.zip whose members already carry the export folder.
            parent = str(PurePosixPath(path).parent)
            yield from _zip_members(inner, "" if parent == "." else parent + "/", expand_zips, bad)
            continue
        yield Member(path=path, size=info.file_size, read=lambda zf=zf, info=info: zf.read(info))


def list_members(path: Path, *, expand_zips: bool = False) -> tuple[list[Member], list[tuple[str, str]]]:
    """Every file of the export (sorted by path) and the inner parts that could not be opened."""
    bad: list[tuple[str, str]] = []
    if path.is_dir():
        members = [
            Member(path=p.relative_to(path).as_posix(), size=p.stat().st_size, read=p.read_bytes)
            for p in path.rglob("*")
            if p.is_file()
        ]
    else:
        try:
            zf = zipfile.ZipFile(path)
        except (zipfile.BadZipFile, OSError) as exc:
            raise UnreadableArchive(f"{path.name}: not a readable zip file ({exc})") from exc
        members = list(_zip_members(zf, "", expand_zips, bad))
    return sorted(members, key=lambda m: m.path), bad
