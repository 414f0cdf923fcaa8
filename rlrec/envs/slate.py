"""``rlrec/MovieLensSlate-v0``: recommend a slate of K movies per step to one user's session.

A slate session is a :mod:`rlrec.envs.session` session (part of the user's history hidden, the
rest shown) in which each step shows K distinct movies and a user model decides which of them
are clicked. :class:`SlateEpisodes` extends the session's episode logic; the single env and
:class:`MovieLensSlateVectorEnv` are one logic, as for the other ids.

User model, in two parts (both documented on :class:`MovieLensSlateEnv`):

* **attraction** (``feedback``): ``"logged"``, a movie attracts when it is one of the hidden
  movies the user rated >= 4 (real feedback, deterministic); ``"simulated"``, a movie attracts
  with probability ``clip((r - 3) / 2, 0, 1)`` where ``r`` is the user's expected rating
  (the ``simulator=`` given to the env; without one, the synthetic world's true preference when the
  data has one, else a ``RatingSimulator`` fitted on the data).
* **clicks** (``click_model``): ``"hits"``, every attractive movie is clicked (a slate pays the
  sum of its movies, SlateQ's additive decomposition); ``"pbm"``, position ``k`` (from 0) is
  examined with probability ``1 / (k + 1)`` and an examined attractive movie clicked; ``"cascade"``,
  the user reads the slate top down and clicks the first attractive movie, then stops (at most one
  click; none is the no-click option).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
from gymnasium import spaces

from rlrec.data.dataset import LIKED_RATING
from rlrec.data.simulator import EnsembleSimulator, RatingSimulator
from rlrec.envs.registration import SLATE_MAX_EPISODE_STEPS
from rlrec.envs.session import SessionEpisodes, rating_reward
from rlrec.envs.vector import EpisodesEnv, EpisodesVectorEnv
from rlrec.envs.world import DataSource, MovieLensWorld, check_choice

__all__ = [
    "CLICK_MODELS",
    "FEEDBACKS",
    "SLATE_REWARDS",
    "MovieLensSlateEnv",
    "MovieLensSlateVectorEnv",
    "SlateEpisodes",
    "attraction",
    "examination",
]

CLICK_MODELS = ("hits", "pbm", "cascade")
FEEDBACKS = ("logged", "simulated")
SLATE_REWARDS = ("clicks", "rating")


def attraction(expected_rating: np.ndarray) -> np.ndarray:
    """Probability that a movie with this expected rating attracts its user: ``clip((r - 3) / 2, 0, 1)``
    (3 stars or less never, 4 stars half the time, 5 stars always)."""
    return np.clip((np.asarray(expected_rating, dtype=np.float64) - 3.0) / 2.0, 0.0, 1.0)


def examination(click_model: str, slate_size: int) -> np.ndarray:
    """Probability that each position of a slate is looked at: 1 (``"hits"``), ``1 / (k + 1)``
    (``"pbm"``); for ``"cascade"`` the first position only is sure (the rest depend on clicks)."""
    if click_model == "pbm":
        return 1.0 / np.arange(1, slate_size + 1)
    if click_model == "cascade":
        return np.r_[1.0, np.zeros(slate_size - 1)]
    return np.ones(slate_size)


class SlateEpisodes(SessionEpisodes):
    """``MovieLensSlate-v0``'s episode logic: sessions whose every step is a slate (see the module doc)."""

    info_keys: tuple[str, ...] = (*SessionEpisodes.info_keys, "clicks", "slot_rewards")

    def __init__(
        self,
        world: MovieLensWorld,
        num_envs: int,
        slate_size: int = 10,
        click_model: str = "hits",
        feedback: str = "logged",
        reward_mode: str = "clicks",
        **session: Any,
    ) -> None:
        if isinstance(slate_size, bool) or not isinstance(slate_size, int | np.integer) or slate_size < 1:
            raise ValueError(f"slate_size: expected a whole number >= 1, got {slate_size!r}")
        if slate_size > world.n_movies:
            raise ValueError(f"slate_size: {slate_size} is more than the {world.n_movies} movies")
        super().__init__(world, num_envs, **session)
        self.slate_size = int(slate_size)
        self.click_model = check_choice("click_model", click_model, CLICK_MODELS)
        self.feedback = check_choice("feedback", feedback, FEEDBACKS)
        self.slate_reward = check_choice("reward_mode", reward_mode, SLATE_REWARDS)
        self.action_space = spaces.MultiDiscrete(np.full(self.slate_size, world.n_movies))  # type: ignore[assignment]

    def _rating_of(self, rows: np.ndarray, movies: np.ndarray, found: np.ndarray) -> np.ndarray:
        """Ratings of clicked movies: the hidden rating when there is one, else the expected one."""
        missing = found == 0
        out = found.astype(np.float64)
        if missing.any():
            out[missing] = self.world.expected_ratings(self.users[rows[missing]], movies[missing])
        return out

    # ------------------------------------------------------------------- a step
    def step(
        self, rows: np.ndarray, actions: np.ndarray, rngs: Sequence[np.random.Generator]
    ) -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]:
        slates = np.asarray(actions, dtype=np.int64).reshape(len(rows), self.slate_size)
        clicks = np.zeros(slates.shape, dtype=bool)
        slot_rewards = np.zeros(slates.shape, dtype=np.float64)
        draws = np.array([rng.random(self.slate_size) for rng in rngs]).reshape(slates.shape)
        looked = examination(self.click_model, self.slate_size)
        stopped = np.zeros(len(rows), dtype=bool)  # cascade: the user clicked and left the slate
        found_any = np.zeros(len(rows), dtype=bool)
        for slot in range(self.slate_size):
            movies = slates[:, slot]
            # A movie shown before (or earlier in this slate) or visible at reset is never clicked.
            fresh = self.mask[rows, movies]
            self.mask[rows, movies] = False
            self.allowed[rows] -= fresh
            found = self.hidden[rows, movies]  # its hidden rating, 0 unless hidden and not found
            chance = np.zeros(len(rows))
            if self.feedback == "logged":
                chance[fresh] = (found[fresh] >= LIKED_RATING).astype(np.float64)
            elif fresh.any():
                expected = self.world.expected_ratings(self.users[rows[fresh]], movies[fresh])
                chance[fresh] = attraction(expected)
            exam = 1.0 if self.click_model == "cascade" else looked[slot]
            clicked = fresh & ~stopped & (draws[:, slot] < exam * chance)
            if self.click_model == "cascade":
                stopped |= clicked
            clicks[:, slot] = clicked
            if self.slate_reward == "clicks":
                slot_rewards[clicked, slot] = 1.0
            elif clicked.any():
                rated = self._rating_of(rows[clicked], movies[clicked], found[clicked])
                slot_rewards[clicked, slot] = rating_reward(rated, "rating")
            # A clicked movie is watched: it shows in the observation from now on.
            shown_rows, shown_movies = rows[clicked], movies[clicked]
            watched = np.maximum(found[clicked], LIKED_RATING)
            self.obs[shown_rows, shown_movies] = self.encode(watched)
            self.watched(shown_rows, shown_movies, watched)
            was_hidden = clicked & (found > 0)
            self.hidden[rows[was_hidden], movies[was_hidden]] = 0.0
            self.hidden_left[rows[was_hidden]] -= 1
            self.liked_left[rows[was_hidden]] -= found[was_hidden] >= LIKED_RATING
            found_any |= clicked
            missed = fresh & ~clicked
            self.missed(rows[missed], movies[missed])
        self.steps[rows] += 1
        rewards = slot_rewards.sum(axis=1)
        for j, i in enumerate(rows):
            self.last[i] = (int(slates[j, 0]), float(rewards[j]))
        if self.feedback == "logged":
            terminated = self.liked_left[rows] == 0  # nothing attractive is left to show
        else:
            terminated = self.allowed[rows] < self.slate_size  # not enough new movies for a slate
        info = self._info(rows, found_any, np.zeros(len(rows)))
        info["clicks"] = clicks
        info["slot_rewards"] = slot_rewards
        return rewards, terminated, info

    def start_info(self, rows: np.ndarray) -> dict[str, np.ndarray]:
        info = super().start_info(rows)
        info["clicks"] = np.zeros((len(rows), self.slate_size), dtype=bool)
        info["slot_rewards"] = np.zeros((len(rows), self.slate_size))
        return info

    def action_masks(self) -> np.ndarray:
        """sb3-contrib's ``MultiDiscrete`` masks: each session's allowed movies, once per slot."""
        return np.tile(self.mask, (1, self.slate_size))

    def expected_clicks(self, index: int, slate: np.ndarray) -> float:
        """Expected number of clicks the slate ``slate`` gets in sub-env ``index`` now (the user
        model's closed form, for ground truth), without changing the session."""
        slate = np.asarray(slate, dtype=np.int64)
        seen: set[int] = set()
        chances = np.zeros(self.slate_size)
        user = np.array([self.users[index]])
        for slot, movie in enumerate(slate.tolist()):
            if movie in seen or not self.mask[index, movie]:
                continue
            seen.add(movie)
            if self.feedback == "logged":
                chances[slot] = float(self.hidden[index, movie] >= LIKED_RATING)
            else:
                chances[slot] = float(attraction(self.world.expected_ratings(user, np.array([movie])))[0])
        if self.click_model == "cascade":
            return float(1.0 - np.prod(1.0 - chances))
        return float(np.sum(examination(self.click_model, self.slate_size) * chances))

    def describe(self, index: int) -> str:
        user = int(self.users[index])
        return (
            f"user {self.world.user_ids[user]} | step {self.steps[index]} "
            f"| hidden left {self.hidden_left[index]}/{self.n_hidden_total[index]}"
        )


def _episodes(
    data: DataSource = "synthetic",
    num_envs: int = 1,
    users: Iterable[int] | None = None,
    simulator: RatingSimulator | EnsembleSimulator | Mapping[str, Any] | None = None,
    **options: Any,
) -> SlateEpisodes:
    world = MovieLensWorld(data, users, min_ratings=2, simulator=simulator)
    return SlateEpisodes(world, num_envs, **options)


class MovieLensSlateEnv(EpisodesEnv):
    """Slates of K movies for one user's session; clicks from a documented user model.

    ## Description

    The session env of ``rlrec/MovieLensSession-v0`` (part of the user's history hidden, the
    rest shown) where each step recommends K movies at once, as real recommenders show lists,
    and a user model clicks some of them (module docstring: attraction x click model).

    ## Action Space

    ``MultiDiscrete([n_movies] * slate_size)``: slot ``k`` holds a movie index. Slates are
    distinct by construction: a movie repeated in a slate, or shown before in the session, or
    visible at reset, is shown once and never clicked again (PPO / A2C sample slots
    independently, so the env must accept repeats rather than refuse them).

    ## Observation Space

    As ``MovieLensSession-v0`` (``observation="ratings"``, ``"binary"``, ``"recency"`` or ``"sequence"``); a
    clicked movie appears in it (as a rating of at least 4 stars when it was not rated).

    ## Rewards

    ``reward_mode="clicks"`` (default): the number of clicks; ``"rating"``: the sum of the
    clicked movies' ratings / 5 (the held-out rating, else the expected one). ``info["clicks"]``
    and ``info["slot_rewards"]`` give them slot by slot (what a slate learner such as SlateQ
    learns from).

    ## Starting State

    As ``MovieLensSession-v0``: a user drawn from ``users`` (or ``options={"user_id": ID}``) and
    the hidden part of their history (``hiding``, ``hidden_fraction``).

    ## Episode End

    Terminated with ``feedback="logged"`` when no hidden liked movie is left to show, with
    ``"simulated"`` when fewer than ``slate_size`` new movies are left. Truncated after
    ``max_episode_steps`` (5 as registered: 50 movies in slates of 10).

    ## Arguments

    * ``slate_size``: K, default 10.
    * ``click_model``: ``"hits"`` (default), ``"pbm"`` or ``"cascade"``.
    * ``feedback``: ``"logged"`` (default) or ``"simulated"``.
    * ``reward_mode``: ``"clicks"`` (default) or ``"rating"``.
    * ``data``, ``hidden_fraction``, ``hiding``, ``observation``, ``half_life``,
      ``recency_counts``, ``users``, ``simulator``, ``show_misses``, ``render_mode``: as
      ``MovieLensSession-v0``.

    ## Version History

    * v0: first version.
    """

    def __init__(
        self,
        data: DataSource = "synthetic",
        slate_size: int = 10,
        click_model: str = "hits",
        feedback: str = "logged",
        reward_mode: str = "clicks",
        hidden_fraction: float | Sequence[float] = 0.5,
        hiding: str = "random",
        observation: str = "ratings",
        half_life: float = 10.0,
        users: Iterable[int] | None = None,
        simulator: RatingSimulator | EnsembleSimulator | Mapping[str, Any] | None = None,
        show_misses: bool = False,
        render_mode: str | None = None,
        sequence_length: int = 50,
        recency_counts: str = "shown",
    ) -> None:
        options = dict(
            slate_size=slate_size, click_model=click_model, feedback=feedback, reward_mode=reward_mode,
            hidden_fraction=hidden_fraction, hiding=hiding, observation=observation, half_life=half_life,
            show_misses=show_misses, sequence_length=sequence_length, recency_counts=recency_counts,
        )  # fmt: skip
        self._attach(_episodes(data, 1, users, simulator, **options), render_mode)
        self._last_slate: np.ndarray | None = None

    def _check_action(self, action: Any) -> np.ndarray:
        slate = np.asarray(action)
        size, n_movies = self.episodes.slate_size, self.world.n_movies
        if slate.shape != (size,) or slate.dtype.kind not in "iu":
            raise ValueError(f"action must be a slate of {size} movie indices, got {action!r:.80}")
        if slate.min() < 0 or slate.max() >= n_movies:
            raise ValueError(f"action: movie indices must lie in [0, {n_movies})")
        self._last_slate = slate.astype(np.int64)
        return self._last_slate[None]

    def render(self) -> str | None:
        """The session, then the last slate with the movies' titles and its reward."""
        if self.render_mode is None:
            return None
        lines = [self.episodes.describe(0)]
        last = self.episodes.last[0]
        if self._last_slate is not None and last is not None:
            lines += [f"  {k + 1:>2}. {self.world.title(int(m))}" for k, m in enumerate(self._last_slate)]
            lines.append(f"  reward {last[1]:g}")
        text = "\n".join(lines)
        if self.render_mode == "human":
            print(text)
            return None
        return text


class MovieLensSlateVectorEnv(EpisodesVectorEnv):
    """``rlrec/MovieLensSlate-v0``'s ``vector_entry_point``: :class:`RecVectorEnv` over slates.

    ``num_envs``, ``max_episode_steps`` (``make_vec`` passes the registered 5), ``autoreset_mode``,
    ``copy_obs`` and ``render_mode`` are :class:`RecVectorEnv`'s; the rest :class:`MovieLensSlateEnv`'s.
    Actions are ``(num_envs, slate_size)`` movie indices.
    """

    default_max_episode_steps = SLATE_MAX_EPISODE_STEPS

    make_episodes = staticmethod(_episodes)
    has_torch_backend = True
