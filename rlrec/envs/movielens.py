"""``rlrec/MovieLens-v0``: recommend one movie per step to a stream of MovieLens users.

:class:`SeedEpisodes` is the episode logic over N sub-envs (what :class:`rlrec.envs.vector.RecVectorEnv`
steps); :class:`MovieLensEnv` is the single env. Its step is the hot path of every learner on this
env, so it is a scalar path calling the same helpers (:func:`seed_reward` and :func:`seed_rewards`,
the world's look-ups) rather than a batch of one: numpy on 1-element arrays would cost it half its
speed. The equivalence tests step both with the same actions.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import gymnasium
import numpy as np
from gymnasium import spaces

from rlrec.data.simulator import EnsembleSimulator, RatingSimulator
from rlrec.envs.registration import DEFAULT_MAX_EPISODE_STEPS
from rlrec.envs.vector import Episodes, RecVectorEnv, check_action, check_options
from rlrec.envs.world import (
    DataSource,
    MovieLensWorld,
    RenderModeError,
    WorldViews,
    check_choice,
    check_flag,
)

__all__ = [
    "OBSERVATIONS",
    "REWARD_MODES",
    "USER_ORDERS",
    "MovieLensEnv",
    "MovieLensVectorEnv",
    "SeedEpisodes",
    "seed_reward",
    "seed_rewards",
]

REWARD_MODES = ("seed", "rating", "simulated")
USER_ORDERS = ("sequential", "random")
OBSERVATIONS = ("profile", "embedding")
_FIRST = np.zeros(1, dtype=np.int64)  # the single env is sub-env 0 of its episode logic


def seed_reward(world: MovieLensWorld, reward_mode: str, user: int, movie: int) -> tuple[float, bool]:
    """(reward, rated) of recommending movie index ``movie`` to user index ``user``."""
    rating = world.rating(user, movie)
    if rating is not None:
        return rating, True
    if reward_mode == "seed":
        return float(world.means[user]), False
    if reward_mode == "rating":
        return 0.0, False
    return float(world.expected_ratings(np.array([user]), np.array([movie]))[0]), False


def seed_rewards(
    world: MovieLensWorld, reward_mode: str, users: np.ndarray, movies: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Batched :func:`seed_reward`: float64 rewards and the ``rated`` mask."""
    rated, ratings = world.lookup(users, movies)
    if reward_mode == "seed":
        fallback = world.means[users]
    elif reward_mode == "rating":
        fallback = np.zeros(len(users), dtype=np.float32)
    else:
        fallback = world.expected_ratings(users, movies)
    return np.where(rated, ratings, fallback).astype(np.float64), rated


def _observation_space(world: MovieLensWorld, observation: str) -> spaces.Box:
    if observation == "embedding":
        embeddings = world.embeddings
        return spaces.Box(embeddings.min(axis=0), embeddings.max(axis=0), dtype=np.float32)
    return spaces.Box(0.0, 5.0, (world.n_movies,), dtype=np.float32)


def _world(
    data: DataSource,
    users: Iterable[int] | None,
    memory_budget_mb: float,
    simulator: RatingSimulator | EnsembleSimulator | Mapping[str, Any] | None,
    embedding_dim: int,
) -> MovieLensWorld:
    return MovieLensWorld(
        data, users, memory_budget_mb=memory_budget_mb, simulator=simulator, embedding_dim=embedding_dim
    )


class SeedEpisodes(Episodes):
    """``MovieLens-v0``'s episode logic over ``num_envs`` sub-envs (arguments as :class:`MovieLensEnv`).

    Sub-env ``i`` starts, and restarts after each episode, at the ``i``-th served user (mod their
    number) in sequential order, so that N sub-envs cover N different users.
    """

    info_keys = ("user_id", "user_index", "movie_id", "rated", "state")

    def __init__(
        self,
        world: MovieLensWorld,
        num_envs: int,
        reward_mode: str = "seed",
        user_order: str = "sequential",
        mask_recommended: bool = False,
        observation: str = "profile",
    ) -> None:
        if int(num_envs) < 1:
            raise ValueError(f"num_envs: must be >= 1, got {num_envs}")
        self.world = world
        self.num_envs = n = int(num_envs)
        self.reward_mode = check_choice("reward_mode", reward_mode, REWARD_MODES)
        self.user_order = check_choice("user_order", user_order, USER_ORDERS)
        self.mask_recommended = check_flag("mask_recommended", mask_recommended)
        self.observation = check_choice("observation", observation, OBSERVATIONS)
        self.observation_space = _observation_space(world, observation)
        self.action_space = spaces.Discrete(world.n_movies)
        self.starts = np.arange(n, dtype=np.int64) % len(world.users)
        self.positions = self.starts.copy()
        self.users = world.users[self.positions]
        self.recommended = np.zeros((n, world.n_movies), dtype=bool) if self.mask_recommended else None
        self.n_recommended = np.zeros(n, dtype=np.int64)
        self.last: list[tuple[int, int, float] | None] = [None] * n

    # The compact-state interface (the state is the user whose observation is shown).
    @property
    def n_states(self) -> int:
        return self.world.dataset.n_users

    def start(self, index: int, rng: np.random.Generator, user: int | None) -> None:
        if user is not None:
            self.positions[index] = int(np.searchsorted(self.world.users, user))
        elif self.user_order == "random":
            self.positions[index] = rng.integers(len(self.world.users))
        else:
            self.positions[index] = self.starts[index]
        self.users[index] = self.world.users[self.positions[index]]
        if self.recommended is not None:
            self.recommended[index] = False
            self.n_recommended[index] = 0
        self.last[index] = None

    def start_info(self, rows: np.ndarray) -> dict[str, np.ndarray]:
        users = self.users[rows]
        return {"user_id": self.world.user_ids[users], "user_index": users.copy(), "state": users.copy()}

    def step(
        self, rows: np.ndarray, actions: np.ndarray, rngs: Sequence[np.random.Generator]
    ) -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]:
        users = self.users[rows].copy()
        rewards, rated = seed_rewards(self.world, self.reward_mode, users, actions)
        self.mark(rows, actions)
        n_users = len(self.world.users)
        if self.user_order == "random":
            for j, i in enumerate(rows):
                self.positions[i] = rngs[j].integers(n_users)
        else:
            self.positions[rows] = (self.positions[rows] + 1) % n_users
        self.users[rows] = self.world.users[self.positions[rows]]
        for j, i in enumerate(rows):
            self.last[i] = (int(users[j]), int(actions[j]), float(rewards[j]))
        info = {
            "user_id": self.world.user_ids[users],
            "user_index": users,
            "movie_id": self.world.movie_ids[actions],
            "rated": rated.copy(),
            "state": self.users[rows].copy(),
        }
        return rewards, rated, info

    def mark(self, rows: np.ndarray, actions: np.ndarray) -> None:
        """``mask_recommended``: the movies just recommended are masked until the episode ends."""
        if self.recommended is None:
            return
        fresh = ~self.recommended[rows, actions]
        self.recommended[rows, actions] = True
        self.n_recommended[rows] += fresh
        full = rows[self.n_recommended[rows] == self.world.n_movies]
        self.recommended[full] = False  # every movie recommended: the mask starts over
        self.n_recommended[full] = 0

    def observe(self, out: np.ndarray | None) -> np.ndarray:
        return self.observations(self.users, out)

    def observations(self, user_indices: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        users = np.asarray(user_indices, dtype=np.int64)
        if self.observation == "embedding":
            return np.take(self.world.embeddings, users, axis=0, out=out)
        return self.world.profiles.rows(users, out)

    def action_masks(self) -> np.ndarray:
        if self.recommended is None:
            return np.ones((self.num_envs, self.world.n_movies), dtype=bool)
        return ~self.recommended

    def describe(self, index: int) -> str:
        last = self.last[index]
        user = int(self.users[index]) if last is None else last[0]
        lines = self.world.describe_user(user)
        if last is not None:
            lines.append(f"recommended: {self.world.title(last[1])} -> reward {last[2]:.3f}")
        return "\n".join(lines)


class MovieLensEnv(WorldViews, gymnasium.Env[np.ndarray, np.int64]):
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
    Each step returns a new array. ``observation="embedding"``: the user's ``embedding_dim``
    coordinates from a truncated SVD of the mean-centred ratings, in a ``Box`` whose bounds are the
    per-coordinate min / max over the dataset's users.

    ## Rewards

    If the current user rated the recommended movie: that rating (0.5 to 5). Otherwise, by
    ``reward_mode``: ``"seed"`` the user's mean rating (2.5 without ratings); ``"rating"`` 0;
    ``"simulated"`` the user's expected rating, clipped to [0.5, 5]: the prediction of a
    :class:`RatingSimulator` (biased matrix factorisation) fitted on this env's dataset, or, on a
    synthetic world without a ``simulator`` given, the world's true preference (so that the value
    of any policy is known exactly, see ``rlrec ope --truth``).

    ## Starting State

    ``reset()`` starts at the first user (lowest userId among the env's users) with
    ``user_order="sequential"``, at a uniformly drawn user with ``"random"``;
    ``reset(options={"user_id": ID})`` starts at the user with original userId ``ID``.
    Any other option key is an error.

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
    * ``simulator``: a fitted :class:`RatingSimulator` for ``reward_mode="simulated"``, or the
      keyword arguments of :meth:`RatingSimulator.fit` (default: fitted on the env's data).

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
      observations, a batched vector env (:func:`MovieLensVectorEnv`).
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
        simulator: RatingSimulator | EnsembleSimulator | Mapping[str, Any] | None = None,
    ) -> None:
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise RenderModeError(f"render_mode: {render_mode!r} is not one of None, 'human', 'ansi'")
        world = _world(data, users, memory_budget_mb, simulator, embedding_dim)
        # The episode logic's state for one sub-env; the step below is its scalar form.
        self.episodes = SeedEpisodes(world, 1, reward_mode, user_order, mask_recommended, observation)
        self.world = world
        self.render_mode = render_mode
        self.action_space = self.episodes.action_space
        self.observation_space = self.episodes.observation_space
        self.reward_mode, self.user_order = reward_mode, user_order
        self.mask_recommended = self.episodes.mask_recommended
        self._position, self._user = 0, int(world.users[0])
        self._n_movies, self._n_users = world.n_movies, len(world.users)
        self._embedding = observation == "embedding"
        self._last: tuple[int, int, float] | None = None

    # ----------------------------------------------------- compact-state interface
    @property
    def n_states(self) -> int:
        """Number of compact states: one per dataset user (``info["state"]`` is in ``[0, n_states)``)."""
        return self.world.dataset.n_users

    def observations(self, states: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        """Observations of the compact states (dataset user indices) ``states``, float32
        ``(len(states), obs_dim)``, equal to what ``reset`` / ``step`` return for those users."""
        return self.episodes.observations(states, out)

    def _observe(self) -> np.ndarray:
        if self._embedding:
            return self.world.embeddings[self._user].copy()
        return self.world.profile(self._user)

    # ------------------------------------------------------------------ Gymnasium
    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        super().reset(seed=seed)
        options = check_options(options)
        if options.get("user_id") is not None:
            self._position = int(np.searchsorted(self.world.users, self.world.user_index(options["user_id"])))
        elif self.user_order == "random":
            self._position = int(self.np_random.integers(self._n_users))
        else:
            self._position = 0
        self._user = int(self.world.users[self._position])
        self.episodes.start(0, self.np_random, self._user)
        self._last = None
        user_id = int(self.world.user_ids[self._user])
        info = {"user_id": user_id, "user_index": self._user, "state": self._user}
        if self.render_mode == "human":
            self.render()
        return self._observe(), info

    def step(self, action: np.int64 | int) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        movie = check_action(action, self._n_movies)
        user = self._user
        reward, rated = seed_reward(self.world, self.reward_mode, user, movie)
        if self.mask_recommended:
            self.episodes.mark(_FIRST, np.array([movie]))
        if self.user_order == "random":
            self._position = int(self.np_random.integers(self._n_users))
        else:
            self._position = (self._position + 1) % self._n_users
        self._user = int(self.world.users[self._position])
        self._last = (user, movie, reward)
        info = {
            "user_id": int(self.world.user_ids[user]),
            "user_index": user,
            "movie_id": int(self.world.movie_ids[movie]),
            "rated": rated,
            "state": self._user,
        }
        if self.render_mode == "human":
            self.render()
        return self._observe(), reward, rated, False, info

    def action_masks(self) -> np.ndarray:
        """Allowed actions (True) for sb3-contrib's MaskablePPO; see ``mask_recommended``."""
        return self.episodes.action_masks()[0]

    def render(self) -> str | None:
        """The user of the last step (after reset: the current user), top titles, recommendation."""
        if self.render_mode is None:
            gymnasium.logger.warn("render() called without a render_mode; pass render_mode='ansi' or 'human'")
            return None
        user = self._user if self._last is None else self._last[0]
        lines = self.world.describe_user(user)
        if self._last is not None:
            lines.append(f"recommended: {self.world.title(self._last[1])} -> reward {self._last[2]:.3f}")
        text = "\n".join(lines)
        if self.render_mode == "ansi":
            return text
        print(text)
        return None


class MovieLensVectorEnv(RecVectorEnv):
    """``rlrec/MovieLens-v0``'s ``vector_entry_point``: :class:`RecVectorEnv` over :class:`SeedEpisodes`.

    ``gymnasium.make_vec("rlrec/MovieLens-v0", num_envs=N, vectorization_mode="vector_entry_point")``
    passes the registered ``max_episode_steps`` (1000). ``num_envs``, ``max_episode_steps``,
    ``autoreset_mode``, ``copy_obs`` and ``render_mode`` are :class:`RecVectorEnv`'s; the other
    arguments :class:`MovieLensEnv`'s.
    """

    default_max_episode_steps = DEFAULT_MAX_EPISODE_STEPS

    def __init__(
        self,
        data: DataSource,
        num_envs: int = 1,
        max_episode_steps: int | None = None,
        autoreset_mode: str = "next_step",
        copy_obs: bool = False,
        render_mode: str | None = None,
        reward_mode: str = "seed",
        user_order: str = "sequential",
        users: Iterable[int] | None = None,
        mask_recommended: bool = False,
        observation: str = "profile",
        embedding_dim: int = 32,
        memory_budget_mb: float = 256.0,
        simulator: RatingSimulator | EnsembleSimulator | Mapping[str, Any] | None = None,
    ) -> None:
        world = _world(data, users, memory_budget_mb, simulator, embedding_dim)
        episodes = SeedEpisodes(world, num_envs, reward_mode, user_order, mask_recommended, observation)
        super().__init__(episodes, max_episode_steps, autoreset_mode, copy_obs, render_mode)
