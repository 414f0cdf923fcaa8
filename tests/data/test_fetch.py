"""fetch_movielens against a local HTTP server (127.0.0.1, port 0) serving archives the tests build."""

from __future__ import annotations

import hashlib
import http.server
import io
import threading
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from rlrec.cli import main
from rlrec.data import KNOWN_RELEASES, DatasetError, fetch_movielens, load_movielens
from tests.data.releases import movies_csv, ratings_csv
from tests.data.test_movielens import assert_fixture_content

NAME = "ml-latest-small"


class Server:
    """Serves ``routes`` (path -> bytes); ``short`` paths announce more bytes than they send."""

    def __init__(self) -> None:
        self.routes: dict[str, bytes] = {}
        self.short: set[str] = set()
        self.requests: list[str] = []
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                server.requests.append(self.path)
                body = server.routes.get(self.path)
                if body is None:
                    self.send_error(404)
                    return
                self.send_response(200)
                self.send_header("Content-Type", "application/octet-stream")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if self.path in server.short:
                    self.wfile.write(body[: len(body) // 2])  # then the connection closes early
                    self.close_connection = True
                    return
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:  # keep test output clean
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/datasets"
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.02,), daemon=True)

    def publish(self, zip_bytes: bytes, md5_text: str | None = None) -> None:
        digest = hashlib.md5(zip_bytes).hexdigest()
        self.routes[f"/datasets/{NAME}.zip"] = zip_bytes
        self.routes[f"/datasets/{NAME}.zip.md5"] = (md5_text or f"MD5 ({NAME}.zip) = {digest}\n").encode()


@pytest.fixture
def server() -> Iterator[Server]:
    srv = Server()
    srv.thread.start()
    try:
        yield srv
    finally:
        srv.httpd.shutdown()
        srv.httpd.server_close()
        srv.thread.join(timeout=5)


def release_zip(extra: dict[str, str] | None = None, top: str = NAME) -> bytes:
    """A GroupLens-like zip: ``<top>/ratings.csv`` and ``<top>/movies.csv`` (+ ``extra`` members)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr(f"{top}/", "")
        zf.writestr(f"{top}/ratings.csv", ratings_csv())
        zf.writestr(f"{top}/movies.csv", movies_csv())
        zf.writestr(f"{top}/README.txt", "fixture")
        for name, content in (extra or {}).items():
            zf.writestr(name, content)
    return buffer.getvalue()


def leftovers(home: Path) -> list[str]:
    return sorted(p.name for p in home.iterdir()) if home.exists() else []


@pytest.mark.parametrize("md5_style", ["bsd", "coreutils"])
def test_fetch_downloads_verifies_and_unpacks(server: Server, tmp_path: Path, md5_style: str) -> None:
    archive = release_zip(top="ml-latest-small-2099")  # the top folder's name does not matter
    digest = hashlib.md5(archive).hexdigest()
    text = f"MD5 ({NAME}.zip) = {digest}\n" if md5_style == "bsd" else f"{digest.upper()}  {NAME}.zip\n"
    server.publish(archive, text)
    home = tmp_path / "home"
    path = fetch_movielens(NAME, data_home=home, base_url=server.url, progress=False)
    assert path == home / NAME
    assert sorted(p.name for p in path.iterdir()) == ["README.txt", "movies.csv", "ratings.csv"]
    assert leftovers(home) == [NAME]  # no temp file or staging folder left
    assert_fixture_content(load_movielens(NAME, data_home=home))
    # Already there: no second download.
    before = len(server.requests)
    assert fetch_movielens(NAME, data_home=home, base_url=server.url, progress=False) == path
    assert len(server.requests) == before


def test_force_replaces_a_release_and_flat_archives_work(server: Server, tmp_path: Path) -> None:
    home = tmp_path / "home"
    (home / NAME).mkdir(parents=True)
    (home / NAME / "notes.txt").write_text("not a release")
    with pytest.raises(DatasetError, match=r"exists but holds no MovieLens release; remove it"):
        fetch_movielens(NAME, data_home=home, base_url=server.url, progress=False)
    assert server.requests == []  # refused before any download
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:  # no top folder: files at the archive's root
        zf.writestr("ratings.csv", ratings_csv())
        zf.writestr("movies.csv", movies_csv())
    server.publish(buffer.getvalue())
    path = fetch_movielens(NAME, data_home=home, base_url=server.url, progress=False, force=True)
    assert sorted(p.name for p in path.iterdir()) == ["movies.csv", "ratings.csv"]  # old notes.txt gone
    assert leftovers(home) == [NAME]
    assert_fixture_content(load_movielens(path))


def test_checksum_mismatch_is_refused(server: Server, tmp_path: Path) -> None:
    server.publish(release_zip(), f"MD5 ({NAME}.zip) = {'0' * 32}\n")
    home = tmp_path / "home"
    with pytest.raises(DatasetError, match=r"ml-latest-small\.zip: MD5 mismatch"):
        fetch_movielens(NAME, data_home=home, base_url=server.url, progress=False)
    assert leftovers(home) == []


@pytest.mark.parametrize(
    "member", ["../evil.csv", "/tmp/rlrec-evil-absolute.csv", "ml-latest-small/../../x.csv"]
)
def test_zip_slip_member_is_refused_before_extracting(server: Server, tmp_path: Path, member: str) -> None:
    server.publish(release_zip(extra={member: "pwned"}))
    home = tmp_path / "deep" / "home"
    with pytest.raises(DatasetError, match=r"unsafe member path"):
        fetch_movielens(NAME, data_home=home, base_url=server.url, progress=False)
    assert leftovers(home) == []
    assert not (tmp_path / "deep" / "evil.csv").exists() and not (tmp_path / "x.csv").exists()
    assert not Path("/tmp/rlrec-evil-absolute.csv").exists()


def test_interrupted_download_leaves_nothing(server: Server, tmp_path: Path) -> None:
    server.publish(release_zip())
    server.short.add(f"/datasets/{NAME}.zip")
    home = tmp_path / "home"
    with pytest.raises(DatasetError, match=r"download interrupted"):
        fetch_movielens(NAME, data_home=home, base_url=server.url, progress=False)
    assert leftovers(home) == []


def test_archive_without_layout_is_refused(server: Server, tmp_path: Path) -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        zf.writestr("something/readme.txt", "no ratings")
    server.publish(buffer.getvalue())
    home = tmp_path / "home"
    with pytest.raises(DatasetError, match=r"no MovieLens layout found"):
        fetch_movielens(NAME, data_home=home, base_url=server.url, progress=False)
    assert leftovers(home) == []


def test_http_error_and_unknown_name(server: Server, tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match=r"ml-latest-small\.zip\.md5: HTTP 404"):
        fetch_movielens(NAME, data_home=tmp_path, base_url=server.url, progress=False)
    with pytest.raises(DatasetError, match=r"ml-5m: not a GroupLens release name \(known: ml-latest-small"):
        fetch_movielens("ml-5m", data_home=tmp_path, base_url=server.url, progress=False)
    assert server.requests == [f"/datasets/{NAME}.zip.md5"]  # the unknown name never reached the network
    assert set(KNOWN_RELEASES) == {
        "ml-latest-small", "ml-latest", "ml-100k", "ml-1m", "ml-10m", "ml-20m", "ml-25m", "ml-32m",
    }  # fmt: skip


def test_cli_fetch_and_info(server: Server, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    server.publish(release_zip())
    home = tmp_path / "home"
    assert main(["data", "fetch", NAME, "--data-home", str(home), "--base-url", server.url]) == 0
    assert capsys.readouterr().out.strip() == f"{NAME}: ready in {home / NAME}"
    assert main(["data", "info", str(home / NAME)]) == 0
    out = capsys.readouterr().out
    assert "users:   3\n" in out and "movies:  4\n" in out and "ratings: 5\n" in out


def test_cli_fetch_failure_is_one_line(
    server: Server, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    server.publish(release_zip(), "not a checksum\n")
    home = tmp_path / "home"
    assert main(["data", "fetch", NAME, "--data-home", str(home), "--base-url", server.url]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert err.startswith("rlrec data: error: ") and "no MD5 checksum" in err
    assert leftovers(home) == []
