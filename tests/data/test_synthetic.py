"""make_synthetic: determinism, sizes, rating grid, no repeats, skew, and a truth consistent with the data."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from rlrec.cli import main
from rlrec.data import SyntheticWorld, load_movielens, make_synthetic, write_movielens_csv
from rlrec.data.sampling import Favourites, alias_table, cluster_tables, draw_movies, sample_chunk
from rlrec.data.synthetic import _era_popularity, _groups


@pytest.fixture(scope="module")
def default_world():  # type: ignore[no-untyped-def]
    return make_synthetic()


def truth_of(dataset) -> SyntheticWorld:  # type: ignore[no-untyped-def]
    assert isinstance(dataset.truth, SyntheticWorld)
    return dataset.truth


def test_same_seed_same_arrays_other_seed_other_arrays() -> None:
    a = make_synthetic(n_users=80, n_movies=400, n_ratings=3000, seed=11)
    b = make_synthetic(n_users=80, n_movies=400, n_ratings=3000, seed=11)
    c = make_synthetic(n_users=80, n_movies=400, n_ratings=3000, seed=12)
    for name in ("indptr", "indices", "data"):
        np.testing.assert_array_equal(getattr(a.ratings, name), getattr(b.ratings, name))
    np.testing.assert_array_equal(a.timestamps, b.timestamps)
    np.testing.assert_array_equal(a.movie_ids, b.movie_ids)
    assert a.titles.tolist() == b.titles.tolist() and a.genres.tolist() == b.genres.tolist()
    np.testing.assert_array_equal(truth_of(a).user_factors, truth_of(b).user_factors)
    assert truth_of(a).global_mean == truth_of(b).global_mean
    assert not np.array_equal(a.ratings.indices, c.ratings.indices)


def test_sizes_grid_and_no_repeated_pairs(default_world) -> None:  # type: ignore[no-untyped-def]
    data = default_world
    assert (data.n_users, data.n_movies, data.n_ratings) == (610, 9000, 100_000)
    assert data.user_counts.min() >= 20  # min_user_ratings, like MovieLens
    values = data.ratings.data
    assert values.min() >= 0.5 and values.max() <= 5.0
    np.testing.assert_array_equal(values * 2, np.round(values * 2))  # half stars
    assert len(np.unique(values)) == 10
    # Canonical CSR: strictly increasing movie indices inside every user's row, i.e. no repeats.
    indptr, indices = data.ratings.indptr, data.ratings.indices
    step = np.diff(indices.astype(np.int64))
    row_starts = indptr[1:-1] - 1  # positions where a new row begins in the diff
    inside = np.ones(len(step), dtype=bool)
    inside[row_starts[row_starts >= 0]] = False
    assert np.all(step[inside] > 0)
    assert np.all(np.diff(data.movie_ids) > 0) and np.all(np.diff(data.user_ids) > 0)
    assert data.titles[0] == f"Synthetic Movie {data.movie_ids[0]} ({data.titles[0][-5:-1]})"
    assert all("|" not in g or all(part for part in g.split("|")) for g in data.genres[:50])
    assert abs(float(values.mean()) - 3.6) < 0.15  # mean_rating


def test_popularity_is_skewed(default_world) -> None:  # type: ignore[no-untyped-def]
    counts = np.sort(default_world.movie_counts)[::-1]
    top_share = counts[: len(counts) // 10].sum() / counts.sum()
    assert top_share > 0.4  # uniform popularity would give about 0.1; ml-latest-small gives 0.6


def test_preference_matches_the_factors(default_world) -> None:  # type: ignore[no-untyped-def]
    world = truth_of(default_world)
    user = 17
    movies = np.array([0, 5, 123, 8999])
    by_hand = [
        min(5.0, max(0.5, world.global_mean + float(world.user_bias[user]) + float(world.movie_bias[m])
                     + sum(float(world.user_factors[user, k]) * float(world.movie_factors[m, k])
                           for k in range(world.user_factors.shape[1]))))
        for m in movies
    ]  # fmt: skip
    np.testing.assert_allclose(world.preference(user, movies), by_hand, rtol=1e-6)
    full = world.preference(user)
    assert full.shape == (9000,)
    np.testing.assert_allclose(full[movies], by_hand, rtol=1e-6)
    best = world.best_movies(user, 5)
    scores = world.score(user)
    assert best.tolist() == np.argsort(-scores, kind="stable")[:5].tolist()
    assert world.best_movies(user, 0).tolist() == []


def test_ratings_follow_the_truth_and_users_rate_what_they_like(default_world) -> None:  # type: ignore[no-untyped-def]
    world = truth_of(default_world)
    data = default_world
    sample = np.concatenate([world.score(u, data.user_row(u)[0]) for u in range(0, data.n_users, 50)])
    observed = np.concatenate([data.user_row(u)[1] for u in range(0, data.n_users, 50)])
    assert np.corrcoef(sample, observed)[0, 1] > 0.7  # noise 0.5 star on a ~1 star spread
    # Taste decides what gets rated: <user, movie> is higher on rated movies than on the catalogue.
    assert np.mean(taste_gaps(data)) > 0.3  # 0.47 at the default seed; popularity alone: ~0
    flat = make_synthetic(taste_strength=0.0, n_movies=3000, n_ratings=30_000, seed=1)
    assert abs(np.mean(taste_gaps(flat))) < 0.1  # popularity alone: taste plays no part


def taste_gaps(data) -> list[float]:  # type: ignore[no-untyped-def]
    world = truth_of(data)
    gaps = []
    for user in range(0, data.n_users, 25):
        taste = world.movie_factors @ world.user_factors[user]
        gaps.append(float(taste[data.user_row(user)[0]].mean() - taste.mean()))
    return gaps


def test_draws_follow_cluster_then_popularity() -> None:
    """One draw per row, many rows: frequencies match P(movie) = P(cluster) * pop / cluster mass."""
    rng = np.random.default_rng(3)
    movie_cluster = np.array([0, 0, 0, 1, 1, 2])
    popularity = np.array([0.3, 0.1, 0.1, 0.2, 0.2, 0.1])
    mass = np.bincount(movie_cluster, weights=popularity)
    tables = cluster_tables(movie_cluster, popularity, 3)
    probs = np.tile([0.5, 0.3, 0.2], (60_000, 1))
    _, movies = draw_movies(
        rng, probs, np.ones(60_000, dtype=np.int64), tables, np.zeros(60_000, dtype=np.int64)
    )
    expected = probs[0, movie_cluster] * popularity / mass[movie_cluster]
    observed = np.bincount(movies, minlength=6) / 60_000
    np.testing.assert_allclose(observed, expected, atol=0.01)


def test_favourite_draws_mix_the_groups_in() -> None:
    """P(movie) = (1 - share) * P(cluster) * pop / cluster mass
    + share * P(favourite group) * pop / group mass."""
    rng = np.random.default_rng(4)
    movie_cluster = np.array([0, 0, 0, 1, 1, 2])
    movie_group = np.array([0, 0, 1, 2, 2, 3])
    popularity = np.array([0.3, 0.1, 0.1, 0.2, 0.2, 0.1])
    n_rows = 80_000
    probs = np.tile([0.5, 0.3, 0.2], (n_rows, 1))
    favourites = Favourites(
        groups=np.tile([0, 0, 3], (n_rows, 1)),  # group 0 twice, group 3 once
        share=0.4,
        tables=cluster_tables(movie_group, popularity, 4),
        movie_group=movie_group,
    )
    _, movies = draw_movies(
        rng, probs, np.ones(n_rows, dtype=np.int64), cluster_tables(movie_cluster, popularity, 3),
        np.zeros(n_rows, dtype=np.int64), favourites,
    )  # fmt: skip
    cluster_mass = np.bincount(movie_cluster, weights=popularity)
    group_mass = np.bincount(movie_group, weights=popularity)
    base = probs[0, movie_cluster] * popularity / cluster_mass[movie_cluster]
    liked = np.array([2, 2, 0, 0, 0, 1]) / 3 * popularity / group_mass[movie_group]
    expected = 0.6 * base + 0.4 * liked
    np.testing.assert_allclose(np.bincount(movies, minlength=6) / n_rows, expected, atol=0.01)


def test_exhausted_favourites_are_not_drawn_from() -> None:
    """A row whose favourite groups are all rated draws from the base stream only."""
    movie_group = np.array([0, 0, 1, 1, 2])
    favourites = Favourites(
        groups=np.array([[0, 0, 1], [2, 2, 2]]),
        share=0.9,
        tables=cluster_tables(movie_group, np.full(5, 0.2), 3),
        movie_group=movie_group,
        open_rows=np.array([True, False]),
    )
    assert favourites.capacity().tolist() == [4, 1]  # groups 0 and 1 hold 4 movies; group 2 one
    assert favourites.n_groups == 3
    base = cluster_tables(np.zeros(5, dtype=np.int64), np.array([0.5, 0.5, 0.0, 0.0, 0.0]), 1)
    rows, movies = draw_movies(
        np.random.default_rng(0), np.ones((2, 1)), np.array([2000, 2000]), base, np.zeros(2, dtype=np.int64),
        favourites,
    )  # fmt: skip
    assert set(movies[rows == 1].tolist()) <= {0, 1}  # the closed row: base movies only
    assert 4 in set(movies[rows == 0].tolist()) or 2 in set(movies[rows == 0].tolist())


def test_era_popularity_rises_and_falls_around_the_release() -> None:
    popularity = np.array([0.75, 0.25])
    release = np.array([0, 2])
    got = _era_popularity(popularity, release, n_eras=3, drift=1.0)
    # era e: movie m weighs popularity[m] * (exp(-|e - release[m]|) + 0.05), then normalised
    by_hand = np.array([[0.75 * 1.05, 0.25 * (np.exp(-2) + 0.05)],
                        [0.75 * (np.exp(-1) + 0.05), 0.25 * (np.exp(-1) + 0.05)],
                        [0.75 * (np.exp(-2) + 0.05), 0.25 * 1.05]])  # fmt: skip
    np.testing.assert_allclose(got, by_hand / by_hand.sum(axis=1, keepdims=True))


def test_release_order_sets_how_much_newer_movies_come_later() -> None:
    """The Spearman correlation of a movie's era with its place in the user's history."""
    from scipy.stats import spearmanr

    def correlation(release_order: float) -> float:
        data = make_synthetic(n_users=60, n_movies=800, n_ratings=4000, seed=5, release_order=release_order)
        era = truth_of(data).movie_era
        assert era is not None
        place = data.recency_rank / np.repeat(np.maximum(data.user_counts - 1, 1), data.user_counts)
        return float(spearmanr(era[data.ratings.indices], place).statistic)

    assert correlation(1.0) > 0.3
    assert abs(correlation(0.0)) < 0.1
    assert make_synthetic(n_users=20, n_movies=100, n_ratings=400, drift=0.0).truth.movie_era is None


def test_groups_cut_each_cluster() -> None:
    movie_cluster = np.repeat([0, 1, 2], [40, 7, 1])
    group = _groups(np.random.default_rng(0), movie_cluster, 3, group_size=10.0)
    # round(40 / 10) = 4 groups, round(7 / 10) = 1, and a lone movie still gets one.
    assert [len(np.unique(group[movie_cluster == c])) for c in range(3)] == [4, 1, 1]
    assert sorted(np.unique(group).tolist()) == list(range(6))
    for g in np.unique(group):  # a group never spans two clusters
        assert len(np.unique(movie_cluster[group == g])) == 1


def test_users_come_back_to_their_favourite_groups() -> None:
    """With favourites, more of a user's ratings fall in their most-rated group than without."""
    shape = dict(n_users=100, n_movies=1500, n_ratings=2500, seed=3, group_size=5.0, n_favourites=1)

    def modal_share(share: float) -> float:
        data = make_synthetic(favourite_share=share, **shape)  # type: ignore[arg-type]
        group = truth_of(data).movie_group
        assert group is not None
        return float(np.mean([np.bincount(group[data.user_row(u)[0]]).max() / data.user_counts[u]
                              for u in range(data.n_users)]))  # fmt: skip

    plain, grouped = modal_share(0.0), modal_share(0.5)
    assert grouped > 1.5 * plain  # 0.17 against 0.10 at this seed
    assert make_synthetic(n_users=20, n_movies=100, n_ratings=400, group_size=0).truth.movie_group is None


def test_exact_fallback_never_repeats_a_movie_when_weights_run_out() -> None:
    """A row that needs more movies than have weight: zero-weight movies complete it, no repeats."""
    rng = np.random.default_rng(1)
    n_movies = 20
    popularity = np.zeros(n_movies)
    popularity[:5] = 0.2  # only 5 movies can be drawn, 12 are needed
    tables = cluster_tables(np.zeros(n_movies, dtype=np.int64), popularity, 1)
    keys, ranks = sample_chunk(
        rng, lambda row: popularity.copy(), np.ones((1, 1)), np.array([12]), tables, n_movies,
        np.zeros(1, dtype=np.int64),
    )  # fmt: skip
    assert len(keys) == 12 and len(np.unique(keys)) == 12
    assert set(range(5)) <= set(keys.tolist())
    assert sorted(ranks.tolist()) == list(range(12))


def test_alias_table_reproduces_the_distribution() -> None:
    probs = np.array([0.5, 0.25, 0.125, 0.125])
    keep, alias = alias_table(probs)
    # Exact: the chance of outcome i is (keep[i] + sum of (1 - keep[j]) over j aliased to i) / n.
    exact = keep.copy()
    np.add.at(exact, alias, 1.0 - keep)
    np.testing.assert_allclose(exact / len(probs), probs)


def test_sample_chunk_finishes_heavy_rows_exactly() -> None:
    """Rows that need every movie of a very skewed distribution: the exact fallback completes them."""
    rng = np.random.default_rng(0)
    n_movies = 50
    movie_cluster = np.zeros(n_movies, dtype=np.int64)
    popularity = 1.0 / np.arange(1, n_movies + 1) ** 3.0
    popularity /= popularity.sum()
    tables = cluster_tables(movie_cluster, popularity, 1)
    needed = np.array([n_movies, 3, n_movies - 1])
    one_era = np.zeros(3, dtype=np.int64)
    keys, ranks = sample_chunk(
        rng, lambda row: popularity.copy(), np.ones((3, 1)), needed, tables, n_movies, one_era
    )
    rows, movies = keys // n_movies, keys % n_movies
    assert np.bincount(rows).tolist() == needed.tolist()
    assert len(np.unique(keys)) == len(keys)
    assert sorted(movies[rows == 0].tolist()) == list(range(n_movies))
    for row in range(3):  # drawn ranks are a permutation of 0..needed-1
        assert sorted(ranks[rows == row].tolist()) == list(range(needed[row]))


def test_small_worlds_and_bad_arguments() -> None:
    tiny = make_synthetic(n_users=5, n_movies=30, n_ratings=40, seed=2)
    assert (tiny.n_users, tiny.n_movies, tiny.n_ratings) == (5, 30, 40)
    assert tiny.user_counts.min() >= 1 and tiny.user_counts.max() <= 10  # 35% of 30 movies
    with pytest.raises(ValueError, match="n_ratings must lie in"):
        make_synthetic(n_users=10, n_movies=100, n_ratings=9)
    with pytest.raises(ValueError, match="n_ratings must lie in"):
        make_synthetic(n_users=2, n_movies=10, n_ratings=7)
    with pytest.raises(ValueError, match="n_users must be a positive integer"):
        make_synthetic(n_users=0)
    with pytest.raises(ValueError, match=r"favourite_share in \[0, 1\)"):
        make_synthetic(favourite_share=1.0)
    with pytest.raises(ValueError, match="release_order must be in"):
        make_synthetic(release_order=2.0)
    with pytest.raises(ValueError, match="popularity_head and popularity_floor must be in"):
        make_synthetic(popularity_head=1.5)


def test_write_and_load_round_trip(tmp_path: Path) -> None:
    world = make_synthetic(n_users=40, n_movies=300, n_ratings=2000, seed=4)
    world.titles[0] = 'Comma, Quote "Q" (1999)'
    folder = write_movielens_csv(world, tmp_path / "out")
    assert (folder / "ratings.csv").read_text().splitlines()[:2][0] == "userId,movieId,rating,timestamp"
    first = (folder / "ratings.csv").read_text().splitlines()[1].split(",")
    assert first[2] in {f"{k / 2:.1f}" for k in range(1, 11)}  # "4.0", not "4"
    assert sorted(p.name for p in folder.iterdir()) == ["movies.csv", "ratings.csv"]  # no temp files
    back = load_movielens(folder)
    assert (back.ratings != world.ratings).nnz == 0
    np.testing.assert_array_equal(back.user_ids, world.user_ids)
    np.testing.assert_array_equal(back.movie_ids, world.movie_ids)
    np.testing.assert_array_equal(back.timestamps, world.timestamps)
    assert back.titles.tolist() == world.titles.tolist() and back.genres.tolist() == world.genres.tolist()


def test_cli_info_synthetic(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["data", "info", "synthetic"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[:4] == ["dataset: synthetic", "users:   610", "movies:  9,000", "ratings: 100,000"]
    assert out[4] == "rating range: 0.5 .. 5"
    assert out[5] == f"density: {100_000 / (610 * 9000):.4%}"
