"""Features extractors over a sequence observation (``observation="sequence"``): GRU4Rec and SASRec.

The observation is ``(batch, 2, L)``: row 0 the last ``L`` movies as ``index + 1`` (0 is
padding, on the left), row 1 their ratings / 5, oldest first. Both extractors embed each movie
(plus its rating), read the sequence in order and return the state after the latest movie:

* :class:`GRUSequenceExtractor`: a GRU over the embedded sequence (GRU4Rec, Hidasi et al. 2016).
* :class:`SelfAttentionSequenceExtractor`: item and position embeddings through causal
  self-attention blocks (SASRec, Kang and McAuley 2018): position ``t`` attends to ``<= t`` only.

Use them through SB3's ``features_extractor_class`` (DQN, QR-DQN, PPO, A2C, MaskablePPO) or our
learners' ``features_extractor``. ``embedding`` is the movie table (``(n_movies + 1, dim)``, row 0
the padding): a movie-scoring head can score with rows ``1:`` of it.
"""

from __future__ import annotations

import gymnasium as gym
import torch
from stable_baselines3.common.torch_layers import BaseFeaturesExtractor
from torch import nn

__all__ = ["GRUSequenceExtractor", "SelfAttentionSequenceExtractor"]


def _sequence_shape(observation_space: gym.spaces.Box) -> tuple[int, int]:
    """``(n_movies, L)`` of a sequence observation space."""
    shape = observation_space.shape
    if shape is None or len(shape) != 2 or shape[0] != 2:
        raise ValueError(
            f"a sequence extractor needs observation='sequence' ((2, L) observations), got {shape}"
        )
    return int(observation_space.high[0, 0]), int(shape[1])


class _SequenceEmbedding(nn.Module):
    """Each position's movie embedding plus its rating times a learned direction."""

    def __init__(self, n_movies: int, dim: int) -> None:
        super().__init__()
        self.embedding = nn.Embedding(n_movies + 1, dim, padding_idx=0)
        nn.init.normal_(self.embedding.weight, std=dim**-0.5)
        with torch.no_grad():
            self.embedding.weight[0].zero_()
        self.rating = nn.Parameter(torch.zeros(dim))

    def forward(self, observations: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        movies = observations[:, 0].long()
        ratings = observations[:, 1].unsqueeze(-1)
        return self.embedding(movies) + ratings * self.rating, movies


class GRUSequenceExtractor(BaseFeaturesExtractor):
    """GRU4Rec as an SB3 features extractor: the GRU's state after the latest movie.

    :param observation_space: a ``(2, L)`` sequence observation space.
    :param features_dim: the GRU's hidden size (the features); default 64.
    :param embedding_dim: the movie embedding's width; default 64.
    """

    def __init__(
        self, observation_space: gym.spaces.Box, features_dim: int = 64, embedding_dim: int = 64
    ) -> None:
        super().__init__(observation_space, features_dim)
        n_movies, _ = _sequence_shape(observation_space)
        self.items = _SequenceEmbedding(n_movies, embedding_dim)
        self.gru = nn.GRU(embedding_dim, features_dim, batch_first=True)

    @property
    def embedding(self) -> nn.Embedding:
        return self.items.embedding

    def forward(self, observations: torch.Tensor) -> torch.Tensor:
        embedded, _ = self.items(observations)
        _, last = self.gru(embedded)  # padding is on the left: the last step is the latest movie
        return last[-1]


class SelfAttentionSequenceExtractor(BaseFeaturesExtractor):
    """SASRec as an SB3 features extractor: causal self-attention blocks, the latest position's output.

    :param observation_space: a ``(2, L)`` sequence observation space.
    :param features_dim: the model width (embeddings and features); default 64.
    :param n_blocks: self-attention blocks; default 2 (SASRec's).
    :param n_heads: attention heads; default 1 (SASRec's).
    :param dropout: dropout in the blocks while training; default 0.2 (SASRec's for MovieLens).
    """

    def __init__(
        self,
        observation_space: gym.spaces.Box,
        features_dim: int = 64,
        n_blocks: int = 2,
        n_heads: int = 1,
        dropout: float = 0.2,
    ) -> None:
        super().__init__(observation_space, features_dim)
        n_movies, length = _sequence_shape(observation_space)
        self.items = _SequenceEmbedding(n_movies, features_dim)
        self.positions = nn.Parameter(torch.randn(length, features_dim) * features_dim**-0.5)
        block = nn.TransformerEncoderLayer(
            features_dim, n_heads, dim_feedforward=features_dim, dropout=dropout, batch_first=True,
            norm_first=True,
        )  # fmt: skip
        self.blocks = nn.TransformerEncoder(block, n_blocks, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(features_dim)
        self.register_buffer("causal", torch.triu(torch.ones(length, length, dtype=torch.bool), diagonal=1))

    @property
    def embedding(self) -> nn.Embedding:
        return self.items.embedding

    def encode(self, observations: torch.Tensor) -> torch.Tensor:
        """Every position's output, ``(batch, L, features_dim)``: position ``t`` has seen ``<= t``."""
        embedded, movies = self.items(observations)
        hidden = (embedded + self.positions) * (movies > 0).unsqueeze(-1)  # padding stays 0 going in
        return self.norm(self.blocks(hidden, mask=self.causal, is_causal=True))

    def forward(self, observations: torch.Tensor) -> torch.Tensor:
        return self.encode(observations)[:, -1]
