"""ItemKNN and RP3beta against scores worked out by hand on a 3-user, 4-movie matrix."""

from __future__ import annotations

import math

import numpy as np
import pytest

from rlrec.data.split import temporal_split
from rlrec.evaluation.baselines import (
    GRIDS,
    ItemKNNBaseline,
    RP3betaBaseline,
    keep_top_neighbours,
    make_baseline,
    select_on_split,
)
from tests.evaluation.toy import toy_dataset

# Users (indices) 0, 1, 2 watched movies {0, 1}, {0, 1, 2} and {1, 3}.
HAND = toy_dataset(
    [
        (1, 0, 4.0, 1),
        (1, 1, 3.0, 2),
        (2, 0, 5.0, 1),
        (2, 1, 2.0, 2),
        (2, 2, 4.0, 3),
        (3, 1, 4.0, 1),
        (3, 3, 1.0, 2),
    ],
    n_movies=4,
)


def test_itemknn_is_the_cosine_of_the_movies_columns() -> None:
    # Co-ratings: (0,1) 2, (0,2) 1, (1,2) 1, (1,3) 1; movie counts 2, 3, 1, 1.
    scores = ItemKNNBaseline(shrink=0.0).fit(HAND).score(np.array([2]))[0]
    # User 2 saw movies 1 and 3: movie 0 gets cos(1,0) + cos(3,0) = 2/sqrt(6) + 0, movie 2 gets 1/sqrt(3).
    assert scores[0] == pytest.approx(2 / math.sqrt(6), rel=1e-6)
    assert scores[2] == pytest.approx(1 / math.sqrt(3), rel=1e-6)
    # One neighbour per candidate: movie 2's nearest is movie 0 (1/sqrt(2) > 1/sqrt(3)),
    # which user 2 never saw.
    cut = ItemKNNBaseline(neighbours=1, shrink=0.0).fit(HAND).score(np.array([2]))[0]
    assert cut[2] == 0.0 and cut[0] == pytest.approx(2 / math.sqrt(6), rel=1e-6)
    # Shrinkage divides by |x_i||x_j| + shrink.
    shrunk = ItemKNNBaseline(shrink=1.0).fit(HAND).score(np.array([2]))[0]
    assert shrunk[0] == pytest.approx(2 / (math.sqrt(6) + 1), rel=1e-6)


def test_rp3beta_is_the_three_step_walk_discounted_by_popularity() -> None:
    # alpha 1, beta 0: W_ij = (1/d_i) sum_u x_ui x_uj / d_u, user degrees 2, 3, 2.
    walk = RP3betaBaseline(alpha=1.0, beta=0.0).fit(HAND)
    w = walk.weights.astype(np.float64)
    assert w[1, 0] == pytest.approx((1 / 3) * (1 / 2 + 1 / 3), rel=1e-6)
    assert w[1, 2] == pytest.approx((1 / 3) * (1 / 3), rel=1e-6)
    assert w[3, 0] == 0.0 and np.all(np.diag(w) == 0.0)
    # Each row is a probability over destinations: with the diagonal back it sums to 1.
    diagonal = np.array([(1 / 2) * (1 / 2 + 1 / 3), (1 / 3) * (1 / 2 + 1 / 3 + 1 / 2), 1 / 3, 1 / 2])
    np.testing.assert_allclose(w.sum(axis=1) + diagonal, 1.0, rtol=1e-6)
    scores = walk.score(np.array([2]))[0]
    assert scores[0] > scores[2]  # 5/18 against 1/9
    # beta = 2 divides column j by d_j^2: movie 0 (2 ratings) falls below movie 2 (1 rating).
    discounted = RP3betaBaseline(alpha=1.0, beta=2.0).fit(HAND).score(np.array([2]))[0]
    assert discounted[0] == pytest.approx((5 / 18) / 4, rel=1e-6)
    assert discounted[2] == pytest.approx(1 / 9, rel=1e-6)


def test_keep_top_neighbours_by_column_or_row_ties_to_the_lower_index() -> None:
    weights = np.array([[9.0, 1.0, 1.0], [2.0, 9.0, 3.0], [2.0, 5.0, 9.0]])
    by_column = keep_top_neighbours(weights, 1, axis=0)
    assert by_column.tolist() == [[0, 0, 0], [2, 0, 3], [0, 5, 0]]  # column 0: rows 1 and 2 tie, 1 kept
    by_row = keep_top_neighbours(weights, 1, axis=1)
    assert by_row.tolist() == [[0, 1, 0], [0, 0, 3], [0, 5, 0]]  # row 0: columns 1 and 2 tie, 1 kept


def test_bad_parameters_and_the_validation_grid() -> None:
    with pytest.raises(ValueError, match="neighbours must be >= 1"):
        ItemKNNBaseline(neighbours=0)
    with pytest.raises(ValueError, match="alpha must be > 0"):
        make_baseline("rp3beta", alpha=0.0)
    split = temporal_split(HAND, test_fraction=0.5, min_ratings=2)
    for name in ("itemknn", "rp3beta"):
        chosen = select_on_split(name, split)
        assert len(chosen.tried) == int(np.prod([len(v) for v in GRIDS[name].values()]))
        assert chosen.score == max(score for _, score in chosen.tried)
