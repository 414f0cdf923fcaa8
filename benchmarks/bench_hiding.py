"""Which session task suits a linear item-item model: the closed-form analogue of each hiding.

``slateq-item-item`` learns ``Q(s, i) = b_i + sum_j x_j W[j, i]`` from sessions that hide part of a
history and pay a click for each hidden liked movie shown. With a discount of 0 its Q-values are
the click probabilities, so the best such model for a hiding is a ridge regression of the hidden
liked movies on the visible ones. This script solves that regression in closed form for each
hiding and ranks the validation part of the release with it (test is never read):

* ``random``: any part of a history may be hidden, so every liked movie is predicted from the
  others (EASE's form, ``diag(W) = 0``), the visible ones weighted ``0.5 ** (age / half_life)``;
* ``cuts in time`` (``hiding="recent"`` with a share drawn per session): for each user, a cut
  after each tenth of the history, the movies before it weighted by age from the cut, the liked
  movies after it the targets;
* ``binary fit, recent ranking``: ``ease-recent``'s form for reference (the regression on binary
  histories, the ranking from recency-weighted ones), which an agent cannot take: its training
  observation is its ranking observation.

Each row prints the best validation NDCG@10 over the ``l2`` grid and the ``l2`` that gave it.

    python benchmarks/bench_hiding.py                          # ml-latest-small
    python benchmarks/bench_hiding.py --release ml-latest-small-2016
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import numpy as np
import scipy.sparse as sp

from rlrec.data import load_movielens
from rlrec.data.dataset import LIKED_RATING, RatingsDataset, recency_weight
from rlrec.data.split import Split, temporal_split, validation_split
from rlrec.evaluation.metrics import evaluate_scores

REPO = Path(__file__).resolve().parents[1]
L2_GRID = (10.0, 30.0, 100.0, 300.0, 1000.0)
#: The recency half-life of the observations, in ratings: ``slateq-item-item-recent``'s.
HALF_LIFE = 10.0
#: The cuts of "cuts in time": the share of a history after the cut (the env draws it from [0.1, 0.9]).
CUT_SHARES = np.arange(1, 10) / 10


def _weighted(train: RatingsDataset, active: np.ndarray, values: np.ndarray) -> sp.csr_matrix:
    matrix = train.ratings.astype(np.float32)
    matrix.data = values.astype(np.float32)
    return matrix[:, active]


def _cut_rows(
    train: RatingsDataset, active: np.ndarray, half_life: float
) -> tuple[sp.csr_matrix, sp.csr_matrix]:
    """One row per (user, cut): the movies before the cut weighted by age, the liked ones after it."""
    matrix = train.ratings
    column = np.full(train.n_movies, -1)
    column[active] = np.arange(len(active))
    x_parts: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
    y_parts: list[tuple[np.ndarray, np.ndarray]] = []
    row = 0
    for user in range(train.n_users):
        start, stop = matrix.indptr[user], matrix.indptr[user + 1]
        if stop - start < 2:
            continue
        oldest_first = np.argsort(train.recency_rank[start:stop])  # the env's and the split's order
        movies = column[matrix.indices[start:stop][oldest_first]]
        liked = matrix.data[start:stop][oldest_first] >= LIKED_RATING
        n = stop - start
        for share in CUT_SHARES:
            cut = int(min(max(round(n * (1 - share)), 1), n - 1))
            if not liked[cut:].any():
                continue
            x_parts.append((np.full(cut, row), movies[:cut], recency_weight(np.arange(cut)[::-1], half_life)))
            y_parts.append((np.full(int(liked[cut:].sum()), row), movies[cut:][liked[cut:]]))
            row += 1
    rows, cols, vals = (np.concatenate(part) for part in zip(*x_parts))
    x = sp.csr_matrix((vals.astype(np.float32), (rows, cols)), shape=(row, len(active)))
    y_rows, y_cols = (np.concatenate(part) for part in zip(*y_parts))
    y = sp.csr_matrix((np.ones(len(y_rows), np.float32), (y_rows, y_cols)), shape=(row, len(active)))
    return x, y


def _best(
    split: Split,
    active: np.ndarray,
    x: sp.csr_matrix,
    y: sp.csr_matrix,
    ranked_from: sp.csr_matrix,
    zero_diagonal: bool,
) -> tuple[float, float]:
    """The best validation NDCG@10 over :data:`L2_GRID` of the ridge regression of ``y`` on ``x``."""
    gram, cross = (x.T @ x).toarray(), (x.T @ y).toarray()
    best = (-1.0, 0.0)
    for l2 in L2_GRID:
        inverse = np.linalg.inv(gram + l2 * np.eye(len(active)))
        weights = inverse @ cross
        if zero_diagonal:  # EASE's constraint, by its Lagrange multipliers
            weights -= inverse * (np.diag(weights) / np.diag(inverse))[None, :]

        def score(users: np.ndarray, weights: np.ndarray = weights) -> np.ndarray:
            scores = np.zeros((len(users), split.train.n_movies), np.float32)
            scores[:, active] = ranked_from[users] @ weights
            return scores

        best = max(best, (float(evaluate_scores(score, split, k=10)["ndcg@10"]), l2))
    return best


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--release", default="ml-latest-small", help="a folder under $RLREC_DATA")
    args = parser.parse_args()
    home = Path(os.environ.get("RLREC_DATA") or REPO.parent / "shared" / "data")
    split = validation_split(temporal_split(load_movielens(str(home / args.release))).train)
    train = split.train
    active = np.flatnonzero(train.movie_counts > 0)
    liked = _weighted(train, active, (train.ratings.data >= LIKED_RATING).astype(np.float32))
    binary = _weighted(train, active, np.ones(train.n_ratings))
    recent = _weighted(train, active, recency_weight(train.ratings_since, HALF_LIFE))
    print(f"{args.release}, validation NDCG@10 of the closed-form analogue (best l2 of {L2_GRID})")
    started = time.perf_counter()
    cuts, after_cuts = _cut_rows(train, active, HALF_LIFE)
    rows = {
        "random": _best(split, active, recent, liked, recent, zero_diagonal=True),
        "cuts in time": _best(split, active, cuts, after_cuts, recent, zero_diagonal=False),
        "binary fit, recent ranking": _best(split, active, binary, liked, recent, zero_diagonal=True),
    }
    for hiding, (ndcg, l2) in rows.items():
        print(f"  half-life {HALF_LIFE:g}  {hiding:<28} {ndcg:.4f}  (l2 {l2:g})")
    print(f"  ({time.perf_counter() - started:.0f} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
