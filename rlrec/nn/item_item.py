"""A full-rank linear item-item Q-network: ``Q(s, i) = b_i + sum_j x_j W[j, i]``.

EASE's and SLIM's model (one weight per pair of movies, what each watched movie says about each
other movie) as the Q-network of rlrec's value learners, learned from interaction: a batch's
labels are the movies its slates showed, so a gradient step touches the weights between the
movies the observations show and the movies shown, ``B x nnz x K`` entries out of ``n^2``.
:class:`ItemItemQNetwork` hands that gradient over as a sparse tensor of exactly those entries,
and :class:`~rlrec.nn.RowSparseAdam` updates those entries only; acting reads one weight row per
non-zero of the observation (an embedding bag), as :class:`~rlrec.nn.SparseInputExtractor` does.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
import torch
from torch import nn

from rlrec.nn.torch_layers import NORMALIZATIONS, nonzero_entries, sparse_row_sum

__all__ = ["ItemItemQNetwork"]


class _GatherPairs(torch.autograd.Function):
    """``weight[rows, columns]`` whose gradient is a sparse tensor of those entries only (the
    dense gradient of an ``n x n`` table would be written and read whole on every step)."""

    @staticmethod
    def forward(ctx: Any, weight: torch.Tensor, rows: torch.Tensor, columns: torch.Tensor) -> torch.Tensor:
        ctx.save_for_backward(rows, columns)
        ctx.shape = weight.shape
        return weight[rows, columns]

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor, None, None]:
        rows, columns = ctx.saved_tensors
        indices = torch.stack([rows, columns])
        return torch.sparse_coo_tensor(indices, grad, ctx.shape, check_invariants=False), None, None


class ItemItemQNetwork(nn.Module):
    """``Q(s, i) = b_i + sum_j x_j W[j, i]`` over an observation with one entry per movie.

    The interface of :class:`~rlrec.nn.QNetwork` (``forward``, ``q_of``, ``q_of_slates``). ``W``
    starts at 0, so the first Q-values are the biases (0) and the labels shape every weight; its
    diagonal stays 0 when the learner never acts on a movie the observation shows (masked acting:
    a shown movie is never the label of its own row), as EASE constrains it.

    :param observation_space: a flat ``Box`` of ``n_actions`` entries (rlrec's catalogue envs).
    :param n_actions: the number of movies.
    :param input_normalization: ``None`` or ``"sqrt_count"`` (see
        :func:`~rlrec.nn.sqrt_count_scale`): a row showing 20% of a history and one showing all
        of it then give Q-values on the same scale.
    """

    def __init__(
        self, observation_space: gym.spaces.Box, n_actions: int, input_normalization: str | None = None
    ) -> None:
        super().__init__()
        obs_dim = int(np.prod(observation_space.shape))
        if obs_dim != int(n_actions):
            raise ValueError(
                f"ItemItemQNetwork needs one observation entry per movie: "
                f"{obs_dim} entries, {n_actions} movies"
            )
        if input_normalization not in NORMALIZATIONS:
            raise ValueError(f"input_normalization must be None or 'sqrt_count', got {input_normalization!r}")
        self.input_normalization = input_normalization
        self.weight = nn.Parameter(torch.zeros(obs_dim, int(n_actions)))
        self.bias = nn.Parameter(torch.zeros(int(n_actions)))

    def _nonzeros(self, obs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(row, movie, value)`` of every non-zero observation entry, row-major."""
        return nonzero_entries(obs.reshape(len(obs), -1).to(self.weight.dtype), self.input_normalization)

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        rows, movies, values = self._nonzeros(obs)
        return sparse_row_sum(rows, movies, values, len(obs), self.weight) + self.bias

    def q_of_slates(self, obs: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        """``Q(obs_b, actions_b_k)``, ``(B, K)``, from the ``nnz x K`` weights involved only."""
        rows, movies, values = self._nonzeros(obs)
        slots = actions.shape[1]
        weights = _GatherPairs.apply(
            self.weight, movies.repeat_interleave(slots), actions[rows].reshape(-1)
        ).reshape(-1, slots)
        q = torch.zeros(actions.shape, dtype=self.weight.dtype, device=self.weight.device)
        return q.index_add(0, rows, weights * values[:, None]) + self.bias[actions]

    def q_of(self, obs: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        """``Q(obs_i, actions_i)``, equal to ``forward(obs).gather(1, actions)``."""
        return self.q_of_slates(obs, actions.reshape(-1, 1)).reshape(-1)
