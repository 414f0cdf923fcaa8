"""``MovieLensSessionVectorEnv``: N ``MovieLensSession-v0`` sessions stepped as one numpy batch.

Sub-env ``i`` behaves exactly like one :class:`~rlrec.envs.session.MovieLensSessionEnv` with the
same arguments, seeded with ``seed + i`` (Gymnasium's vector seeding convention): it draws its
users and hidden movies with its own generator, making the same calls in the same order, so the
same actions give the same observations, rewards, ends and infos. Only the resets loop over
sub-envs (one user row each); a step is a handful of fancy-indexing operations on
``(num_envs, n_movies)`` arrays, whatever ``num_envs``.

State per sub-env, all dense over the catalogue (``num_envs x n_movies``): the observation, the
action mask, and the hidden ratings (0 where a movie is not hidden or was already found; real
ratings are >= 0.5, so 0 is free as "nothing").

Autoreset: Gymnasium's ``NEXT_STEP`` by default (the step after an episode ended resets that
sub-env, ignores its action, and returns reward 0 and ``terminated = truncated = False``);
``autoreset_mode="same_step"`` resets within the step and puts the last observation in
``infos["final_obs"]`` and the last info in ``infos["final_info"]`` (no wasted step: what a
learner stepping a batch every iteration wants); ``"disabled"`` leaves resets to
``reset(options={"reset_mask": mask})``.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

import numpy as np
from gymnasium.utils import seeding
from gymnasium.vector import AutoresetMode, VectorEnv
from gymnasium.vector.utils import batch_space

from rlrec.data.dataset import RatingsDataset
from rlrec.envs.session import LIKED, MAX_RATING, MISS, MovieLensSessionEnv

if TYPE_CHECKING:
    from rlrec.envs.simulator import RatingSimulator

__all__ = ["MovieLensSessionVectorEnv"]

_AUTORESET_MODES = {
    "next_step": AutoresetMode.NEXT_STEP,
    "same_step": AutoresetMode.SAME_STEP,
    "disabled": AutoresetMode.DISABLED,
}


class MovieLensSessionVectorEnv(VectorEnv):
    """``num_envs`` sessions of ``rlrec/MovieLensSession-v0`` in one batch (Gymnasium ``VectorEnv``).

    The ``vector_entry_point`` of ``rlrec/MovieLensSession-v0``:
    ``gymnasium.make_vec("rlrec/MovieLensSession-v0", num_envs=N, vectorization_mode="vector_entry_point")``.

    The observation array is one preallocated ``(num_envs, n_movies)`` float32 buffer updated in
    place by every ``reset`` / ``step``: copy it if you keep it across steps, or pass
    ``copy_obs=True``. ``infos`` hold the single env's keys (``user``, ``user_id``, ``hit``,
    ``rating``, ``hidden_left``) as arrays with Gymnasium's ``_key`` masks.

    :param data: as ``MovieLensSessionEnv`` (a ``RatingsDataset`` or a source); default ``"synthetic"``.
    :param num_envs: number of sessions stepped together; default 1.
    :param episode_length: as ``MovieLensSessionEnv`` (its default 50).
    :param hidden_fraction: as ``MovieLensSessionEnv`` (its default 0.5).
    :param reward_mode: as ``MovieLensSessionEnv`` (its default ``"binary"``).
    :param observation: as ``MovieLensSessionEnv`` (its default ``"ratings"``).
    :param users: as ``MovieLensSessionEnv`` (default: every user with >= 2 ratings).
    :param simulator: as ``MovieLensSessionEnv`` (for ``reward_mode="simulated"``).
    :param show_misses: as ``MovieLensSessionEnv`` (misses shown as -1; default False).
    :param max_episode_steps: an extra truncation cap, what ``gymnasium.make``'s ``TimeLimit``
        adds to the single env; ``None`` or <= 0 for none (the default: the session already ends
        after ``episode_length`` steps).
    :param autoreset_mode: ``"next_step"`` (Gymnasium's default), ``"same_step"`` or ``"disabled"``.
    :param copy_obs: return a fresh observation array from every ``reset`` / ``step``.
    """

    def __init__(
        self,
        data: RatingsDataset | str | os.PathLike[str] = "synthetic",
        num_envs: int = 1,
        episode_length: int = 50,
        hidden_fraction: float = 0.5,
        reward_mode: str = "binary",
        observation: str = "ratings",
        users: np.ndarray | list[int] | None = None,
        simulator: RatingSimulator | None = None,
        show_misses: bool = False,
        max_episode_steps: int | None = None,
        autoreset_mode: str | AutoresetMode = AutoresetMode.NEXT_STEP,
        copy_obs: bool = False,
        render_mode: str | None = None,
    ) -> None:
        if int(num_envs) < 1:
            raise ValueError(f"num_envs must be >= 1, got {num_envs}")
        if render_mode is not None:
            raise ValueError(f"render_mode: MovieLensSessionVectorEnv does not render (got {render_mode!r})")
        given = autoreset_mode
        mode = given if isinstance(given, AutoresetMode) else _AUTORESET_MODES.get(given)
        if mode is None:
            raise ValueError(
                f"autoreset_mode must be one of {', '.join(_AUTORESET_MODES)}, got {autoreset_mode!r}"
            )
        # The single env checks every argument and holds the data, the user pool and the simulator.
        self.env = MovieLensSessionEnv(
            data,
            episode_length=episode_length,
            hidden_fraction=hidden_fraction,
            reward_mode=reward_mode,
            observation=observation,
            users=users,
            simulator=simulator,
            show_misses=show_misses,
        )
        self.dataset = self.env.dataset
        self.num_envs = int(num_envs)
        self.metadata = {"render_modes": [], "autoreset_mode": mode}
        self.autoreset_mode = mode
        self.render_mode = None
        self.copy_obs = copy_obs
        cap = max_episode_steps if max_episode_steps is not None and max_episode_steps > 0 else None
        self.episode_length = min(self.env.episode_length, cap) if cap else self.env.episode_length
        self.reward_mode = self.env.reward_mode
        self.single_observation_space = self.env.observation_space
        self.single_action_space = self.env.action_space
        self.observation_space = batch_space(self.single_observation_space, self.num_envs)
        self.action_space = batch_space(self.single_action_space, self.num_envs)

        n, n_movies = self.num_envs, self.dataset.n_movies
        self._obs = np.zeros((n, n_movies), dtype=np.float32)
        self._mask = np.ones((n, n_movies), dtype=bool)
        self._hidden = np.zeros((n, n_movies), dtype=np.float32)  # rating of each movie still hidden
        self._users = np.full(n, -1, dtype=np.int64)
        self._steps = np.zeros(n, dtype=np.int64)
        self._hidden_left = np.zeros(n, dtype=np.int64)
        self._liked_left = np.zeros(n, dtype=np.int64)
        self._allowed = np.zeros(n, dtype=np.int64)  # True entries of each mask row
        self._rngs: list[np.random.Generator | None] = [None] * n
        self._autoreset = np.zeros(n, dtype=bool)

    # ----------------------------------------------------------------- passthrough
    @property
    def n_movies(self) -> int:
        return self.dataset.n_movies

    def observations(self, user_indices: np.ndarray | list[int], out: np.ndarray | None = None) -> np.ndarray:
        """Each user's whole history encoded as an observation (``MovieLensSessionEnv.observations``)."""
        return self.env.observations(user_indices, out=out)

    def action_masks(self) -> np.ndarray:
        """``(num_envs, n_movies)`` bool: row ``i`` is sub-env ``i``'s ``action_masks()``."""
        return self._mask.copy()

    # -------------------------------------------------------------------- episodes
    def _rng(self, index: int) -> np.random.Generator:
        generator = self._rngs[index]
        if generator is None:
            generator = self._rngs[index] = seeding.np_random()[0]
        return generator

    def _start(self, index: int, user: int | None = None) -> None:
        """``MovieLensSessionEnv.reset`` for sub-env ``index``: the same draws in the same order."""
        rng = self._rng(index)
        if user is None:
            user = int(self.env.users[rng.integers(len(self.env.users))])
        movies, ratings = self.dataset.user_row(user)
        hide = np.sort(rng.choice(len(movies), size=self.env.n_hidden(len(movies)), replace=False))
        visible = np.ones(len(movies), dtype=bool)
        visible[hide] = False
        hidden_ratings = ratings[hide].astype(np.float32)
        self._users[index] = user
        self._steps[index] = 0
        self._obs[index] = 0.0
        self._obs[index, movies[visible]] = self.env._encode(ratings[visible])
        self._mask[index] = True
        self._mask[index, movies[visible]] = False
        self._hidden[index] = 0.0
        self._hidden[index, movies[hide]] = hidden_ratings
        self._hidden_left[index] = len(hide)
        self._liked_left[index] = int(np.count_nonzero(hidden_ratings >= LIKED))
        self._allowed[index] = self.n_movies - int(visible.sum())

    def _check_user(self, user: int) -> int:
        if user < 0 or user >= self.dataset.n_users or self.dataset.user_counts[user] < 2:
            raise ValueError(f"options['user']: user index {user} is unknown or has fewer than 2 ratings")
        return user

    def reset(
        self, *, seed: int | list[int | None] | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        """Start new sessions; ``seed=s`` seeds sub-env ``i`` with ``s + i``.

        ``options``: ``{"user": i}`` (one user index for every sub-env, or one per sub-env) picks
        the users; ``{"reset_mask": mask}`` resets only the sub-envs where ``mask`` is True.
        """
        n = self.num_envs
        seeds: list[int | None]
        if seed is None:
            seeds = [None] * n
        elif isinstance(seed, int | np.integer):
            super().reset(seed=int(seed))
            seeds = [int(seed) + i for i in range(n)]
        else:
            seeds = list(seed)
            if len(seeds) != n:
                raise ValueError(f"seed: expected {n} seeds, got {len(seeds)}")
        options = options or {}
        chosen: list[int | None] = [None] * n
        if options.get("user") is not None:
            value = options["user"]
            chosen = [int(value)] * n if np.ndim(value) == 0 else [int(u) for u in value]
            if len(chosen) != n:
                raise ValueError(f"options['user']: expected {n} user indices, got {len(chosen)}")
        which = np.ones(n, dtype=bool)
        if options.get("reset_mask") is not None:
            which = np.asarray(options["reset_mask"], dtype=bool)
            if which.shape != (n,):
                raise ValueError(f"options['reset_mask']: expected {n} booleans, got shape {which.shape}")
        for i in np.flatnonzero(which):
            if seeds[i] is not None:
                self._rngs[i] = seeding.np_random(seeds[i])[0]
            user = chosen[i]
            self._start(int(i), None if user is None else self._check_user(user))
        self._autoreset[which] = False
        info = self._infos(np.zeros(n, dtype=bool), np.zeros(n, dtype=np.float32), which)
        return self._observe(), info

    def step(
        self, actions: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]:
        actions = np.asarray(actions)
        n = self.num_envs
        if actions.shape != (n,) or actions.dtype.kind not in "iu":
            raise ValueError(f"actions must be {n} integer movie indices, got shape {actions.shape}")
        if (actions < 0).any() or (actions >= self.n_movies).any():
            raise ValueError(f"actions must be movie indices in [0, {self.n_movies})")
        if (self._users < 0).any():
            raise RuntimeError("call reset() before step()")
        actions = actions.astype(np.int64, copy=False)
        resetting = self._autoreset.copy()
        for i in np.flatnonzero(resetting):  # NEXT_STEP: this step only restarts these sessions
            self._start(int(i))
        acting = ~resetting
        rows = np.flatnonzero(acting)
        movies = actions[rows]

        # A movie still allowed is now recommended; a hidden one among them is found and shown.
        fresh = self._mask[rows, movies]
        self._mask[rows, movies] = False
        self._allowed[rows] -= fresh
        found = self._hidden[rows, movies]  # 0 unless hidden and not found yet (hence fresh)
        hit = found > 0
        rewards = np.zeros(n, dtype=np.float64)
        ratings = np.zeros(n, dtype=np.float32)
        hits = np.zeros(n, dtype=bool)
        hits[rows] = hit
        ratings[rows] = found
        if self.reward_mode == "binary":
            rewards[rows] = (found >= LIKED).astype(np.float64)
        else:
            rewards[rows] = found.astype(np.float64) / MAX_RATING
        hit_rows, hit_movies = rows[hit], movies[hit]
        self._obs[hit_rows, hit_movies] = self.env._encode(found[hit])
        self._hidden[hit_rows, hit_movies] = 0.0
        self._hidden_left[hit_rows] -= 1
        self._liked_left[hit_rows] -= found[hit] >= LIKED
        if self.env.show_misses:
            self._obs[rows[fresh & ~hit], movies[fresh & ~hit]] = MISS
        if self.reward_mode == "simulated":
            guess = rows[fresh & ~hit]
            if len(guess):
                assert self.env.simulator is not None
                predicted = self.env.simulator.predict_pairs(self._users[guess], actions[guess])
                rewards[guess] = np.asarray(predicted, dtype=np.float64) / MAX_RATING
        self._steps[rows] += 1

        if self.reward_mode == "binary":
            nothing_left = self._liked_left == 0
        elif self.reward_mode == "rating":
            nothing_left = self._hidden_left == 0
        else:
            nothing_left = self._allowed == 0
        terminated = acting & nothing_left
        truncated = acting & ~terminated & (self._steps >= self.episode_length)
        done = terminated | truncated
        info = self._infos(hits, ratings, np.ones(n, dtype=bool))

        if self.autoreset_mode == AutoresetMode.NEXT_STEP:
            self._autoreset = done
        elif self.autoreset_mode == AutoresetMode.SAME_STEP and done.any():
            final_obs = np.full(n, None, dtype=object)
            for i in np.flatnonzero(done):
                final_obs[i] = self._obs[i].copy()
            info["final_info"], info["_final_info"] = info.copy(), done.copy()
            info["final_obs"], info["_final_obs"] = final_obs, done.copy()
            for i in np.flatnonzero(done):
                self._start(int(i))
            fresh_info = self._infos(np.zeros(n, dtype=bool), np.zeros(n, dtype=np.float32), done)
            for key in ("user", "user_id", "hit", "rating", "hidden_left"):
                info[key] = np.where(done, fresh_info[key], info[key])
        return self._observe(), rewards, terminated, truncated, info

    # ---------------------------------------------------------------------- output
    def _observe(self) -> np.ndarray:
        return self._obs.copy() if self.copy_obs else self._obs

    def _infos(self, hits: np.ndarray, ratings: np.ndarray, present: np.ndarray) -> dict[str, Any]:
        users = self._users.copy()
        present = present.copy()
        return {
            "user": users,
            "_user": present,
            "user_id": np.asarray(self.dataset.user_ids)[np.maximum(users, 0)],
            "_user_id": present,
            "hit": hits,
            "_hit": present,
            "rating": ratings.astype(np.float64),
            "_rating": present,
            "hidden_left": self._hidden_left.copy(),
            "_hidden_left": present,
        }
