"""Every bad input is a DatasetError naming the file (and line) and the problem, via the API and the CLI."""

from __future__ import annotations

import re
import zipfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from rlrec.cli import main
from rlrec.data import DatasetError, build_dataset, load_movielens
from rlrec.data.dataset import index_ids
from tests.data.releases import (
    MOVIES,
    RATINGS,
    movies_csv,
    ratings_csv,
    write_100k_release,
    write_csv_release,
    write_dat_release,
)

HEADER = "userId,movieId,rating,timestamp\n"


def _ratings(*lines: str) -> str:
    """A ratings.csv whose data rows are ``lines``: row i (0-based) sits on file line i + 2."""
    return HEADER + "".join(f"{line}\n" for line in lines)


def _csv(ratings: str | bytes | None = None, movies: str | bytes | None = None) -> Callable[[Path], str]:
    return lambda tmp: str(write_csv_release(tmp / "rel", ratings=ratings, movies=movies))


def _only_ratings(tmp: Path) -> str:
    folder = write_csv_release(tmp / "rel")
    (folder / "movies.csv").unlink()
    return str(folder)


def _empty_folder(tmp: Path) -> str:
    (tmp / "nothing").mkdir()
    (tmp / "nothing" / "README.txt").write_text("no data here")
    return str(tmp / "nothing")


def _zip_without_layout(tmp: Path) -> str:
    with zipfile.ZipFile(tmp / "odd.zip", "w") as zf:
        zf.writestr("odd/readme.txt", "hello")
    return str(tmp / "odd.zip")


def _zip_missing_movies(tmp: Path) -> str:
    with zipfile.ZipFile(tmp / "half.zip", "w") as zf:
        zf.writestr("half/ratings.csv", ratings_csv())
    return str(tmp / "half.zip")


def _not_a_zip(tmp: Path) -> str:
    (tmp / "fake.zip").write_bytes(b"this is not a zip archive at all")
    return str(tmp / "fake.zip")


def _u_item_short(tmp: Path) -> str:
    folder = write_100k_release(tmp / "ml-100k")
    (folder / "u.item").write_text("1|Toy Story (1995)|01-Jan-1995||url|0|1\n", encoding="latin-1")
    return str(folder)


def _u_data_text(tmp: Path) -> str:
    folder = write_100k_release(tmp / "ml-100k")
    (folder / "u.data").write_text("1\t1\t4\t100\n1\tfive\t4\t101\n", encoding="ascii")
    return str(folder)


def _u_data_five(tmp: Path) -> str:
    folder = write_100k_release(tmp / "ml-100k")
    (folder / "u.data").write_text("1\t1\t4\t100\t9\n3\t2\t5\t110\t9\n", encoding="ascii")
    return str(folder)


def _ratings_dat_short(tmp: Path) -> str:
    folder = write_dat_release(tmp / "ml-1m")
    (folder / "ratings.dat").write_text("1::1::4\n3::2::5\n", encoding="ascii")
    return str(folder)


def _movies_dat_short(tmp: Path) -> str:
    folder = write_dat_release(tmp / "ml-1m")
    (folder / "movies.dat").write_text("1::Toy Story (1995)::Animation\n2::Broken line\n", encoding="utf-8")
    return str(folder)


def _known_release_missing(tmp: Path) -> str:
    return "ml-100k"


def _unknown_name(tmp: Path) -> str:
    return "ml-nonsense"


LATIN1_TITLE = movies_csv().encode("utf-8").replace("Amélie".encode(), "Amélie".encode("latin-1"))
# (id, builder, what the one-line message must contain)
CASES: list[tuple[str, Callable[[Path], str], str]] = [
    ("missing-path", lambda tmp: str(tmp / "absent"), r"absent: no such file or folder"),
    ("missing-movies-file", _only_ratings, r"rel/movies\.csv: missing file \(needed with ratings\.csv\)"),
    ("missing-movies-in-zip", _zip_missing_movies, r"half\.zip:half/movies\.csv: missing file"),
    ("no-layout-folder", _empty_folder, r"nothing: no MovieLens layout found"),
    ("no-layout-zip", _zip_without_layout, r"odd\.zip: no MovieLens layout found in the zip"),
    ("not-a-zip", _not_a_zip, r"fake\.zip: not a zip archive"),
    ("misnamed-rating-column", _csv(ratings="userId,movieId,score,timestamp\n1,1,4.0,1\n"),
     r"ratings\.csv: missing column\(s\) rating \(header has: userId, movieId, score, timestamp\)"),
    ("missing-timestamp-column", _csv(ratings="userId,movieId,rating\n1,1,4.0\n"),
     r"ratings\.csv: missing column\(s\) timestamp"),
    ("misnamed-movie-column", _csv(movies="id,title,genres\n1,A,Drama\n"),
     r"movies\.csv: missing column\(s\) movieId"),
    ("text-user-id", _csv(ratings=_ratings("1,1,4.0,10", "1,2,3.0,11", "bob,5,2.0,12")),
     r"ratings\.csv, line 4: userId must be an integer, got 'bob'"),
    ("fractional-movie-id", _csv(ratings=_ratings("1,1,4.0,10", "1,2.5,3.0,11")),
     r"ratings\.csv, line 3: movieId must be an integer, got '2.5'"),
    ("text-rating", _csv(ratings=_ratings("1,1,good,10")),
     r"ratings\.csv, line 2: rating must be a number, got 'good'"),
    ("empty-rating", _csv(ratings=_ratings("1,1,4.0,10", "1,2,,11")),
     r"ratings\.csv, line 3: rating must be a number, got an empty field or NaN"),
    ("text-timestamp", _csv(ratings=_ratings("1,1,4.0,10", "1,2,3.0,yesterday")),
     r"ratings\.csv, line 3: timestamp must be an integer, got 'yesterday'"),
    ("rating-above-5", _csv(ratings=_ratings("1,1,4.0,10", "1,2,3.0,11", "3,1,5.5,12")),
     r"ratings\.csv, line 4: rating 5\.5 is outside \[0\.5, 5\]"),
    ("rating-zero", _csv(ratings=_ratings("1,1,0,10")),
     r"ratings\.csv, line 2: rating 0 is outside \[0\.5, 5\]"),
    ("empty-ratings-file", _csv(ratings=""), r"ratings\.csv: the file is empty"),
    ("header-only-ratings", _csv(ratings=HEADER), r"ratings\.csv: no ratings"),
    ("empty-movies", _csv(movies="movieId,title,genres\n"), r"movies\.csv: no movies"),
    ("unknown-movie", _csv(ratings=_ratings("1,1,4.0,10", "1,99,3.0,11", "2,98,3.0,12")),
     r"ratings\.csv, line 3: movieId 99 is not in .*movies\.csv \(2 rating\(s\) of unknown movies\)"),
    ("duplicate-movie-id", _csv(movies="movieId,title,genres\n1,A,Drama\n2,B,Drama\n1,C,Drama\n5,D,Drama\n"),
     r"movies\.csv, line 4: movieId 1 appears twice"),
    ("ragged-row", _csv(ratings=_ratings("1,1,4.0,10", "1,2,3.0,11,extra")),
     r"ratings\.csv: cannot parse: .*line 3"),
    ("extra-field-everywhere", _csv(ratings=_ratings("1,1,4.0,10,x", "1,2,3.0,11,y")),
     r"ratings\.csv: data rows have more fields than the header \(4\)"),
    ("u-data-five-fields", _u_data_five, r"u\.data: expected 4 tab-separated fields .*found 5"),
    ("ratings-dat-three-fields", _ratings_dat_short,
     r"ratings\.dat: expected 4 '::'-separated fields .*found 3"),
    ("undecodable-movies", _csv(movies=LATIN1_TITLE), r"movies\.csv, line 4: not valid utf-8 text"),
    ("undecodable-ratings", _csv(ratings=_ratings("1,1,4.0,10").encode() + b"1,\xff,3.0,11\n"),
     r"ratings\.csv, line 3: not valid utf-8 text"),
    ("u-item-fields", _u_item_short, r"u\.item: expected 24 '\|'-separated fields"),
    ("u-data-text", _u_data_text, r"u\.data, line 2: movieId must be an integer, got 'five'"),
    ("movies-dat-fields", _movies_dat_short, r"movies\.dat, line 2: expected 3 '::'-separated fields"),
    ("known-release-absent", _known_release_missing,
     r"ml-100k: not found in the data home .*rlrec data fetch ml-100k"),
    ("unknown-name", _unknown_name,
     r"ml-nonsense: no such file or folder, and no ml-nonsense/ in the data home"),
    ("bad-synthetic-key", lambda tmp: "synthetic:n_user=3", r"synthetic:n_user=3: expected key=value pairs"),
    ("bad-synthetic-value", lambda tmp: "synthetic:n_users=many", r"n_users must be a number, got 'many'"),
    ("impossible-synthetic", lambda tmp: "synthetic:n_users=10,n_movies=10,n_ratings=5",
     r"synthetic:n_users=10,n_movies=10,n_ratings=5: n_ratings must lie in .* = \[10, 30\], got 5"),
]  # fmt: skip


@pytest.fixture
def empty_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path / "home"
    monkeypatch.setenv("RLREC_DATA", str(home))
    return home


@pytest.mark.parametrize(("builder", "pattern"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_api_raises_dataset_error(tmp_path: Path, empty_home: Path, builder, pattern: str) -> None:  # type: ignore[no-untyped-def]
    source = builder(tmp_path)
    with pytest.raises(DatasetError, match=pattern) as info:
        load_movielens(source)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize(("builder", "pattern"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_cli_prints_one_line_and_exits_2(  # type: ignore[no-untyped-def]
    tmp_path: Path, empty_home: Path, capsys: pytest.CaptureFixture[str], builder, pattern: str
) -> None:
    source = builder(tmp_path)
    assert main(["data", "info", source]) == 2
    captured = capsys.readouterr()
    lines = captured.err.splitlines()
    assert len(lines) == 1, captured.err
    assert lines[0].startswith("rlrec data: error: ")
    assert "Traceback" not in captured.err
    assert re.search(pattern, lines[0]), lines[0]
    assert captured.out == ""


# ------------------------------------------------------------------- build_dataset checks
def _build(users: list[int], movies: list[int]) -> None:
    n = len(users)
    ids = np.array([m for m, _, _ in MOVIES])
    build_dataset(
        "b", np.array(users), np.array(movies), np.full(n, 3.0), np.arange(n), ids,
        np.array(["t"] * len(ids), dtype=object), np.array(["g"] * len(ids), dtype=object),
    )  # fmt: skip


def test_build_dataset_refuses_unknown_movies_and_repeated_pairs() -> None:
    with pytest.raises(DatasetError, match=r"b: rating 1 is of movie id 3, which is not in all_movie_ids"):
        _build([1, 1], [1, 3])
    with pytest.raises(DatasetError, match=r"user id 2 rated movie id 5 more than once \(1 repeated pair"):
        _build([2, 1, 2], [5, 1, 5])
    _build([u for u, _, _, _ in RATINGS], [m for _, m, _, _ in RATINGS])  # the valid fixture passes


@pytest.mark.parametrize("offset", [0, 1 << 40])  # dense lookup table, then the searchsorted route
def test_index_ids_maps_known_ids_and_flags_unknown(offset: int) -> None:
    universe = np.array([3, 7, 8, 20], dtype=np.int64) + offset
    ids = np.array([20, 3, 4, 8, 21, 2, 7], dtype=np.int64) + offset
    assert index_ids(ids, universe).tolist() == [3, 0, -1, 2, -1, -1, 1]
    assert index_ids(ids, universe[:0]).tolist() == [-1] * 7
