"""ProfileStore look-ups and rows; SVD embeddings checked against an eigendecomposition."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.linalg

from rlrec.data import load_movielens
from rlrec.envs.movielens import MovieLensEnv
from rlrec.envs.profiles import ProfileStore, user_embeddings
from tests.envs.tiny_data import MOVIE_IDS, PROFILES, RATINGS, tiny_dataset


def test_lookup_against_the_ratings_table():
    store = ProfileStore(tiny_dataset())
    users = np.repeat(np.arange(3), 6)
    movies = np.tile(np.arange(6), 3)
    rated, ratings = store.lookup(users, movies)
    for user, movie, is_rated, rating in zip(users, movies, rated, ratings):
        expected = RATINGS[[10, 20, 30][user]].get(int(MOVIE_IDS[movie]))
        assert is_rated == (expected is not None)
        assert rating == (expected or 0.0)
        assert store.lookup_one(int(user), int(movie)) == expected


@pytest.mark.parametrize("budget", [256, 0])
def test_rows_with_and_without_cache(budget):
    store = ProfileStore(tiny_dataset(), memory_budget_mb=budget)
    assert store.cached == (budget > 0)
    np.testing.assert_array_equal(store.rows(np.array([1, 1, 0, 2])), PROFILES[[1, 1, 0, 2]])
    out = np.full((2, 6), -1.0, dtype=np.float32)
    assert store.rows(np.array([2, 0]), out=out) is out
    np.testing.assert_array_equal(out, PROFILES[[2, 0]])
    row = store.row(1)
    np.testing.assert_array_equal(row, PROFILES[1])
    if store.cached:
        assert not row.flags.writeable  # a view of the shared cache


def _gram(data) -> np.ndarray:
    """X X^T of the mean-centred ratings X (unrated cells 0), through a dense user loop."""
    centred = data.ratings.astype(np.float64)
    for user in range(data.n_users):
        start, stop = centred.indptr[user], centred.indptr[user + 1]
        centred.data[start:stop] -= float(data.user_means[user])
    return (centred @ centred.T).toarray()


def _check_against_eigh(embedding: np.ndarray, gram: np.ndarray, dim: int) -> None:
    """U S (U S)^T must be the best rank-``dim`` part of X X^T, from its eigendecomposition."""
    n = len(gram)
    values, vectors = scipy.linalg.eigh(gram, subset_by_index=[max(n - dim, 0), n - 1])
    top = np.argsort(values)[::-1]
    expected = (vectors[:, top] * values[top]) @ vectors[:, top].T
    scale = np.abs(expected).max()
    np.testing.assert_allclose(embedding.astype(np.float64) @ embedding.T, expected, atol=1e-4 * scale)
    # the coordinates' squared norms are the eigenvalues, in decreasing order
    np.testing.assert_allclose(
        (embedding.astype(np.float64) ** 2).sum(axis=0), values[top], rtol=1e-4, atol=1e-6
    )


def test_embeddings_small_matrix_and_padding():
    data = tiny_dataset()
    gram = _gram(data)
    _check_against_eigh(user_embeddings(data, 2), gram, 2)
    padded = user_embeddings(data, 5)  # rank <= 3: two coordinates stay 0
    assert padded.shape == (3, 5) and padded.dtype == np.float32
    assert not padded[:, 3:].any()
    np.testing.assert_allclose(padded.astype(np.float64) @ padded.T, gram, atol=1e-5)


def test_embedding_env_observations_in_bounds():
    env = MovieLensEnv(tiny_dataset(), observation="embedding", embedding_dim=2)
    obs, info = env.reset()
    assert obs.shape == (2,) and obs.dtype == np.float32
    for _ in range(4):
        assert env.observation_space.contains(obs)
        np.testing.assert_array_equal(obs, env.observations(np.array([info["state"]]))[0])
        obs, *_, info = env.step(5)


def test_real_data_embeddings_use_svds_and_match_eigh(real_data_home):
    data = load_movielens(real_data_home / "ml-latest-small-2016")
    assert data.n_users * data.n_movies > 4 * 10**6  # the ARPACK branch
    embedding = user_embeddings(data, 8)
    _check_against_eigh(embedding, _gram(data), 8)
    np.testing.assert_array_equal(embedding, user_embeddings(data, 8))
