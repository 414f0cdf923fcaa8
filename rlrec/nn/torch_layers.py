"""Features extractors for catalogue-sized observations (SB3's ``features_extractor_class``).

An rlrec observation has one entry per movie (10,329 on ml-latest-small-2016) and is zero on all
but the few movies a user has seen. SB3's ``FlattenExtractor`` hands the whole row to a dense
``Linear``: ``B x n_movies x width`` multiply-adds and, worse, a dense ``n_movies x width`` gradient
and Adam step per update. :class:`SparseInputExtractor` reads only the non-zero entries of each
row (an embedding bag weighted by the entries), which is the same linear map.
"""

from __future__ import annotations

import math

import gymnasium as gym
import torch
from stable_baselines3.common.torch_layers import BaseFeaturesExtractor
from torch import nn
from torch.nn import functional as F

__all__ = ["NORMALIZATIONS", "SparseInputExtractor", "nonzero_entries", "sparse_row_sum", "sqrt_count_scale"]

NORMALIZATIONS = (None, "sqrt_count")
#: Batches with more than 1 / _DENSE_FROM of their entries non-zero take the dense product.
_DENSE_FROM = 8


def sqrt_count_scale(obs: torch.Tensor) -> torch.Tensor:
    """``1 / sqrt(#non-zeros)`` per row of a ``(B, n)`` batch (1 for an all-zero row), shape ``(B,)``.

    Mult-DAE's input normalisation: a row showing 20% of a history and one showing all of it then
    reach the hidden layer at the same scale.
    """
    counts = (obs != 0).sum(dim=1).clamp(min=1).to(obs.dtype)
    return counts.rsqrt()


def nonzero_entries(
    obs: torch.Tensor, normalization: str | None = None
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(row, column, value)`` of every non-zero entry of a ``(B, n)`` batch, row-major; with
    ``normalization="sqrt_count"`` each value is divided by its row's :func:`sqrt_count_scale`."""
    rows, columns = obs.nonzero(as_tuple=True)
    values = obs[rows, columns]
    if normalization == "sqrt_count":
        values = values * sqrt_count_scale(obs)[rows]
    return rows, columns, values


def sparse_row_sum(
    rows: torch.Tensor, columns: torch.Tensor, values: torch.Tensor, n_rows: int, table: torch.Tensor
) -> torch.Tensor:
    """``x @ table`` for the ``n_rows`` rows of ``x`` given by :func:`nonzero_entries`: each row
    sums ``value * table[column]`` over its entries (``F.embedding_bag``, one table row read per entry)."""
    # nonzero() lists row-major, so each row's entries are contiguous: offsets = row starts.
    counts = torch.bincount(rows, minlength=n_rows)
    offsets = torch.cumsum(counts, 0) - counts
    return F.embedding_bag(columns, table, offsets, mode="sum", per_sample_weights=values)


class SparseInputExtractor(BaseFeaturesExtractor):
    """``activation(x W + b)`` over the non-zero entries of each observation, then dropout.

    Equal to ``nn.Linear(n, features_dim)`` on the dense row (up to float rounding): row ``i`` sums
    ``x[i, j] * W[j]`` over its non-zero ``j`` only (``F.embedding_bag`` with per-sample weights);
    a batch that is mostly non-zero takes the dense product instead, which is then cheaper.
    Its weight is ``(n, features_dim)``, one row per movie, so a batch's gradient is non-zero on
    the rows of the movies it shows: :class:`rlrec.nn.RowSparseAdam` then updates only those.

    Works under every SB3 / sb3-contrib algorithm with a ``Box`` observation through
    ``policy_kwargs=dict(features_extractor_class=SparseInputExtractor,
    features_extractor_kwargs=dict(features_dim=256, ...))``; for actor-critic algorithms keep
    ``share_features_extractor=True`` (SB3's default) so the big table exists once.

    :param observation_space: a flat ``Box`` (what rlrec's envs give).
    :param features_dim: width of the output (the embedding size); default 256 (the session
        recipe's hidden layer).
    :param normalization: ``None`` (default) or ``"sqrt_count"``: divide each row by the square
        root of its number of non-zeros (:func:`sqrt_count_scale`).
    :param dropout: dropout probability on the output, active in ``train()`` mode only (SB3 puts
        policies in ``train()`` mode for gradient steps and ``eval()`` mode to act); default 0.
    :param activation_fn: applied to ``x W + b``; default ``nn.ReLU``; ``None`` for a linear map.
    :param init_std: standard deviation of the initial weights; default ``1/sqrt(features_dim)``
        (an embedding's: for unit-norm inputs the outputs start at unit scale, where
        ``nn.Linear``'s ``uniform(+-1/sqrt(n))`` starts them ~``sqrt(n / features_dim)`` times
        smaller). Biases start at 0.
    """

    def __init__(
        self,
        observation_space: gym.spaces.Box,
        features_dim: int = 256,
        normalization: str | None = None,
        dropout: float = 0.0,
        activation_fn: type[nn.Module] | None = nn.ReLU,
        init_std: float | None = None,
    ) -> None:
        if not isinstance(observation_space, gym.spaces.Box) or len(observation_space.shape) != 1:
            raise ValueError(
                f"SparseInputExtractor needs a flat Box observation space, got {observation_space}"
            )
        if normalization not in NORMALIZATIONS:
            raise ValueError(f"normalization must be None or 'sqrt_count', got {normalization!r}")
        if not 0.0 <= float(dropout) < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {dropout}")
        if int(features_dim) < 1:
            raise ValueError(f"features_dim must be >= 1, got {features_dim}")
        super().__init__(observation_space, int(features_dim))
        n_inputs = int(observation_space.shape[0])
        self.normalization = normalization
        std = 1.0 / math.sqrt(features_dim) if init_std is None else float(init_std)
        self.weight = nn.Parameter(torch.randn(n_inputs, int(features_dim)) * std)
        self.bias = nn.Parameter(torch.zeros(int(features_dim)))
        self.activation = activation_fn() if activation_fn is not None else nn.Identity()
        self.dropout = nn.Dropout(float(dropout))

    def forward(self, observations: torch.Tensor) -> torch.Tensor:
        obs = observations.reshape(observations.shape[0], -1).to(self.weight.dtype)
        nonzeros = int(torch.count_nonzero(obs))
        if nonzeros * _DENSE_FROM > obs.numel():
            # Mostly non-zero rows (MovieLens-v0's profiles: a mean rating everywhere): the dense
            # product is the same map, and BLAS beats gathering every row of the table.
            if self.normalization == "sqrt_count":
                obs = obs * sqrt_count_scale(obs)[:, None]
            return self.dropout(self.activation(torch.addmm(self.bias, obs, self.weight)))
        rows, columns, values = nonzero_entries(obs, self.normalization)
        hidden = sparse_row_sum(rows, columns, values, obs.shape[0], self.weight)
        return self.dropout(self.activation(hidden + self.bias))
