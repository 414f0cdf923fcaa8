"""``backend="torch"``: the batched session and slate envs as tensor operations on one device.

``gymnasium.make_vec("rlrec/MovieLensSession-v0", num_envs=4096, backend="torch", device="cuda")``
builds a :class:`TorchVectorEnv`: the world's arrays (the train ratings as CSR, their time order,
the users, the rating model behind simulated feedback) and every session's state (observation
rows, action masks, hidden ratings, counters) live on ``device``; ``reset`` and ``step`` are a
fixed number of tensor operations over all sessions, resets included (a resetting session draws
its user and its hidden part on the device), so a step never waits on the host. Observations,
rewards, terminations, truncations, masks and infos come back as tensors on that device.

The episode logic is the NumPy backend's (:class:`rlrec.envs.session.SessionEpisodes`,
:class:`rlrec.envs.slate.SlateEpisodes`), written over tensors: given the same users, hidden
sets, actions (and, for the random click models, the same uniform draws) both return the same
observations, rewards, terminations and masks; ``tests/envs/test_torch_backend.py`` checks it by
injecting the NumPy env's episodes with :meth:`TorchEpisodes.start`. The random draws
themselves come from one ``torch.Generator`` per env (seeded by ``reset(seed=...)``), so the
two backends draw different sessions from the same seed; the same seed and device give the same
sessions.

Not here: ``render`` (text is a host thing) and the ``"disabled"`` autoreset mode (a session
that ended stays ended until ``reset(options={"reset_mask": mask})``, which is here).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from gymnasium.vector import AutoresetMode, VectorEnv
from gymnasium.vector.utils import batch_space

from rlrec.data.dataset import LIKED_RATING, RATING_MAX
from rlrec.envs.world import MovieLensWorld, WorldViews

__all__ = ["DEVICES", "TorchEpisodes", "TorchRatingModel", "TorchVectorEnv", "resolve_device"]

DEVICES = ("cpu", "cuda", "auto")


def resolve_device(device: str | torch.device | None) -> torch.device:
    """``"auto"`` (or None): CUDA when available, else the CPU; ``"cuda"`` without a GPU is an error."""
    if isinstance(device, torch.device):
        return device
    name = "auto" if device is None else str(device)
    kind = name.split(":", 1)[0]
    if kind not in DEVICES:
        raise ValueError(f"device: expected one of {', '.join(DEVICES)} (or 'cuda:N'), got {device!r}")
    if kind == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if kind == "cuda" and not torch.cuda.is_available():
        raise ValueError("device: 'cuda' asked for, but torch sees no CUDA device (use 'cpu' or 'auto')")
    return torch.device(name)


class TorchRatingModel:
    """A biased matrix factorisation on the device: ``clip(mu + b_u + b_i + p_u . q_i, low, high)``.

    Both rating models of the NumPy envs have this form (``RatingSimulator``, the synthetic
    world's ``SyntheticWorld.preference``); :meth:`of` copies either.
    """

    def __init__(self, model: Any, device: torch.device, dtype: torch.dtype) -> None:
        def put(array: Any) -> torch.Tensor:
            return torch.as_tensor(np.asarray(array), device=device, dtype=dtype)

        self.global_mean = float(model.global_mean)
        self.user_bias, self.user_factors = put(model.user_bias), put(model.user_factors)
        movie_bias = model.item_bias if hasattr(model, "item_bias") else model.movie_bias
        movie_factors = model.item_factors if hasattr(model, "item_factors") else model.movie_factors
        self.movie_bias, self.movie_factors = put(movie_bias), put(movie_factors)
        self.low = float(getattr(model, "low", 0.5))
        self.high = float(getattr(model, "high", RATING_MAX))

    def pairs(self, users: torch.Tensor, movies: torch.Tensor) -> torch.Tensor:
        """Ratings of the pairs ``(users[j], movies[j])``."""
        dots = (self.user_factors.index_select(0, users) * self.movie_factors.index_select(0, movies)).sum(-1)
        raw = (
            dots
            + self.user_bias.index_select(0, users)
            + self.movie_bias.index_select(0, movies)
            + self.global_mean
        )
        return raw.clamp(self.low, self.high)


class TorchWorld:
    """A :class:`MovieLensWorld`'s arrays on ``device``: what resets, steps and rewards read."""

    def __init__(self, world: MovieLensWorld, device: torch.device) -> None:
        self.world, self.device = world, device

        def put(array: Any, dtype: torch.dtype) -> torch.Tensor:
            return torch.as_tensor(np.asarray(array), device=device).to(dtype)

        self.indptr = put(world.indptr, torch.int64)
        self.indices = put(world.indices, torch.int64)
        self.ratings = put(world.ratings, torch.float32)
        self.recency = put(world.dataset.recency_rank, torch.int64)
        self.users = put(world.users, torch.int64)
        self.user_ids = put(world.user_ids, torch.int64)
        self.n_movies = world.n_movies
        self._models: dict[str, TorchRatingModel] = {}

    def histories(self, users: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """Every rating of ``users``: (row in ``users``, CSR position, first entry of each row, lengths)."""
        starts = self.indptr.index_select(0, users)
        lengths = self.indptr[users + 1] - starts
        row_of = torch.repeat_interleave(torch.arange(len(users), device=self.device), lengths)
        first = torch.cumsum(lengths, 0) - lengths
        positions = torch.arange(int(row_of.numel()), device=self.device) + (starts - first).index_select(
            0, row_of
        )
        return row_of, positions, first, lengths

    def model(self, kind: str) -> TorchRatingModel:
        """``"predicted"``: the rating simulator (float32, as ``world.predicted``); ``"expected"``: what
        ``world.expected_ratings`` reads (the synthetic truth or the simulator, float64)."""
        if kind not in self._models:
            world = self.world
            truth = world.dataset.truth
            if kind == "expected" and truth is not None and world._simulator is None:
                source: Any = truth
            else:
                source = world.simulator
            if not hasattr(source, "user_factors"):
                raise ValueError(
                    f"backend='torch': simulated feedback needs one rating model on the device, not a "
                    f"{type(source).__name__} (use backend='numpy')"
                )
            dtype = torch.float32 if kind == "predicted" else torch.float64
            self._models[kind] = TorchRatingModel(source, self.device, dtype)
        return self._models[kind]


def _rank_in_segments(keys: torch.Tensor, segment: torch.Tensor, first: torch.Tensor) -> torch.Tensor:
    """Rank (from 0, ascending ``keys``) of every entry within its segment; segments are contiguous
    and ``first[s]`` is segment ``s``'s first entry; ``keys`` lie in [0, 1)."""
    order = torch.argsort(segment.to(torch.float64) + keys.to(torch.float64), stable=True)
    ranks = torch.empty_like(order)
    in_segment = first.index_select(0, segment.index_select(0, order))
    ranks.scatter_(0, order, torch.arange(len(order), device=order.device) - in_segment)
    return ranks


class TorchEpisodes(WorldViews):
    """The session (``slate_size=None``) or slate episode logic over ``num_envs`` sessions, as tensors.

    Arguments are the NumPy episodes' (:class:`rlrec.envs.session.SessionEpisodes`,
    :class:`rlrec.envs.slate.SlateEpisodes`), which check them: this class is built from one.
    """

    def __init__(self, episodes: Any, device: torch.device) -> None:
        if getattr(episodes, "seq", None) is not None:
            raise ValueError("backend='torch': observation='sequence' is a numpy-backend observation")
        self.world = episodes.world
        self.tw = TorchWorld(episodes.world, device)
        self.device = device
        self.num_envs = n = episodes.num_envs
        self.hidden_fraction = episodes.hidden_fraction
        self.hiding, self.observation = episodes.hiding, episodes.observation
        self.reward_mode, self.show_misses = episodes.reward_mode, episodes.show_misses
        self.half_life, self.recency_counts = episodes.half_life, episodes.recency_counts
        self.slate_size: int | None = getattr(episodes, "slate_size", None)
        if self.slate_size is not None:
            self.click_model, self.feedback = episodes.click_model, episodes.feedback
            self.slate_reward = episodes.slate_reward
            self.examination = torch.as_tensor(
                _examination(self.click_model, self.slate_size), device=device, dtype=torch.float64
            )
        self.observation_space = episodes.observation_space
        self.action_space = episodes.action_space
        m = self.world.n_movies
        self.obs = torch.zeros((n, m), dtype=torch.float32, device=device)
        self.mask = torch.ones((n, m), dtype=torch.bool, device=device)
        self.hidden = torch.zeros((n, m), dtype=torch.float32, device=device)

        def counters() -> torch.Tensor:
            return torch.zeros(n, dtype=torch.int64, device=device)

        self.users, self.n_hidden_total, self.hidden_left = counters(), counters(), counters()
        self.liked_left, self.allowed, self.steps = counters(), counters(), counters()

    # ------------------------------------------------------------------ encoding
    def encode(self, ratings: torch.Tensor, from_latest: torch.Tensor | None = None) -> torch.Tensor:
        """As :meth:`SessionEpisodes.encode`."""
        if self.observation == "recency" and from_latest is not None:
            return torch.exp2(-from_latest.to(torch.float32) / float(self.half_life))
        if self.observation in ("binary", "recency"):
            return torch.ones_like(ratings, dtype=torch.float32)
        return ratings.to(torch.float32) / float(RATING_MAX)

    def observations(self, users: torch.Tensor) -> torch.Tensor:
        """Users' whole train histories as observations (what a ranking is asked from)."""
        users = torch.as_tensor(users, device=self.device, dtype=torch.int64)
        row_of, positions, _, lengths = self.tw.histories(users)
        since = (lengths.index_select(0, row_of) - 1) - self.tw.recency.index_select(0, positions)
        out = torch.zeros((len(users), self.world.n_movies), dtype=torch.float32, device=self.device)
        out[row_of, self.tw.indices.index_select(0, positions)] = self.encode(
            self.tw.ratings.index_select(0, positions), since
        )
        return out

    # ------------------------------------------------------------------ episodes
    def start(
        self,
        rows: torch.Tensor,
        generator: torch.Generator | None,
        users: torch.Tensor | None = None,
        hidden: torch.Tensor | None = None,
    ) -> None:
        """Start sessions ``rows``: users drawn uniformly from the world's (or ``users``, dataset
        indices), their hidden part drawn as ``hiding`` says (or ``hidden``: one bool per rating of
        those users, in CSR order, row after row: what a test injects)."""
        tw, n_rows = self.tw, len(rows)
        if n_rows == 0:
            return
        if users is None:
            picks = torch.randint(len(tw.users), (n_rows,), generator=generator, device=self.device)
            users = tw.users.index_select(0, picks)
        row_of, positions, first, lengths = tw.histories(users)
        recency = tw.recency.index_select(0, positions)
        if hidden is None:
            low, high = self.hidden_fraction
            share = torch.full((n_rows,), low, dtype=torch.float64, device=self.device)
            if high > low:
                share = low + (high - low) * torch.rand(
                    n_rows, generator=generator, device=self.device, dtype=torch.float64
                )
            n_hidden = torch.floor(share * lengths + 0.5).to(torch.int64).clamp(min=1)
            n_hidden = torch.minimum(n_hidden, lengths - 1)
            if self.hiding == "recent":
                hide = recency >= (lengths - n_hidden).index_select(0, row_of)
            else:
                keys = torch.rand(
                    len(positions), generator=generator, device=self.device, dtype=torch.float64
                )
                hide = _rank_in_segments(keys, row_of, first) < n_hidden.index_select(0, row_of)
        else:
            hide = torch.as_tensor(hidden, device=self.device, dtype=torch.bool)
        visible = ~hide
        movies, ratings = tw.indices.index_select(0, positions), tw.ratings.index_select(0, positions)
        n_visible = torch.zeros(n_rows, dtype=torch.int64, device=self.device).index_add_(
            0, row_of, visible.to(torch.int64)
        )
        if self.recency_counts == "all":
            from_latest = (lengths.index_select(0, row_of) - 1) - recency
        else:
            # Among the shown ratings, how many are later than each (the recency observation's age).
            # Sort by (session, time): recency is each rating's rank in its user's time order.
            order = torch.argsort(row_of * (1 << 32) + recency)
            shown_before = torch.cumsum(visible.index_select(0, order).to(torch.int64), 0)
            before_segment = (torch.cumsum(n_visible, 0) - n_visible).index_select(
                0, row_of.index_select(0, order)
            )
            from_latest = torch.empty_like(order)
            later = n_visible.index_select(0, row_of.index_select(0, order)) - (shown_before - before_segment)
            from_latest.scatter_(0, order, later)
        cells = rows.index_select(0, row_of) * self.world.n_movies + movies  # each rating's cell, flat
        self.users.index_copy_(0, rows, users)
        self.obs.index_fill_(0, rows, 0.0)
        shown = torch.where(visible, self.encode(ratings, from_latest), 0.0)
        self.obs.view(-1).scatter_(0, cells, shown)
        self.mask.index_fill_(0, rows, True)
        self.mask.view(-1).scatter_(0, cells, hide)
        self.hidden.index_fill_(0, rows, 0.0)
        self.hidden.view(-1).scatter_(0, cells, torch.where(hide, ratings, 0.0))
        n_hide = lengths - n_visible
        self.n_hidden_total.index_copy_(0, rows, n_hide)
        self.hidden_left.index_copy_(0, rows, n_hide)
        liked = (hide & (ratings >= LIKED_RATING)).to(torch.int64)
        liked_hidden = torch.zeros(n_rows, dtype=torch.int64, device=self.device).index_add_(0, row_of, liked)
        self.liked_left.index_copy_(0, rows, liked_hidden)
        self.allowed.index_copy_(0, rows, self.world.n_movies - n_visible)
        self.steps.index_fill_(0, rows, 0)

    def info(self, rows: torch.Tensor, hits: torch.Tensor, ratings: torch.Tensor) -> dict[str, torch.Tensor]:
        return {
            "user_index": self.users.index_select(0, rows).clone(),
            "user_id": self.tw.user_ids.index_select(0, self.users.index_select(0, rows)),
            "hit": hits,
            "rating": ratings.to(torch.float64),
            "hidden_left": self.hidden_left.index_select(0, rows).clone(),
        }

    def start_info(self, rows: torch.Tensor) -> dict[str, torch.Tensor]:
        n = len(rows)
        zeros = torch.zeros(n, dtype=torch.float64, device=self.device)
        info = self.info(rows, torch.zeros(n, dtype=torch.bool, device=self.device), zeros)
        if self.slate_size is not None:
            info["clicks"] = torch.zeros((n, self.slate_size), dtype=torch.bool, device=self.device)
            info["slot_rewards"] = torch.zeros((n, self.slate_size), dtype=torch.float64, device=self.device)
        return info

    def step(
        self, rows: torch.Tensor, actions: torch.Tensor, draws: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor, dict[str, torch.Tensor]]:
        """Step sessions ``rows``; ``draws``: the slate's uniform draws (``(len(rows), slate_size)``)."""
        if self.slate_size is not None:
            return self._slate_step(rows, actions, draws)
        cells = rows * self.world.n_movies + actions
        fresh = self.mask.view(-1).index_select(0, cells)
        self.mask.view(-1).scatter_(0, cells, False)
        self.allowed.index_add_(0, rows, -fresh.to(torch.int64))
        found = self.hidden.view(-1).index_select(0, cells)
        hit = found > 0
        missed = fresh & ~hit
        rewards = self._rating_reward(found, self.reward_mode)
        # Fixed-shape writes (a cell keeps its value where nothing happens): no host sync for sizes.
        shown = torch.where(hit, self.encode(found), self.obs.view(-1).index_select(0, cells))
        if self.show_misses:
            shown = torch.where(missed, -1.0, shown)
        self.obs.view(-1).scatter_(0, cells, shown)
        self.hidden.view(-1).scatter_(0, cells, torch.where(hit, 0.0, found))
        self.hidden_left.index_add_(0, rows, -hit.to(torch.int64))
        self.liked_left.index_add_(0, rows, -(found >= LIKED_RATING).to(torch.int64))
        if self.reward_mode == "simulated":
            predicted = self.tw.model("predicted").pairs(self.users.index_select(0, rows), actions)
            rewards = torch.where(missed, self._rating_reward(predicted, "rating"), rewards)
        self.steps.index_add_(0, rows, torch.ones_like(rows))
        if self.reward_mode == "binary":
            terminated = self.liked_left.index_select(0, rows) == 0
        elif self.reward_mode == "rating":
            terminated = self.hidden_left.index_select(0, rows) == 0
        else:
            terminated = self.allowed.index_select(0, rows) == 0
        return rewards, terminated, self.info(rows, hit, found)

    @staticmethod
    def _rating_reward(rating: torch.Tensor, reward_mode: str) -> torch.Tensor:
        """:func:`rlrec.envs.session.rating_reward` on a tensor (float64)."""
        values = rating.to(torch.float64)
        return (values >= LIKED_RATING).to(torch.float64) if reward_mode == "binary" else values / RATING_MAX

    def _slate_step(
        self, rows: torch.Tensor, actions: torch.Tensor, draws: torch.Tensor | None
    ) -> tuple[torch.Tensor, torch.Tensor, dict[str, torch.Tensor]]:
        size = int(self.slate_size or 1)
        slates = actions.reshape(len(rows), size)
        if draws is None:
            raise ValueError("a slate step needs its uniform draws")
        clicks = torch.zeros(slates.shape, dtype=torch.bool, device=self.device)
        slot_rewards = torch.zeros(slates.shape, dtype=torch.float64, device=self.device)
        stopped = torch.zeros(len(rows), dtype=torch.bool, device=self.device)
        for slot in range(size):
            movies = slates[:, slot]
            cells = rows * self.world.n_movies + movies
            fresh = self.mask.view(-1).index_select(0, cells)
            self.mask.view(-1).scatter_(0, cells, False)
            self.allowed.index_add_(0, rows, -fresh.to(torch.int64))
            found = self.hidden.view(-1).index_select(0, cells)
            if self.feedback == "logged":
                chance = (fresh & (found >= LIKED_RATING)).to(torch.float64)
            else:
                expected = self.tw.model("expected").pairs(self.users.index_select(0, rows), movies)
                chance = torch.where(fresh, ((expected - 3.0) / 2.0).clamp(0.0, 1.0), 0.0)
            exam = 1.0 if self.click_model == "cascade" else self.examination[slot]
            clicked = fresh & ~stopped & (draws[:, slot] < exam * chance)
            if self.click_model == "cascade":
                stopped |= clicked
            clicks[:, slot] = clicked
            if self.slate_reward == "clicks":
                slot_rewards[:, slot] = clicked.to(torch.float64)
            else:
                rated = torch.where(found > 0, found.to(torch.float64), 0.0)
                if self.feedback == "simulated":  # logged clicks are hidden movies: rated
                    expected = self.tw.model("expected").pairs(self.users.index_select(0, rows), movies)
                    rated = torch.where(found > 0, rated, expected)
                slot_rewards[:, slot] = torch.where(clicked, rated / RATING_MAX, 0.0)
            watched = torch.maximum(found, torch.tensor(LIKED_RATING, device=self.device))
            shown = torch.where(clicked, self.encode(watched), self.obs.view(-1).index_select(0, cells))
            if self.show_misses:
                shown = torch.where(fresh & ~clicked, -1.0, shown)
            self.obs.view(-1).scatter_(0, cells, shown)
            was_hidden = clicked & (found > 0)
            self.hidden.view(-1).scatter_(0, cells, torch.where(was_hidden, 0.0, found))
            self.hidden_left.index_add_(0, rows, -was_hidden.to(torch.int64))
            self.liked_left.index_add_(0, rows, -(was_hidden & (found >= LIKED_RATING)).to(torch.int64))
        self.steps.index_add_(0, rows, torch.ones_like(rows))
        rewards = slot_rewards.sum(1)
        if self.feedback == "logged":
            terminated = self.liked_left.index_select(0, rows) == 0
        else:
            terminated = self.allowed.index_select(0, rows) < size
        info = self.info(rows, clicks.any(1), torch.zeros(len(rows), dtype=torch.float64, device=self.device))
        info["clicks"], info["slot_rewards"] = clicks, slot_rewards
        return rewards, terminated, info

    def action_masks(self) -> torch.Tensor:
        masks = self.mask.clone()
        return masks if self.slate_size is None else masks.repeat(1, self.slate_size)


def _examination(click_model: str, slate_size: int) -> np.ndarray:
    # The slate module's examination(), without importing that module here (it imports this one).
    if click_model == "pbm":
        return 1.0 / np.arange(1, slate_size + 1)
    return np.ones(slate_size)


class TorchVectorEnv(WorldViews, VectorEnv):  # type: ignore[type-arg]
    """``num_envs`` sessions of the session or slate family on one device (Gymnasium ``VectorEnv``).

    What :class:`rlrec.envs.vector.RecVectorEnv` does (truncation after ``max_episode_steps``,
    the ``"next_step"`` and ``"same_step"`` autoreset modes, ``reset_mask`` and ``user_id``
    reset options, ``_key``-masked infos), with tensors on ``device``. ``final_obs`` under
    ``"same_step"`` is the numpy backend's object array, holding one tensor row per session
    that ended.

    :param episodes: the family's NumPy episode logic (checks the arguments; its world is shared).
    :param device: ``"cpu"``, ``"cuda"`` (``"cuda:N"``) or ``"auto"``.
    """

    def __init__(
        self,
        episodes: Any,
        device: str | torch.device | None = "auto",
        max_episode_steps: int | None = None,
        autoreset_mode: str | AutoresetMode = AutoresetMode.NEXT_STEP,
    ) -> None:
        modes = {"next_step": AutoresetMode.NEXT_STEP, "same_step": AutoresetMode.SAME_STEP}
        mode = modes.get(autoreset_mode) if isinstance(autoreset_mode, str) else autoreset_mode
        if mode not in modes.values():
            raise ValueError(
                f"autoreset_mode: backend='torch' takes 'next_step' or 'same_step', got {autoreset_mode!r}"
            )
        self.device = resolve_device(device)
        self.episodes = TorchEpisodes(episodes, self.device)
        self.world = episodes.world
        self.num_envs = n = episodes.num_envs
        self.max_episode_steps = max_episode_steps if max_episode_steps and max_episode_steps > 0 else None
        self.autoreset_mode = mode
        self.metadata = {"render_modes": [], "autoreset_mode": mode}
        self.render_mode = None
        self.single_observation_space = episodes.observation_space
        self.single_action_space = episodes.action_space
        self.observation_space = batch_space(self.single_observation_space, n)
        self.action_space = batch_space(self.single_action_space, n)
        self.generator = torch.Generator(device=self.device)
        self.generator.seed()
        self._elapsed = torch.zeros(n, dtype=torch.int64, device=self.device)
        self._pending = torch.zeros(n, dtype=torch.bool, device=self.device)
        self._all = torch.arange(n, device=self.device)
        self._started = False

    @property
    def backend(self) -> str:
        return "torch"

    def __getattr__(self, name: str) -> Any:
        episodes = self.__dict__.get("episodes")
        if episodes is None or name.startswith("_"):
            raise AttributeError(name)
        return getattr(episodes, name)

    def observations(self, user_indices: Any) -> torch.Tensor:
        """Each user's whole train history as an observation, on the device."""
        return self.episodes.observations(torch.as_tensor(np.asarray(user_indices), device=self.device))

    def action_masks(self) -> torch.Tensor:
        """``(num_envs, n_actions)`` bool tensor: each session's allowed movies (per slot for slates)."""
        return self.episodes.action_masks()

    def _draws(self, n_rows: int) -> torch.Tensor | None:
        size = self.episodes.slate_size
        if size is None:
            return None
        return torch.rand((n_rows, size), generator=self.generator, device=self.device, dtype=torch.float64)

    def _start(self, rows: torch.Tensor, users: torch.Tensor | None = None) -> None:
        self.episodes.start(rows, self.generator, users)
        self._elapsed.index_fill_(0, rows, 0)

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[torch.Tensor, dict[str, Any]]:
        """Start new episodes; ``seed`` seeds the env's one generator. ``options``: ``{"user_id": ID}``
        (one userId or one per session), ``{"reset_mask": mask}`` (only those sessions)."""
        options = dict(options or {})
        unknown = sorted(set(options) - {"user_id", "reset_mask"})
        if unknown:
            raise ValueError(
                f"options: unknown key(s) {', '.join(map(repr, unknown))} (known: user_id, reset_mask)"
            )
        if isinstance(seed, list | tuple):  # one per session (SB3's convention: seed + i): the first
            seed = seed[0] if seed else None
        if seed is not None:
            if isinstance(seed, bool) or not isinstance(seed, int | np.integer):
                raise ValueError(f"seed: backend='torch' takes one integer seed, got {seed!r}")
            self.generator.manual_seed(int(seed))
        rows = self._all
        if options.get("reset_mask") is not None:
            mask = torch.as_tensor(np.asarray(options["reset_mask"], dtype=bool), device=self.device)
            if mask.shape != (self.num_envs,):
                raise ValueError(
                    f"options['reset_mask']: expected {self.num_envs} booleans, got shape {tuple(mask.shape)}"
                )
            rows = torch.nonzero(mask).flatten()
        users = None
        if options.get("user_id") is not None:
            value = options["user_id"]
            ids = [value] * self.num_envs if np.ndim(value) == 0 else list(value)
            if len(ids) != self.num_envs:
                raise ValueError(
                    f"options['user_id']: expected one userId or {self.num_envs}, got {len(ids)}"
                )
            chosen = [self.world.user_index(ids[i]) for i in rows.tolist()]
            users = torch.as_tensor(chosen, dtype=torch.int64, device=self.device)
        self._start(rows, users)
        self._pending[rows] = False
        self._started = True
        present = torch.zeros(self.num_envs, dtype=torch.bool, device=self.device)
        present[rows] = True
        return self.episodes.obs, self._masked(self.episodes.start_info(rows), rows, present)

    def step(
        self, actions: Any
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, dict[str, Any]]:
        if not self._started:
            raise RuntimeError("call reset() before step()")
        actions = torch.as_tensor(actions, device=self.device)
        shape = (self.num_envs, *(self.single_action_space.shape or ()))
        if tuple(actions.shape) != shape or actions.dtype.is_floating_point or actions.dtype == torch.bool:
            raise ValueError(
                f"actions must be integer movie indices of shape {shape}, "
                f"got {tuple(actions.shape)} {actions.dtype}"
            )
        actions = actions.to(torch.int64)
        n_movies = self.world.n_movies
        if bool(((actions < 0) | (actions >= n_movies)).any()):
            raise ValueError(f"actions must be movie indices in [0, {n_movies})")
        # NEXT_STEP: sessions that ended last step restart now and ignore their action. Every session
        # is stepped (tensors of fixed shape, no host sync); a restarting one's step is undone below
        # by restarting it after the step instead, which leaves the same state.
        resetting = self._pending
        rewards, terminated, info = self.episodes.step(self._all, actions, self._draws(self.num_envs))
        self._elapsed += 1
        truncated = torch.zeros_like(terminated)
        if self.max_episode_steps is not None:
            truncated = self._elapsed >= self.max_episode_steps
        if self.autoreset_mode == AutoresetMode.NEXT_STEP:
            restart = torch.nonzero(resetting).flatten()
            self._start(restart)
            fresh = self.episodes.start_info(restart)
            for key, value in fresh.items():
                info[key].index_copy_(0, restart, value)
            rewards = torch.where(resetting, 0.0, rewards)
            terminated = terminated & ~resetting
            truncated = truncated & ~resetting
            done = terminated | truncated
            self._pending = done
            return self.episodes.obs, rewards, terminated, truncated, self._flag(info)
        done = terminated | truncated
        finished = torch.nonzero(done).flatten()
        reply: dict[str, Any] = self._flag(info)
        # As the numpy backend: an object array, the last observation of each session that ended
        # (a copy of its row), None elsewhere; copying every row would cost a whole batch a step.
        last = self.episodes.obs.index_select(0, finished)
        final_obs = np.full(self.num_envs, None, dtype=object)
        for j, i in enumerate(finished.tolist()):
            final_obs[i] = last[j]
        reply["final_obs"] = final_obs
        reply["_final_obs"] = done.clone()
        reply["final_info"] = {
            key: value for key, value in reply.items() if key not in ("final_obs", "_final_obs")
        }
        reply["_final_info"] = done.clone()
        self._start(finished)
        for key, value in self.episodes.start_info(finished).items():
            reply[key] = reply[key].clone()
            reply[key].index_copy_(0, finished, value)
        return self.episodes.obs, rewards, terminated, truncated, reply

    def _flag(self, values: dict[str, torch.Tensor]) -> dict[str, Any]:
        """Every session reports every key: Gymnasium's ``_key`` masks are all True."""
        info: dict[str, Any] = {}
        every = torch.ones(self.num_envs, dtype=torch.bool, device=self.device)
        for key, value in values.items():
            info[key], info[f"_{key}"] = value, every
        return info

    def _masked(
        self, values: dict[str, torch.Tensor], rows: torch.Tensor, present: torch.Tensor
    ) -> dict[str, Any]:
        info: dict[str, Any] = {}
        for key, value in values.items():
            full = torch.zeros((self.num_envs, *value.shape[1:]), dtype=value.dtype, device=self.device)
            full[rows] = value
            info[key], info[f"_{key}"] = full, present.clone()
        return info

    def render(self) -> None:
        return None
