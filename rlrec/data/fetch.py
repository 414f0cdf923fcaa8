"""Download an official GroupLens MovieLens archive into the data home, checked and atomic.

Nothing is ever downloaded implicitly: only :func:`fetch_movielens` (``rlrec data fetch NAME``)
touches the network.
"""

from __future__ import annotations

import hashlib
import http.client
import os
import re
import shutil
import tempfile
import urllib.error
import urllib.request
import zipfile
from pathlib import Path, PurePosixPath

from tqdm.auto import tqdm

from rlrec.data.errors import DatasetError
from rlrec.data.home import KNOWN_RELEASES
from rlrec.data.home import data_home as resolve_data_home
from rlrec.data.releases import find_layout

__all__ = ["BASE_URL", "KNOWN_RELEASES", "fetch_movielens"]

#: Where GroupLens publishes ``<name>.zip`` and ``<name>.zip.md5``.
BASE_URL = "https://files.grouplens.org/datasets/movielens"
_CHUNK = 1 << 20
_TIMEOUT_S = 60.0


def _parse_md5(text: str, url: str) -> str:
    """The hex digest of a GroupLens ``.md5`` file: ``MD5 (x.zip) = <hex>`` or ``<hex>  x.zip``."""
    match = re.search(r"\b([0-9a-fA-F]{32})\b", text)
    if not match:
        raise DatasetError(f"{url}: no MD5 checksum in the file")
    return match.group(1).lower()


def _open_url(url: str) -> http.client.HTTPResponse:
    try:
        response = urllib.request.urlopen(url, timeout=_TIMEOUT_S)
    except urllib.error.HTTPError as exc:
        raise DatasetError(f"{url}: HTTP {exc.code} {exc.reason}") from exc
    except (urllib.error.URLError, OSError, http.client.HTTPException) as exc:
        reason = getattr(exc, "reason", exc)
        raise DatasetError(f"{url}: cannot download: {reason}") from exc
    return response  # type: ignore[no-any-return]


def _fetch_text(url: str) -> str:
    with _open_url(url) as response:
        try:
            return response.read(1 << 16).decode("utf-8", errors="replace")
        except (OSError, http.client.HTTPException) as exc:
            raise DatasetError(f"{url}: download interrupted: {exc}") from exc


def _download(url: str, target: Path, progress: bool) -> str:
    """Stream ``url`` into ``target``; return its MD5. Raise if fewer bytes came than announced."""
    digest = hashlib.md5(usedforsecurity=False)
    received = 0
    with _open_url(url) as response:
        length = response.headers.get("Content-Length")
        expected = int(length) if length and length.isdigit() else None
        with (
            open(target, "wb") as handle,
            tqdm(
                total=expected,
                unit="B",
                unit_scale=True,
                unit_divisor=1024,
                desc=url.rsplit("/", 1)[-1],
                # None: tqdm's own rule, a bar only on a terminal (no bar lines in logs).
                disable=None if progress else True,
            ) as bar,
        ):
            while True:
                try:
                    chunk = response.read(_CHUNK)
                except (OSError, http.client.HTTPException) as exc:
                    raise DatasetError(
                        f"{url}: download interrupted after {received} of {expected or '?'} bytes ({exc!r})"
                    ) from exc
                if not chunk:
                    break
                handle.write(chunk)
                digest.update(chunk)
                received += len(chunk)
                bar.update(len(chunk))
    if expected is not None and received != expected:
        raise DatasetError(f"{url}: download interrupted after {received} of {expected} bytes")
    return digest.hexdigest()


def _check_members(archive: zipfile.ZipFile, where: str) -> None:
    """Refuse absolute paths and ``..`` in member names (zip slip) before extracting anything."""
    for name in archive.namelist():
        normal = name.replace("\\", "/")
        if normal.startswith("/") or re.match(r"^[A-Za-z]:", normal) or ".." in PurePosixPath(normal).parts:
            raise DatasetError(f"{where}: unsafe member path {name!r} in the archive (absolute or with '..')")


def _extract(archive_path: Path, staging: Path) -> Path:
    """Extract a checked archive into ``staging``; return the folder that holds the release files."""
    try:
        archive = zipfile.ZipFile(archive_path)
    except zipfile.BadZipFile as exc:
        raise DatasetError(f"{archive_path}: not a zip archive: {exc}") from exc
    with archive:
        _check_members(archive, str(archive_path))
        try:
            archive.extractall(staging)
        except (zipfile.BadZipFile, EOFError, OSError) as exc:
            raise DatasetError(f"{archive_path}: cannot extract: {exc}") from exc
    _, release = find_layout(staging)
    return release


def fetch_movielens(
    name: str,
    data_home: str | os.PathLike[str] | None = None,
    base_url: str | None = None,
    *,
    progress: bool = True,
    force: bool = False,
) -> Path:
    """Download, verify and unpack an official GroupLens release; return ``<data home>/<name>/``.

    Steps: ``<base_url>/<name>.zip`` is streamed into a temporary file of the data home (tqdm
    progress bar) while its MD5 is computed; it must match ``<name>.zip.md5`` published next to
    it. Member names are checked (no absolute path, no ``..``) before anything is extracted; the
    archive is extracted into a temporary folder and the release folder is renamed onto
    ``<data home>/<name>/``, so the release's files sit directly in it. On any failure
    (HTTP error, interrupted download, checksum mismatch, unsafe archive) nothing is left behind.

    :param name: one of :data:`KNOWN_RELEASES`.
    :param data_home: where to put it; default :func:`rlrec.data.data_home`.
    :param base_url: host and folder to download from; default :data:`BASE_URL` (GroupLens).
    :param progress: show a progress bar on stderr when it is a terminal.
    :param force: download again even when ``<data home>/<name>/`` already holds a release.
    :raises DatasetError: unknown name, network or HTTP error, short download, checksum mismatch,
        unsafe or invalid archive.
    """
    if name not in KNOWN_RELEASES:
        raise DatasetError(f"{name}: not a GroupLens release name (known: {', '.join(KNOWN_RELEASES)})")
    home = resolve_data_home(data_home)
    target = home / name
    if target.is_dir() and not force:
        try:
            find_layout(target)
        except DatasetError:
            raise DatasetError(
                f"{target}: exists but holds no MovieLens release; remove it, or fetch with force=True"
            ) from None
        return target
    if target.exists() and not target.is_dir():
        raise DatasetError(f"{target}: exists and is not a folder")
    url = f"{(base_url or BASE_URL).rstrip('/')}/{name}.zip"
    expected = _parse_md5(_fetch_text(f"{url}.md5"), f"{url}.md5")
    home.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{name}.", suffix=".zip.part", dir=home)
    os.close(fd)
    partial = Path(tmp_name)
    staging = Path(tempfile.mkdtemp(prefix=f".{name}.", suffix=".tmp", dir=home))
    previous: Path | None = None
    try:
        actual = _download(url, partial, progress)
        if actual != expected:
            raise DatasetError(
                f"{url}: MD5 mismatch (got {actual}, {url}.md5 says {expected}); file discarded"
            )
        release = _extract(partial, staging)
        if target.exists():  # force: the old copy goes only once the new one is complete
            previous = Path(tempfile.mkdtemp(prefix=f".{name}.", suffix=".old", dir=home))
            os.replace(target, previous)
        os.replace(release, target)
    finally:
        partial.unlink(missing_ok=True)
        shutil.rmtree(staging, ignore_errors=True)
        if previous is not None:
            shutil.rmtree(previous, ignore_errors=True)
    return target
