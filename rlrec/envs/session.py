"""``rlrec/MovieLensSession-v0``: find the movies a user rated but the agent cannot see.

One episode is one session with one user. At reset part of the user's history is hidden
(``hiding="random"``: a random ``hidden_fraction`` of it; ``"recent"``: the latest ratings in
time, what the evaluation's temporal split holds out); the observation shows the rest. Each step
the agent recommends one movie:

* a hidden movie the user rated pays a reward from its rating and is revealed in the
  observation (the user "watched and rated it");
* any other movie pays 0 (``reward_mode="simulated"``: the rating a ``RatingSimulator`` predicts,
  mapped like a real rating), and nothing is revealed (``show_misses=True``: it shows as -1);
* a movie already recommended, or already visible at reset, pays 0 and changes nothing.
  ``action_masks()`` (the sb3-contrib ``MaskablePPO`` interface) marks those movies invalid.

:class:`SessionEpisodes` is that logic over N sessions as numpy arrays. The single env is one
session of it (``num_envs=1``) and :class:`MovieLensSessionVectorEnv` is
:class:`rlrec.envs.vector.RecVectorEnv` over N, so the two cannot drift apart.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, overload

import numpy as np
from gymnasium import spaces

from rlrec.data.dataset import LIKED_RATING, RATING_MAX, recency_weight
from rlrec.data.simulator import EnsembleSimulator, RatingSimulator
from rlrec.envs.registration import SESSION_MAX_EPISODE_STEPS
from rlrec.envs.vector import Episodes, EpisodesEnv, EpisodesVectorEnv
from rlrec.envs.world import DataSource, MovieLensWorld, check_choice, check_flag

__all__ = [
    "HIDINGS",
    "OBSERVATIONS",
    "RECENCY_COUNTS",
    "REWARD_MODES",
    "MovieLensSessionEnv",
    "MovieLensSessionVectorEnv",
    "SessionEpisodes",
    "rating_reward",
]

REWARD_MODES = ("binary", "rating", "simulated")
OBSERVATIONS = ("ratings", "binary", "recency", "sequence")
HIDINGS = ("random", "recent")
#: What a visible rating's age (``observation="recency"``) counts: the shown ratings given after it,
#: or all of them, the hidden ones included (the clock a ranking's whole-history observation runs on).
RECENCY_COUNTS = ("shown", "all")
#: How a recommended movie that was not a hit shows in the observation with ``show_misses``.
MISS = -1.0


@overload
def rating_reward(rating: float, reward_mode: str) -> float: ...
@overload
def rating_reward(rating: np.ndarray, reward_mode: str) -> np.ndarray: ...
def rating_reward(rating: float | np.ndarray, reward_mode: str) -> float | np.ndarray:
    """The reward of finding a movie rated (or predicted) ``rating``; see the module doc. A
    number gives a float, an array (a batch of sessions) a float64 array."""
    values = np.asarray(rating, dtype=np.float64)
    if reward_mode == "binary":
        rewards = (values >= LIKED_RATING).astype(np.float64)
    else:
        check_choice("reward_mode", reward_mode, REWARD_MODES)
        rewards = values / RATING_MAX
    return float(rewards) if rewards.ndim == 0 else rewards


def _fraction_range(value: Any) -> tuple[float, float]:
    """``hidden_fraction`` as ``(low, high)``: a number is ``(x, x)``; a pair is drawn from per session."""
    pair = (value, value) if isinstance(value, int | float) and not isinstance(value, bool) else value
    try:
        low, high = (float(x) for x in pair)
    except (TypeError, ValueError):
        raise ValueError(f"hidden_fraction: a number in (0, 1) or a pair, got {value!r}") from None
    if not 0.0 < low <= high < 1.0:
        raise ValueError(f"hidden_fraction: must lie in (0, 1) with low <= high, got {value!r}")
    return low, high


class SessionEpisodes(Episodes):
    """``MovieLensSession-v0``'s episode logic over ``num_envs`` sessions (arguments as
    :class:`MovieLensSessionEnv`).

    Per session it keeps the observation row, the action mask and the ratings still hidden (0
    where a movie is not hidden or was found; real ratings are >= 0.5, so 0 is free as "none").
    """

    info_keys: tuple[str, ...] = ("user_index", "user_id", "hit", "rating", "hidden_left")

    def __init__(
        self,
        world: MovieLensWorld,
        num_envs: int,
        hidden_fraction: float | Sequence[float] = 0.5,
        hiding: str = "random",
        reward_mode: str = "binary",
        observation: str = "ratings",
        show_misses: bool = False,
        half_life: float = 10.0,
        sequence_length: int = 50,
        recency_counts: str = "shown",
    ) -> None:
        if int(num_envs) < 1:
            raise ValueError(f"num_envs: must be >= 1, got {num_envs}")
        self.world = world
        self.num_envs = n = int(num_envs)
        self.hidden_fraction = _fraction_range(hidden_fraction)
        if isinstance(half_life, bool) or not isinstance(half_life, int | float) or not half_life > 0:
            raise ValueError(f"half_life: expected a number of ratings > 0, got {half_life!r}")
        self.half_life = float(half_life)
        self.recency_counts = check_choice("recency_counts", recency_counts, RECENCY_COUNTS)
        self.hiding = check_choice("hiding", hiding, HIDINGS)
        self.reward_mode = check_choice("reward_mode", reward_mode, REWARD_MODES)
        self.observation = check_choice("observation", observation, OBSERVATIONS)
        self.show_misses = check_flag("show_misses", show_misses)
        n_movies = world.n_movies
        self.action_space = spaces.Discrete(n_movies)
        low = MISS if self.show_misses else 0.0
        self.observation_space = spaces.Box(low, 1.0, shape=(n_movies,), dtype=np.float32)
        if isinstance(sequence_length, bool) or not isinstance(sequence_length, int) or sequence_length < 1:
            raise ValueError(f"sequence_length: a whole number >= 1, got {sequence_length!r}")
        self.sequence_length = int(sequence_length)
        #: ``observation="sequence"``: each session's last watched movies (see :meth:`sequences`).
        self.seq: np.ndarray | None = None
        if self.observation == "sequence":
            high = np.ones((2, self.sequence_length), dtype=np.float32)
            high[0] = n_movies
            lows = np.zeros_like(high)
            lows[1] = MISS if self.show_misses else 0.0
            self.observation_space = spaces.Box(lows, high, dtype=np.float32)
            self.seq = np.zeros((n, 2, self.sequence_length), dtype=np.float32)
        self.obs = np.zeros((n, n_movies), dtype=np.float32)
        self.mask = np.ones((n, n_movies), dtype=bool)
        self.hidden = np.zeros((n, n_movies), dtype=np.float32)
        self.users = np.zeros(n, dtype=np.int64)
        self.n_hidden_total = np.zeros(n, dtype=np.int64)
        self.hidden_left = np.zeros(n, dtype=np.int64)
        self.liked_left = np.zeros(n, dtype=np.int64)
        self.allowed = np.zeros(n, dtype=np.int64)  # True entries of each mask row
        self.steps = np.zeros(n, dtype=np.int64)
        self.last: list[tuple[int, float] | None] = [None] * n

    # ------------------------------------------------------------------ encoding
    def encode(self, ratings: np.ndarray, from_latest: np.ndarray | None = None) -> np.ndarray:
        """How ratings show in an observation: ``r / 5`` (``"ratings"``), 1 (``"binary"``) or
        ``0.5 ** (from_latest / half_life)`` (``"recency"``: ``from_latest`` counts the ratings
        given after this one that ``recency_counts`` names; a movie found in the session is the latest, 1)."""
        if self.observation == "recency" and from_latest is not None:
            return recency_weight(from_latest, self.half_life)
        if self.observation in ("binary", "recency", "sequence"):
            return np.ones(np.shape(ratings), dtype=np.float32)
        return np.asarray(ratings, dtype=np.float32) / np.float32(RATING_MAX)

    def observations(self, user_indices: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        """Observations showing each user's whole history, ``(len(user_indices), n_movies)`` float32.

        What a trained agent sees when it is asked for a ranking: nothing hidden.
        """
        users = np.asarray(user_indices, dtype=np.int64)
        row_of, positions = self.world.histories(users)
        from_latest = self.world.dataset.ratings_since[positions]
        if self.seq is not None:
            sequences = np.zeros((len(users), *self.seq.shape[1:]), dtype=np.float32)
            self._place(
                sequences, row_of, self.world.indices[positions], self.world.ratings[positions], from_latest
            )
            return sequences
        if out is None:
            out = np.zeros((len(users), self.world.n_movies), dtype=np.float32)
        else:
            out[...] = 0.0
        out[row_of, self.world.indices[positions]] = self.encode(self.world.ratings[positions], from_latest)
        return out

    def n_hidden(self, n_ratings: int, fraction: float | None = None) -> int:
        """How many of ``n_ratings`` (>= 2) ratings a session hides: ``fraction`` (default: the
        lower end of ``hidden_fraction``) of them, rounded half up, kept within ``[1, n - 1]``."""
        share = self.hidden_fraction[0] if fraction is None else fraction
        return min(n_ratings - 1, max(1, math.floor(share * n_ratings + 0.5)))

    def hidden_positions(self, user: int, rng: np.random.Generator) -> np.ndarray:
        """Positions in ``world.history(user)`` that a new session hides, ascending.

        A ``hidden_fraction`` range first draws the session's fraction from ``rng``. Then
        ``"random"`` draws the positions from ``rng``; ``"recent"`` takes the user's latest
        ratings (the order of ``RatingsDataset.recency_rank``, the temporal split's).
        """
        n = len(self.world.history(user)[0])
        low, high = self.hidden_fraction
        n_hidden = self.n_hidden(n, low if low == high else float(rng.uniform(low, high)))
        if self.hiding == "recent":
            return np.flatnonzero(self.world.recency(user) >= n - n_hidden)
        return np.sort(rng.choice(n, size=n_hidden, replace=False))

    # ------------------------------------------------------------------ episodes
    def start(self, index: int, rng: np.random.Generator, user: int | None) -> None:
        if user is None:
            user = int(self.world.users[rng.integers(len(self.world.users))])
        movies, ratings = self.world.history(user)
        hide = self.hidden_positions(user, rng)
        visible = np.ones(len(movies), dtype=bool)
        visible[hide] = False
        hidden_ratings = ratings[hide]
        self.users[index] = user
        self.obs[index] = 0.0
        recency = self.world.recency(user)[visible]
        from_latest = int(visible.sum()) - 1 - np.argsort(np.argsort(recency))  # later shown ratings
        age = from_latest if self.recency_counts == "shown" else len(movies) - 1 - recency
        self.obs[index, movies[visible]] = self.encode(ratings[visible], age)
        if self.seq is not None:
            self.seq[index] = 0.0
            self._place(self.seq[index : index + 1], np.zeros(len(from_latest), dtype=np.int64),
                        movies[visible], ratings[visible], from_latest)  # fmt: skip
        self.mask[index] = True
        self.mask[index, movies[visible]] = False
        self.hidden[index] = 0.0
        self.hidden[index, movies[hide]] = hidden_ratings
        self.n_hidden_total[index] = self.hidden_left[index] = len(hide)
        self.liked_left[index] = int(np.count_nonzero(hidden_ratings >= LIKED_RATING))
        self.allowed[index] = self.world.n_movies - int(visible.sum())
        self.steps[index] = 0
        self.last[index] = None

    def start_info(self, rows: np.ndarray) -> dict[str, np.ndarray]:
        return self._info(rows, np.zeros(len(rows), dtype=bool), np.zeros(len(rows)))

    def _info(self, rows: np.ndarray, hits: np.ndarray, ratings: np.ndarray) -> dict[str, np.ndarray]:
        users = self.users[rows]
        return {
            "user_index": users.copy(),
            "user_id": self.world.user_ids[users],
            "hit": hits,
            "rating": ratings.astype(np.float64),
            "hidden_left": self.hidden_left[rows].copy(),
        }

    def step(
        self, rows: np.ndarray, actions: np.ndarray, rngs: Sequence[np.random.Generator]
    ) -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]:
        # A movie still allowed is now recommended; a hidden one among them is found and shown.
        fresh = self.mask[rows, actions]
        self.mask[rows, actions] = False
        self.allowed[rows] -= fresh
        found = self.hidden[rows, actions]  # 0 unless hidden and not found yet (hence fresh)
        hit = found > 0
        rewards = rating_reward(found, self.reward_mode)  # 0 where nothing was found
        hit_rows, hit_movies = rows[hit], actions[hit]
        self.obs[hit_rows, hit_movies] = self.encode(found[hit])
        self.watched(hit_rows, hit_movies, found[hit])
        self.hidden[hit_rows, hit_movies] = 0.0
        self.hidden_left[hit_rows] -= 1
        self.liked_left[hit_rows] -= found[hit] >= LIKED_RATING
        missed = fresh & ~hit
        self.missed(rows[missed], actions[missed])
        if self.reward_mode == "simulated" and missed.any():
            predicted = self.world.predicted(self.users[rows[missed]], actions[missed])
            rewards[missed] = rating_reward(np.asarray(predicted), self.reward_mode)
        self.steps[rows] += 1
        for j, i in enumerate(rows):
            self.last[i] = (int(actions[j]), float(rewards[j]))
        # Terminated as soon as nothing is left to earn (exact, not a cap).
        if self.reward_mode == "binary":
            terminated = self.liked_left[rows] == 0
        elif self.reward_mode == "rating":
            terminated = self.hidden_left[rows] == 0
        else:
            terminated = self.allowed[rows] == 0
        return rewards, terminated, self._info(rows, hit, found)

    def _place(
        self,
        out: np.ndarray,
        rows: np.ndarray,
        movies: np.ndarray,
        ratings: np.ndarray,
        from_latest: np.ndarray,
    ) -> None:
        """Write ratings into ``(rows, 2, L)`` sequences: the latest at the end, ``from_latest`` ratings
        before it further left; older than ``L`` left out."""
        length = self.sequence_length
        kept = from_latest < length
        slots = length - 1 - from_latest[kept]
        out[rows[kept], 0, slots] = movies[kept] + 1
        out[rows[kept], 1, slots] = np.asarray(ratings[kept], dtype=np.float32) / np.float32(RATING_MAX)

    def watched(self, rows: np.ndarray, movies: np.ndarray, ratings: np.ndarray) -> None:
        """Movies sessions ``rows`` (distinct) just watched, rated ``ratings``: the newest entry of
        their sequences (``observation="sequence"``; nothing otherwise)."""
        self._append(rows, movies, np.asarray(ratings, dtype=np.float32) / np.float32(RATING_MAX))

    def missed(self, rows: np.ndarray, movies: np.ndarray) -> None:
        """Movies recommended to sessions ``rows`` (distinct) for the first time and not a hit: with
        ``show_misses``, ``-1`` in the observation (a sequence appends them with ``-1`` as rating)."""
        if not self.show_misses:
            return
        self.obs[rows, movies] = MISS
        self._append(rows, movies, np.full(len(rows), MISS, dtype=np.float32))

    def _append(self, rows: np.ndarray, movies: np.ndarray, values: np.ndarray) -> None:
        if self.seq is None or not len(rows):
            return
        self.seq[rows, :, :-1] = self.seq[rows, :, 1:]
        self.seq[rows, 0, -1] = movies + 1
        self.seq[rows, 1, -1] = values

    def observe(self, out: np.ndarray | None) -> np.ndarray:
        return self.obs if self.seq is None else self.seq

    def action_masks(self) -> np.ndarray:
        return self.mask.copy()

    def describe(self, index: int) -> str:
        user = int(self.users[index])
        text = (
            f"user {self.world.user_ids[user]} | step {self.steps[index]} "
            f"| hidden left {self.hidden_left[index]}/{self.n_hidden_total[index]}"
        )
        last = self.last[index]
        if last is not None:
            text += f" | last: {self.world.dataset.titles[last[0]]} -> {last[1]:g}"
        return text


def _episodes(
    data: DataSource = "synthetic",
    num_envs: int = 1,
    users: Iterable[int] | None = None,
    simulator: RatingSimulator | EnsembleSimulator | Mapping[str, Any] | None = None,
    **options: Any,
) -> SessionEpisodes:
    # A session hides at least one rating and shows at least one: users need 2.
    world = MovieLensWorld(data, users, min_ratings=2, simulator=simulator)
    return SessionEpisodes(world, num_envs, **options)


class MovieLensSessionEnv(EpisodesEnv):
    """Sessions of one user: recommend the movies of their history the agent cannot see.

    ## Description

    The env where an agent must generalise: the answer is never in its observation. One
    episode is a session with one user whose history is partly hidden; the agent is paid for
    recommending the hidden movies (see the module docstring).

    ## Action Space

    ``Discrete(n_movies)``: movie indices, as ``MovieLens-v0``.

    ## Observation Space

    ``Box(0, 1, (n_movies,), float32)`` (``Box(-1, 1)`` with ``show_misses``): the visible part
    of the history, ``observation="ratings"`` (default) as rating / 5, ``"binary"`` as 1 per
    movie (implicit feedback), 0 elsewhere; found hidden movies appear as they are found.

    ## Rewards

    For a hidden movie rated ``r``: ``reward_mode="binary"`` (default) 1.0 when ``r >= 4`` (the
    evaluation's relevance, ``rlrec.data.LIKED_RATING``), else 0; ``"rating"`` ``r / 5``;
    ``"simulated"`` ``r / 5``, and for any other new movie the simulator's prediction / 5.
    Everything else pays 0. With ``"binary"`` and gamma 0 a learner's Q-value of a movie is the
    probability it is a held-out liked one: a ranking score.

    ## Starting State

    A user drawn uniformly from ``users`` with the env's ``np_random`` (or
    ``reset(options={"user_id": ID})``, an original userId; any other key is an error), and
    the hidden part of their history drawn as ``hiding`` says.

    ## Episode End

    Terminated as soon as nothing is left to earn: ``"binary"``: no hidden movie rated >= 4
    left; ``"rating"``: no hidden movie left; ``"simulated"``: every movie recommended.
    Truncated after ``max_episode_steps`` (50 as registered: a session of 50
    recommendations; ``gymnasium.make(..., max_episode_steps=-1)`` removes it).

    ## Arguments

    * ``data``: a ``RatingsDataset`` (the TRAIN part of a split when evaluating) or a source.
    * ``hidden_fraction``: share of a history hidden at reset, in (0, 1), rounded half up and
      kept within ``[1, n - 1]``, or a ``[low, high]`` pair drawn from per session; default 0.5.
    * ``hiding``: ``"random"`` (default: a fresh random part each session) or ``"recent"`` (the
      user's latest ratings, as the temporal split holds out the latest 20%: the agent learns
      to predict the future from the past; with one ``hidden_fraction``, the same part every
      session of a user, with a ``[low, high]`` range, a fresh cut in the time line each session).
    * ``reward_mode``: ``"binary"`` (default), ``"rating"`` or ``"simulated"``.
    * ``observation``: ``"ratings"`` (default), ``"binary"`` or ``"recency"`` (a visible movie
      shows ``0.5 ** (ratings given after it / half_life)``: what was watched last weighs most),
      or ``"sequence"``: the order itself, ``Box(0, high, (2, sequence_length), float32)`` whose
      row 0 holds the last ``sequence_length`` visible movies as ``index + 1`` (0: padding, on
      the left) and row 1 their ratings / 5, oldest first; a movie found in the session is
      appended. Read it with ``rlrec.nn.GRUSequenceExtractor`` or
      ``rlrec.nn.SelfAttentionSequenceExtractor``; masks come from ``action_masks()``.
    * ``half_life``: of ``"recency"``, in ratings; default 10.
    * ``recency_counts``: of ``"recency"``, the ratings a visible movie's age counts: ``"shown"``
      (default: the visible ones given after it) or ``"all"`` (the hidden ones too: the clock
      of :meth:`observations`, where nothing is hidden, so a session's weights and a ranking's
      put the same weight on a rating of the same age).
    * ``sequence_length``: of ``"sequence"``, the movies shown; default 50.
    * ``users``: original userIds sessions are drawn from (default: every user with >= 2
      ratings: one to show, one to hide).
    * ``simulator``: a fitted ``RatingSimulator`` or ``EnsembleSimulator`` for ``"simulated"``,
      or ``rlrec.data.simulator.fit_simulator`` arguments (``{"n_models": 5, "penalty": 1.0,
      "shrinkage": 20.0}``: an ensemble whose disagreement and thin evidence lower what an
      unrated movie pays, so an agent cannot profit from the simulator's optimism).
    * ``show_misses``: show a recommended movie that was not a hit as ``-1``; then
      ``obs != 0`` is exactly ``not action_masks()`` (``rlrec.nn.UnseenDQNPolicy`` masks from it).
      With ``"sequence"``, a miss is appended to the sequence with ``-1`` as its rating (so a
      policy masking the sequence's movies does not recommend it again).
    * ``render_mode``: ``None``, ``"ansi"`` (``render()`` returns text) or ``"human"`` (prints it).

    ``info``: ``user_index``, ``user_id``, ``hit`` (the movie was hidden), ``rating`` (its
    rating, 0 otherwise), ``hidden_left``.

    :meth:`observations` encodes users' *whole* histories the same way: the evaluation protocol
    uses it to ask a trained agent for a ranking given everything it may know.

    ## Version History

    * v0: first version (``hiding``, ``observation="sequence"`` and ``recency_counts`` added with the
      defaults unchanged).
    """

    def __init__(
        self,
        data: DataSource = "synthetic",
        hidden_fraction: float | Sequence[float] = 0.5,
        hiding: str = "random",
        reward_mode: str = "binary",
        observation: str = "ratings",
        users: Iterable[int] | None = None,
        render_mode: str | None = None,
        simulator: RatingSimulator | EnsembleSimulator | Mapping[str, Any] | None = None,
        show_misses: bool = False,
        half_life: float = 10.0,
        sequence_length: int = 50,
        recency_counts: str = "shown",
    ) -> None:
        episodes = _episodes(
            data,
            1,
            users,
            simulator,
            hidden_fraction=hidden_fraction,
            hiding=hiding,
            reward_mode=reward_mode,
            observation=observation,
            show_misses=show_misses,
            half_life=half_life,
            sequence_length=sequence_length,
            recency_counts=recency_counts,
        )
        self._attach(episodes, render_mode)


class MovieLensSessionVectorEnv(EpisodesVectorEnv):
    """``rlrec/MovieLensSession-v0``'s ``vector_entry_point``: :class:`RecVectorEnv` over
    :class:`SessionEpisodes`.

    ``num_envs``, ``max_episode_steps`` (``make_vec`` passes the registered 50),
    ``autoreset_mode``, ``copy_obs`` and ``render_mode`` are :class:`RecVectorEnv`'s; the
    others :class:`MovieLensSessionEnv`'s.
    """

    default_max_episode_steps = SESSION_MAX_EPISODE_STEPS

    make_episodes = staticmethod(_episodes)
    has_torch_backend = True
