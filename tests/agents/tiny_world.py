"""A 4-user x 12-movie dataset whose optimal recommendations are known by hand, and toy envs.

Movies have ids 1..12 (action = id - 1). Ratings:

    user 1: movie 1: 2.0, movie 3: 5.0, movie 7: 3.0      best: movie 3  -> action 2
    user 2: movie 2: 4.5, movie 5: 1.0, movie 12: 3.5     best: movie 2  -> action 1
    user 3: movie 4: 3.0, movie 9: 4.0, movie 10: 0.5     best: movie 9  -> action 8
    user 4: movie 1: 4.0, movie 6: 5.0, movie 11: 2.5     best: movie 6  -> action 5

With ``reward_mode="rating"`` the reward is the rating when rated and 0 otherwise, so with
γ = 0 the optimal action of each user (state = user index) is their highest-rated movie.
"""

from __future__ import annotations

from typing import Any

import gymnasium
import numpy as np
from gymnasium import spaces

import rlrec  # noqa: F401  (registers the env ids)
from rlrec.data.dataset import RatingsDataset, build_dataset
from rlrec.envs.movielens import MovieLensEnv

RATINGS = {
    1: {1: 2.0, 3: 5.0, 7: 3.0},
    2: {2: 4.5, 5: 1.0, 12: 3.5},
    3: {4: 3.0, 9: 4.0, 10: 0.5},
    4: {1: 4.0, 6: 5.0, 11: 2.5},
}
#: Best action per user index, from the table above.
OPTIMAL_ACTIONS = np.array([2, 1, 8, 5])
N_MOVIES = 12


def tiny_dataset() -> RatingsDataset:
    rows = [(u, m, r) for u, movies in RATINGS.items() for m, r in movies.items()]
    users, movies, ratings = (np.array(column) for column in zip(*rows))
    movie_ids = np.arange(1, N_MOVIES + 1)
    return build_dataset(
        "tiny-4x12",
        users,
        movies,
        ratings,
        np.arange(len(rows)),
        movie_ids,
        np.array([f"Movie {i}" for i in movie_ids], dtype=object),
        np.array(["Drama"] * N_MOVIES, dtype=object),
    )


def tiny_env(**kwargs: Any) -> Any:
    """``rlrec/MovieLens-v0`` (with its wrappers) on the tiny dataset, rewards = ratings."""
    kwargs.setdefault("reward_mode", "rating")
    return gymnasium.make("rlrec/MovieLens-v0", data=tiny_dataset(), **kwargs)


def raw_tiny_env(**kwargs: Any) -> MovieLensEnv:
    kwargs.setdefault("reward_mode", "rating")
    return MovieLensEnv(tiny_dataset(), **kwargs)


class OneStateEnv(gymnasium.Env):
    """One state, one action, reward 1 per step; terminates after 3 steps, or never
    (``terminate=False``: wrap it in ``TimeLimit(3)`` to get a truncation instead)."""

    observation_space = spaces.Discrete(1)
    action_space = spaces.Discrete(1)

    def __init__(self, terminate: bool = True) -> None:
        self.terminate = terminate
        self.t = 0

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[int, dict]:
        super().reset(seed=seed)
        self.t = 0
        return 0, {}

    def step(self, action: int) -> tuple[int, float, bool, bool, dict]:
        self.t += 1
        return 0, 1.0, self.terminate and self.t >= 3, False, {}


class BoxEnv(gymnasium.Env):
    """A 2-float observation, 3 actions; the observation is the step count modulo 4 one-hot-ish.
    No compact states: learners must use their generic paths (hash keys, dense replay)."""

    observation_space = spaces.Box(0.0, 4.0, (2,), dtype=np.float32)
    action_space = spaces.Discrete(3)

    def __init__(self) -> None:
        self.t = 0

    def _obs(self) -> np.ndarray:
        return np.array([self.t % 4, 1.0], dtype=np.float32)

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict]:
        super().reset(seed=seed)
        self.t = 0
        return self._obs(), {}

    def step(self, action: int) -> tuple[np.ndarray, float, bool, bool, dict]:
        reward = 1.0 if int(action) == self.t % 3 else 0.0
        self.t += 1
        return self._obs(), reward, self.t >= 8, False, {}
