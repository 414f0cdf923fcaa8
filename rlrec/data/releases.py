"""The files of a GroupLens release, folder or zip: which layout it has and how to open its files."""

from __future__ import annotations

import contextlib
import os
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import IO

from rlrec.data.errors import DatasetError

__all__ = ["LAYOUTS", "Layout", "Release", "find_layout", "open_release"]


@dataclass(frozen=True)
class Layout:
    """One file naming scheme of GroupLens releases."""

    name: str
    ratings: str
    movies: str


LAYOUTS = (
    Layout("csv", "ratings.csv", "movies.csv"),
    Layout("100k", "u.data", "u.item"),
    Layout("dat", "ratings.dat", "movies.dat"),
)
_LAYOUT_HINT = "expected ratings.csv + movies.csv, u.data + u.item, or ratings.dat + movies.dat"


class Release:
    """The files of one release, in a folder or under a prefix inside a zip."""

    def __init__(self, layout: Layout, label: str) -> None:
        self.layout = layout
        self.label = label

    def exists(self, name: str) -> bool:
        raise NotImplementedError

    def open(self, name: str) -> IO[bytes]:
        raise NotImplementedError

    def where(self, name: str) -> str:
        """How a member is named in messages."""
        raise NotImplementedError

    def read_bytes(self, name: str) -> bytes:
        with self.open(name) as handle:
            return handle.read()


class _FolderRelease(Release):
    def __init__(self, layout: Layout, root: Path) -> None:
        super().__init__(layout, root.name)
        self.root = root

    def exists(self, name: str) -> bool:
        return (self.root / name).is_file()

    def open(self, name: str) -> IO[bytes]:
        return open(self.root / name, "rb")

    def where(self, name: str) -> str:
        return str(self.root / name)


class _ZipRelease(Release):
    def __init__(self, layout: Layout, archive: zipfile.ZipFile, path: Path, prefix: str) -> None:
        super().__init__(layout, path.stem)
        self.archive, self.path, self.prefix = archive, path, prefix

    def exists(self, name: str) -> bool:
        try:
            self.archive.getinfo(self.prefix + name)
        except KeyError:
            return False
        return True

    def open(self, name: str) -> IO[bytes]:
        return self.archive.open(self.prefix + name)

    def where(self, name: str) -> str:
        return f"{self.path}:{self.prefix}{name}"


def find_layout(root: str | os.PathLike[str]) -> tuple[Layout, Path]:
    """The layout of a release folder and the folder that holds its files.

    The files may sit in ``root`` or in exactly one of its sub-folders (an unzipped archive
    usually has a top folder).

    :raises DatasetError: no layout, several candidate sub-folders, or a ratings file whose movies
        file is missing.
    """
    root = Path(root)
    for layout in LAYOUTS:
        if (root / layout.ratings).is_file():
            if not (root / layout.movies).is_file():
                raise DatasetError(f"{root / layout.movies}: missing file (needed with {layout.ratings})")
            return layout, root
    found = []
    for child in sorted(p for p in root.iterdir() if p.is_dir()):
        for layout in LAYOUTS:
            if (child / layout.ratings).is_file():
                found.append(child)
                break
    if len(found) == 1:
        return find_layout(found[0])
    if len(found) > 1:
        names = ", ".join(p.name for p in found)
        raise DatasetError(f"{root}: several MovieLens releases inside ({names}); point at one of them")
    raise DatasetError(f"{root}: no MovieLens layout found ({_LAYOUT_HINT})")


def _zip_release(path: Path, archive: zipfile.ZipFile) -> _ZipRelease:
    members = [PurePosixPath(name) for name in archive.namelist() if not name.endswith("/")]
    # As for a folder: a release at the top wins; otherwise exactly one release may be inside,
    # never the first of several by member order.
    found = sorted({m.parent for m in members for layout in LAYOUTS if m.name == layout.ratings}, key=str)
    top = [parent for parent in found if str(parent) == "."]
    if not top and len(found) > 1:
        names = ", ".join(f"{parent}/" for parent in found)
        raise DatasetError(f"{path}: several MovieLens releases inside ({names}); use an archive of one")
    for layout in LAYOUTS:
        ratings = sorted((m for m in members if m.name == layout.ratings), key=lambda m: len(m.parts))
        if not ratings:
            continue
        parent = ratings[0].parent
        prefix = "" if str(parent) == "." else f"{parent}/"
        release = _ZipRelease(layout, archive, path, prefix)
        if not release.exists(layout.movies):
            raise DatasetError(f"{release.where(layout.movies)}: missing file (needed with {layout.ratings})")
        return release
    raise DatasetError(f"{path}: no MovieLens layout found in the zip ({_LAYOUT_HINT})")


@contextlib.contextmanager
def open_release(path: Path) -> Iterator[Release]:
    if path.is_file() and any(path.name == layout.ratings for layout in LAYOUTS):
        path = path.parent  # a ratings file stands for its release folder
    if path.is_dir():
        layout, root = find_layout(path)
        release: Release = _FolderRelease(layout, root)
        release.label = path.name
        yield release
        return
    if not zipfile.is_zipfile(path):
        raise DatasetError(f"{path}: not a zip archive (expected a MovieLens release folder or .zip)")
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as exc:
        raise DatasetError(f"{path}: cannot open the zip archive: {exc}") from exc
    with archive:
        try:
            yield _zip_release(path, archive)
        except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError) as exc:
            raise DatasetError(f"{path}: corrupt zip archive: {exc}") from exc
