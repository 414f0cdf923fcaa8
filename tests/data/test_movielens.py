"""load_movielens on every GroupLens layout (hand-written fixtures) and on the two shared releases."""

from __future__ import annotations

import csv
import warnings
from pathlib import Path

import numpy as np
import pytest

from rlrec.data import DatasetError, RatingsDataset, load_movielens, make_synthetic
from tests.data.releases import (
    EXPECTED_DENSE,
    EXPECTED_MOVIE_IDS,
    EXPECTED_TIMESTAMPS,
    EXPECTED_USER_IDS,
    MOVIES,
    RATINGS,
    ratings_csv,
    write_100k_release,
    write_csv_release,
    write_dat_release,
    zip_folder,
)


def assert_fixture_content(dataset: RatingsDataset) -> None:
    """The hand-worked expectation of tests/data/releases.py, whatever the layout."""
    assert dataset.user_ids.tolist() == EXPECTED_USER_IDS
    assert dataset.movie_ids.tolist() == EXPECTED_MOVIE_IDS
    assert dataset.n_ratings == 5
    np.testing.assert_array_equal(dataset.ratings.toarray(), EXPECTED_DENSE)
    assert dataset.timestamps.tolist() == EXPECTED_TIMESTAMPS
    assert dataset.movie_counts.tolist() == [2, 1, 2, 0]  # movie 10 is in the universe, unrated
    assert dataset.ratings.dtype == np.float32 and dataset.timestamps.dtype == np.int64


# ------------------------------------------------------------------------------ layouts
def test_csv_folder(tmp_path: Path) -> None:
    dataset = load_movielens(write_csv_release(tmp_path / "ml-test"))
    assert_fixture_content(dataset)
    assert dataset.name == "ml-test"
    assert dataset.titles.tolist() == [title for _, title, _ in MOVIES]  # comma, quotes, accent intact
    assert dataset.genres.tolist() == [genres for _, _, genres in MOVIES]


@pytest.mark.parametrize("top", ["ml-test", None])
def test_csv_zip_with_and_without_top_folder(tmp_path: Path, top: str | None) -> None:
    folder = write_csv_release(tmp_path / "src")
    archive = zip_folder(folder, tmp_path / "ml-test.zip", top=top)
    dataset = load_movielens(archive)
    assert_fixture_content(dataset)
    assert dataset.name == "ml-test"
    assert dataset.titles.tolist() == [title for _, title, _ in MOVIES]


def test_csv_folder_one_level_down_and_ratings_file_path(tmp_path: Path) -> None:
    release = write_csv_release(tmp_path / "outer" / "ml-inner")
    assert_fixture_content(load_movielens(tmp_path / "outer"))  # an unzipped archive's top folder
    from_file = load_movielens(release / "ratings.csv")
    assert_fixture_content(from_file)
    assert from_file.name == "ml-inner"


def test_lf_line_endings_and_unsorted_columns(tmp_path: Path) -> None:
    # Column order is not fixed by the loader: it goes by header names.
    ratings = "timestamp,rating,movieId,userId\n" + "".join(f"{t},{r},{m},{u}\n" for u, m, r, t in RATINGS)
    assert_fixture_content(load_movielens(write_csv_release(tmp_path / "r", ratings=ratings)))


@pytest.mark.parametrize("with_genre_file", [False, True])
def test_ml100k_layout(tmp_path: Path, with_genre_file: bool) -> None:
    folder = write_100k_release(tmp_path / "ml-100k", with_genre_file=with_genre_file)
    for source in (folder, zip_folder(folder, tmp_path / "ml-100k.zip", top="ml-100k")):
        dataset = load_movielens(source)
        assert_fixture_content(dataset)
        assert dataset.titles.tolist() == [title for _, title, _ in MOVIES]  # Latin-1 decoded
        kids = "Kids" if with_genre_file else "Children's"
        assert dataset.genres.tolist() == [f"Animation|{kids}", "Drama", "Comedy|Romance", "Horror"]


@pytest.mark.parametrize("encoding", ["latin-1", "utf-8"])
def test_dat_layout(tmp_path: Path, encoding: str) -> None:
    folder = write_dat_release(tmp_path / "ml-1m", movies_encoding=encoding)
    for source in (folder, zip_folder(folder, tmp_path / "ml-1m.zip", top="ml-1m")):
        dataset = load_movielens(source)
        assert_fixture_content(dataset)
        assert dataset.titles.tolist() == [title for _, title, _ in MOVIES]
        assert dataset.genres.tolist() == [genres for _, _, genres in MOVIES]


# ------------------------------------------------------------------------------ policies
def test_duplicates_keep_latest_by_timestamp_with_warning(tmp_path: Path) -> None:
    rows = [
        (1, 1, 4.0, 200),  # latest of (1, 1): kept although it comes first
        (1, 5, 3.0, 50),
        (1, 1, 2.0, 100),
        (2, 2, 1.0, 70),  # (2, 2) twice with the same timestamp: the later line wins
        (2, 2, 5.0, 70),
    ]
    folder = write_csv_release(tmp_path / "dup", ratings=ratings_csv(rows))
    with pytest.warns(UserWarning, match=r"ratings\.csv: 2 repeated \(userId, movieId\) rating"):
        dataset = load_movielens(folder)
    assert dataset.n_ratings == 3
    np.testing.assert_array_equal(dataset.ratings.toarray()[:, :3], [[4.0, 0.0, 3.0], [0.0, 5.0, 0.0]])
    assert dataset.timestamps.tolist() == [200, 50, 70]


def test_duplicates_with_ids_too_spread_for_one_key(tmp_path: Path) -> None:
    big = 2**61  # (user span) x (movie span) overflows int64: the loader sorts on both ids instead
    movies = "movieId,title,genres\n1,A,Drama\n" + f"{big},B,Drama\n"
    rows = [(5, big, 1.0, 300), (1, 1, 2.0, 10), (5, big, 4.5, 900), (5, 1, 3.0, 20), (5, big, 2.5, 100)]
    folder = write_csv_release(tmp_path / "spread", ratings=ratings_csv(rows), movies=movies)
    with pytest.warns(UserWarning, match="2 repeated"):
        dataset = load_movielens(folder)
    assert dataset.movie_ids.tolist() == [1, big]
    np.testing.assert_array_equal(dataset.ratings.toarray(), [[2.0, 0.0], [3.0, 4.5]])
    assert dataset.timestamps.tolist() == [10, 20, 900]


def test_sorted_file_without_duplicates_does_not_warn(tmp_path: Path) -> None:
    folder = write_csv_release(tmp_path / "ok")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        load_movielens(folder)


def test_dataset_passes_through_and_synthetic_specs() -> None:
    world = make_synthetic(n_users=20, n_movies=100, n_ratings=400, seed=5)
    assert load_movielens(world) is world
    via_spec = load_movielens("synthetic:n_users=20,n_movies=100,n_ratings=400,seed=5")
    assert (via_spec.ratings != world.ratings).nnz == 0
    np.testing.assert_array_equal(via_spec.timestamps, world.timestamps)
    default = load_movielens("synthetic")
    assert (default.n_users, default.n_movies, default.n_ratings) == (610, 9000, 100_000)
    floats = load_movielens("synthetic:n_users=20,n_movies=100,n_ratings=400,rating_noise=0.0")
    assert floats.truth is not None and floats.truth.rating_noise == 0.0


def test_names_resolve_in_the_data_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    home = tmp_path / "home"
    write_csv_release(home / "ml-latest-small")
    zip_folder(write_csv_release(tmp_path / "z"), home / "ml-zipped.zip", top="ml-zipped")
    monkeypatch.setenv("RLREC_DATA", str(home))
    dataset = load_movielens("ml-latest-small")
    assert_fixture_content(dataset)
    assert dataset.name == "ml-latest-small"
    assert_fixture_content(load_movielens("ml-zipped"))
    monkeypatch.delenv("RLREC_DATA")
    assert_fixture_content(load_movielens("ml-latest-small", data_home=home))


def test_known_release_missing_says_how_to_fetch(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RLREC_DATA", str(tmp_path / "empty-home"))
    with pytest.raises(DatasetError, match=r"rlrec data fetch ml-100k"):
        load_movielens("ml-100k")
    assert not (tmp_path / "empty-home").exists()  # nothing downloaded, nothing created


def test_default_home_is_the_xdg_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("RLREC_DATA", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    write_csv_release(tmp_path / "rlrec" / "ml-25m")
    assert_fixture_content(load_movielens("ml-25m"))


# ---------------------------------------------------------------------------- real data
def _csv_rows(path: Path) -> list[list[str]]:
    with open(path, encoding="utf-8", newline="") as handle:
        return list(csv.reader(handle))[1:]


def test_real_2016_release(real_data_home: Path) -> None:
    dataset = load_movielens(real_data_home / "ml-latest-small-2016")
    # Counts from /work/shared/data/README.md.
    assert (dataset.n_users, dataset.n_movies, dataset.n_ratings) == (668, 10_329, 105_339)
    assert int((dataset.movie_counts > 0).sum()) == 10_325
    assert dataset.user_ids[0] == 1 and dataset.user_ids[-1] == 668
    assert dataset.movie_ids[-1] == 149_532
    first_movie = dataset.movie_ids[dataset.ratings.indices[0]]
    assert (first_movie, dataset.ratings.data[0], dataset.timestamps[0]) == (16, 4.0, 1_217_897_793)
    last_movie = dataset.movie_ids[dataset.ratings.indices[-1]]
    assert (last_movie, dataset.ratings.data[-1], dataset.timestamps[-1]) == (148_626, 4.5, 1_451_148_148)
    assert (dataset.timestamps.min(), dataset.timestamps.max()) == (828_564_954, 1_452_404_919)
    assert dataset.user_means[0] == pytest.approx(3.6283, abs=1e-4)
    cosmic = dataset.movie_index(146_684)
    assert dataset.titles[cosmic] == "Cosmic Scrat-tastrophe (2015)"
    assert dataset.genres[cosmic] == "Animation|Children|Comedy"
    assert dataset.titles[dataset.movie_index(25_936)] == "Babe Ruth Story, The (1948) "  # untrimmed
    # Independent route: Python's csv module over the same file, user 1's ratings and mean.
    rows = [r for r in _csv_rows(real_data_home / "ml-latest-small-2016" / "ratings.csv") if r[0] == "1"]
    movies, values = dataset.user_row(0)
    assert dataset.movie_ids[movies].tolist() == [int(r[1]) for r in rows]
    assert values.tolist() == [float(r[2]) for r in rows]
    assert dataset.user_means[0] == pytest.approx(np.mean([float(r[2]) for r in rows]), rel=1e-6)


def test_real_2018_release_by_name(real_data_home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RLREC_DATA", str(real_data_home))
    dataset = load_movielens("ml-latest-small")
    assert (dataset.n_users, dataset.n_movies, dataset.n_ratings) == (610, 9_742, 100_836)
    assert int((dataset.movie_counts > 0).sum()) == 9_724
    assert dataset.movie_ids[-1] == 193_609
    first_movie = dataset.movie_ids[dataset.ratings.indices[0]]
    assert (first_movie, dataset.ratings.data[0], dataset.timestamps[0]) == (1, 4.0, 964_982_703)
    last_movie = dataset.movie_ids[dataset.ratings.indices[-1]]
    assert (last_movie, dataset.ratings.data[-1], dataset.timestamps[-1]) == (170_875, 3.0, 1_493_846_415)
    assert (dataset.timestamps.min(), dataset.timestamps.max()) == (828_124_615, 1_537_799_250)
    assert sorted(set(dataset.ratings.data.tolist())) == [x / 2 for x in range(1, 11)]


def test_real_release_zipped_equals_folder(real_data_home: Path, tmp_path: Path) -> None:
    folder = real_data_home / "ml-latest-small-2016"
    archive = tmp_path / "ml-latest-small-2016.zip"
    with __import__("zipfile").ZipFile(archive, "w") as zf:
        for name in ("ratings.csv", "movies.csv"):
            zf.write(folder / name, f"ml-latest-small-2016/{name}")
    a, b = load_movielens(folder), load_movielens(archive)
    assert (a.ratings != b.ratings).nnz == 0
    np.testing.assert_array_equal(a.timestamps, b.timestamps)
    np.testing.assert_array_equal(a.movie_ids, b.movie_ids)
    assert a.titles.tolist() == b.titles.tolist()


def test_ratings_since_and_recency_weight_by_hand() -> None:
    from rlrec.data.dataset import recency_weight
    from tests.evaluation.toy import toy_dataset

    # user 0 rated movie 0 at t=10, movie 1 at t=30, movie 2 at t=20; user 1 only movie 1
    data = toy_dataset([(0, 0, 4.0, 10), (0, 1, 3.0, 30), (0, 2, 5.0, 20), (1, 1, 2.0, 5)], n_movies=3)
    # CSR order: user 0's movies 0, 1, 2, then user 1's movie 1
    assert data.ratings_since.tolist() == [2, 0, 1, 0]
    np.testing.assert_allclose(recency_weight(data.ratings_since, 1.0), [0.25, 1.0, 0.5, 1.0])
