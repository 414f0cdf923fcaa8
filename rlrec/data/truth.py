"""The ground truth of a synthetic world: :class:`SyntheticWorld` (the model a synthetic dataset was
drawn from, attached as ``dataset.truth``) and the two draws every generator makes from it.

Both generators stand on it: :func:`rlrec.data.synthetic.make_synthetic` and the twin of a real
release (:func:`rlrec.data.twin.make_twin`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from rlrec.data.dataset import RATING_MAX, RATING_MIN
from rlrec.data.sampling import PAIRS_PER_CHUNK

__all__ = ["SyntheticWorld", "latent_ratings", "observed_ratings"]


@dataclass(eq=False)
class SyntheticWorld:
    """The model that generated a synthetic dataset (attached as ``dataset.truth``).

    Arrays are indexed by the dataset's user / movie indices.

    :param user_factors: ``(n_users, n_factors)`` float32 tastes.
    :param movie_factors: ``(n_movies, n_factors)`` float32: cluster centroid + own part.
    :param user_bias: ``(n_users,)`` float32 offset of each user's ratings.
    :param movie_bias: ``(n_movies,)`` float32 offset of each movie's ratings.
    :param global_mean: the mean rating before biases.
    :param popularity: ``(n_movies,)`` float64, sums to 1: the taste-free choice probability.
    :param movie_cluster: ``(n_movies,)`` int64 taste cluster of each movie.
    :param cluster_factors: ``(n_clusters, n_factors)`` float32 centroids.
    :param taste_strength: weight of taste in which movies a user rates.
    :param rating_noise: standard deviation of the rating noise.
    :param seed: the seed it was drawn from.
    :param movie_group: ``(n_movies,)`` int64 group of each movie (inside its cluster), or None
        when the world has no groups.
    :param movie_era: ``(n_movies,)`` int64 release era of each movie, or None without drift.
    """

    user_factors: np.ndarray
    movie_factors: np.ndarray
    user_bias: np.ndarray
    movie_bias: np.ndarray
    global_mean: float
    popularity: np.ndarray = field(repr=False)
    movie_cluster: np.ndarray = field(repr=False)
    cluster_factors: np.ndarray = field(repr=False)
    taste_strength: float = 0.0
    rating_noise: float = 0.0
    seed: int | None = None
    movie_group: np.ndarray | None = field(default=None, repr=False)
    movie_era: np.ndarray | None = field(default=None, repr=False)

    @property
    def n_users(self) -> int:
        return len(self.user_factors)

    @property
    def n_movies(self) -> int:
        return len(self.movie_factors)

    def score(self, user_index: int, movie_indices: np.ndarray | None = None) -> np.ndarray:
        """Noise-free latent rating, not clipped (float64): the order :meth:`best_movies` uses."""
        factors = self.movie_factors if movie_indices is None else self.movie_factors[movie_indices]
        bias = self.movie_bias if movie_indices is None else self.movie_bias[movie_indices]
        user = int(user_index)
        raw = factors.astype(np.float64) @ self.user_factors[user].astype(np.float64)
        return raw + bias + float(self.user_bias[user]) + self.global_mean

    def preference(self, user_index: int, movie_indices: np.ndarray | None = None) -> np.ndarray:
        """Expected rating of ``user_index`` for the given movies (default: every movie).

        The noise-free rating of the model, clipped to the rating scale [0.5, 5]; computed on
        demand for one user (float64, one value per movie).
        """
        return np.clip(self.score(user_index, movie_indices), RATING_MIN, RATING_MAX)

    def preferences(self, user_indices: np.ndarray) -> np.ndarray:
        """:meth:`preference` of every movie for several users at once, ``(len(users), n_movies)``."""
        users = np.asarray(user_indices, dtype=np.int64)
        raw = self.user_factors[users].astype(np.float64) @ self.movie_factors.T.astype(np.float64)
        raw += self.movie_bias + self.user_bias[users][:, None] + self.global_mean
        return np.clip(raw, RATING_MIN, RATING_MAX)

    def preference_pairs(self, user_indices: np.ndarray, movie_indices: np.ndarray) -> np.ndarray:
        """:meth:`preference` of the pairs ``(user_indices[j], movie_indices[j])`` (float64)."""
        users = np.asarray(user_indices, dtype=np.int64).reshape(-1)
        movies = np.asarray(movie_indices, dtype=np.int64).reshape(-1)
        raw = np.einsum(
            "ij,ij->i",
            self.movie_factors[movies].astype(np.float64),
            self.user_factors[users].astype(np.float64),
        )
        raw += self.movie_bias[movies] + self.user_bias[users] + self.global_mean
        return np.clip(raw, RATING_MIN, RATING_MAX)

    def best_movies(self, user_index: int, k: int) -> np.ndarray:
        """Indices of the ``k`` movies the user likes best, best first (ties: lower index first)."""
        scores = self.score(user_index)
        k = max(0, min(int(k), len(scores)))
        if k == 0:
            return np.empty(0, dtype=np.int64)
        top = np.argpartition(-scores, k - 1)[:k]
        return top[np.lexsort((top, -scores[top]))].astype(np.int64)


def latent_ratings(
    user_factors: np.ndarray,
    movie_factors: np.ndarray,
    user_bias: np.ndarray,
    movie_bias: np.ndarray,
    users: np.ndarray,
    movies: np.ndarray,
) -> np.ndarray:
    """Noise-free ratings minus the global mean of the pairs ``(users[j], movies[j])``, float32."""
    out = np.empty(len(users), dtype=np.float32)
    for start in range(0, len(users), PAIRS_PER_CHUNK):
        u, m = users[start : start + PAIRS_PER_CHUNK], movies[start : start + PAIRS_PER_CHUNK]
        dot = np.einsum("ij,ij->i", user_factors[u], movie_factors[m], dtype=np.float64)
        out[start : start + len(u)] = user_bias[u] + movie_bias[m] + dot
    return out


def observed_ratings(
    rng: np.random.Generator, latent: np.ndarray, global_mean: float, noise: float, whole_star_share: float
) -> np.ndarray:
    """``latent + global_mean`` plus Gaussian noise, rounded to a whole star with probability
    ``2 * whole_star_share - 1`` and else to a half star, clipped to the scale (float32, in place)."""
    data = latent
    for start in range(0, len(data), PAIRS_PER_CHUNK):
        span = slice(start, min(start + PAIRS_PER_CHUNK, len(data)))
        size = span.stop - span.start
        noisy = data[span] + global_mean + rng.normal(0.0, noise, size)
        whole = rng.random(size) < 2.0 * whole_star_share - 1.0
        halves = np.clip(np.round(noisy * 2.0) / 2.0, RATING_MIN, RATING_MAX)
        data[span] = np.where(whole, np.clip(np.round(noisy), 1.0, RATING_MAX), halves)
    return data
