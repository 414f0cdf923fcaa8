"""``RatingsDataset``: MovieLens ratings held once, as CSR over (user index x movie index).

Indices inside, ids at the edges: every array here is indexed by contiguous user / movie
indices; ``user_ids`` and ``movie_ids`` translate back to the ids of the source files.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Any

import numpy as np
import scipy.sparse as sp

from rlrec.data.errors import DatasetError

if TYPE_CHECKING:
    from rlrec.data.truth import SyntheticWorld

#: Mean rating used for a user without any rating (the notebook's neutral value).
FALLBACK_MEAN = 2.5
#: The MovieLens rating scale: half stars from 0.5 to 5.
RATING_MIN, RATING_MAX = 0.5, 5.0
#: A rating at or above this is a liked movie: the evaluation's relevance and the session env's
#: reward read this one constant.
LIKED_RATING = 4.0


@dataclass(eq=False)
class RatingsDataset:
    """Ratings of ``n_users`` users over ``n_movies`` movies.

    :param name: where the data came from (a release name, a path or ``"synthetic"``).
    :param user_ids: original userId per user index, strictly ascending, int64.
    :param movie_ids: original movieId per movie index, strictly ascending, int64. Every movie
        of the movies file, rated or not.
    :param titles: title per movie index.
    :param genres: ``|``-separated genres per movie index.
    :param ratings: ``n_users x n_movies`` CSR matrix of float32 ratings, canonical (sorted
        indices, no duplicates, no explicit zeros since ratings are >= 0.5).
    :param timestamps: int64 Unix time per stored rating, aligned with ``ratings.data``.
    :param truth: the generating model when the data is synthetic, else ``None``.
    """

    name: str
    user_ids: np.ndarray
    movie_ids: np.ndarray
    titles: np.ndarray
    genres: np.ndarray
    ratings: sp.csr_matrix
    timestamps: np.ndarray
    truth: SyntheticWorld | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        self.user_ids = np.asarray(self.user_ids, dtype=np.int64)
        self.movie_ids = np.asarray(self.movie_ids, dtype=np.int64)
        self.titles = np.asarray(self.titles, dtype=object)
        self.genres = np.asarray(self.genres, dtype=object)
        self.timestamps = np.asarray(self.timestamps, dtype=np.int64)
        if not isinstance(self.ratings, sp.csr_matrix | sp.csr_array):
            raise DatasetError(f"{self.name}: ratings must be a scipy.sparse CSR matrix")
        self.ratings = sp.csr_matrix(self.ratings, dtype=np.float32)
        self.ratings.sort_indices()
        n_users, n_movies = len(self.user_ids), len(self.movie_ids)
        if self.ratings.shape != (n_users, n_movies):
            raise DatasetError(
                f"{self.name}: ratings shape {self.ratings.shape} != (users, movies) = {(n_users, n_movies)}"
            )
        if len(self.titles) != n_movies or len(self.genres) != n_movies:
            raise DatasetError(f"{self.name}: titles/genres must have one entry per movie")
        if len(self.timestamps) != self.ratings.nnz:
            raise DatasetError(f"{self.name}: one timestamp per rating is required")
        for label, ids in (("user_ids", self.user_ids), ("movie_ids", self.movie_ids)):
            if len(ids) > 1 and not np.all(np.diff(ids) > 0):
                raise DatasetError(f"{self.name}: {label} must be strictly ascending")

    # ----------------------------------------------------------------- sizes
    @property
    def n_users(self) -> int:
        return len(self.user_ids)

    @property
    def n_movies(self) -> int:
        return len(self.movie_ids)

    @property
    def n_ratings(self) -> int:
        return int(self.ratings.nnz)

    @property
    def density(self) -> float:
        cells = self.n_users * self.n_movies
        return self.n_ratings / cells if cells else 0.0

    # ------------------------------------------------------------ id mapping
    def user_index(self, user_id: int) -> int:
        """Index of an original userId; ``KeyError`` when unknown."""
        return _lookup(self.user_ids, user_id, "user")

    def movie_index(self, movie_id: int) -> int:
        """Index of an original movieId; ``KeyError`` when unknown."""
        return _lookup(self.movie_ids, movie_id, "movie")

    # ------------------------------------------------------------ statistics
    @cached_property
    def user_counts(self) -> np.ndarray:
        """Number of ratings per user index (int64)."""
        return np.diff(self.ratings.indptr).astype(np.int64)

    @cached_property
    def movie_counts(self) -> np.ndarray:
        """Number of ratings per movie index (int64): the popularity baseline's signal."""
        return np.bincount(self.ratings.indices, minlength=self.n_movies).astype(np.int64)

    @cached_property
    def user_means(self) -> np.ndarray:
        """Mean rating per user index as float32; ``FALLBACK_MEAN`` for users with no rating.

        Summed in float64 so that the mean matches pandas' to the last float32 digit.
        """
        counts = self.user_counts
        means = np.full(self.n_users, FALLBACK_MEAN, dtype=np.float64)
        has = counts > 0
        if has.any():
            # reduceat only over non-empty rows: an empty row's start may equal nnz (out of range).
            sums = np.add.reduceat(self.ratings.data.astype(np.float64), self.ratings.indptr[:-1][has])
            means[has] = sums / counts[has]
        return means.astype(np.float32)

    @cached_property
    def recency_rank(self) -> np.ndarray:
        """Position of each rating in its user's time line (0 = oldest), aligned with ``ratings.data``.

        Ties in timestamp go to the lower movie index, so the order is a pure function of the data:
        the one order the temporal split and the session env's ``hiding="recent"`` both read.
        """
        counts = self.user_counts
        rows = np.repeat(np.arange(self.n_users, dtype=np.int64), counts)
        order = np.lexsort((self.ratings.indices, self.timestamps, rows))
        rank = np.empty(self.n_ratings, dtype=np.int64)
        rank[order] = np.arange(self.n_ratings, dtype=np.int64) - self.ratings.indptr[rows[order]]
        return rank

    @cached_property
    def ratings_since(self) -> np.ndarray:
        """How many ratings each user gave after each rating (0 = the latest), aligned with
        ``ratings.data``: what a recency weight (:func:`recency_weight`) decays with."""
        owner = np.repeat(np.arange(self.n_users, dtype=np.int64), self.user_counts)
        since: np.ndarray = self.user_counts[owner] - 1 - self.recency_rank
        return since

    def user_row(self, user_index: int) -> tuple[np.ndarray, np.ndarray]:
        """(movie indices, ratings) of one user, as views into the CSR arrays."""
        start, stop = self.ratings.indptr[user_index], self.ratings.indptr[user_index + 1]
        return self.ratings.indices[start:stop], self.ratings.data[start:stop]

    def rating_range(self) -> tuple[float, float]:
        if not self.n_ratings:
            return (float("nan"), float("nan"))
        return float(self.ratings.data.min()), float(self.ratings.data.max())

    # ----------------------------------------------------------- derivations
    def filter_ratings(self, keep: np.ndarray, name: str | None = None) -> RatingsDataset:
        """A dataset over the same users and movies holding only the ratings where ``keep``.

        :param keep: boolean mask aligned with ``ratings.data`` (CSR order).
        """
        keep = np.asarray(keep, dtype=bool)
        if keep.shape != (self.n_ratings,):
            raise ValueError(f"keep must be a boolean mask of length {self.n_ratings}")
        rows = np.repeat(np.arange(self.n_users, dtype=np.int64), self.user_counts)[keep]
        cols = self.ratings.indices[keep]
        data = self.ratings.data[keep]
        indptr = np.zeros(self.n_users + 1, dtype=np.int64)
        np.cumsum(np.bincount(rows, minlength=self.n_users), out=indptr[1:])
        matrix = sp.csr_matrix((data, cols, indptr), shape=self.ratings.shape)
        return RatingsDataset(
            name=name or self.name,
            user_ids=self.user_ids,
            movie_ids=self.movie_ids,
            titles=self.titles,
            genres=self.genres,
            ratings=matrix,
            timestamps=self.timestamps[keep],
            truth=self.truth,
        )

    def fingerprint(self) -> dict[str, Any]:
        """What identifies the user x movie universe a model's indices refer to (JSON-ready).

        ``{"users": n, "movies": n, "ids_sha256": hex}``, the hash over the userId and movieId
        arrays. Two datasets with equal fingerprints map every index to the same ids, so a model
        trained on one means the same movies on the other; a split's parts share their source's
        fingerprint. The ratings themselves are not part of it (a user's newer ratings may be
        recommended from).
        """
        digest = hashlib.sha256()
        for ids in (self.user_ids, self.movie_ids):
            digest.update(np.int64(len(ids)).tobytes())
            digest.update(np.ascontiguousarray(ids, dtype="<i8").tobytes())
        return {"users": self.n_users, "movies": self.n_movies, "ids_sha256": digest.hexdigest()}

    def summary(self) -> dict[str, Any]:
        low, high = self.rating_range()
        return {
            "name": self.name,
            "users": self.n_users,
            "movies": self.n_movies,
            "ratings": self.n_ratings,
            "rating_min": low,
            "rating_max": high,
            "density": self.density,
        }


def recency_weight(ratings_since: np.ndarray, half_life: float) -> np.ndarray:
    """``0.5 ** (ratings_since / half_life)`` as float32: a rating ``half_life`` ratings old weighs
    half the latest one. The session env's ``observation="recency"`` and ``ease-recent`` both use it."""
    return np.exp2(-np.asarray(ratings_since, dtype=np.float32) / np.float32(half_life))


def _lookup(sorted_ids: np.ndarray, key: int, label: str) -> int:
    position = int(np.searchsorted(sorted_ids, key))
    if position >= len(sorted_ids) or sorted_ids[position] != key:
        raise KeyError(f"unknown {label} id {key}")
    return position


#: Ids spanning at most this many values are mapped with a lookup array instead of a search.
_DENSE_ID_SPAN = 1 << 26


def index_ids(ids: np.ndarray, universe: np.ndarray) -> np.ndarray:
    """Position of each id in the sorted ``universe``; -1 for ids not in it (int64).

    MovieLens ids are small integers, so a lookup array over their span maps 25M ids in a
    fraction of a second; sparse spans fall back to ``searchsorted``.
    """
    ids = np.asarray(ids, dtype=np.int64)
    if len(universe) == 0:
        return np.full(len(ids), -1, dtype=np.int64)
    low, high = int(universe[0]), int(universe[-1])
    if high - low < _DENSE_ID_SPAN:
        table = np.full(high - low + 1, -1, dtype=np.int64)
        table[universe - low] = np.arange(len(universe))
        inside = (ids >= low) & (ids <= high)
        position = np.full(len(ids), -1, dtype=np.int64)
        position[inside] = table[ids[inside] - low]
        return position
    position = np.minimum(np.searchsorted(universe, ids), len(universe) - 1)
    return np.where(universe[position] == ids, position, -1)


def _unique_ids(ids: np.ndarray) -> np.ndarray:
    """Sorted distinct ids, without a sort when their span is small (MovieLens userIds)."""
    if len(ids) == 0:
        return ids
    low, high = int(ids.min()), int(ids.max())
    if high - low < _DENSE_ID_SPAN:
        present = np.zeros(high - low + 1, dtype=bool)
        present[ids - low] = True
        return np.flatnonzero(present) + low
    return np.unique(ids)


def build_dataset(
    name: str,
    user_ids: np.ndarray,
    movie_ids: np.ndarray,
    ratings: np.ndarray,
    timestamps: np.ndarray,
    all_movie_ids: np.ndarray,
    titles: np.ndarray,
    genres: np.ndarray,
    truth: SyntheticWorld | None = None,
) -> RatingsDataset:
    """Build a dataset from one row per rating (original ids), with numpy only.

    ``all_movie_ids`` / ``titles`` / ``genres`` describe the movie universe (the movies file);
    users are those that appear in the ratings. Duplicate (user, movie) pairs must have been
    resolved by the caller. Rows already sorted by (user, movie), as GroupLens files are, skip
    the sort.

    :raises DatasetError: a rating of a movie outside ``all_movie_ids``, or a repeated
        (user, movie) pair.
    """
    all_movie_ids = np.asarray(all_movie_ids, dtype=np.int64)
    order = np.argsort(all_movie_ids, kind="stable")
    movie_universe = all_movie_ids[order]
    user_ids = np.asarray(user_ids, dtype=np.int64)
    uniq_users = _unique_ids(user_ids)
    user_idx = index_ids(user_ids, uniq_users)
    movie_idx = index_ids(np.asarray(movie_ids, dtype=np.int64), movie_universe)
    if len(movie_idx) and movie_idx.min() < 0:
        row = int(np.argmax(movie_idx < 0))
        unknown = int(np.asarray(movie_ids)[row])
        raise DatasetError(f"{name}: rating {row} is of movie id {unknown}, which is not in all_movie_ids")
    n_users, n_movies = len(uniq_users), len(movie_universe)
    # One int64 key per rating orders the CSR (by user, then movie) and exposes repeats.
    key = user_idx * max(n_movies, 1) + movie_idx
    ratings = np.asarray(ratings, dtype=np.float32)
    timestamps = np.asarray(timestamps, dtype=np.int64)
    if not np.all(key[1:] > key[:-1]):
        sort = np.argsort(key, kind="stable")
        key, user_idx, movie_idx = key[sort], user_idx[sort], movie_idx[sort]
        ratings, timestamps = ratings[sort], timestamps[sort]
        repeated = np.flatnonzero(key[1:] == key[:-1])
        if len(repeated):
            at = repeated[0]
            raise DatasetError(
                f"{name}: user id {int(uniq_users[user_idx[at]])} rated movie id "
                f"{int(movie_universe[movie_idx[at]])} more than once ({len(repeated)} repeated pair(s))"
            )
    indptr = np.zeros(n_users + 1, dtype=np.int64)
    np.cumsum(np.bincount(user_idx, minlength=n_users), out=indptr[1:])
    matrix = sp.csr_matrix((ratings, movie_idx.astype(np.int32), indptr), shape=(n_users, n_movies))
    matrix.has_sorted_indices = True
    return RatingsDataset(
        name=name,
        user_ids=uniq_users,
        movie_ids=movie_universe,
        titles=np.asarray(titles, dtype=object)[order],
        genres=np.asarray(genres, dtype=object)[order],
        ratings=matrix,
        timestamps=timestamps,
        truth=truth,
    )
