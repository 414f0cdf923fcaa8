"""User observations: rating profiles (``ProfileStore``) and SVD embeddings (``user_embeddings``).

A *profile* is a user's row of the ratings matrix with the unrated cells filled with the
user's mean rating (``FALLBACK_MEAN`` for a user without ratings), as in the seed notebook.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import scipy.sparse as sp
import scipy.sparse.linalg as spla

from rlrec.data.dataset import RatingsDataset


class ProfileStore:
    """Profiles and rating look-ups of one dataset, without pandas and without per-step copies.

    While the dense ``n_users x n_movies`` float32 matrix of profiles (plus a bool "rated"
    matrix, for O(1) look-ups) fits ``memory_budget_mb`` it is built once and rows are handed
    out as read-only views; otherwise each row is built on demand from the CSR matrix (one
    fill with the mean + one scatter of the ratings) and look-ups are binary searches.

    :param dataset: the ratings.
    :param memory_budget_mb: largest dense cache, in MiB (256 by default: ml-latest-small-2016
        needs 668 x 10,329 x 5 B = 32.9 MiB).
    """

    def __init__(self, dataset: RatingsDataset, memory_budget_mb: float = 256.0) -> None:
        self.dataset = dataset
        self.memory_budget_mb = float(memory_budget_mb)
        self.n_users, self.n_movies = dataset.n_users, dataset.n_movies
        self.means = dataset.user_means
        matrix = dataset.ratings
        self._indptr, self._indices, self._data = matrix.indptr, matrix.indices, matrix.data
        # One sorted int64 key per stored rating: (user, movie) look-ups are a binary search.
        rows = np.repeat(np.arange(self.n_users, dtype=np.int64), np.diff(self._indptr))
        self._keys = rows * self.n_movies + self._indices
        self._dense: np.ndarray | None = None
        self._rated: np.ndarray | None = None
        self._build_cache()

    @staticmethod
    def fits(dataset: RatingsDataset, memory_budget_mb: float) -> bool:
        """Whether ``dataset``'s dense profiles (float32) and rated flags (bool) fit the budget."""
        return dataset.n_users * dataset.n_movies * 5 <= memory_budget_mb * 2**20

    @property
    def cached(self) -> bool:
        """Whether the dense profile matrix fits the memory budget (and so is kept)."""
        return self.fits(self.dataset, self.memory_budget_mb)

    @property
    def dense(self) -> np.ndarray | None:
        """The read-only dense profile matrix, or ``None`` when it does not fit the budget."""
        return self._dense

    def row(self, user: int) -> np.ndarray:
        """Profile of one user index: a read-only view of the cache, or a new array."""
        if self._dense is not None:
            return self._dense[user]
        return self._build_rows(np.array([user]))[0]

    def rows(self, users: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        """Profiles of several user indices as a float32 ``(len(users), n_movies)`` array.

        :param out: optional preallocated float32 array of that shape, filled in place.
        """
        users = np.asarray(users, dtype=np.int64)
        if self._dense is not None:
            if out is None:
                return np.take(self._dense, users, axis=0)
            return np.take(self._dense, users, axis=0, out=out)
        return self._build_rows(users, out)

    def lookup(self, users: np.ndarray, movies: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(rated, rating) for the pairs ``(users[j], movies[j])``; rating is 0 where unrated."""
        if self._dense is not None and self._rated is not None:
            rated = self._rated[users, movies]
            return rated, np.where(rated, self._dense[users, movies], np.float32(0.0))
        queries = np.asarray(users, dtype=np.int64) * self.n_movies + np.asarray(movies, dtype=np.int64)
        if not len(self._keys):
            return np.zeros(queries.shape, dtype=bool), np.zeros(queries.shape, dtype=np.float32)
        # A query past the last key lands on it and simply fails the equality test.
        positions = np.minimum(np.searchsorted(self._keys, queries), len(self._keys) - 1)
        rated = self._keys[positions] == queries
        return rated, np.where(rated, self._data[positions], np.float32(0.0))

    def lookup_one(self, user: int, movie: int) -> float | None:
        """The rating of one (user, movie) pair, or ``None`` when unrated."""
        if self._dense is not None and self._rated is not None:
            return float(self._dense[user, movie]) if self._rated[user, movie] else None
        start, stop = self._indptr[user], self._indptr[user + 1]
        position = start + int(np.searchsorted(self._indices[start:stop], movie))
        if position < stop and self._indices[position] == movie:
            return float(self._data[position])
        return None

    def _build_rows(self, users: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        if out is None:
            out = np.empty((len(users), self.n_movies), dtype=np.float32)
        out[...] = self.means[users][:, None]
        starts, stops = self._indptr[users], self._indptr[users + 1]
        lengths = stops - starts
        total = int(lengths.sum())
        if total:
            # Ragged gather: the positions of every selected user's ratings, in one array.
            row_of = np.repeat(np.arange(len(users)), lengths)
            first = np.cumsum(lengths) - lengths
            positions = np.arange(total) - np.repeat(first, lengths) + np.repeat(starts, lengths)
            out[row_of, self._indices[positions]] = self._data[positions]
        return out

    # The dense cache is derived data: do not ship it through pickle (SubprocVecEnv), rebuild it.
    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_dense"] = state["_rated"] = None
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._build_cache()

    def _build_cache(self) -> None:
        if not self.cached:
            return
        self._dense = self._build_rows(np.arange(self.n_users))
        self._dense.flags.writeable = False
        rated = np.zeros((self.n_users, self.n_movies), dtype=bool)
        rated[np.repeat(np.arange(self.n_users), np.diff(self._indptr)), self._indices] = True
        rated.flags.writeable = False
        self._rated = rated


def user_embeddings(dataset: RatingsDataset, dim: int, seed: int = 0) -> np.ndarray:
    """Users' coordinates ``U * S`` from a rank-``dim`` truncated SVD of the mean-centred ratings.

    Each stored rating has its user's mean subtracted; unrated cells stay 0, so a user without
    ratings sits at the origin. Components come in decreasing singular value with a fixed sign
    (largest-magnitude movie loading positive), so the result does not depend on the solver's
    start vector. When the matrix has fewer than ``dim + 1`` rows or columns the rank cannot
    reach ``dim``; the missing coordinates are 0.

    :param dim: number of coordinates per user.
    :param seed: seed of ARPACK's start vector (``scipy.sparse.linalg.svds``).
    :return: float32 ``(n_users, dim)``.
    """
    if dim < 1:
        raise ValueError(f"embedding_dim must be >= 1 (got {dim})")
    matrix = dataset.ratings.astype(np.float64)
    matrix.data -= np.repeat(dataset.user_means.astype(np.float64), np.diff(matrix.indptr))
    n_users, n_movies = matrix.shape
    if dim < min(n_users, n_movies) - 1 and n_users * n_movies > 4 * 10**6:
        left, values, right = spla.svds(sp.csr_matrix(matrix), k=dim, random_state=seed)
    else:
        # Small matrix, or a rank ARPACK cannot give: the dense SVD is exact and cheap enough.
        left, values, right = np.linalg.svd(matrix.toarray(), full_matrices=False)
    order = np.argsort(-values, kind="stable")[:dim]
    left, values, right = left[:, order], values[order], right[order]
    pivots = np.argmax(np.abs(right), axis=1)
    signs = np.where(right[np.arange(len(values)), pivots] < 0, -1.0, 1.0)
    coordinates = np.zeros((n_users, dim), dtype=np.float32)
    coordinates[:, : len(values)] = left * (values * signs)
    return coordinates
