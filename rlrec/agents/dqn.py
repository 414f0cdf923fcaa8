"""DQN written out top to bottom (CleanRL's layout, SB3's names and defaults), fast on MovieLens.

What makes it fast on ``MovieLens-v0`` (10,329 actions, 10,329-float observations) while doing
the same maths as SB3's ``DQN``:

* **Compact replay.** ``MovieLensEnv`` names its state (the user index, ``info["state"]``) and
  can rebuild any state's observation (``env.unwrapped.observations(states)``). The buffer then
  stores 18 bytes per transition (state, action, reward, next state, terminated, truncated)
  instead of two float32 rows (82 KB); a sampled batch is materialised into a preallocated array.
  Any other ``Box`` env uses the dense fallback (obs + next_obs, like SB3).
* **One output, not 10,329.** The loss needs ``Q(s, a)`` for the stored action only:
  ``QNetwork.q_of`` multiplies the features by that action's head row.
* **Cached targets.** With hard target updates (``tau=1``) the target network is frozen between
  syncs, and in compact mode ``max_a' Q_target(s', a')`` depends on the state index only: it is
  computed once per state and sync, then looked up.
* **Sparse first layer.** A profile is its user's mean everywhere but on ~160 rated movies:
  ``SparseStates`` keeps each state as (fill value, deviations) and ``InputLinear`` computes
  ``X W`` and its gradient from those (``_FillPlusSparseAffine``), not from 10,329 columns.
* **No big temporaries.** Gradients stay allocated; the head's gradient lives on the rows of the
  batch's actions and the first layer's is written once, already clipped; fresh MB-sized
  tensors per step cost more than the arithmetic on them (page faults, cache misses).
* **Fused Adam** (one pass over the parameters) where torch offers it.

All of these are exact: the same numbers as the plain dense computation up to float rounding
(``tests/agents/test_dqn.py`` checks forward and gradients against it).

What makes it good on ``MovieLensSession-v0`` (the bar recipe, ``dqn.yml``; all off by default):
observations that are 0 but on a few movies go through the first layer as their non-zeros
(``sparse_rows_from_dense``), optionally divided by the square root of their count
(``input_normalization="sqrt_count"``); ``optimizer="sparse_adam"`` then updates only the rows a
batch touches; ``dropout`` regularises the hidden layer in the loss; ``buffer_size=0`` learns
from each fresh batch of ``n_envs`` transitions instead of a replay; ``learning_rate`` takes the
zoo's ``"lin_<x>"``; ``init="embedding"`` sizes the first layer for unit-norm inputs.

Learning rate: Adam at SB3's 1e-4, not the seed's 0.1: Adam's step is about ``lr`` per weight
whatever the gradient, so 0.1 moves every weight by 0.1 per update and the Q-values diverge.
"""

from __future__ import annotations

import itertools
import json
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import gymnasium as gym
import numpy as np
import torch
from gymnasium.vector import VectorEnv
from stable_baselines3.common.utils import LinearSchedule, get_device, polyak_update
from torch import nn
from torch.nn import functional as F

from rlrec.agents.base import BaseLearner, EnvRunner, MaybeCallback, StepResult
from rlrec.utils.io import atomic_path, save_json
from rlrec.utils.seeding import set_torch_threads

__all__ = ["CompactReplayBuffer", "DQNAgent", "DenseReplayBuffer", "QNetwork", "ReplayBatch"]

ReplayMode = Literal["auto", "compact", "dense"]
OptimizerName = Literal["adam", "sparse_adam"]
InputNormalization = Literal["sqrt_count"] | None
InitName = Literal["linear", "embedding"]
#: Rows per forward pass when filling the target cache or scoring many observations.
_CHUNK = 1024


# ---------------------------------------------------------------------------- Q-network
@dataclass
class SparseRows:
    """A batch of observations ``X = fills ⊗ 1 + S`` (one fill value per row + sparse deviations).

    ``S`` is given by coordinates: ``S[rows[k], cols[k]] = values[k]``. A MovieLens profile is
    its user's mean everywhere but on the ~160 rated movies, so a batch of 32 profiles is ~5,000
    numbers instead of 330,000.
    """

    fills: torch.Tensor
    rows: torch.Tensor
    cols: torch.Tensor
    values: torch.Tensor
    offsets: torch.Tensor

    def __len__(self) -> int:
        return len(self.fills)


def _fill_plus_sparse_affine(
    weight_t: torch.Tensor, bias: torch.Tensor, colsum: torch.Tensor, batch: SparseRows
) -> torch.Tensor:
    """``X @ W + b`` for the rows ``X`` of ``batch`` (``W`` is ``(in, out)``, ``colsum = 1ᵀ W``)."""
    out = F.embedding_bag(batch.cols, weight_t, batch.offsets, mode="sum", per_sample_weights=batch.values)
    return out.addcmul_(batch.fills[:, None], colsum[None, :]).add_(bias)


class _FillPlusSparseAffine(torch.autograd.Function):
    """``X @ W + b`` for ``X = fills ⊗ 1 + S`` without forming ``X`` (``W`` is ``(in, out)``).

    Forward: ``fills ⊗ colsum(W) + S W + b``. Backward: ``dL/dW = 1 ⊗ g + Sᵀ G`` with
    ``g = fillsᵀ G``: every row of the gradient is ``g`` but the rows of the inputs the batch
    touched. The backward keeps just those (``InputLinear.pending``); ``write_gradient`` then
    *writes* (not accumulates: one backward per zeroing, see ``DQNAgent._zero_gradients``) the
    dense gradient into ``W.grad``, scaled by the gradient clipping, in one pass. Work arrays
    are kept by the layer: fresh MB-sized temporaries every step cost more than the arithmetic.
    """

    @staticmethod
    def forward(  # type: ignore[override]
        ctx: Any,
        layer: InputLinear,
        weight_t: torch.Tensor,
        bias: torch.Tensor,
        colsum: torch.Tensor,
        fills: torch.Tensor,
        rows: torch.Tensor,
        cols: torch.Tensor,
        values: torch.Tensor,
        offsets: torch.Tensor,
    ) -> torch.Tensor:
        out = _fill_plus_sparse_affine(weight_t, bias, colsum, SparseRows(fills, rows, cols, values, offsets))
        ctx.save_for_backward(fills, rows, cols, values)
        ctx.layer = layer
        return out

    @staticmethod
    def backward(ctx: Any, grad_out: torch.Tensor) -> tuple[torch.Tensor | None, ...]:  # type: ignore[override]
        fills, rows, cols, values = ctx.saved_tensors
        layer: InputLinear = ctx.layer
        width = grad_out.shape[1]
        shared = fills @ grad_out  # the gradient row of every input the batch did not touch
        contributions = layer.scratch("contributions", len(rows), width)  # values[k] * G[rows[k]]
        torch.index_select(grad_out, 0, rows, out=contributions)
        contributions.mul_(values[:, None])
        touched, inverse = torch.unique(cols, return_inverse=True)
        touched_rows = layer.scratch("touched", len(touched), width).zero_()
        touched_rows.index_add_(0, inverse, contributions).add_(shared)
        layer.pending = (shared, touched, touched_rows)
        if not layer.defer_gradient:
            layer.write_gradient()
        return None, None, grad_out.sum(dim=0), None, None, None, None, None, None


class InputLinear(nn.Module):
    """``nn.Linear(in_features, out_features)`` (same initialisation) with its weight stored
    transposed, ``(in, out)``, so that a sparse observation reads whole rows of it."""

    def __init__(self, in_features: int, out_features: int) -> None:
        super().__init__()
        reference = nn.Linear(in_features, out_features)
        self.weight_t = nn.Parameter(reference.weight.detach().t().contiguous())
        self.bias = nn.Parameter(reference.bias.detach().clone())
        # 1ᵀ W for sparse batches, kept between weight changes: the acting steps between two
        # updates share it. Whoever changes the weights calls weights_changed().
        self._colsum: torch.Tensor | None = None
        self._scratch: dict[str, torch.Tensor] = {}
        #: (shared row, touched input indices, their gradient rows) of the last sparse backward,
        #: until ``write_gradient``; with ``defer_gradient`` False the backward writes at once.
        self.pending: tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None = None
        self.defer_gradient = False
        #: Backward gives ``weight_t`` a sparse gradient on the touched rows only (for SparseAdam);
        #: needs batches with fill 0, i.e. built by ``sparse_rows_from_dense``.
        self.sparse_grad = False

    def scratch(self, name: str, rows: int, width: int) -> torch.Tensor:
        """A reusable ``(rows, width)`` work array for the backward pass (grown, never shrunk)."""
        weight = self.weight_t
        scratch = self._scratch.get(name, torch.empty(0))
        if scratch.shape[0] < rows or scratch.shape[1:] != (width,) or scratch.device != weight.device:
            size = max(rows, 2 * scratch.shape[0])
            scratch = self._scratch[name] = torch.empty(size, width, dtype=weight.dtype, device=weight.device)
        return scratch[:rows]

    def pending_gradient_sq_norm(self) -> float:
        """Squared Frobenius norm of the pending weight gradient, from its distinct rows only."""
        assert self.pending is not None
        shared, touched, touched_rows = self.pending
        untouched = self.weight_t.shape[0] - len(touched)
        return untouched * float(shared @ shared) + float(torch.linalg.vector_norm(touched_rows)) ** 2

    def write_gradient(self, scale: float = 1.0) -> None:
        """Write the pending weight gradient, times ``scale``, into ``weight_t.grad``."""
        assert self.pending is not None
        shared, touched, touched_rows = self.pending
        weight = self.weight_t
        if weight.grad is None:
            weight.grad = torch.empty_like(weight)
        weight.grad.copy_((shared * scale)[None, :].expand_as(weight))
        weight.grad.index_copy_(0, touched, touched_rows.mul_(scale))
        self.pending = None

    def weights_changed(self) -> None:
        """Forget the cached column sums (after an optimiser step or a load)."""
        self._colsum = None

    def _load_from_state_dict(self, *args: Any, **kwargs: Any) -> None:
        self.weights_changed()
        super()._load_from_state_dict(*args, **kwargs)

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        return torch.addmm(self.bias, obs, self.weight_t)

    def forward_sparse(self, batch: SparseRows) -> torch.Tensor:
        if self._colsum is None:
            self._colsum = self.weight_t.detach().sum(dim=0)
        if not torch.is_grad_enabled():  # acting: no graph to record
            return _fill_plus_sparse_affine(self.weight_t, self.bias, self._colsum, batch)
        if self.sparse_grad:
            # Zero fill: X W is S W alone, and autograd's sparse embedding_bag gradient touches
            # only the rows of the batch's inputs, which is what SparseAdam updates.
            assert not bool(batch.fills.any()), "sparse_grad needs batches with fill 0"
            out = F.embedding_bag(
                batch.cols,
                self.weight_t,
                batch.offsets,
                mode="sum",
                per_sample_weights=batch.values,
                sparse=True,
            )
            return out + self.bias
        out = _FillPlusSparseAffine.apply(
            self,
            self.weight_t,
            self.bias,
            self._colsum,
            batch.fills,
            batch.rows,
            batch.cols,
            batch.values,
            batch.offsets,
        )
        return out  # type: ignore[no-any-return]


class QNetwork(nn.Module):
    """MLP ``obs -> Q(obs, ·)``: ``Linear + ReLU`` per ``net_arch`` entry, then a linear head.

    The default ``net_arch=[64]`` is the seed's network, Linear(obs, 64) -> ReLU -> Linear(64, n).
    The first layer is an ``InputLinear`` (a ``Linear`` stored transposed) that also takes
    ``SparseRows``. ``dropout > 0`` adds ``nn.Dropout`` after every hidden ReLU; it acts only in
    training mode (``DQNAgent`` keeps its networks in eval mode but for the loss's forward).
    ``init="embedding"`` replaces ``nn.Linear``'s initialisation of the first layer (uniform in
    ``±1/sqrt(obs_dim)``, made for dense inputs) by ``N(0, 1/width)`` weights and zero biases, and
    zeroes the head's biases: for unit-norm sparse inputs (``sqrt_count``), whose pre-activations
    would otherwise start ~``sqrt(obs_dim / width)`` times smaller (the init of bench_bar's learner).
    """

    def __init__(
        self,
        obs_dim: int,
        n_actions: int,
        net_arch: Sequence[int],
        dropout: float = 0.0,
        init: InitName = "linear",
    ) -> None:
        super().__init__()
        self.input: InputLinear | None = InputLinear(obs_dim, net_arch[0]) if net_arch else None

        def activation() -> list[nn.Module]:
            return [nn.ReLU(), nn.Dropout(dropout)] if dropout > 0 else [nn.ReLU()]

        layers: list[nn.Module] = activation() if net_arch else []
        for width_in, width_out in itertools.pairwise(net_arch):
            layers += [nn.Linear(width_in, width_out), *activation()]
        self.hidden = nn.Sequential(*layers)
        self.head = nn.Linear(net_arch[-1] if net_arch else obs_dim, n_actions)
        if init == "embedding" and self.input is not None:
            nn.init.normal_(self.input.weight_t, 0.0, 1.0 / math.sqrt(net_arch[0]))
            nn.init.zeros_(self.input.bias)
            nn.init.zeros_(self.head.bias)

    @property
    def takes_sparse(self) -> bool:
        return self.input is not None

    def features(self, obs: torch.Tensor | SparseRows) -> torch.Tensor:
        if isinstance(obs, SparseRows):
            assert self.input is not None, "sparse observations need a hidden layer"
            return self.hidden(self.input.forward_sparse(obs))
        return self.hidden(obs if self.input is None else self.input(obs))

    def forward(self, obs: torch.Tensor | SparseRows) -> torch.Tensor:
        return self.head(self.features(obs))

    def q_of(self, obs: torch.Tensor | SparseRows, actions: torch.Tensor) -> torch.Tensor:
        """``Q(obs_i, actions_i)`` per row, equal to ``forward(obs).gather(1, actions)`` without
        computing the other ``n_actions - 1`` outputs. The head rows come through a sparse
        embedding, so that their gradient is added in place into ``head.weight.grad``."""
        features = self.features(obs)
        rows = F.embedding(actions, self.head.weight, sparse=True)
        return (features * rows).sum(dim=1) + self.head.bias[actions]


def sqrt_count_scale(obs: np.ndarray) -> np.ndarray:
    """``1 / sqrt(#non-zeros)`` per row (1 for an empty row): Mult-DAE's input normalisation
    (Liang et al. 2018), which keeps the hidden scale of a partly hidden history (training) and
    of a whole one (evaluation) alike."""
    counts = np.count_nonzero(obs.reshape(len(obs), -1), axis=1)
    return (1.0 / np.sqrt(np.maximum(counts, 1))).astype(np.float32)


def sparse_rows_from_dense(
    obs: np.ndarray, device: torch.device, scale: np.ndarray | None = None
) -> SparseRows:
    """The non-zeros of a dense ``(B, n)`` batch as ``SparseRows`` with fill 0, each row times
    ``scale`` (None: 1): for observations that are 0 but on a few entries (binary histories)."""
    flat = obs.reshape(len(obs), -1)
    rows, cols = np.nonzero(flat)
    values = flat[rows, cols].astype(np.float32)
    if scale is not None:
        values *= scale[rows]
    offsets = np.zeros(len(flat), dtype=np.int64)
    np.cumsum(np.bincount(rows, minlength=len(flat))[:-1], out=offsets[1:])

    def tensor(array: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(array).to(device)

    return SparseRows(
        fills=torch.zeros(len(flat), dtype=torch.float32, device=device),
        rows=tensor(rows.astype(np.int64)),
        cols=tensor(cols.astype(np.int64)),
        values=tensor(values),
        offsets=tensor(offsets),
    )


def learning_rate_schedule(learning_rate: float | str | Callable[[float], float]) -> Callable[[float], float]:
    """SB3's ``lr_schedule``: ``progress_remaining`` (1 at the start, 0 at the end) -> step size.

    A number is constant; the zoo's ``"lin_<x>"`` is ``x * progress_remaining`` (SB3's
    ``LinearSchedule(x, 0, 1)``, what the zoo builds from it); a callable is used as it is.
    """
    if callable(learning_rate):
        return learning_rate
    if isinstance(learning_rate, str):
        kind, _, initial = learning_rate.partition("_")
        try:
            start = float(initial)
        except ValueError:
            start = math.nan
        if kind != "lin" or not math.isfinite(start):
            raise ValueError(f"learning_rate: expected a number or 'lin_<number>', got {learning_rate!r}")
        return LinearSchedule(start, 0.0, 1.0)
    value = float(learning_rate)
    return lambda _: value


def _learning_rate_json(learning_rate: float | str | Callable[[float], float]) -> float | str:
    """What ``save`` writes for ``learning_rate``: the number, or ``"lin_<x>"`` for a linear decay to 0."""
    if isinstance(learning_rate, LinearSchedule):
        if learning_rate.end == 0.0 and learning_rate.end_fraction == 1.0:
            return f"lin_{learning_rate.start!r}"
        raise ValueError(f"learning_rate: cannot save {learning_rate!r} (only 'lin_<x>' schedules)")
    if callable(learning_rate):
        raise ValueError("learning_rate: cannot save a callable schedule (use a number or 'lin_<x>')")
    return learning_rate if isinstance(learning_rate, str) else float(learning_rate)


class SparseStates:
    """Each compact state's observation as (fill value, sparse deviations), worked out once.

    The fill value is the most frequent entry of the observation (a MovieLens profile: the
    user's mean). A batch is served sparse only while that saves work (``max_density``).

    :param observations: the env's ``observations(states)``.
    :param n_states: number of compact states.
    :param obs_dim: length of one observation.
    :param device: where the batches go.
    :param max_density: largest fraction of non-fill entries for which ``batch`` goes sparse.
    """

    def __init__(
        self, observations: Any, n_states: int, obs_dim: int, device: torch.device, max_density: float = 0.1
    ) -> None:
        self.observations_fn = observations
        self.obs_dim = obs_dim
        self.device = device
        self.max_density = max_density
        self.known = np.zeros(n_states, dtype=bool)
        self.fills = np.zeros(n_states, dtype=np.float32)
        self.counts = np.zeros(n_states, dtype=np.int64)
        empty_cols, empty_values = torch.empty(0, dtype=torch.int64), torch.empty(0, dtype=torch.float32)
        self.cols: list[torch.Tensor] = [empty_cols] * n_states
        self.values: list[torch.Tensor] = [empty_values] * n_states
        self._single: dict[int, SparseRows] = {}

    def _learn(self, states: np.ndarray) -> None:
        new = np.unique(states[~self.known[states]])
        for start in range(0, len(new), _CHUNK):
            chunk = new[start : start + _CHUNK]
            for state, row in zip(chunk, self.observations_fn(chunk.astype(np.int64))):
                values, counts = np.unique(row, return_counts=True)
                fill = values[counts.argmax()]
                cols = np.flatnonzero(row != fill)
                self.fills[state] = fill
                self.counts[state] = len(cols)
                self.cols[state] = torch.from_numpy(cols.astype(np.int64)).to(self.device)
                self.values[state] = torch.from_numpy((row[cols] - fill).astype(np.float32)).to(self.device)
            self.known[chunk] = True

    def batch(self, states: np.ndarray) -> SparseRows | None:
        """The observations of ``states`` as ``SparseRows``, or None when too dense to be worth it."""
        if len(states) == 1:  # acting: one state per env step, built once per state
            state = int(states[0])
            single = self._single.get(state)
            if single is None:
                single = self._single[state] = self._batch(states)  # type: ignore[assignment]
            return single
        return self._batch(states)

    def _batch(self, states: np.ndarray) -> SparseRows | None:
        self._learn(states)
        counts = self.counts[states]
        if not len(states) or counts.sum() > self.max_density * self.obs_dim * len(states):
            return None
        offsets = np.zeros(len(states), dtype=np.int64)
        np.cumsum(counts[:-1], out=offsets[1:])
        return SparseRows(
            fills=torch.from_numpy(self.fills[states]).to(self.device),
            rows=torch.from_numpy(np.repeat(np.arange(len(states)), counts)).to(self.device),
            cols=torch.cat([self.cols[s] for s in states]),
            values=torch.cat([self.values[s] for s in states]),
            offsets=torch.from_numpy(offsets).to(self.device),
        )


# ------------------------------------------------------------------------ replay buffers
@dataclass
class ReplayBatch:
    """A sampled batch as numpy arrays. Observations are None where not materialised (the
    compact buffer serves state indices, and the learner may not need the dense rows)."""

    observations: np.ndarray | None
    actions: np.ndarray
    rewards: np.ndarray
    next_observations: np.ndarray | None
    terminated: np.ndarray
    truncated: np.ndarray
    states: np.ndarray | None
    next_states: np.ndarray | None
    next_masks: np.ndarray | None


class _CircularBuffer:
    """Preallocated columns written in a circle; sampling is one ``integers`` call."""

    def __init__(self, buffer_size: int, n_actions: int, store_masks: bool) -> None:
        if buffer_size < 1:
            raise ValueError(f"buffer_size must be >= 1, got {buffer_size}")
        self.buffer_size = buffer_size
        self.n_actions = n_actions
        self.pos = 0
        self.full = False
        self.actions = np.zeros(buffer_size, dtype=np.int32)
        self.rewards = np.zeros(buffer_size, dtype=np.float32)
        self.terminated = np.zeros(buffer_size, dtype=bool)
        self.truncated = np.zeros(buffer_size, dtype=bool)
        # Next-state action masks as bits: ceil(n_actions / 8) bytes per transition.
        self.next_masks = (
            np.zeros((buffer_size, math.ceil(n_actions / 8)), dtype=np.uint8) if store_masks else None
        )

    @property
    def nbytes(self) -> int:
        """Bytes of the stored columns: every per-transition array (not the per-batch scratch space)."""
        return sum(
            value.nbytes
            for value in vars(self).values()
            if isinstance(value, np.ndarray) and len(value) == self.buffer_size
        )

    def size(self) -> int:
        return self.buffer_size if self.full else self.pos

    def __len__(self) -> int:
        return self.size()

    def _slots(self, count: int) -> np.ndarray:
        slots = (self.pos + np.arange(count)) % self.buffer_size
        end = self.pos + count
        self.full = self.full or end >= self.buffer_size
        self.pos = end % self.buffer_size
        return slots

    def _add_common(
        self,
        slots: np.ndarray,
        actions: np.ndarray,
        rewards: np.ndarray,
        terminated: np.ndarray,
        truncated: np.ndarray,
        next_masks: np.ndarray | None,
    ) -> None:
        self.actions[slots] = actions
        self.rewards[slots] = rewards
        self.terminated[slots] = terminated
        self.truncated[slots] = truncated
        if self.next_masks is not None:
            masks = np.ones((len(slots), self.n_actions), dtype=bool) if next_masks is None else next_masks
            self.next_masks[slots] = np.packbits(masks, axis=1)

    def sample_indices(self, batch_size: int, rng: np.random.Generator) -> np.ndarray:
        """Uniform indices with replacement, as SB3's ``ReplayBuffer.sample``."""
        if self.size() == 0:
            raise ValueError("cannot sample from an empty replay buffer")
        return rng.integers(0, self.size(), size=batch_size)

    def _masks(self, indices: np.ndarray) -> np.ndarray | None:
        if self.next_masks is None:
            return None
        return np.unpackbits(self.next_masks[indices], axis=1, count=self.n_actions).astype(bool)


class CompactReplayBuffer(_CircularBuffer):
    """Transitions as state indices: 18 bytes each (+ the mask bits when ``store_masks``).

    :param buffer_size: capacity in transitions.
    :param n_actions: size of the action space.
    :param observations: ``observations(states, out=None) -> (len(states), *obs_shape)``, the
        env's way back from a state to its observation (``MovieLensEnv.observations``).
    :param obs_shape: shape of one observation.
    :param obs_dtype: dtype of the observations.
    :param store_masks: keep the next state's action mask (for the masked target max).
    """

    def __init__(
        self,
        buffer_size: int,
        n_actions: int,
        observations: Any,
        obs_shape: tuple[int, ...],
        obs_dtype: np.dtype | type = np.float32,
        store_masks: bool = False,
    ) -> None:
        super().__init__(buffer_size, n_actions, store_masks)
        self.observations_fn = observations
        self.obs_shape = obs_shape
        self.obs_dtype = np.dtype(obs_dtype)
        self.states = np.zeros(buffer_size, dtype=np.int32)
        self.next_states = np.zeros(buffer_size, dtype=np.int32)
        self._out: dict[int, np.ndarray] = {}

    def add(
        self,
        states: np.ndarray,
        actions: np.ndarray,
        rewards: np.ndarray,
        next_states: np.ndarray,
        terminated: np.ndarray,
        truncated: np.ndarray,
        next_masks: np.ndarray | None = None,
    ) -> None:
        slots = self._slots(len(actions))
        self.states[slots] = states
        self.next_states[slots] = next_states
        self._add_common(slots, actions, rewards, terminated, truncated, next_masks)

    def materialise(self, states: np.ndarray) -> np.ndarray:
        """Observations of ``states`` written into a preallocated array (reused per batch size)."""
        out = self._out.get(len(states))
        if out is None:
            out = self._out[len(states)] = np.empty((len(states), *self.obs_shape), dtype=self.obs_dtype)
        return self.observations_fn(states.astype(np.int64), out=out)

    def get(
        self, indices: np.ndarray, observations: bool = True, next_observations: bool = True
    ) -> ReplayBatch:
        """The transitions at ``indices``; ``observations`` / ``next_observations``: materialise
        the dense rows of the states / next states (else only their indices come back)."""
        states, next_states = self.states[indices], self.next_states[indices]
        obs: np.ndarray | None = None
        next_obs: np.ndarray | None = None
        if observations and next_observations:
            # One call for both halves: half the per-call overhead of the env's materialisation.
            both = self.materialise(np.concatenate([states, next_states]))
            obs, next_obs = both[: len(indices)], both[len(indices) :]
        elif observations:
            obs = self.materialise(states)
        elif next_observations:
            next_obs = self.materialise(next_states)
        return ReplayBatch(
            observations=obs,
            actions=self.actions[indices],
            rewards=self.rewards[indices],
            next_observations=next_obs,
            terminated=self.terminated[indices],
            truncated=self.truncated[indices],
            states=states,
            next_states=next_states,
            next_masks=self._masks(indices),
        )


class DenseReplayBuffer(_CircularBuffer):
    """Transitions with both observations stored, for any ``Box`` env (SB3's layout)."""

    def __init__(
        self,
        buffer_size: int,
        n_actions: int,
        obs_shape: tuple[int, ...],
        obs_dtype: np.dtype | type = np.float32,
        store_masks: bool = False,
    ) -> None:
        super().__init__(buffer_size, n_actions, store_masks)
        self.observations = np.zeros((buffer_size, *obs_shape), dtype=obs_dtype)
        self.next_observations = np.zeros((buffer_size, *obs_shape), dtype=obs_dtype)

    def add(
        self,
        observations: np.ndarray,
        actions: np.ndarray,
        rewards: np.ndarray,
        next_observations: np.ndarray,
        terminated: np.ndarray,
        truncated: np.ndarray,
        next_masks: np.ndarray | None = None,
    ) -> None:
        slots = self._slots(len(actions))
        self.observations[slots] = observations
        self.next_observations[slots] = next_observations
        self._add_common(slots, actions, rewards, terminated, truncated, next_masks)

    def get(
        self, indices: np.ndarray, observations: bool = True, next_observations: bool = True
    ) -> ReplayBatch:
        return ReplayBatch(
            observations=self.observations[indices] if observations else None,
            actions=self.actions[indices],
            rewards=self.rewards[indices],
            next_observations=self.next_observations[indices] if next_observations else None,
            terminated=self.terminated[indices],
            truncated=self.truncated[indices],
            states=None,
            next_states=None,
            next_masks=self._masks(indices),
        )


# ------------------------------------------------------------------------------ the agent
class DQNAgent(BaseLearner):
    """Deep Q-learning (Mnih et al. 2015) with SB3's ``DQN`` hyperparameter names and defaults.

    :param env: a Gymnasium env with a ``Box`` observation and ``Discrete`` action space, single
        or ``gymnasium.vector.VectorEnv``; None for a model that only predicts (see ``load``).
    :param learning_rate: Adam's step size (SB3's 1e-4; see the module doc for why not 0.1), or
        the zoo's ``"lin_<x>"`` (linear decay from ``x`` to 0 over training), or an SB3 schedule
        (``progress_remaining -> lr``; only ``LinearSchedule(x, 0, 1)`` can be saved).
    :param buffer_size: replay capacity in transitions (100,000; SB3 uses 1M). 0: no replay,
        one gradient step per iteration on the ``n_envs`` transitions just collected (on-policy
        data; with ``gamma=0`` the target is the reward and fresh batches cost nothing to store).
    :param learning_starts: random actions and no training before this many steps (SB3's 100).
    :param batch_size: transitions per gradient step (SB3's 32).
    :param tau: target update coefficient: 1 copies (SB3's default), < 1 is Polyak averaging.
    :param gamma: discount (SB3's 0.99).
    :param train_freq: env ``step`` calls between trainings (SB3's 4).
    :param gradient_steps: gradient steps per training; -1: as many as transitions collected.
    :param target_update_interval: env steps between target updates (SB3's 10,000).
    :param exploration_fraction: see ``BaseLearner`` (SB3's 0.1).
    :param exploration_initial_eps: SB3's 1.0.
    :param exploration_final_eps: SB3's 0.05.
    :param max_grad_norm: gradient clipping (SB3's 10).
    :param net_arch: hidden layer widths (the seed's ``[64]``; SB3's DQN uses ``[64, 64]``).
    :param replay: ``"compact"`` (state indices; needs ``n_states`` + ``observations()`` and
        ``info["state"]``), ``"dense"`` (observations) or ``"auto"`` (compact when possible).
    :param use_masking: mask Q-values with ``action_masks()`` when acting and in the target max.
        The next state's mask is stored as bits (``ceil(n_actions/8)`` bytes per transition,
        1.3 KB on MovieLens): leave it off when masks are all True (MovieLens-v0's default,
        ``mask_recommended=False``), where it changes nothing.
    :param device: ``"auto"`` (CUDA when available), ``"cpu"`` or ``"cuda"``.
    :param sparse_inputs: with compact replay, feed the first layer each state's observation as
        fill value + sparse deviations (``SparseStates``): the same numbers as the dense product
        up to rounding, at a fraction of the cost for MovieLens profiles. False: always dense.
    :param input_normalization: ``None`` (default) or ``"sqrt_count"``: divide each observation
        by the square root of its number of non-zeros before the first layer (Mult-DAE's; see
        ``sqrt_count_scale``), in training and in ``q_values`` alike.
    :param init: ``"linear"`` (default: ``nn.Linear``'s) or ``"embedding"`` (see ``QNetwork``).
    :param dropout: dropout probability after every hidden ReLU, in the loss's forward only
        (never in ``q_values`` / ``predict`` / acting); default 0 (none).
    :param optimizer: ``"adam"`` (default, fused when torch offers it) or ``"sparse_adam"``: the
        first layer's weights and the head are updated only on the rows a batch touches
        (``torch.optim.SparseAdam``), the other parameters by Adam. Batches then always go
        through the first layer as non-zeros (``sparse_rows_from_dense``): for observations that
        are 0 almost everywhere (binary histories), where the dense Adam step over
        ``n_movies x width`` weights is most of the cost. No compact replay with it.
    :param n_threads: torch intra-op threads (``set_torch_threads``); the default 1 is fastest
        for these small batches, more threads only add synchronisation.
    :param tensorboard_log: see ``BaseLearner``.
    :param verbose: see ``BaseLearner``.
    :param seed: see ``BaseLearner``; same seed => same weights on the CPU.
    """

    def __init__(
        self,
        env: gym.Env | VectorEnv | None,
        learning_rate: float | str | Callable[[float], float] = 1e-4,
        buffer_size: int = 100_000,
        learning_starts: int = 100,
        batch_size: int = 32,
        tau: float = 1.0,
        gamma: float = 0.99,
        train_freq: int = 4,
        gradient_steps: int = 1,
        target_update_interval: int = 10_000,
        exploration_fraction: float = 0.1,
        exploration_initial_eps: float = 1.0,
        exploration_final_eps: float = 0.05,
        max_grad_norm: float = 10.0,
        net_arch: Sequence[int] = (64,),
        replay: ReplayMode = "auto",
        use_masking: bool = False,
        device: str = "auto",
        n_threads: int | None = 1,
        sparse_inputs: bool = True,
        input_normalization: InputNormalization = None,
        dropout: float = 0.0,
        init: InitName = "linear",
        optimizer: OptimizerName = "adam",
        tensorboard_log: str | None = None,
        verbose: int = 0,
        seed: int | None = None,
        _spaces: tuple[tuple[int, ...], str, int] | None = None,
    ) -> None:
        super().__init__(
            env,
            exploration_fraction=exploration_fraction,
            exploration_initial_eps=exploration_initial_eps,
            exploration_final_eps=exploration_final_eps,
            tensorboard_log=tensorboard_log,
            verbose=verbose,
            seed=seed,
        )
        if replay not in ("auto", "compact", "dense"):
            raise ValueError(f"replay must be 'auto', 'compact' or 'dense', got {replay!r}")
        if not 0.0 < tau <= 1.0:
            raise ValueError(f"tau must be in (0, 1], got {tau}")
        if batch_size < 1 or train_freq < 1 or target_update_interval < 1:
            raise ValueError("batch_size, train_freq and target_update_interval must be >= 1")
        if buffer_size < 0:
            raise ValueError(f"buffer_size must be >= 0 (0: no replay), got {buffer_size}")
        if input_normalization not in (None, "sqrt_count"):
            raise ValueError(f"input_normalization must be None or 'sqrt_count', got {input_normalization!r}")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {dropout}")
        if init not in ("linear", "embedding"):
            raise ValueError(f"init must be 'linear' or 'embedding', got {init!r}")
        if optimizer not in ("adam", "sparse_adam"):
            raise ValueError(f"optimizer must be 'adam' or 'sparse_adam', got {optimizer!r}")
        if optimizer == "sparse_adam" and not net_arch:
            raise ValueError("optimizer='sparse_adam' needs a hidden layer (net_arch)")
        self.learning_rate = learning_rate
        self.lr_schedule = learning_rate_schedule(learning_rate)
        self.input_normalization = input_normalization
        self.dropout = float(dropout)
        self.init = init
        self.optimizer_name = optimizer
        self.buffer_size = buffer_size
        self.learning_starts = learning_starts
        self.batch_size = batch_size
        self.tau = tau
        self.gamma = gamma
        self.train_freq = train_freq
        self.gradient_steps = gradient_steps
        self.target_update_interval = target_update_interval
        self.max_grad_norm = max_grad_norm
        self.net_arch = [int(width) for width in net_arch]
        self.replay = replay
        self.use_masking = use_masking
        self.n_threads = n_threads
        self.sparse_inputs = sparse_inputs
        if n_threads is not None:
            set_torch_threads(n_threads)
        self.device = get_device(device)

        if env is not None:
            probe = EnvRunner(env)
            if not isinstance(probe.action_space, gym.spaces.Discrete):
                raise ValueError(f"env: DQN needs a Discrete action space, got {probe.action_space}")
            if not isinstance(probe.observation_space, gym.spaces.Box):
                raise ValueError(f"env: DQN needs a Box observation space, got {probe.observation_space}")
            self.obs_shape: tuple[int, ...] = tuple(probe.observation_space.shape)
            self.obs_dtype = np.dtype(probe.observation_space.dtype)
            self.n_actions = int(probe.action_space.n)
        elif _spaces is not None:
            self.obs_shape, self.obs_dtype, self.n_actions = (
                tuple(_spaces[0]),
                np.dtype(_spaces[1]),
                int(_spaces[2]),
            )
        else:
            raise ValueError("DQNAgent needs an env (or is built by DQNAgent.load)")
        self.obs_dim = int(np.prod(self.obs_shape))

        # The seed of BaseLearner already seeded torch: the initial weights follow the seed.
        self.q_net = QNetwork(self.obs_dim, self.n_actions, self.net_arch, self.dropout, init).to(self.device)
        self.q_net_target = QNetwork(self.obs_dim, self.n_actions, self.net_arch, self.dropout)
        self.q_net_target.to(self.device)
        self.q_net_target.load_state_dict(self.q_net.state_dict())
        self.q_net_target.requires_grad_(False)
        # Eval mode (dropout off) everywhere but in the loss's forward (see _gradient_step).
        self.q_net.eval()
        self.q_net_target.eval()
        lr = self.lr_schedule(1.0)
        self.sparse_optimizer: torch.optim.SparseAdam | None = None
        if optimizer == "sparse_adam":
            assert self.q_net.input is not None
            self.q_net.input.sparse_grad = True
            sparse = [self.q_net.input.weight_t, self.q_net.head.weight, self.q_net.head.bias]
            dense = [p for p in self.q_net.parameters() if not any(p is q for q in sparse)]
            self.sparse_optimizer = torch.optim.SparseAdam(sparse, lr=lr)
            self.optimizer = torch.optim.Adam(dense, lr=lr)
        else:
            self.optimizer = torch.optim.Adam(self.q_net.parameters(), lr=lr, **_fast_adam(self.device))

        self.replay_buffer: CompactReplayBuffer | DenseReplayBuffer | None = None
        self._n_calls = 0
        self._n_updates = 0
        # max_a' Q_target(s', a') per compact state; NaN = not computed since the last sync.
        self._target_values: np.ndarray | None = None
        self._params = list(self.q_net.parameters())
        self._head_rows: torch.Tensor | None = None
        if self.sparse_optimizer is None:
            # Gradients stay allocated, see _zero_gradients.
            for param in self._params:
                param.grad = torch.zeros_like(param)
            if self.q_net.input is not None:
                self.q_net.input.defer_gradient = True  # written by _clip_gradients, scaled
        # Compact states as fill + sparse rows (see SparseStates), set up by learn when they apply.
        self._sparse: SparseStates | None = None
        self._sparse_max_density = 0.1

    def hyperparameters(self) -> dict[str, Any]:
        return {
            "algo": "dqn",
            "learning_rate": _learning_rate_json(self.learning_rate),
            "buffer_size": self.buffer_size,
            "learning_starts": self.learning_starts,
            "batch_size": self.batch_size,
            "tau": self.tau,
            "gamma": self.gamma,
            "train_freq": self.train_freq,
            "gradient_steps": self.gradient_steps,
            "target_update_interval": self.target_update_interval,
            "exploration_fraction": self.exploration_fraction,
            "exploration_initial_eps": self.exploration_initial_eps,
            "exploration_final_eps": self.exploration_final_eps,
            "max_grad_norm": self.max_grad_norm,
            "net_arch": json.dumps(self.net_arch),
            "replay": self.replay,
            "use_masking": self.use_masking,
            "sparse_inputs": self.sparse_inputs,
            "input_normalization": self.input_normalization,
            "dropout": self.dropout,
            "init": self.init,
            "optimizer": self.optimizer_name,
            "seed": self.seed,
        }

    # ------------------------------------------------------------------ replay buffer
    def _make_replay_buffer(self, runner: EnvRunner) -> CompactReplayBuffer | DenseReplayBuffer:
        if self.replay == "compact" and not runner.compact:
            raise ValueError(
                "replay='compact': the env must have n_states, observations(states) and info['state']"
            )
        if runner.compact and self.replay != "dense":
            return CompactReplayBuffer(
                self.buffer_size,
                self.n_actions,
                runner.observations,
                self.obs_shape,
                self.obs_dtype,
                store_masks=self.use_masking,
            )
        return DenseReplayBuffer(
            self.buffer_size, self.n_actions, self.obs_shape, self.obs_dtype, store_masks=self.use_masking
        )

    def _uses_target_cache(self) -> bool:
        """Targets depend on the state index alone: compact replay, a frozen target, no masks."""
        return (
            isinstance(self.replay_buffer, CompactReplayBuffer) and self.tau == 1.0 and not self.use_masking
        )

    # ------------------------------------------------------------------------- acting
    def _tensor(self, obs: np.ndarray) -> torch.Tensor:
        flat = np.asarray(obs, dtype=np.float32).reshape(len(obs), self.obs_dim)
        if self.input_normalization == "sqrt_count":
            flat = flat * sqrt_count_scale(flat)[:, None]
        return torch.from_numpy(flat).to(self.device)

    def _network_input(self, states: np.ndarray | None, obs: np.ndarray | None) -> torch.Tensor | SparseRows:
        """What the Q-network reads: sparse rows of compact states, or the non-zeros of mostly-zero
        observations, when that pays; else dense rows."""
        if self._sparse is not None and states is not None:
            sparse = self._sparse.batch(states)
            if sparse is not None:
                return sparse
        if obs is None:
            assert isinstance(self.replay_buffer, CompactReplayBuffer) and states is not None
            obs = self.replay_buffer.materialise(states)
        flat = np.asarray(obs, dtype=np.float32).reshape(len(obs), self.obs_dim)
        if self.sparse_optimizer is not None or (
            self.sparse_inputs
            and self.q_net.takes_sparse
            and np.count_nonzero(flat) <= self._sparse_max_density * flat.size
        ):
            scale = sqrt_count_scale(flat) if self.input_normalization == "sqrt_count" else None
            return sparse_rows_from_dense(flat, self.device, scale)
        return self._tensor(flat)

    def q_values(self, observation: np.ndarray) -> np.ndarray:
        """Q-values ``(B, n_actions)`` float32 of a batch of observations (or ``(n_actions,)`` for one)."""
        obs = np.asarray(observation)
        single = obs.shape == self.obs_shape
        batch = obs.reshape(-1, *self.obs_shape)
        out = np.empty((len(batch), self.n_actions), dtype=np.float32)
        with torch.no_grad():
            for start in range(0, len(batch), _CHUNK):
                out[start : start + _CHUNK] = (
                    self.q_net(self._tensor(batch[start : start + _CHUNK])).cpu().numpy()
                )
        return out[0] if single else out

    def _random_actions(self, n: int, masks: np.ndarray | None) -> np.ndarray:
        if masks is None:
            return self.rng.integers(0, self.n_actions, size=n)
        return np.array([self.rng.choice(np.flatnonzero(mask)) for mask in masks], dtype=np.int64)

    def _greedy_actions(
        self, obs: np.ndarray, masks: np.ndarray | None, states: np.ndarray | None = None
    ) -> np.ndarray:
        with torch.no_grad():
            q = self.q_net(self._network_input(states, obs)).cpu().numpy()
        if masks is not None:
            q = np.where(masks, q, -np.inf)
        return q.argmax(axis=1)

    def _epsilon_greedy(
        self, obs: np.ndarray, epsilon: float, masks: np.ndarray | None, states: np.ndarray | None = None
    ) -> np.ndarray:
        explore = self.rng.random(len(obs)) < epsilon
        actions = self._random_actions(len(obs), masks)
        if not explore.all():  # skip the forward pass when every sub-env explores
            greedy = self._greedy_actions(obs, masks, states)
            actions = np.where(explore, actions, greedy)
        return actions

    def predict(
        self,
        observation: np.ndarray,
        state: tuple[np.ndarray, ...] | None = None,
        episode_start: np.ndarray | None = None,
        deterministic: bool = True,
        action_masks: np.ndarray | None = None,
    ) -> tuple[np.ndarray, tuple[np.ndarray, ...] | None]:
        """SB3's ``predict``: greedy actions, or ε-greedy at ``exploration_rate`` when not deterministic."""
        obs = np.asarray(observation)
        single = obs.shape == self.obs_shape
        batch = obs.reshape(-1, *self.obs_shape)
        masks = None if action_masks is None else np.asarray(action_masks, dtype=bool).reshape(len(batch), -1)
        if deterministic:
            actions = self._greedy_actions(batch, masks)
        else:
            actions = self._epsilon_greedy(batch, self.exploration_rate, masks)
        return (actions[0] if single else actions), None

    # ------------------------------------------------------------------------ training
    def _next_state_values(self, batch: ReplayBatch) -> torch.Tensor:
        """``max_a' Q_target(s', a')`` per row (over the allowed actions when masking)."""
        if self._uses_target_cache():
            assert batch.next_states is not None
            return torch.from_numpy(self._cached_target_values(batch.next_states)).to(self.device)
        assert batch.next_observations is not None
        q_next = self.q_net_target(self._tensor(batch.next_observations))
        if batch.next_masks is not None:
            q_next = q_next.masked_fill(~torch.from_numpy(batch.next_masks).to(self.device), -torch.inf)
            # A state with no allowed action has no future.
            return torch.nan_to_num(q_next.max(dim=1).values, neginf=0.0)
        return q_next.max(dim=1).values

    def _cached_target_values(self, next_states: np.ndarray) -> np.ndarray:
        assert isinstance(self.replay_buffer, CompactReplayBuffer)
        if self._target_values is None:
            n_states = int(self.env.unwrapped.n_states)  # type: ignore[union-attr]
            self._target_values = np.full(n_states, np.nan, dtype=np.float32)
        values = self._target_values
        missing = np.unique(next_states[np.isnan(values[next_states])])
        for start in range(0, len(missing), _CHUNK):
            chunk = missing[start : start + _CHUNK]
            obs = self.replay_buffer.observations_fn(chunk.astype(np.int64))
            values[chunk] = self.q_net_target(self._tensor(obs)).max(dim=1).values.cpu().numpy()
        return values[next_states]

    def _update_target(self) -> None:
        polyak_update(self.q_net.parameters(), self.q_net_target.parameters(), self.tau)
        if self.q_net_target.input is not None:
            self.q_net_target.input.weights_changed()
        self._target_values = None

    # Gradients stay allocated (no 2.6 MB page-faulted in per step) and only the parts a step
    # can have written are zeroed and scaled: the head's gradient lives on the rows of the
    # batch's actions (a sparse embedding), the input layer's is overwritten by sparse batches.
    def _zero_gradients(self, input_overwritten: bool) -> None:
        net = self.q_net
        for param in self._params:
            assert param.grad is not None
            if param is net.head.weight:
                if self._head_rows is not None:
                    param.grad.index_fill_(0, self._head_rows, 0.0)
            elif not (input_overwritten and net.input is not None and param is net.input.weight_t):
                param.grad.zero_()

    def _clip_gradients(self, head_rows: torch.Tensor) -> None:
        """SB3's ``clip_grad_norm_(max_grad_norm)``, reading the head only on ``head_rows`` and the
        input layer's pending gradient only on its distinct rows (then written scaled)."""
        net = self.q_net
        head_grad = net.head.weight.grad
        assert head_grad is not None
        pending = net.input is not None and net.input.pending is not None
        sparse_params = (net.head.weight, net.input.weight_t if net.input is not None else None)
        others = [
            p.grad for p in self._params if p.grad is not None and not any(p is q for q in sparse_params)
        ]
        if net.input is not None and not pending and net.input.weight_t.grad is not None:
            others.append(net.input.weight_t.grad)
        touched = head_grad[head_rows]
        squared = float(nn.utils.get_total_norm(others)) ** 2 + float(torch.linalg.vector_norm(touched)) ** 2
        if pending:
            assert net.input is not None
            squared += net.input.pending_gradient_sq_norm()
        coef = min(1.0, self.max_grad_norm / (math.sqrt(squared) + 1e-6))
        if coef < 1.0:
            torch._foreach_mul_(others, coef)
            head_grad.index_copy_(0, head_rows, touched * coef)
        if pending:
            assert net.input is not None
            net.input.write_gradient(coef)

    def td_targets(self, batch: ReplayBatch) -> torch.Tensor:
        """``r + γ max_a' Q_target(s', a')``, with no future after a terminal state; a truncated
        one keeps its bootstrap (the episode was cut, the future exists)."""
        with torch.no_grad():
            next_values = self._next_state_values(batch)
            rewards = torch.from_numpy(np.asarray(batch.rewards, dtype=np.float32)).to(self.device)
            alive = torch.from_numpy(~np.asarray(batch.terminated, dtype=bool)).to(self.device, torch.float32)
            return rewards + alive * self.gamma * next_values

    def _update_learning_rate(self) -> float:
        """SB3's ``_update_learning_rate``: the schedule at the current progress, into every optimiser."""
        progress_remaining = 1.0 - self.num_timesteps / max(self._total_timesteps, 1)
        lr = float(self.lr_schedule(progress_remaining))
        for optimizer in (self.optimizer, self.sparse_optimizer):
            for group in [] if optimizer is None else optimizer.param_groups:
                group["lr"] = lr
        return lr

    def _gradient_step(
        self, inputs: torch.Tensor | SparseRows, actions: np.ndarray, targets: torch.Tensor
    ) -> None:
        """One Huber-loss step of ``Q(inputs, actions)`` towards ``targets`` (dropout on)."""
        actions_t = torch.from_numpy(actions.astype(np.int64)).to(self.device)
        if self.sparse_optimizer is not None:
            loss = self._sparse_gradient_step(inputs, actions_t, targets)
        else:
            self._zero_gradients(input_overwritten=isinstance(inputs, SparseRows))
            self.q_net.train(True)
            loss = F.smooth_l1_loss(self.q_net.q_of(inputs, actions_t), targets)
            self.q_net.train(False)
            loss.backward()
            self._head_rows = torch.unique(actions_t)
            self._clip_gradients(self._head_rows)
            self.optimizer.step()
        if self.q_net.input is not None:
            self.q_net.input.weights_changed()
        self._n_updates += 1
        self._record_loss(float(loss.item()))

    def _sparse_gradient_step(
        self, inputs: torch.Tensor | SparseRows, actions: torch.Tensor, targets: torch.Tensor
    ) -> torch.Tensor:
        """The step of ``optimizer="sparse_adam"``: plain autograd, the first layer's weights and the
        head's get gradients on the touched rows only, SparseAdam updates just those rows."""
        assert self.sparse_optimizer is not None and isinstance(inputs, SparseRows)
        self.optimizer.zero_grad(set_to_none=True)
        self.sparse_optimizer.zero_grad(set_to_none=True)
        self.q_net.train(True)
        loss = F.smooth_l1_loss(self.q_net.q_of(inputs, actions), targets)
        self.q_net.train(False)
        loss.backward()
        head_bias = self.q_net.head.bias
        assert head_bias.grad is not None
        # head.bias[actions] has a dense gradient that is 0 off the batch's actions: keep its
        # touched entries only, so that SparseAdam leaves the other movies' biases alone.
        rows = torch.unique(actions)
        head_bias.grad = torch.sparse_coo_tensor(
            rows[None], head_bias.grad[rows], head_bias.shape, check_invariants=False
        )
        grads = [p.grad for p in self._params if p.grad is not None]
        # SB3's clip_grad_norm_(max_grad_norm), over the stored values of the sparse gradients.
        norms = [torch.linalg.vector_norm(g.coalesce().values() if g.is_sparse else g) for g in grads]
        total = float(torch.linalg.vector_norm(torch.stack(norms)))
        coef = min(1.0, self.max_grad_norm / (total + 1e-6))
        if coef < 1.0:
            for param in self._params:
                if param.grad is not None:
                    param.grad = param.grad * coef
        self.optimizer.step()
        self.sparse_optimizer.step()
        return loss

    def train(self, gradient_steps: int, batch_size: int) -> None:
        """``gradient_steps`` Huber-loss steps on uniformly sampled batches."""
        assert self.replay_buffer is not None
        self._update_learning_rate()
        cached = self._uses_target_cache()
        for _ in range(gradient_steps):
            indices = self.replay_buffer.sample_indices(batch_size, self.rng)
            batch = self.replay_buffer.get(
                indices, observations=self._sparse is None, next_observations=not cached
            )
            targets = self.td_targets(batch)
            inputs = self._network_input(batch.states, batch.observations)
            self._gradient_step(inputs, batch.actions, targets)

    def train_on_fresh(self, obs: np.ndarray, actions: np.ndarray, step: StepResult) -> None:
        """``buffer_size=0``: one gradient step on the transitions the last env step collected."""
        self._update_learning_rate()
        keep = step.valid
        if not keep.any():
            return
        rewards = torch.from_numpy(step.rewards[keep].astype(np.float32)).to(self.device)
        if self.gamma == 0.0:
            targets = rewards  # no future term: skip the target network's forward
        else:
            batch = ReplayBatch(
                observations=None,
                actions=actions[keep],
                rewards=step.rewards[keep],
                next_observations=step.next_obs[keep],
                terminated=step.terminated[keep],
                truncated=step.truncated[keep],
                states=None,
                next_states=None,
                next_masks=None if step.next_masks is None else step.next_masks[keep],
            )
            targets = self.td_targets(batch)
        self._gradient_step(self._network_input(None, obs[keep]), actions[keep], targets)

    def _record_train_extras(self) -> None:
        self.logger.record("train/n_updates", self._n_updates)
        self.logger.record("train/learning_rate", self.optimizer.param_groups[0]["lr"])

    def _store(
        self, runner: EnvRunner, obs: np.ndarray, states: np.ndarray | None, actions: np.ndarray, step: Any
    ) -> None:
        keep = step.valid
        masks = None if step.next_masks is None else step.next_masks[keep]
        buffer = self.replay_buffer
        if isinstance(buffer, CompactReplayBuffer):
            assert states is not None and step.next_states is not None
            buffer.add(
                states[keep],
                actions[keep],
                step.rewards[keep],
                step.next_states[keep],
                step.terminated[keep],
                step.truncated[keep],
                masks,
            )
        elif isinstance(buffer, DenseReplayBuffer):
            buffer.add(
                obs[keep],
                actions[keep],
                step.rewards[keep],
                step.next_obs[keep],
                step.terminated[keep],
                step.truncated[keep],
                masks,
            )

    # --------------------------------------------------------------------------- learn
    def learn(
        self,
        total_timesteps: int,
        callback: MaybeCallback = None,
        log_interval: int | None = 4,
        tb_log_name: str = "dqn",
        reset_num_timesteps: bool = True,
        progress_bar: bool = False,
    ) -> DQNAgent:
        """Collect ``total_timesteps`` env steps, training every ``train_freq`` steps (SB3's loop)."""
        runner = self._runner_for_learning(reset_num_timesteps, self.use_masking)
        fresh = self.buffer_size == 0
        if self.replay_buffer is None and not fresh:
            self.replay_buffer = self._make_replay_buffer(runner)
        if (
            self.sparse_inputs
            and self.input_normalization is None
            and self.sparse_optimizer is None
            and self._sparse is None
            and isinstance(self.replay_buffer, CompactReplayBuffer)
            and self.q_net.takes_sparse
            and len(self.obs_shape) == 1
        ):
            self._sparse = SparseStates(
                runner.observations,
                int(runner.n_states or 0),
                self.obs_dim,
                self.device,
                self._sparse_max_density,
            )
        total_timesteps, callback = self._setup_learn(
            total_timesteps, callback, reset_num_timesteps, tb_log_name, progress_bar
        )
        gradient_steps = self.gradient_steps if self.gradient_steps >= 0 else self.train_freq * runner.n_envs
        target_every = max(self.target_update_interval // runner.n_envs, 1)
        callback.on_training_start(locals(), globals())

        while self.num_timesteps < total_timesteps:
            # 1. act: uniform at random before learning_starts, then ε-greedy
            epsilon = self._update_exploration_rate()
            masks = runner.action_masks() if self.use_masking else None
            obs, states = runner.obs, runner.states
            if self.num_timesteps < self.learning_starts:
                actions = self._random_actions(runner.n_envs, masks)
            else:
                actions = self._epsilon_greedy(obs, epsilon, masks, states)

            # 2. step and remember
            step = runner.step(actions)
            self.num_timesteps += runner.n_envs
            if not fresh:
                self._store(runner, obs, states, actions, step)
            self._n_calls += 1
            if self._n_calls % target_every == 0:
                self._update_target()

            # The names SB3's collect_rollouts exposes to callbacks (StopTrainingOnMaxEpisodes reads dones).
            new_obs, rewards, dones, infos = (
                runner.obs,
                step.rewards,
                step.terminated | step.truncated,
                step.infos,
            )
            callback.update_locals(locals())
            if not callback.on_step():
                break
            self._record_episodes(step.episodes, log_interval)

            # 3. learn from the batch just collected (buffer_size=0), or from a replayed one
            if fresh and self.num_timesteps > self.learning_starts:
                self.train_on_fresh(obs, actions, step)
            elif self._n_calls % self.train_freq == 0 and self.num_timesteps > self.learning_starts:
                self.train(gradient_steps, self.batch_size)

        self.dump_logs()
        callback.on_training_end()
        return self

    # ------------------------------------------------------------------------ save/load
    def save(self, path: str | Path) -> Path:
        """Write the weights (torch ``state_dict``s, no pickle) and a JSON of hyperparameters.

        ``path`` (``.pt`` added when it has no suffix) holds the online and target networks, the
        optimizer state and the same JSON as a string; ``<path without suffix>.json`` is the
        human-readable copy. Both are written atomically. Returns the weights' path.
        """
        target = Path(path)
        if not target.suffix:
            target = target.with_suffix(".pt")
        meta = {
            "hyperparameters": self.hyperparameters(),
            "net_arch": self.net_arch,
            "obs_shape": list(self.obs_shape),
            "obs_dtype": self.obs_dtype.str,
            "n_actions": self.n_actions,
            "num_timesteps": self.num_timesteps,
            "n_updates": self._n_updates,
        }
        checkpoint: dict[str, Any] = {
            "q_net": self.q_net.state_dict(),
            "q_net_target": self.q_net_target.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "meta_json": json.dumps(meta),
        }
        if self.sparse_optimizer is not None:
            checkpoint["sparse_optimizer"] = self.sparse_optimizer.state_dict()
        with atomic_path(target) as tmp:
            torch.save(checkpoint, tmp)
        save_json(target.with_suffix(".json"), meta)
        return target

    @classmethod
    def load(cls, path: str | Path, env: gym.Env | VectorEnv | None = None, device: str = "auto") -> DQNAgent:
        """Load a model written by ``save`` (``torch.load(weights_only=True)``)."""
        target = Path(path)
        if not target.is_file() and not target.suffix and target.with_suffix(".pt").is_file():
            target = target.with_suffix(".pt")
        checkpoint = torch.load(target, map_location=get_device(device), weights_only=True)
        if not isinstance(checkpoint, dict) or "meta_json" not in checkpoint:
            raise ValueError(f"{target}: not a DQNAgent checkpoint (meta_json missing)")
        meta = json.loads(checkpoint["meta_json"])
        hp = meta["hyperparameters"]
        agent = cls(
            env,
            learning_rate=hp["learning_rate"],
            buffer_size=hp["buffer_size"],
            learning_starts=hp["learning_starts"],
            batch_size=hp["batch_size"],
            tau=hp["tau"],
            gamma=hp["gamma"],
            train_freq=hp["train_freq"],
            gradient_steps=hp["gradient_steps"],
            target_update_interval=hp["target_update_interval"],
            exploration_fraction=hp["exploration_fraction"],
            exploration_initial_eps=hp["exploration_initial_eps"],
            exploration_final_eps=hp["exploration_final_eps"],
            max_grad_norm=hp["max_grad_norm"],
            net_arch=meta["net_arch"],
            replay=hp["replay"],
            use_masking=hp["use_masking"],
            sparse_inputs=hp.get("sparse_inputs", True),
            input_normalization=hp.get("input_normalization"),
            dropout=hp.get("dropout", 0.0),
            init=hp.get("init", "linear"),
            optimizer=hp.get("optimizer", "adam"),
            device=device,
            seed=hp["seed"],
            _spaces=(tuple(meta["obs_shape"]), meta["obs_dtype"], meta["n_actions"]),
        )
        if (agent.obs_shape, agent.n_actions) != (tuple(meta["obs_shape"]), meta["n_actions"]):
            raise ValueError(
                f"{target}: saved for observations {tuple(meta['obs_shape'])} and "
                f"{meta['n_actions']} actions, the env has {agent.obs_shape} and {agent.n_actions}"
            )
        agent.q_net.load_state_dict(checkpoint["q_net"])
        agent.q_net_target.load_state_dict(checkpoint["q_net_target"])
        agent.optimizer.load_state_dict(checkpoint["optimizer"])
        if agent.sparse_optimizer is not None:
            agent.sparse_optimizer.load_state_dict(checkpoint["sparse_optimizer"])
        agent.num_timesteps = int(meta["num_timesteps"])
        agent._n_updates = int(meta["n_updates"])
        return agent


def _fast_adam(device: torch.device) -> dict[str, Any]:
    """Fused Adam: one pass over the weights instead of a dozen; same update up to rounding."""
    try:
        torch.optim.Adam([torch.zeros(1, device=device, requires_grad=True)], fused=True)
    except (RuntimeError, TypeError):
        return {}
    return {"fused": True}
