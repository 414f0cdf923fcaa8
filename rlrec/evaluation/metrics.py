"""Top-K ranking metrics with binary relevance, one user at a time and vectorised over users.

Conventions (the issue's):

* a test movie is *relevant* when its test rating is >= ``RELEVANCE_THRESHOLD`` (4.0);
* each user's ranking runs over the whole catalogue minus the movies of their train part;
* NDCG uses gains 1 / log2(rank + 1) with ranks from 1, and IDCG over ``min(K, #relevant)``;
* Recall divides the hits by the number of relevant movies (not by ``min(K, #relevant)``);
* MRR is 1 / rank of the first relevant movie within the top K, 0 when there is none;
* averages run over the users with at least one relevant test movie; catalogue coverage is the
  fraction of all movies that appear in at least one of those users' top K;
* on a synthetic world (the train part has a ``truth``), ``regret@K`` is the mean true expected
  rating per slot the top K gives up against the K best movies the user may be recommended;
* ties in score are broken by movie index (lower first), so rankings are deterministic.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from rlrec.data.dataset import LIKED_RATING

if TYPE_CHECKING:
    from rlrec.data.split import Split

__all__ = [
    "METRIC_NAMES",
    "RELEVANCE_THRESHOLD",
    "ScoreFn",
    "evaluate_scores",
    "hit_rate_at_k",
    "metric_keys",
    "mrr_at_k",
    "ndcg_at_k",
    "precision_at_k",
    "recall_at_k",
    "relevant_users",
    "top_k",
]

#: A test rating at or above this makes the movie relevant (4 stars: "liked"); the data layer's
#: constant, which the session env's reward reads too.
RELEVANCE_THRESHOLD = LIKED_RATING
#: Metric names in the order they are printed; the result keys append ``@K``.
METRIC_NAMES = ("ndcg", "precision", "recall", "hit_rate", "mrr", "coverage")

#: ``score_fn(user_indices) -> (len(user_indices), n_movies)`` scores, higher is better.
ScoreFn = Callable[[np.ndarray], np.ndarray]


def metric_keys(k: int) -> list[str]:
    """Result keys for cut-off ``k``: ``["ndcg@10", "precision@10", ...]``."""
    return [f"{name}@{k}" for name in METRIC_NAMES]


# ------------------------------------------------------------- one user, pure
def _hits(ranked: Sequence[int] | np.ndarray, relevant: Collection[int], k: int) -> np.ndarray:
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    return np.array([int(item) in relevant for item in list(ranked)[:k]], dtype=bool)


def precision_at_k(ranked: Sequence[int] | np.ndarray, relevant: Collection[int], k: int = 10) -> float:
    """Share of the top ``k`` that is relevant (divided by ``k`` even if fewer were ranked)."""
    return float(_hits(ranked, relevant, k).sum()) / k


def recall_at_k(ranked: Sequence[int] | np.ndarray, relevant: Collection[int], k: int = 10) -> float:
    """Share of the relevant movies found in the top ``k``; 0 when nothing is relevant."""
    if not relevant:
        return 0.0
    return float(_hits(ranked, relevant, k).sum()) / len(relevant)


def ndcg_at_k(ranked: Sequence[int] | np.ndarray, relevant: Collection[int], k: int = 10) -> float:
    """DCG of the top ``k`` over the DCG of a perfect ranking of ``min(k, #relevant)`` hits."""
    hits = _hits(ranked, relevant, k)
    if not relevant:
        return 0.0
    dcg = float(np.sum(hits / np.log2(np.arange(2, len(hits) + 2))))
    idcg = float(np.sum(1.0 / np.log2(np.arange(2, min(k, len(relevant)) + 2))))
    return dcg / idcg


def hit_rate_at_k(ranked: Sequence[int] | np.ndarray, relevant: Collection[int], k: int = 10) -> float:
    """1.0 when at least one relevant movie is in the top ``k``, else 0.0."""
    return float(_hits(ranked, relevant, k).any())


def mrr_at_k(ranked: Sequence[int] | np.ndarray, relevant: Collection[int], k: int = 10) -> float:
    """1 / rank (from 1) of the first relevant movie in the top ``k``; 0.0 when there is none."""
    hits = _hits(ranked, relevant, k)
    return 1.0 / (int(np.argmax(hits)) + 1) if hits.any() else 0.0


# ------------------------------------------------------------------ vectorised
def top_k(scores: np.ndarray, k: int) -> np.ndarray:
    """Indices of the ``k`` best scores of each row, best first, ties to the lower index.

    ``np.argpartition`` finds each row's k-th best value in linear time; a movie is kept when its
    score beats that value, or equals it and comes early enough in index order to fill ``k``
    places. Only the ``k`` survivors are then sorted (stable, so equal scores keep index order).

    :param scores: ``(B, n)`` float array without NaN (``-inf`` allowed).
    :param k: cut-off, ``1 <= k <= n``.
    :return: ``(B, k)`` int64 column indices.
    """
    n_rows, n_cols = scores.shape
    if not 1 <= k <= n_cols:
        raise ValueError(f"k must be in [1, {n_cols}], got {k}")
    kth_col = np.argpartition(-scores, k - 1, axis=1)[:, k - 1]
    kth = scores[np.arange(n_rows), kth_col][:, None]
    above = scores > kth
    tied = scores == kth
    room = k - above.sum(axis=1, keepdims=True)
    keep = above | (tied & (np.cumsum(tied, axis=1) <= room))
    cols = np.nonzero(keep)[1].reshape(n_rows, k)  # row-major: ascending index within a row
    kept_scores = np.take_along_axis(scores, cols, axis=1)
    order = np.argsort(-kept_scores, axis=1, kind="stable")
    return np.take_along_axis(cols, order, axis=1).astype(np.int64)


def relevant_users(split: Split, threshold: float = RELEVANCE_THRESHOLD) -> np.ndarray:
    """Indices of the users with at least one test rating >= ``threshold`` (ascending)."""
    test = split.test.ratings
    rows = np.repeat(np.arange(test.shape[0]), np.diff(test.indptr))
    return np.unique(rows[test.data >= threshold]).astype(np.int64)


def evaluate_scores(
    score_fn: ScoreFn,
    split: Split,
    k: int = 10,
    batch_size: int = 256,
    threshold: float = RELEVANCE_THRESHOLD,
    users: np.ndarray | None = None,
    per_user: bool = False,
) -> dict[str, Any]:
    """Rank the catalogue for every evaluated user and average the top-K metrics.

    :param score_fn: ``score_fn(user_indices) -> (B, n_movies)`` scores, higher is better. Train
        movies are set to ``-inf`` here, so ``score_fn`` needs no masking of its own.
    :param split: the train/test split (train masks, test judges).
    :param k: cut-off; default 10 (the issue's).
    :param batch_size: users scored per call: memory is ``O(batch_size * n_movies)``.
    :param threshold: relevance threshold on test ratings; default 4.0 (the issue's).
    :param users: evaluate only these user indices (still restricted to those with a relevant
        test movie); default all of them.
    :param per_user: also return each evaluated user's NDCG@K, under ``"per_user"``:
        ``{"users": indices, "ndcg@K": values}`` (what paired significance tests compare).
    :return: ``{"ndcg@K", "precision@K", "recall@K", "hit_rate@K", "mrr@K", "coverage@K",
        "n_users"}``; every metric is 0.0 when no user qualifies.
    """
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    train, test = split.train.ratings, split.test.ratings
    n_movies = train.shape[1]
    evaluated = relevant_users(split, threshold)
    if users is not None:
        evaluated = np.intersect1d(evaluated, np.asarray(users, dtype=np.int64))
    k_eff = min(k, n_movies)
    discounts = 1.0 / np.log2(np.arange(2, k_eff + 2))
    ideal = np.concatenate([[0.0], np.cumsum(1.0 / np.log2(np.arange(2, k + 2)))])
    sums = dict.fromkeys(METRIC_NAMES[:-1], 0.0)
    truth = getattr(split.train, "truth", None)  # a synthetic world's: the regret can be measured
    regret = 0.0
    recommended = np.zeros(n_movies, dtype=bool)
    ndcg_parts: list[np.ndarray] = []
    for start in range(0, len(evaluated), batch_size):
        batch = evaluated[start : start + batch_size]
        scores = np.array(score_fn(batch), dtype=np.float64)
        if scores.shape != (len(batch), n_movies):
            raise ValueError(f"score_fn returned shape {scores.shape}, expected {(len(batch), n_movies)}")
        if np.isnan(scores).any():
            raise ValueError("score_fn returned NaN scores")
        seen = train[batch]
        scores[np.repeat(np.arange(len(batch)), np.diff(seen.indptr)), seen.indices] = -np.inf
        ranked = top_k(scores, k_eff)
        recommended[ranked.ravel()] = True
        if truth is not None:
            regret += _regret(truth, batch, ranked, np.isfinite(scores), k_eff)
        liked = test[batch]
        liked.data = (liked.data >= threshold).astype(np.float64)
        liked.eliminate_zeros()
        hits = np.take_along_axis(liked.toarray(), ranked, axis=1) > 0
        n_relevant = np.diff(liked.indptr)
        n_hits = hits.sum(axis=1)
        sums["precision"] += float(np.sum(n_hits / k))
        sums["recall"] += float(np.sum(n_hits / n_relevant))
        user_ndcg = (hits @ discounts) / ideal[np.minimum(n_relevant, k)]
        ndcg_parts.append(user_ndcg)
        sums["ndcg"] += float(np.sum(user_ndcg))
        sums["hit_rate"] += float(np.count_nonzero(n_hits))
        first = np.argmax(hits, axis=1)
        sums["mrr"] += float(np.sum(np.where(hits.any(axis=1), 1.0 / (first + 1), 0.0)))
    n_users = len(evaluated)
    result = {f"{name}@{k}": (value / n_users if n_users else 0.0) for name, value in sums.items()}
    result[f"coverage@{k}"] = float(recommended.sum()) / n_movies if n_users and n_movies else 0.0
    ordered: dict[str, Any] = {key: result[key] for key in metric_keys(k)}
    if truth is not None:
        ordered[f"regret@{k}"] = regret / n_users if n_users else 0.0
    ordered["n_users"] = n_users
    if per_user:
        values = np.concatenate(ndcg_parts) if ndcg_parts else np.zeros(0)
        ordered["per_user"] = {"users": evaluated, f"ndcg@{k}": values}
    return ordered


def _regret(truth: object, users: np.ndarray, ranked: np.ndarray, allowed: np.ndarray, k: int) -> float:
    """Sum over ``users`` of the mean true preference (expected rating) the top ``k`` gives up
    against the best ``k`` movies each may be recommended (``SyntheticWorld.preference``)."""
    preference = np.where(allowed, truth.preferences(users), -np.inf)  # type: ignore[attr-defined]
    best = np.partition(preference, -k, axis=1)[:, -k:]
    given = np.take_along_axis(preference, ranked, axis=1)
    return float(np.sum((best.sum(axis=1) - given.sum(axis=1)) / k))
