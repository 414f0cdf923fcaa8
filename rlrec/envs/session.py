"""``rlrec/MovieLensSession-v0``: find the movies a user rated but the agent cannot see.

One episode is one session with one user, drawn with the env's ``np_random``. At reset a random
``hidden_fraction`` of the user's ratings is hidden; the observation shows the rest. Each step
the agent recommends one movie:

* a hidden movie the user rated pays a reward from its rating and is revealed in the
  observation (the user "watched and rated it");
* any other movie pays 0 (``reward_mode="simulated"``: the rating a ``RatingSimulator`` predicts,
  mapped like a real rating), and nothing is revealed;
* a movie already recommended, or already visible at reset, pays 0 and changes nothing.
  ``action_masks()`` (the sb3-contrib ``MaskablePPO`` interface) marks those movies invalid, so a
  masked learner never wastes a step on them.

Reward per rating ``r`` (0.5 .. 5 stars):

* ``"binary"`` (default): 1.0 when ``r >= 4`` (the evaluation's relevance threshold), else 0.0.
  The per-step reward is then exactly "this recommendation is a held-out liked movie", the
  quantity that top-K precision counts, so a myopic value ``Q(obs, a)`` is a ranking score;
* ``"rating"``: ``r / 5``;
* ``"simulated"``: ``r / 5`` for hidden movies, ``prediction / 5`` for every other movie not yet
  recommended (the prediction of :class:`rlrec.envs.simulator.RatingSimulator`, clipped to
  [0.5, 5]).

Episode end: ``truncated`` after ``episode_length`` steps; ``terminated`` as soon as no positive
reward is left to earn, which is exact rather than a cap: ``"binary"``: no hidden movie rated
>= 4 left; ``"rating"``: no hidden movie left; ``"simulated"``: every movie recommended. A user
whose hidden part holds no liked movie therefore ends at the first step in ``"binary"`` mode.

Observation, a float32 ``Box(0, 1, (n_movies,))``:

* ``"ratings"`` (default): the visible rating / 5 for each visible movie, 0 for the others
  (unknown, hidden, or recommended and not rated);
* ``"binary"``: 1 for each visible movie, else 0 (implicit feedback).

Only one ``O(n_movies)`` observation and mask live per episode; ratings stay in the dataset's
CSR matrix, so the env scales to any MovieLens release. There is no compact integer state
(``n_states``): the observation depends on the random hidden draw.

:meth:`MovieLensSessionEnv.observations` encodes a user's *whole* history the same way: the
evaluation protocol uses it to ask a trained agent for a ranking given everything it may know.
"""

from __future__ import annotations

import math
import os
from typing import TYPE_CHECKING, Any

import gymnasium
import numpy as np
from gymnasium import spaces

from rlrec.data.dataset import RatingsDataset
from rlrec.envs.movielens import RenderModeError

if TYPE_CHECKING:
    from rlrec.envs.simulator import RatingSimulator

__all__ = ["OBSERVATIONS", "REWARD_MODES", "MovieLensSessionEnv", "RenderModeError", "rating_reward"]

REWARD_MODES = ("binary", "rating", "simulated")
OBSERVATIONS = ("ratings", "binary")
#: A rating at or above this is a liked movie (the same threshold as the ranking metrics).
LIKED = 4.0
#: Top of the rating scale, used to bring ratings into [0, 1].
MAX_RATING = 5.0
#: How a recommended movie that was not a hit shows in the observation with ``show_misses``.
MISS = -1.0


def rating_reward(rating: float, reward_mode: str) -> float:
    """The reward of recommending a movie rated (or predicted) ``rating``; see the module doc."""
    if reward_mode == "binary":
        return 1.0 if rating >= LIKED else 0.0
    if reward_mode in ("rating", "simulated"):
        return float(rating) / MAX_RATING
    raise ValueError(f"reward_mode must be one of {', '.join(REWARD_MODES)}, got {reward_mode!r}")


class MovieLensSessionEnv(gymnasium.Env[np.ndarray, np.int64]):
    """Sessions of one user: recommend the movies of their history the agent cannot see.

    :param data: a ``RatingsDataset`` (pass the TRAIN part of a split when evaluating) or a
        source for :func:`rlrec.data.load_movielens`; default ``"synthetic"``.
    :param episode_length: steps before truncation; default 50 (a session of 50 recommendations).
    :param hidden_fraction: share of the user's ratings hidden at reset, in (0, 1); the count is
        ``round(hidden_fraction * n)`` kept within ``[1, n - 1]``; default 0.5.
    :param reward_mode: ``"binary"``, ``"rating"`` or ``"simulated"``; default ``"binary"``.
    :param observation: ``"ratings"`` or ``"binary"``; default ``"ratings"``.
    :param users: user indices episodes are drawn from; default every user with >= 2 ratings
        (one to show, one to hide).
    :param render_mode: ``None``, ``"ansi"`` (``render()`` returns text) or ``"human"`` (prints it).
    :param simulator: a fitted ``RatingSimulator`` for ``reward_mode="simulated"``; default: one
        fitted on ``data`` with its defaults and seed 0.
    :param show_misses: show a recommended movie that was not a hit as ``-1`` in the observation
        (the space becomes ``Box(-1, 1)``); default False (a miss changes nothing the agent sees).
        With it, ``obs != 0`` is exactly ``not action_masks()``, so a policy can mask from the
        observation alone (``rlrec.nn.UnseenDQNPolicy``).
    """

    metadata = {"render_modes": ["ansi", "human"], "render_fps": 4}  # noqa: RUF012 - Gymnasium's API

    def __init__(
        self,
        data: RatingsDataset | str | os.PathLike[str] = "synthetic",
        episode_length: int = 50,
        hidden_fraction: float = 0.5,
        reward_mode: str = "binary",
        observation: str = "ratings",
        users: np.ndarray | list[int] | None = None,
        render_mode: str | None = None,
        simulator: RatingSimulator | None = None,
        show_misses: bool = False,
    ) -> None:
        from rlrec.data import load_movielens

        self.dataset = load_movielens(data)
        if reward_mode not in REWARD_MODES:
            raise ValueError(f"reward_mode must be one of {', '.join(REWARD_MODES)}, got {reward_mode!r}")
        if observation not in OBSERVATIONS:
            raise ValueError(f"observation must be one of {', '.join(OBSERVATIONS)}, got {observation!r}")
        if int(episode_length) < 1:
            raise ValueError(f"episode_length must be >= 1, got {episode_length}")
        if not 0.0 < float(hidden_fraction) < 1.0:
            raise ValueError(f"hidden_fraction must be in (0, 1), got {hidden_fraction}")
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise RenderModeError(f"render_mode must be None, 'ansi' or 'human', got {render_mode!r}")
        self.episode_length = int(episode_length)
        self.hidden_fraction = float(hidden_fraction)
        self.reward_mode = reward_mode
        self.observation = observation
        self.render_mode = render_mode
        counts = self.dataset.user_counts
        if users is None:
            self.users = np.flatnonzero(counts >= 2).astype(np.int64)
        else:
            self.users = np.unique(np.asarray(users, dtype=np.int64))
            bad = self.users[(self.users < 0) | (self.users >= self.dataset.n_users)]
            if bad.size:
                raise ValueError(f"users: index {int(bad[0])} outside [0, {self.dataset.n_users})")
            few = self.users[counts[self.users] < 2]
            if few.size:
                raise ValueError(
                    f"users: user index {int(few[0])} has fewer than 2 ratings (nothing to hide)"
                )
        if self.users.size == 0:
            raise ValueError(f"{self.dataset.name}: no user with at least 2 ratings")
        if reward_mode == "simulated" and simulator is None:
            from rlrec.envs.simulator import RatingSimulator

            simulator = RatingSimulator.fit(self.dataset, seed=0)
        self.simulator = simulator
        if not isinstance(show_misses, bool | np.bool_):
            raise ValueError(f"show_misses must be True or False, got {show_misses!r}")
        self.show_misses = bool(show_misses)

        n_movies = self.dataset.n_movies
        self.action_space = spaces.Discrete(n_movies)
        low = MISS if self.show_misses else 0.0
        self.observation_space = spaces.Box(low, 1.0, shape=(n_movies,), dtype=np.float32)
        # Episode state; reset() fills it.
        self._user = -1
        self._step = 0
        self._obs = np.zeros(n_movies, dtype=np.float32)
        self._mask = np.ones(n_movies, dtype=bool)
        self._hidden = np.zeros(0, dtype=np.int64)  # sorted movie indices
        self._hidden_ratings = np.zeros(0, dtype=np.float32)
        self._hidden_left = np.zeros(0, dtype=bool)
        self._last: tuple[int, float] | None = None

    # ------------------------------------------------------------------ encoding
    def _encode(self, ratings: np.ndarray) -> np.ndarray:
        if self.observation == "binary":
            return np.ones_like(ratings, dtype=np.float32)
        return (np.asarray(ratings, dtype=np.float32) / np.float32(MAX_RATING)).astype(np.float32)

    def observations(self, user_indices: np.ndarray | list[int], out: np.ndarray | None = None) -> np.ndarray:
        """Observations showing each user's whole history, ``(len(user_indices), n_movies)`` float32.

        What a trained agent sees when it is asked for a ranking: nothing hidden.

        :param out: optional float32 array of that shape to fill (the signature of
            ``MovieLensEnv.observations``).
        """
        users = np.asarray(user_indices, dtype=np.int64)
        rows = self.dataset.ratings[users]
        if out is None:
            out = np.zeros((len(users), self.dataset.n_movies), dtype=np.float32)
        else:
            out[...] = 0.0
        out[np.repeat(np.arange(len(users)), np.diff(rows.indptr)), rows.indices] = self._encode(rows.data)
        return out

    def n_hidden(self, n_ratings: int) -> int:
        """How many of ``n_ratings`` (>= 2) ratings a session hides."""
        return min(n_ratings - 1, max(1, math.floor(self.hidden_fraction * n_ratings + 0.5)))

    # --------------------------------------------------------------------- API
    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        """Start a session. ``options={"user": i}`` picks user index ``i`` instead of a random one."""
        super().reset(seed=seed)
        if options and "user" in options:
            user = int(options["user"])
            if user < 0 or user >= self.dataset.n_users or self.dataset.user_counts[user] < 2:
                raise ValueError(f"options['user']: user index {user} is unknown or has fewer than 2 ratings")
        else:
            user = int(self.users[self.np_random.integers(len(self.users))])
        movies, ratings = self.dataset.user_row(user)
        hide = np.sort(self.np_random.choice(len(movies), size=self.n_hidden(len(movies)), replace=False))
        visible = np.ones(len(movies), dtype=bool)
        visible[hide] = False
        self._user = user
        self._step = 0
        self._hidden = movies[hide].astype(np.int64)
        self._hidden_ratings = ratings[hide].astype(np.float32)
        self._hidden_left = np.ones(len(hide), dtype=bool)
        self._obs = np.zeros(self.dataset.n_movies, dtype=np.float32)
        self._obs[movies[visible]] = self._encode(ratings[visible])
        self._mask = np.ones(self.dataset.n_movies, dtype=bool)
        self._mask[movies[visible]] = False
        self._last = None
        return self._obs.copy(), self._info(hit=False, rating=0.0)

    def step(self, action: int | np.integer) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        if self._user < 0:
            raise RuntimeError("call reset() before step()")
        if not self.action_space.contains(action):
            raise ValueError(f"action {action!r} is not a movie index in [0, {self.dataset.n_movies})")
        movie = int(action)
        self._step += 1
        reward, hit, rating = 0.0, False, 0.0
        if self._mask[movie]:
            self._mask[movie] = False
            where = int(np.searchsorted(self._hidden, movie))
            if where < len(self._hidden) and self._hidden[where] == movie:
                rating = float(self._hidden_ratings[where])
                reward, hit = rating_reward(rating, self.reward_mode), True
                self._hidden_left[where] = False
                self._obs[movie] = self._encode(np.array([rating]))[0]
            else:
                if self.show_misses:
                    self._obs[movie] = MISS
                if self.reward_mode == "simulated":
                    assert self.simulator is not None
                    predicted = float(self.simulator.predict(self._user, np.array([movie]))[0])
                    reward = rating_reward(predicted, "simulated")
        self._last = (movie, reward)
        terminated = self._nothing_left()
        truncated = not terminated and self._step >= self.episode_length
        return self._obs.copy(), reward, terminated, truncated, self._info(hit=hit, rating=rating)

    def _nothing_left(self) -> bool:
        if self.reward_mode == "binary":
            return not bool(np.any(self._hidden_left & (self._hidden_ratings >= LIKED)))
        if self.reward_mode == "rating":
            return not bool(self._hidden_left.any())
        return not bool(self._mask.any())

    def action_masks(self) -> np.ndarray:
        """Movies worth recommending now (not visible at reset, not recommended yet), bool ``(n_movies,)``."""
        return self._mask.copy()

    def _info(self, hit: bool, rating: float) -> dict[str, Any]:
        return {
            "user": self._user,
            "user_id": int(self.dataset.user_ids[self._user]),
            "hit": hit,
            "rating": rating,
            "hidden_left": int(self._hidden_left.sum()),
        }

    def render(self) -> str | None:
        if self.render_mode is None:
            return None
        text = (
            f"user {self.dataset.user_ids[self._user]} | step {self._step}/{self.episode_length} "
            f"| hidden left {int(self._hidden_left.sum())}/{len(self._hidden)}"
        )
        if self._last is not None:
            movie, reward = self._last
            text += f" | last: {self.dataset.titles[movie]} -> {reward:g}"
        if self.render_mode == "human":
            print(text)
            return None
        return text
