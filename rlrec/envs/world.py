"""``MovieLensWorld``: what every rlrec env stands on. Data, users, observations, ratings, simulator.

An env is a world plus episode logic (``rlrec.envs.movielens``, ``rlrec.envs.session``); the
world holds no episode state, so the single envs and the batched vector env of one id read the
same arrays through the same helpers. Everything heavy is built on first use: the dense profile
cache, the SVD embeddings, the rating simulator.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from functools import cached_property
from typing import Any

import numpy as np

from rlrec.data import load_movielens
from rlrec.data.dataset import LIKED_RATING, RatingsDataset
from rlrec.data.errors import DatasetError
from rlrec.data.simulator import EnsembleSimulator, RatingSimulator, fit_simulator
from rlrec.envs.profiles import ProfileStore, user_embeddings

__all__ = ["DataSource", "MovieLensWorld", "RenderModeError", "as_dataset", "check_choice", "check_flag"]

DataSource = str | os.PathLike[str] | RatingsDataset
#: Number of top-rated titles ``describe_user`` lists.
_TOP_TITLES = 5


class RenderModeError(ValueError, TypeError):
    """An unsupported ``render_mode``.

    Also a ``TypeError`` because SB3's ``make_vec_env`` asks every env for ``render_mode="rgb_array"``
    and retries without it only on a ``TypeError``.
    """


def check_choice(name: str, value: Any, choices: tuple[str, ...]) -> str:
    """``value`` when it is one of ``choices``, else a ``ValueError`` naming the argument."""
    if value not in choices:
        raise ValueError(f"{name}: {value!r} is not one of {', '.join(choices)}")
    return str(value)


def check_flag(name: str, value: Any) -> bool:
    """A boolean argument: ``True`` / ``False`` (numpy's too), nothing else (``"maybe"`` is an error)."""
    if not isinstance(value, bool | np.bool_):
        raise ValueError(f"{name}: expected True or False, got {value!r}")
    return bool(value)


def as_dataset(data: DataSource) -> RatingsDataset:
    """``data`` itself when it is a ``RatingsDataset``, else ``rlrec.data.load_movielens(data)``."""
    if isinstance(data, RatingsDataset):
        return data

    return load_movielens(data)


def _user_id(value: Any) -> int:
    if isinstance(value, bool | np.bool_) or not isinstance(value, int | np.integer):
        raise ValueError(f"users: expected whole-number userIds, got {value!r}")
    return int(value)


class MovieLensWorld:
    """Data, users and answers shared by every env over one ``RatingsDataset``. No episode state.

    :param data: a ``RatingsDataset`` or anything ``rlrec.data.load_movielens`` takes.
    :param users: original userIds episodes may serve (default: every user with at least
        ``min_ratings`` ratings).
    :param min_ratings: fewest ratings a served user must have (the session env needs 2: one to
        show, one to hide).
    :param memory_budget_mb: largest dense profile cache (see :class:`ProfileStore`).
    :param simulator: a fitted :class:`RatingSimulator` or :class:`EnsembleSimulator` answering
        for unrated movies, or the keyword arguments of :func:`rlrec.data.simulator.fit_simulator`
        (``n_models`` / ``penalty`` / ``shrinkage`` select the ensemble; default: a
        ``RatingSimulator`` fitted with its defaults on first use).
    :param embedding_dim: width of the SVD user embeddings (:meth:`embeddings`).
    """

    def __init__(
        self,
        data: DataSource,
        users: Iterable[int] | None = None,
        min_ratings: int = 0,
        memory_budget_mb: float = 256.0,
        simulator: RatingSimulator | EnsembleSimulator | Mapping[str, Any] | None = None,
        embedding_dim: int = 32,
    ) -> None:
        self.dataset = as_dataset(data)
        if self.dataset.n_users == 0 or self.dataset.n_movies == 0:
            raise DatasetError(f"{self.dataset.name}: an env needs at least one user and one movie")
        fitted = hasattr(simulator, "predict_pairs")
        if simulator is not None and not (isinstance(simulator, Mapping) or fitted):
            raise ValueError(f"simulator: a fitted RatingSimulator or fit() arguments, got {simulator!r}")
        self.min_ratings = int(min_ratings)
        self.memory_budget_mb = float(memory_budget_mb)
        self.embedding_dim = int(embedding_dim)
        self._simulator = simulator
        self.users = self._select_users(users)
        matrix = self.dataset.ratings
        # Plain attributes for the hot paths (a property costs a call each).
        self.n_movies = self.dataset.n_movies
        self.user_ids, self.movie_ids = self.dataset.user_ids, self.dataset.movie_ids
        self.means = self.dataset.user_means
        self.indptr, self.indices, self.ratings = matrix.indptr, matrix.indices, matrix.data

    def _select_users(self, users: Iterable[int] | None) -> np.ndarray:
        counts = self.dataset.user_counts
        if users is None:
            chosen = np.flatnonzero(counts >= self.min_ratings).astype(np.int64)
            if not len(chosen):
                raise DatasetError(f"{self.dataset.name}: no user with at least {self.min_ratings} ratings")
            return chosen
        if isinstance(users, str | bytes) or not isinstance(users, Iterable):
            # A string iterates by character: "12" would serve users 1 and 2.
            raise ValueError(f"users: expected a list of userIds, got {users!r}")
        try:
            ids = np.unique(np.fromiter((_user_id(u) for u in users), dtype=np.int64))
        except (TypeError, ValueError):
            raise ValueError(f"users: expected a list of userIds, got {users!r}") from None
        if not len(ids):
            raise ValueError("users: the list of userIds is empty")
        positions = np.searchsorted(self.dataset.user_ids, ids)
        known = positions < self.dataset.n_users
        known[known] = self.dataset.user_ids[positions[known]] == ids[known]
        if not known.all():
            missing = ", ".join(str(u) for u in ids[~known][:5])
            raise DatasetError(f"users: unknown userId(s) {missing} in {self.dataset.name}")
        few = positions[counts[positions] < self.min_ratings]
        if len(few):
            raise ValueError(
                f"users: userId {self.dataset.user_ids[few[0]]} has fewer than {self.min_ratings} ratings"
            )
        return positions.astype(np.int64)

    @cached_property
    def liked_share(self) -> np.ndarray:
        """``(n_movies,)`` float32: the share of served users who rated each movie
        ``>= LIKED_RATING`` in this world's data (what :meth:`WorldViews.action_prior` hands over)."""
        served = np.zeros(self.dataset.n_users, dtype=bool)
        served[self.users] = True
        matrix = self.dataset.ratings
        rows = np.repeat(np.arange(self.dataset.n_users), np.diff(matrix.indptr))
        liked = (matrix.data >= LIKED_RATING) & served[rows]
        counts = np.bincount(matrix.indices[liked], minlength=self.n_movies)
        return (counts / len(self.users)).astype(np.float32)

    def user_index(self, user_id: Any, key: str = "options['user_id']") -> int:
        """Dataset index of an original userId this world serves; ``ValueError`` naming ``key``."""
        if isinstance(user_id, bool | np.bool_) or not isinstance(user_id, int | np.integer):
            raise ValueError(f"{key}: expected an integer userId, got {user_id!r}")
        try:
            index = self.dataset.user_index(int(user_id))
        except KeyError:
            raise ValueError(f"{key}: unknown userId {user_id} in {self.dataset.name}") from None
        position = int(np.searchsorted(self.users, index))
        if position >= len(self.users) or self.users[position] != index:
            raise ValueError(f"{key}: userId {user_id} is not among this env's users")
        return index

    # ----------------------------------------------------------------------- history
    def history(self, user: int) -> tuple[np.ndarray, np.ndarray]:
        """(movie indices, ratings) of one user, views into the CSR arrays."""
        start, stop = self.indptr[user], self.indptr[user + 1]
        return self.indices[start:stop], self.ratings[start:stop]

    def histories(self, users: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Where several users' ratings lie: (row in ``users``, position in the CSR arrays) of each."""
        starts, stops = self.indptr[users], self.indptr[users + 1]
        lengths = stops - starts
        row_of = np.repeat(np.arange(len(users)), lengths)
        first = np.cumsum(lengths) - lengths
        positions = np.arange(int(lengths.sum())) - np.repeat(first - starts, lengths)
        return row_of, positions

    def recency(self, user: int) -> np.ndarray:
        """Rank of each of the user's ratings in time (0 = oldest), aligned with :meth:`history`."""
        start, stop = self.indptr[user], self.indptr[user + 1]
        return self._recency_rank[start:stop]

    @cached_property
    def _recency_rank(self) -> np.ndarray:
        return self.dataset.recency_rank

    def rating(self, user: int, movie: int) -> float | None:
        """The rating user index ``user`` gave movie index ``movie``, or ``None``."""
        start, stop = self.indptr[user], self.indptr[user + 1]
        position = start + int(self.indices[start:stop].searchsorted(movie))
        if position < stop and self.indices[position] == movie:
            return float(self.ratings[position])
        return None

    def lookup(self, users: np.ndarray, movies: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Batched :meth:`rating`: (rated mask, ratings with 0 where unrated)."""
        return self.profiles.lookup(users, movies)

    def predicted(self, users: np.ndarray, movies: np.ndarray) -> np.ndarray:
        """The simulator's ratings for the pairs ``(users[j], movies[j])``, float32."""
        return self.simulator.predict_pairs(users, movies)

    def expected_ratings(self, users: np.ndarray, movies: np.ndarray) -> np.ndarray:
        """What the user would rate each movie, float64: a simulator given to the world, else the
        synthetic world's true preference when the data has one (``dataset.truth``), else the
        rating simulator fitted on the data. A simulator given as ``fit()`` arguments counts as
        given: an agent trained on a fitted simulator is never answered by the truth instead."""
        truth = self.dataset.truth
        if truth is not None and self._simulator is None:
            return truth.preference_pairs(users, movies)
        return self.predicted(users, movies).astype(np.float64)

    @cached_property
    def simulator(self) -> RatingSimulator | EnsembleSimulator:
        """The rating simulator (fitted on this world's data on first use unless one was given)."""
        given = self._simulator
        if given is None or isinstance(given, Mapping):
            return fit_simulator(self.dataset, **dict(given or {}))
        return given

    # ------------------------------------------------------------------ observations
    @cached_property
    def profiles(self) -> ProfileStore:
        """Rating profiles (``MovieLens-v0``'s observation) and batched look-ups."""
        return ProfileStore(self.dataset, self.memory_budget_mb)

    def profile(self, user: int) -> np.ndarray:
        """One user's profile as a new float32 array: the user's mean, their ratings scattered in.

        The scalar path of ``MovieLens-v0``'s step: a copy of a cached row, or one fill and one
        scatter (nothing else), so a step costs about what building its observation costs.
        """
        if self._dense_fits:
            return self.profiles.dense[user].copy()  # type: ignore[index]
        start, stop = self.indptr[user], self.indptr[user + 1]
        row = np.full(self.n_movies, self.means[user], dtype=np.float32)
        row[self.indices[start:stop]] = self.ratings[start:stop]
        return row

    @cached_property
    def _dense_fits(self) -> bool:
        # Decided without building the store: above the budget the scalar path needs none of it.
        return ProfileStore.fits(self.dataset, self.memory_budget_mb)

    @cached_property
    def embeddings(self) -> np.ndarray:
        """Users' SVD coordinates, float32 ``(n_users, embedding_dim)``, read-only."""
        coordinates = user_embeddings(self.dataset, self.embedding_dim)
        coordinates.flags.writeable = False
        return coordinates

    # ------------------------------------------------------------------------ render
    def title(self, movie: int) -> str:
        return f"{self.dataset.titles[movie]} (movieId {self.movie_ids[movie]})"

    def describe_user(self, user: int) -> list[str]:
        """A user and their top-rated titles, the lines ``render`` starts with."""
        movies, ratings = self.history(user)
        # Highest rating first; ties by movie index, so the text is deterministic.
        order = np.lexsort((movies, -ratings))[:_TOP_TITLES]
        lines = [f"user {self.user_ids[user]} ({len(movies)} ratings, mean {self.means[user]:.2f})"]
        lines += [f"  {ratings[i]:.1f}  {self.dataset.titles[movies[i]]}" for i in order]
        return lines if len(order) else [*lines, "  (no ratings)"]


class WorldViews:
    """What every env and episode logic says about its :class:`MovieLensWorld`, read-only."""

    world: MovieLensWorld

    @property
    def dataset(self) -> RatingsDataset:
        return self.world.dataset

    @property
    def n_movies(self) -> int:
        return self.world.n_movies

    @property
    def movie_ids(self) -> np.ndarray:
        """movieId of each action (movie index)."""
        return self.world.movie_ids

    @property
    def user_ids(self) -> np.ndarray:
        """userId of each user index."""
        return self.world.user_ids

    def action_prior(self) -> np.ndarray:
        """``(n_movies,)`` float32 in [0, 1]: the share of this env's users who liked each movie in
        its data (rating ``>= LIKED_RATING``): a policy's prior, handed over as ``action_masks()``
        are (``env.env_method("action_prior")``; see :class:`rlrec.nn.ActionPriorCallback`). An
        env built on a train split never sees validation or test ratings here."""
        return self.world.liked_share.copy()
