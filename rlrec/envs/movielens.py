"""``rlrec/MovieLens-v0``: recommend one movie per step to a stream of MovieLens users."""

from __future__ import annotations

import os
from collections.abc import Iterable
from typing import Any

import gymnasium
import numpy as np
from gymnasium import spaces

from rlrec.data.dataset import RatingsDataset
from rlrec.data.errors import DatasetError
from rlrec.envs.profiles import ProfileStore, user_embeddings
from rlrec.envs.simulator import RatingSimulator

REWARD_MODES = ("seed", "rating", "simulated")
USER_ORDERS = ("sequential", "random")
OBSERVATIONS = ("profile", "embedding")
#: Number of top-rated titles ``render`` lists for the user.
_TOP_TITLES = 5

DataSource = str | os.PathLike[str] | RatingsDataset


def as_dataset(data: DataSource) -> RatingsDataset:
    """``data`` itself when it is a ``RatingsDataset``, else ``rlrec.data.load_movielens(data)``."""
    if isinstance(data, RatingsDataset):
        return data
    from rlrec.data import load_movielens

    return load_movielens(data)


class MovieLensWorld:
    """What every MovieLens env shares: data, observations, rewards. No episode state.

    The single env and the batched vector envs step their users through one world, so the
    semantics live here once (scalar and batched forms, tested against each other).
    Arguments are those of :class:`MovieLensEnv`.
    """

    def __init__(
        self,
        data: DataSource,
        reward_mode: str = "seed",
        users: Iterable[int] | None = None,
        observation: str = "profile",
        embedding_dim: int = 32,
        memory_budget_mb: float = 256.0,
        simulator_kwargs: dict[str, Any] | None = None,
    ) -> None:
        _check_choice("reward_mode", reward_mode, REWARD_MODES)
        _check_choice("observation", observation, OBSERVATIONS)
        self.dataset = as_dataset(data)
        if self.dataset.n_users == 0 or self.dataset.n_movies == 0:
            raise DatasetError(f"{self.dataset.name}: an env needs at least one user and one movie")
        self.reward_mode = reward_mode
        self.observation = observation
        self.users = self._select_users(users)
        self.store = ProfileStore(self.dataset, memory_budget_mb)
        self.means = self.dataset.user_means
        self.action_space = spaces.Discrete(self.dataset.n_movies)
        self.embeddings: np.ndarray | None = None
        self.observation_space: spaces.Box
        if observation == "embedding":
            self.embeddings = user_embeddings(self.dataset, embedding_dim)
            self.embeddings.flags.writeable = False
            self.observation_space = spaces.Box(
                self.embeddings.min(axis=0), self.embeddings.max(axis=0), dtype=np.float32
            )
        else:
            self.observation_space = spaces.Box(0.0, 5.0, (self.dataset.n_movies,), dtype=np.float32)
        self.simulator: RatingSimulator | None = None
        if reward_mode == "simulated":
            options = dict(simulator_kwargs or {})
            prefitted = options.pop("simulator", None)
            self.simulator = (
                prefitted if prefitted is not None else RatingSimulator.fit(self.dataset, **options)
            )

    def _select_users(self, users: Iterable[int] | None) -> np.ndarray:
        if users is None:
            return np.arange(self.dataset.n_users, dtype=np.int64)
        ids = np.unique(np.fromiter((int(u) for u in users), dtype=np.int64))
        if not len(ids):
            raise ValueError("users: the list of user ids is empty")
        positions = np.searchsorted(self.dataset.user_ids, ids)
        known = positions < self.dataset.n_users
        known[known] = self.dataset.user_ids[positions[known]] == ids[known]
        if not known.all():
            missing = ", ".join(str(u) for u in ids[~known][:5])
            raise DatasetError(f"users: unknown user id(s) {missing} in {self.dataset.name}")
        return positions.astype(np.int64)

    def position_of(self, user_id: int) -> int:
        """Position in ``users`` of an original userId; ``ValueError`` if the env does not serve it."""
        try:
            index = self.dataset.user_index(int(user_id))
        except KeyError:
            raise ValueError(f"options['user_id']: unknown user id {user_id}") from None
        position = int(np.searchsorted(self.users, index))
        if position >= len(self.users) or self.users[position] != index:
            raise ValueError(f"options['user_id']: user {user_id} is not among this env's users")
        return position

    # ------------------------------------------------------------------ observations
    def observe(self, user: int) -> np.ndarray:
        """Observation of one user index, as a new array.

        Gymnasium's checker rejects envs whose returned arrays share memory (callers may keep
        them), so the cached row is copied: the one O(n_movies) copy of a step.
        """
        if self.embeddings is not None:
            return self.embeddings[user].copy()
        row = self.store.row(user)
        return row.copy() if self.store.cached else row

    def observations(self, states: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        """Observations of the user indices ``states``, float32 ``(len(states), obs_dim)``."""
        states = np.asarray(states, dtype=np.int64)
        if self.embeddings is not None:
            if out is None:
                return np.take(self.embeddings, states, axis=0)
            return np.take(self.embeddings, states, axis=0, out=out)
        return self.store.rows(states, out)

    # ----------------------------------------------------------------------- rewards
    def reward(self, user: int, movie: int) -> tuple[float, bool]:
        """(reward, rated) of recommending movie index ``movie`` to user index ``user``."""
        rating = self.store.lookup_one(user, movie)
        if rating is not None:
            return rating, True
        if self.reward_mode == "seed":
            return float(self.means[user]), False
        if self.reward_mode == "rating":
            return 0.0, False
        assert self.simulator is not None
        return float(self.simulator.predict(user, movie)), False

    def rewards(self, users: np.ndarray, movies: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Batched :meth:`reward`: float64 rewards and the ``rated`` mask."""
        rated, ratings = self.store.lookup(users, movies)
        if self.reward_mode == "seed":
            fallback = self.means[users]
        elif self.reward_mode == "rating":
            fallback = np.zeros(len(users), dtype=np.float32)
        else:
            assert self.simulator is not None
            fallback = self.simulator.predict_pairs(users, movies)
        return np.where(rated, ratings, fallback).astype(np.float64), rated

    # ------------------------------------------------------------------------ render
    def describe(self, user: int, movie: int | None, reward: float | None) -> str:
        """Text of ``render``: the user, their top-rated titles, the last recommendation."""
        dataset = self.dataset
        movies, ratings = dataset.user_row(user)
        # Highest rating first; ties by movie index, so the text is deterministic.
        order = np.lexsort((movies, -ratings))[:_TOP_TITLES]
        lines = [f"user {dataset.user_ids[user]} ({len(movies)} ratings, mean {self.means[user]:.2f})"]
        for position in order:
            lines.append(f"  {ratings[position]:.1f}  {dataset.titles[movies[position]]}")
        if not len(order):
            lines.append("  (no ratings)")
        if movie is not None and reward is not None:
            title, movie_id = dataset.titles[movie], dataset.movie_ids[movie]
            lines.append(f"recommended: {title} (movieId {movie_id}) -> reward {reward:.3f}")
        return "\n".join(lines)


class RenderModeError(ValueError, TypeError):
    """An unsupported ``render_mode``.

    Also a ``TypeError`` because SB3's ``make_vec_env`` asks every env for ``render_mode="rgb_array"``
    and retries without it only on a ``TypeError``.
    """


def _check_choice(name: str, value: str, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise ValueError(f"{name}: {value!r} is not one of {', '.join(choices)}")


class MovieLensEnv(gymnasium.Env[np.ndarray, np.int64]):
    """Recommend a movie to one MovieLens user per step; the user stream moves on every step.

    ## Description

    A Gymnasium port of the seed notebook's recommendation env. Users of a ``RatingsDataset``
    come one per step; the agent recommends a movie to the current user and is paid with the
    rating the user gave it (or a fallback when the user never rated it). The episode ends as
    soon as a recommended movie was rated by its user.

    ## Action Space

    ``Discrete(n_movies)``: action ``i`` recommends movie index ``i``, i.e. movieId
    ``env.unwrapped.movie_ids[i]`` (every movie of the movies file, rated or not, ascending id).

    ## Observation Space

    ``observation="profile"`` (default): ``Box(0, 5, (n_movies,), float32)``, the current user's
    ratings, with the user's mean rating on unrated movies (2.5 for a user without ratings).
    Each step returns a new array (one copy of a cached row).
    ``observation="embedding"``: the user's ``embedding_dim`` coordinates from a truncated SVD of
    the mean-centred ratings, in a ``Box`` whose bounds are the per-coordinate min / max over
    the dataset's users.

    ## Rewards

    If the current user rated the recommended movie: that rating (0.5 to 5). Otherwise, by
    ``reward_mode``: ``"seed"`` the user's mean rating (2.5 without ratings); ``"rating"`` 0;
    ``"simulated"`` the rating predicted by a :class:`RatingSimulator` (biased matrix
    factorisation) fitted on this env's dataset, clipped to [0.5, 5].

    ## Starting State

    ``reset()`` starts at the first user (lowest userId among the env's users) with
    ``user_order="sequential"``, at a uniformly drawn user with ``"random"``;
    ``reset(options={"user_id": ID})`` starts at user ``ID``.

    ## Episode End

    Terminated when the recommended movie was rated by the user it was recommended to.
    Truncated after ``max_episode_steps`` (1000 as registered;
    ``gymnasium.make(..., max_episode_steps=-1)`` removes the limit).

    ## Arguments

    * ``data``: a ``RatingsDataset`` or anything ``rlrec.data.load_movielens`` takes.
    * ``reward_mode``: ``"seed"`` (default, the notebook's), ``"rating"`` or ``"simulated"``.
    * ``user_order``: ``"sequential"`` (default, ascending userId, wrapping around) or
      ``"random"`` (each next user drawn uniformly with the env's ``np_random``).
    * ``users``: original userIds the env is restricted to (default: all).
    * ``mask_recommended``: ``action_masks()`` forbids the movies already recommended in the
      episode (for sb3-contrib's MaskablePPO); when that would forbid every movie the mask
      starts over.
    * ``observation``: ``"profile"`` (default) or ``"embedding"``; ``embedding_dim`` (32).
    * ``render_mode``: ``None``, ``"human"`` (prints after every step) or ``"ansi"``.
    * ``memory_budget_mb``: largest dense profile cache (see :class:`ProfileStore`).
    * ``simulator_kwargs``: keyword arguments of :meth:`RatingSimulator.fit`, or
      ``{"simulator": fitted}`` to share an already fitted simulator.

    ``info`` (reset and step): ``user_id`` / ``user_index`` (the user the step was about; on
    reset the user observed), ``movie_id`` and ``rated`` (step only), ``state`` (dataset index
    of the user whose observation is returned: the compact state, see :meth:`observations`).

    ## Version History

    * v0: first Gymnasium version.

    ## Differences from the notebook

    * Bug fixed: ratings were looked up with the user *index* as if it were a userId, so index
      0 matched nobody and every other index read the wrong user. Users are now indices into
      the dataset, and ids only appear at the edges (``info["user_id"]``).
    * Bug fixed: ``step`` converted the movieId action to an index and then compared that
      index with movieIds. Actions are now movie indices and rewards are looked up by index.
    * Bug fixed: every step filtered a global pandas DataFrame of all ratings; ratings are now
      looked up by binary search in the dataset's CSR matrix and profiles come from a cache.
    * Bug fixed: the observation was float64 while the Box said float32; it is float32 now.
    * Bug fixed: the user profiles were 10 copies of user 1's; every user now has their own.
    * API: old gym (``step`` 4-tuple, ``reset()`` without seed / info) -> Gymnasium
      (``step`` 5-tuple with ``terminated`` / ``truncated``, ``reset(seed, options)``).
    * API: actions are movie indices (``Discrete(n_movies)``), no longer movieIds.
    * API: ``render`` shows the user, their top-rated titles and the recommendation, instead
      of printing the raw profile vector.
    * Added: reward modes, random user order, user restriction, action masks, embedding
      observations, a batched vector env (``rlrec.envs.vector``).
    """

    metadata = {"render_modes": ["human", "ansi"], "render_fps": 4}  # noqa: RUF012 - Gymnasium's API

    def __init__(
        self,
        data: DataSource,
        reward_mode: str = "seed",
        user_order: str = "sequential",
        users: Iterable[int] | None = None,
        mask_recommended: bool = False,
        observation: str = "profile",
        embedding_dim: int = 32,
        render_mode: str | None = None,
        memory_budget_mb: float = 256.0,
        simulator_kwargs: dict[str, Any] | None = None,
    ) -> None:
        _check_choice("user_order", user_order, USER_ORDERS)
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise RenderModeError(f"render_mode: {render_mode!r} is not one of None, 'human', 'ansi'")
        self.world = MovieLensWorld(
            data, reward_mode, users, observation, embedding_dim, memory_budget_mb, simulator_kwargs
        )
        self.user_order = user_order
        self.mask_recommended = bool(mask_recommended)
        self.render_mode = render_mode
        self.action_space = self.world.action_space
        self.observation_space = self.world.observation_space
        self._position = 0
        self._user = int(self.world.users[0])
        # Plain attributes for the hot path of ``step`` (properties cost a call each).
        self._n_movies = self.world.dataset.n_movies
        self._user_ids, self._movie_ids = self.world.dataset.user_ids, self.world.dataset.movie_ids
        self._recommended = np.zeros(self.n_movies, dtype=bool)
        self._n_recommended = 0
        self._last: tuple[int, int, float] | None = None

    # ----------------------------------------------------- compact-state interface
    @property
    def dataset(self) -> RatingsDataset:
        return self.world.dataset

    @property
    def n_states(self) -> int:
        """Number of compact states: one per dataset user (``info["state"]`` is in ``[0, n_states)``)."""
        return self.world.dataset.n_users

    @property
    def n_movies(self) -> int:
        return self.world.dataset.n_movies

    @property
    def movie_ids(self) -> np.ndarray:
        """movieId of each action."""
        return self.world.dataset.movie_ids

    @property
    def user_ids(self) -> np.ndarray:
        """userId of each compact state."""
        return self.world.dataset.user_ids

    @property
    def reward_mode(self) -> str:
        return self.world.reward_mode

    @property
    def current_user(self) -> int:
        """Dataset index of the user the next step is about."""
        return self._user

    def observations(self, states: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        """Observations of the compact states (dataset user indices) ``states``.

        :param states: int array of user indices.
        :param out: optional float32 ``(len(states), obs_dim)`` array to fill.
        :return: float32 ``(len(states), obs_dim)``, equal to what ``reset`` / ``step`` return
            for those users.
        """
        return self.world.observations(states, out)

    # ------------------------------------------------------------------ Gymnasium
    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        super().reset(seed=seed)
        if options and options.get("user_id") is not None:
            self._position = self.world.position_of(options["user_id"])
        elif self.user_order == "random":
            self._position = int(self.np_random.integers(len(self.world.users)))
        else:
            self._position = 0
        self._user = int(self.world.users[self._position])
        self._recommended[:] = False
        self._n_recommended = 0
        self._last = None
        info = {
            "user_id": int(self.user_ids[self._user]),
            "user_index": self._user,
            "state": self._user,
        }
        if self.render_mode == "human":
            self.render()
        return self.world.observe(self._user), info

    def step(self, action: np.int64 | int) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        movie = int(action)
        if not 0 <= movie < self._n_movies or movie != action:
            raise ValueError(f"action {action!r} is not a movie index in [0, {self._n_movies})")
        user = self._user
        reward, rated = self.world.reward(user, movie)
        if self.mask_recommended and not self._recommended[movie]:
            self._recommended[movie] = True
            self._n_recommended += 1
            if self._n_recommended == self._n_movies:
                self._recommended[:] = False
                self._n_recommended = 0
        self._last = (user, movie, reward)
        if self.user_order == "random":
            self._position = int(self.np_random.integers(len(self.world.users)))
        else:
            self._position = (self._position + 1) % len(self.world.users)
        self._user = int(self.world.users[self._position])
        info = {
            "user_id": int(self._user_ids[user]),
            "user_index": user,
            "movie_id": int(self._movie_ids[movie]),
            "rated": rated,
            "state": self._user,
        }
        if self.render_mode == "human":
            self.render()
        return self.world.observe(self._user), reward, rated, False, info

    def action_masks(self) -> np.ndarray:
        """Allowed actions (True) for sb3-contrib's MaskablePPO; see ``mask_recommended``."""
        if not self.mask_recommended:
            return np.ones(self.n_movies, dtype=bool)
        return ~self._recommended

    def render(self) -> str | None:
        """The user of the last step (after reset: the current user), top titles, recommendation."""
        if self.render_mode is None:
            gymnasium.logger.warn("render() called without a render_mode; pass render_mode='ansi' or 'human'")
            return None
        if self._last is None:
            text = self.world.describe(self._user, None, None)
        else:
            text = self.world.describe(*self._last)
        if self.render_mode == "ansi":
            return text
        print(text)
        return None
