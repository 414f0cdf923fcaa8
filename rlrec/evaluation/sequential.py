"""SASRec and GRU4Rec as baselines: next-item models over each user's train history in time order.

Each user's train ratings, oldest first, are the sequence; the model reads the last
``max_length`` of them (the encoders of :mod:`rlrec.nn.sequence`, the env's
``observation="sequence"`` encoding) and is trained with the standard next-item objective: at
every position, a softmax over the catalogue (scores: the encoder's output against the movie
embedding table, tied as in SASRec) should put the next movie first. A user's scores are the
softmax's logits after the latest movie.

The number of epochs is chosen on validation: :func:`fit_sequential` first trains on the fit part
of :func:`rlrec.data.split.validation_split` of the train data, ranks the validation part after
every ``eval_every`` epochs, then trains again from scratch on all of train for the best count.
The test part is never read.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import gymnasium
import numpy as np
import torch
from torch import nn

from rlrec.data.dataset import RATING_MAX, RatingsDataset
from rlrec.data.split import validation_split
from rlrec.evaluation.metrics import evaluate_scores
from rlrec.nn.sequence import GRUSequenceExtractor, SelfAttentionSequenceExtractor

__all__ = ["SequenceModel", "fit_sequential", "sequences_of"]

ENCODERS = {"sasrec": SelfAttentionSequenceExtractor, "gru4rec": GRUSequenceExtractor}


def sequences_of(train: RatingsDataset, length: int) -> np.ndarray:
    """``(n_users, 2, length)``: each user's last ``length`` train ratings, oldest first, as the
    env's ``observation="sequence"`` (movie index + 1, 0 padding on the left; rating / 5)."""
    matrix = train.ratings
    owner = np.repeat(np.arange(train.n_users), np.diff(matrix.indptr))
    since = train.ratings_since
    kept = since < length
    slots = length - 1 - since[kept]
    out = np.zeros((train.n_users, 2, length), dtype=np.float32)
    out[owner[kept], 0, slots] = matrix.indices[kept] + 1
    out[owner[kept], 1, slots] = matrix.data[kept] / np.float32(RATING_MAX)
    return out


@dataclass
class SequenceModel:
    """A trained next-item model and the sequences it scores from."""

    encoder: nn.Module
    sequences: np.ndarray
    epochs: int
    curve: list[tuple[int, float]] = field(default_factory=list)

    @torch.no_grad()
    def score(self, user_indices: np.ndarray) -> np.ndarray:
        self.encoder.eval()
        obs = torch.as_tensor(self.sequences[np.asarray(user_indices, dtype=np.int64)][:, :, 1:])
        return _logits(self.encoder, obs)[:, -1].numpy()


def _all_positions(encoder: nn.Module, obs: torch.Tensor) -> torch.Tensor:
    """``(batch, L, dim)``: the encoder's output after each position."""
    if isinstance(encoder, SelfAttentionSequenceExtractor):
        return encoder.encode(obs)
    assert isinstance(encoder, GRUSequenceExtractor)
    embedded, _ = encoder.items(obs)
    outputs, _ = encoder.gru(embedded)
    return outputs


def _logits(encoder: nn.Module, obs: torch.Tensor) -> torch.Tensor:
    """Next-movie logits after each position, ``(batch, L, n_movies)`` (the tied embedding table)."""
    embedding: nn.Embedding = encoder.embedding  # type: ignore[assignment]
    table = embedding.weight[1:]
    return _all_positions(encoder, obs) @ table.T


def _train(
    kind: str, sequences: np.ndarray, n_movies: int, epochs: int, options: dict[str, Any], seed: int,
    after_epoch: Any = None,
) -> nn.Module:  # fmt: skip
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    length = sequences.shape[2] - 1
    high = np.ones((2, length), dtype=np.float32)
    high[0] = n_movies
    space = gymnasium.spaces.Box(0.0, high, dtype=np.float32)
    dim = int(options.get("dim", 64))
    extra = {"dropout": float(options["dropout"])} if kind == "sasrec" else {"embedding_dim": dim}
    encoder = ENCODERS[kind](space, features_dim=dim, **extra)
    optimizer = torch.optim.Adam(encoder.parameters(), lr=float(options.get("lr", 1e-3)))
    data = torch.as_tensor(sequences)
    trainable = np.flatnonzero((sequences[:, 0] > 0).sum(axis=1) >= 2)  # at least one (input, next) pair
    batch_size = int(options.get("batch_size", 64))
    for epoch in range(1, epochs + 1):
        encoder.train()
        order = torch.as_tensor(rng.permutation(trainable))
        for start in range(0, len(order), batch_size):
            batch = data[order[start : start + batch_size]]
            inputs, targets = batch[:, :, :-1], batch[:, 0, 1:].long() - 1
            valid = (targets >= 0) & (inputs[:, 0] > 0)  # a real next movie after a real one
            logits = _logits(encoder, inputs)
            loss = nn.functional.cross_entropy(logits[valid], targets[valid])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        if after_epoch is not None:
            after_epoch(epoch, encoder)
    return encoder


def fit_sequential(
    kind: str,
    train: RatingsDataset,
    epochs: int | None = None,
    max_epochs: int = 40,
    eval_every: int = 5,
    max_length: int = 50,
    seed: int = 0,
    k: int = 10,
    **options: Any,
) -> SequenceModel:
    """Train ``kind`` (``"sasrec"`` or ``"gru4rec"``) on ``train``; ``epochs=None``: the count is
    chosen on validation (see the module doc) among ``eval_every, 2 * eval_every, ... max_epochs``.

    :param options: ``dim`` (64), ``lr`` (1e-3), ``batch_size`` (64), ``dropout`` (SASRec, 0.2).
    """
    options = {"dropout": 0.2, **options}
    curve: list[tuple[int, float]] = []
    if epochs is None:
        split = validation_split(train)
        fit_part = sequences_of(split.train, max_length + 1)

        def rank(epoch: int, encoder: nn.Module) -> None:
            if epoch % eval_every == 0:
                model = SequenceModel(encoder, fit_part, epoch)
                curve.append((epoch, float(evaluate_scores(model.score, split, k=k)[f"ndcg@{k}"])))

        _train(kind, fit_part, train.n_movies, max_epochs, options, seed, rank)
        epochs = max(curve, key=lambda point: point[1])[0]  # max keeps the first of equals
    sequences = sequences_of(train, max_length + 1)
    encoder = _train(kind, sequences, train.n_movies, int(epochs), options, seed)
    return SequenceModel(encoder, sequences, int(epochs), curve)
