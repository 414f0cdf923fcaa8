"""A replay buffer for catalogue-sized observations (SB3's ``replay_buffer_class``).

SB3's ``ReplayBuffer`` keeps ``obs`` and ``next_obs`` as dense float32 rows: on
``rlrec/MovieLensSession-v0`` over ml-latest-small-2016 that is 2 x 10,329 x 4 B = 83 KB per
transition, ~82 GB for SB3's default million. An rlrec observation is one value (0, or a user's
mean rating) almost everywhere, so :class:`CompactReplayBuffer` keeps each row as that fill value
plus the entries that differ from it, and ``next_obs`` as the entries where it differs from
``obs`` (one revealed movie in a session step). Sampling rebuilds the dense rows exactly and
returns SB3's ``ReplayBufferSamples`` fields (plus ``next_states``), so ``DQN.train`` /
``QRDQN.train`` run unchanged.

It needs nothing from the env (no state index, no callback): any flat ``Box`` observation works,
and the memory saved is what the observations' sparsity allows.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple, cast

import numpy as np
import torch
from gymnasium import spaces
from stable_baselines3.common.buffers import BaseBuffer
from stable_baselines3.common.type_aliases import ReplayBufferSamples
from stable_baselines3.common.vec_env import VecNormalize

__all__ = ["CompactReplayBuffer", "IndexedReplayBufferSamples"]

#: Distinct observation values kept as one-byte codes before values are stored in full.
_MAX_CODES = 256


class _RaggedRing:
    """Variable-length runs of (column, value) pairs in one ring, written and freed in FIFO order.

    Positions are logical (ever increasing); the physical slot is ``position % capacity``. The
    owner says which logical position is the oldest one still needed (:meth:`reserve`), and the
    ring grows (by 1.5x) rather than overwrite it.
    """

    def __init__(self, n_columns: int, value_dtype: np.dtype, capacity: int = 1 << 16) -> None:
        self.column_dtype = np.uint16 if n_columns <= np.iinfo(np.uint16).max + 1 else np.int32
        self.value_dtype = np.dtype(value_dtype)
        self.columns = np.zeros(capacity, dtype=self.column_dtype)
        self.codes = np.zeros(capacity, dtype=np.uint8)
        self.values: np.ndarray | None = None  # full values, once more than _MAX_CODES are seen
        self.codebook = np.zeros(0, dtype=self.value_dtype)
        self.head = 0

    @property
    def capacity(self) -> int:
        return len(self.columns)

    @property
    def nbytes(self) -> int:
        stored = self.columns.nbytes + (self.codes.nbytes if self.values is None else self.values.nbytes)
        return stored + self.codebook.nbytes

    def reserve(self, count: int, oldest_needed: int) -> None:
        """Make room for ``count`` more entries without losing anything from ``oldest_needed`` on."""
        needed = self.head + count - oldest_needed
        if needed <= self.capacity:
            return
        capacity = max(needed, int(self.capacity * 1.5) + 1)
        live = np.arange(oldest_needed, self.head, dtype=np.int64)
        old, new = live % self.capacity, live % capacity
        columns = np.zeros(capacity, dtype=self.column_dtype)
        columns[new] = self.columns[old]
        self.columns = columns
        if self.values is None:
            codes = np.zeros(capacity, dtype=np.uint8)
            codes[new] = self.codes[old]
            self.codes = codes
        else:
            values = np.zeros(capacity, dtype=self.value_dtype)
            values[new] = self.values[old]
            self.values = values

    def append(self, columns: np.ndarray, values: np.ndarray) -> int:
        """Write the pairs at the head (room reserved beforehand); returns their first position."""
        start = self.head
        where = np.arange(start, start + len(columns), dtype=np.int64) % self.capacity
        self.columns[where] = columns
        if self.values is None:
            codes = self._encode(values)
            if codes is not None:
                self.codes[where] = codes
            else:  # too many distinct values: store them in full from now on
                self.values = (
                    self.codebook[self.codes] if len(self.codebook) else np.zeros(self.capacity)
                ).astype(self.value_dtype)
                self.codes = np.zeros(0, dtype=np.uint8)
        if self.values is not None:
            self.values[where] = values
        self.head += len(columns)
        return start

    def _encode(self, values: np.ndarray) -> np.ndarray | None:
        seen = np.unique(values)
        new = np.setdiff1d(seen, self.codebook, assume_unique=True)
        if len(new):
            if len(self.codebook) + len(new) > _MAX_CODES:
                return None
            self.codebook = np.concatenate([self.codebook, new.astype(self.value_dtype)])
        order = np.argsort(self.codebook, kind="stable")
        return order[np.searchsorted(self.codebook, values, sorter=order)].astype(np.uint8)

    def gather(self, starts: np.ndarray, lengths: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(row of each pair, columns, values) for runs ``starts[i] : starts[i] + lengths[i]``."""
        total = int(lengths.sum())
        rows = np.repeat(np.arange(len(starts)), lengths)
        offsets = np.arange(total, dtype=np.int64) - np.repeat(np.cumsum(lengths) - lengths, lengths)
        where = (np.repeat(starts, lengths) + offsets) % self.capacity
        values = self.codebook[self.codes[where]] if self.values is None else self.values[where]
        return rows, self.columns[where].astype(np.int64), values


class IndexedReplayBufferSamples(NamedTuple):
    """SB3's ``ReplayBufferSamples`` (same fields, read by name), plus ``next_states``: the state
    indices of the next observations when every row was stored as one, else None."""

    observations: torch.Tensor
    actions: torch.Tensor
    next_observations: torch.Tensor
    dones: torch.Tensor
    rewards: torch.Tensor
    discounts: torch.Tensor | None = None
    next_states: np.ndarray | None = None


class CompactReplayBuffer(BaseBuffer):
    """SB3's ``ReplayBuffer`` with observations kept as fill value + differing entries.

    Drop-in for ``DQN`` / ``QRDQN`` (``replay_buffer_class=CompactReplayBuffer``): same
    constructor, ``add`` and ``sample``; sampling draws with NumPy's global generator exactly as
    SB3's buffer does (so SB3's ``seed`` governs it) and returns ``ReplayBufferSamples`` with the
    same dtypes and shapes. Dones caused by time limits are dropped from the targets, as SB3
    does with ``handle_timeout_termination=True``.

    Each observation row is stored as a fill value (0, or the median when most entries are not 0)
    and the (column, value) pairs that differ from it; ``next_obs`` as the pairs where it differs
    from ``obs`` when both share the fill (a session step changes one movie), else on its own.
    Values are kept as one-byte codes while at most 256 distinct values occur (ratings, 0/1),
    then in full. Reconstruction is exact.

    :param buffer_size: capacity in transitions (SB3's meaning: shared by the ``n_envs``).
    :param observation_space: a flat ``Box``.
    :param action_space: any space SB3's ``ReplayBuffer`` takes.
    :param device: where sampled tensors go (SB3's ``"auto"``).
    :param n_envs: number of parallel envs (SB3's).
    :param optimize_memory_usage: accepted for SB3's signature; the layout above already shares
        ``obs`` and ``next_obs``, so the flag changes nothing.
    :param handle_timeout_termination: SB3's: a ``TimeLimit.truncated`` done is not terminal.
    :param observations_fn: ``states -> observations`` of an env that names its states (e.g.
        ``MovieLensEnv.observations``: user index -> profile). With it,
        :meth:`add_transitions` given ``states`` / ``next_states`` keeps only those indices
        (16 bytes per transition where a MovieLens profile needs ~1 KB) and sampling rebuilds
        the observations through it.
    """

    def __init__(
        self,
        buffer_size: int,
        observation_space: spaces.Space,
        action_space: spaces.Space,
        device: torch.device | str = "auto",
        n_envs: int = 1,
        optimize_memory_usage: bool = False,
        handle_timeout_termination: bool = True,
        observations_fn: Callable[[np.ndarray], np.ndarray] | None = None,
    ) -> None:
        if not isinstance(observation_space, spaces.Box):
            raise ValueError(f"CompactReplayBuffer needs a Box observation space, got {observation_space}")
        super().__init__(buffer_size, observation_space, action_space, device, n_envs=n_envs)
        self.buffer_size = max(buffer_size // n_envs, 1)
        self.optimize_memory_usage = optimize_memory_usage
        self.handle_timeout_termination = handle_timeout_termination
        # Stored flat (a sequence observation's (2, L) too), handed out in the space's shape.
        self.obs_shape = tuple(observation_space.shape)
        self.obs_dim = int(np.prod(self.obs_shape))
        self.obs_dtype = np.dtype(observation_space.dtype)
        slots = self.buffer_size * n_envs
        self._ring = _RaggedRing(self.obs_dim, self.obs_dtype)
        self._obs_fill = np.zeros(slots, dtype=self.obs_dtype)
        self._next_fill = np.zeros(slots, dtype=self.obs_dtype)
        self._obs_start = np.zeros(slots, dtype=np.int64)
        self._next_start = np.zeros(slots, dtype=np.int64)
        self._obs_len = np.zeros(slots, dtype=np.int32)
        self._next_len = np.zeros(slots, dtype=np.int32)
        self._next_relative = np.zeros(slots, dtype=bool)
        self._row_start = np.zeros(self.buffer_size, dtype=np.int64)  # ring position of each row
        action_dtype = (
            np.int32
            if isinstance(action_space, spaces.Discrete) and action_space.n < np.iinfo(np.int32).max
            else self._maybe_cast(action_space.dtype)
        )
        self.actions = np.zeros((slots, self.action_dim), dtype=action_dtype)
        self.rewards = np.zeros(slots, dtype=np.float32)
        self.dones = np.zeros(slots, dtype=np.uint8)
        self.timeouts = np.zeros(slots, dtype=np.uint8)
        self._latest = 0  # transitions in the last add_transitions
        self.observations_fn = observations_fn
        state_slots = slots if observations_fn is not None else 0
        self._states = np.full(state_slots, -1, dtype=np.int32)
        self._next_states = np.full(state_slots, -1, dtype=np.int32)

    @staticmethod
    def _maybe_cast(dtype: Any) -> Any:
        return np.float32 if np.dtype(dtype) == np.float64 else dtype

    @property
    def nbytes(self) -> int:
        """Bytes held by the buffer's arrays (what 1M transitions cost is this at 1M)."""
        arrays = (
            self._obs_fill, self._next_fill, self._obs_start, self._next_start, self._obs_len,
            self._next_len, self._next_relative, self._row_start, self.actions, self.rewards,
            self.dones, self.timeouts, self._states, self._next_states,
        )  # fmt: skip
        return self._ring.nbytes + sum(a.nbytes for a in arrays)

    # ----------------------------------------------------------------------------- add
    def add(
        self,
        obs: np.ndarray,
        next_obs: np.ndarray,
        action: np.ndarray,
        reward: np.ndarray,
        done: np.ndarray,
        infos: list[dict[str, Any]],
    ) -> None:
        """SB3's ``add``: one row of ``n_envs`` transitions."""
        timeouts = [bool(info.get("TimeLimit.truncated", False)) for info in infos]
        self._write(obs, next_obs, action, reward, done, np.asarray(timeouts, dtype=bool))
        self._advance(1)

    def _advance(self, rows: int) -> None:
        """Move the write position past ``rows`` rows written (never past the end: callers chunk)."""
        self.pos += rows
        if self.pos == self.buffer_size:
            self.full = True
            self.pos = 0

    def add_transitions(
        self,
        obs: np.ndarray,
        next_obs: np.ndarray,
        actions: np.ndarray,
        rewards: np.ndarray,
        dones: np.ndarray,
        states: np.ndarray | None = None,
        next_states: np.ndarray | None = None,
    ) -> None:
        """Any number of transitions at once into a buffer built with ``n_envs=1`` (rlrec's own
        learners, which drop the rows a vector env spent on resetting). ``dones`` are terminal
        flags only: store ``terminated``, not ``terminated | truncated``. With ``observations_fn``
        and both ``states`` and ``next_states``, only the state indices are kept."""
        by_state = self.observations_fn is not None and states is not None and next_states is not None
        if self.n_envs != 1:
            raise ValueError("add_transitions needs a buffer built with n_envs=1")
        count = len(actions)
        if count > self.buffer_size:
            raise ValueError(f"add_transitions: {count} transitions exceed the capacity {self.buffer_size}")
        done = 0
        while done < count:
            # Up to the end of the circular array, then from its start.
            chunk = min(count - done, self.buffer_size - self.pos)
            part = slice(done, done + chunk)
            rows = np.arange(self.pos, self.pos + chunk)
            if by_state:
                assert states is not None and next_states is not None
                self._states[rows], self._next_states[rows] = states[part], next_states[part]
                self._obs_len[rows] = self._next_len[rows] = 0
                self._obs_fill[rows] = self._next_fill[rows] = 0
                self._next_relative[rows] = False
                self._row_start[rows] = self._ring.head  # nothing of theirs in the ring
                self._write_scalars(rows, actions[part], rewards[part], dones[part], np.zeros(chunk, bool))
            else:
                if len(self._states):
                    self._states[rows] = self._next_states[rows] = -1
                self._write(obs[part], next_obs[part], actions[part], rewards[part], dones[part],
                            np.zeros(chunk, dtype=bool), rows=chunk)  # fmt: skip
            self._advance(chunk)
            done += chunk
        self._latest = count

    def _write(
        self,
        obs: np.ndarray,
        next_obs: np.ndarray,
        action: np.ndarray,
        reward: np.ndarray,
        done: np.ndarray,
        timeouts: np.ndarray,
        rows: int = 1,
    ) -> None:
        """Write ``rows`` consecutive rows of ``n_envs`` transitions from row ``pos`` on (no wrap)."""
        width = rows * self.n_envs
        obs = np.asarray(obs, dtype=self.obs_dtype).reshape(width, self.obs_dim)
        next_obs = np.asarray(next_obs, dtype=self.obs_dtype).reshape(width, self.obs_dim)
        slots = np.arange(self.pos * self.n_envs, self.pos * self.n_envs + width)
        obs_fill, next_fill = _fill_values(obs), _fill_values(next_obs)
        relative = obs_fill == next_fill
        obs_diff = obs != obs_fill[:, None]
        next_diff = np.where(relative[:, None], next_obs != obs, next_obs != next_fill[:, None])
        obs_rows, obs_cols = np.nonzero(obs_diff)
        next_rows, next_cols = np.nonzero(next_diff)

        last = self.pos + rows - 1  # the rows pos..last are overwritten
        if self.full:
            oldest_row = (last + 1) % self.buffer_size
            oldest = self._ring.head if rows == self.buffer_size else int(self._row_start[oldest_row])
        else:
            oldest = int(self._row_start[0]) if self.pos > 0 else self._ring.head
        self._ring.reserve(len(obs_cols) + len(next_cols), oldest)
        obs_counts = np.bincount(obs_rows, minlength=width)
        next_counts = np.bincount(next_rows, minlength=width)
        obs_first = self._ring.append(obs_cols, obs[obs_rows, obs_cols])
        next_first = self._ring.append(next_cols, next_obs[next_rows, next_cols])
        self._obs_start[slots] = obs_first + np.cumsum(obs_counts) - obs_counts
        self._next_start[slots] = next_first + np.cumsum(next_counts) - next_counts
        # A row's data starts at its first slot's obs run (all of a row's obs runs come first).
        self._row_start[self.pos : self.pos + rows] = self._obs_start[slots[:: self.n_envs]]
        self._obs_len[slots] = obs_counts
        self._next_len[slots] = next_counts
        self._obs_fill[slots] = obs_fill
        self._next_fill[slots] = next_fill
        self._next_relative[slots] = relative
        self._write_scalars(slots, action, reward, done, timeouts)

    def _write_scalars(
        self,
        slots: np.ndarray,
        action: np.ndarray,
        reward: np.ndarray,
        done: np.ndarray,
        timeouts: np.ndarray,
    ) -> None:
        width = len(slots)
        self.actions[slots] = np.asarray(action).reshape(width, self.action_dim)
        self.rewards[slots] = np.asarray(reward, dtype=np.float32).reshape(width)
        self.dones[slots] = np.asarray(done).reshape(width)
        if self.handle_timeout_termination:
            self.timeouts[slots] = np.asarray(timeouts).reshape(width)

    # -------------------------------------------------------------------------- sample
    def _get_samples(self, batch_inds: np.ndarray, env: VecNormalize | None = None) -> ReplayBufferSamples:
        # NumPy's global generator, as SB3's ReplayBuffer: SB3's seed then governs sampling.
        env_indices = np.random.randint(0, high=self.n_envs, size=(len(batch_inds),))  # noqa: NPY002
        return self._samples_of(np.asarray(batch_inds) * self.n_envs + env_indices, env)

    def _samples_of(self, slots: np.ndarray, env: VecNormalize | None) -> ReplayBufferSamples:
        obs = self.observations_at(slots)
        next_obs = self.next_observations_at(slots, obs)
        dones = self.dones[slots].astype(np.float32) * (1.0 - self.timeouts[slots].astype(np.float32))
        shape = (len(slots), *self.obs_shape)
        data: tuple[np.ndarray, ...] = (
            np.asarray(self._normalize_obs(obs.reshape(shape), env)),
            self.actions[slots],
            np.asarray(self._normalize_obs(next_obs.reshape(shape), env)),
            dones.reshape(-1, 1),
            self._normalize_reward(self.rewards[slots].reshape(-1, 1), env),
        )
        next_states = None
        if len(self._next_states) and (self._next_states[slots] >= 0).all():
            next_states = self._next_states[slots].astype(np.int64)
        obs_t, actions, next_obs_t, dones_t, rewards = (self.to_torch(array) for array in data)
        samples = IndexedReplayBufferSamples(obs_t, actions, next_obs_t, dones_t, rewards, None, next_states)
        # SB3's learners read samples by field name; the extra field rides along unseen.
        return cast(ReplayBufferSamples, samples)

    def latest(self) -> ReplayBufferSamples:
        """The transitions of the last :meth:`add_transitions`, in order (learning from fresh
        transitions only, without replay: a buffer whose capacity is one step's batch)."""
        count = getattr(self, "_latest", 0)
        if count == 0:
            raise ValueError("latest: nothing added yet")
        slots = (np.arange(self.pos - count, self.pos)) % self.buffer_size
        return self._samples_of(slots, None)

    def observations_at(self, slots: np.ndarray) -> np.ndarray:
        """The stored ``obs`` of flat slots (``row * n_envs + env``), dense ``(len, obs_dim)``."""
        out = np.repeat(self._obs_fill[slots, None], self.obs_dim, axis=1)
        rows, cols, values = self._ring.gather(self._obs_start[slots], self._obs_len[slots].astype(np.int64))
        out[rows, cols] = values
        self._fill_named(out, self._states, slots)
        return out

    def _fill_named(self, out: np.ndarray, states: np.ndarray, slots: np.ndarray) -> None:
        """Rows stored as a state index get their observation from ``observations_fn``."""
        if not len(states):
            return
        named = states[slots] >= 0
        if named.any():
            assert self.observations_fn is not None
            out[named] = self.observations_fn(states[slots][named])

    def next_observations_at(self, slots: np.ndarray, obs: np.ndarray | None = None) -> np.ndarray:
        """The stored ``next_obs`` of flat slots; ``obs``: their ``observations_at`` if at hand."""
        base = self.observations_at(slots) if obs is None else obs
        out = np.where(self._next_relative[slots, None], base, self._next_fill[slots, None])
        out = out.astype(self.obs_dtype, copy=False)
        rows, cols, values = self._ring.gather(
            self._next_start[slots], self._next_len[slots].astype(np.int64)
        )
        out[rows, cols] = values
        self._fill_named(out, self._next_states, slots)
        return out


def _fill_values(rows: np.ndarray) -> np.ndarray:
    """Per row, the value most entries hold: 0, or for rows mostly not 0 their median."""
    fill = np.zeros(len(rows), dtype=rows.dtype)
    dense = np.count_nonzero(rows, axis=1) * 2 > rows.shape[1]
    if dense.any():
        fill[dense] = np.median(rows[dense], axis=1)
    return fill
