from __future__ import annotations

import numpy as np
import pytest

from rlrec.data.split import temporal_split
from rlrec.evaluation.baselines import (
    GRIDS,
    ALSBaseline,
    EASEBaseline,
    PopularityBaseline,
    RandomBaseline,
    RecentEASEBaseline,
    make_baseline,
    select_on_split,
)
from rlrec.evaluation.metrics import top_k
from tests.evaluation.toy import toy_dataset


def _blocks(n_users: int = 40, seed: int = 0):
    """Two taste groups: even users watch movies 0..4, odd users movies 5..9; movies 10, 11 are unrated.

    User 0 has seen only movies 0, 1, 2 (and user 1 only 5, 6, 7); the obvious guess for them is the
    rest of their block.
    """
    rng = np.random.default_rng(seed)
    rows = [(0, m, 4.0, 1) for m in (0, 1, 2)] + [(1, m, 4.0, 1) for m in (5, 6, 7)]
    for user in range(2, n_users):
        block = np.arange(5) + (5 if user % 2 else 0)
        for movie in rng.choice(block, size=4, replace=False):
            rows.append((user, int(movie), 4.0, 1))
    return toy_dataset(rows, n_movies=12)


def test_popularity_scores_are_train_counts():
    data = toy_dataset(
        [(1, 2, 4.0, 1), (2, 2, 1.0, 1), (3, 2, 3.0, 1), (1, 0, 5.0, 1), (2, 0, 5.0, 1), (3, 3, 2.0, 1)], 5
    )
    model = PopularityBaseline().fit(data)
    scores = model.score(np.array([0, 2]))
    assert scores.tolist() == [[2, 0, 3, 1, 0]] * 2
    assert top_k(scores.astype(np.float64), 4)[0].tolist() == [2, 0, 3, 1]  # count order, ties by index


def test_random_is_seeded_and_independent_of_batching():
    data = _blocks()
    one = RandomBaseline(seed=3).fit(data)
    all_at_once = one.score(np.arange(6))
    assert np.array_equal(all_at_once[4], one.score(np.array([4]))[0])
    assert np.array_equal(all_at_once, RandomBaseline(seed=3).fit(data).score(np.arange(6)))
    assert not np.array_equal(all_at_once, RandomBaseline(seed=4).fit(data).score(np.arange(6)))
    assert all_at_once.shape == (6, 12) and all_at_once.dtype == np.float32


def test_ease_matches_the_closed_form():
    data = _blocks()
    l2 = 3.0
    x = (data.ratings.toarray() > 0).astype(np.float64)
    # the textbook formula over ALL movies, unrated ones included, in float64
    p = np.linalg.inv(x.T @ x + l2 * np.eye(x.shape[1]))
    b = np.eye(x.shape[1]) - p / np.diag(p)
    model = EASEBaseline(l2=l2).fit(data)
    users = np.arange(data.n_users)
    np.testing.assert_allclose(model.score(users), x @ b, rtol=1e-4, atol=1e-5)


def test_recent_ease_reads_the_history_by_recency():
    """Same B as EASE; the user's row weighted 0.5 ** (ratings since / half_life), worked out by hand."""
    rows = [(0, 0, 4.0, 10), (0, 1, 3.0, 30), (0, 2, 5.0, 20)]  # user 0 rated 0, then 2, then 1
    rows += [(u, m, 4.0, u) for u in range(1, 9) for m in ((0, 1, 3) if u % 2 else (1, 2, 4))]
    data = toy_dataset(rows, n_movies=6)
    plain = EASEBaseline(l2=2.0).fit(data)
    recent = RecentEASEBaseline(l2=2.0, half_life=1.0).fit(data)
    np.testing.assert_allclose(recent.weights, plain.weights)
    b = np.zeros((6, 6))
    b[np.ix_(plain.active, plain.active)] = plain.weights
    # movie 1 is the latest (0 since), movie 2 one rating before, movie 0 two before
    by_hand = np.array([0.25, 1.0, 0.5, 0.0, 0.0, 0.0]) @ b
    np.testing.assert_allclose(recent.score(np.array([0]))[0], by_hand, rtol=1e-5, atol=1e-6)
    # a very long half-life is plain EASE
    slow = RecentEASEBaseline(l2=2.0, half_life=1e9).fit(data)
    np.testing.assert_allclose(slow.score(np.arange(9)), plain.score(np.arange(9)), rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="half_life must be > 0"):
        RecentEASEBaseline(half_life=0)
    with pytest.raises(ValueError, match="needs the train data"):
        RecentEASEBaseline().fit_gram(plain.x, np.eye(5, dtype=np.float32), plain.active, 6)
    # the grid search hands the train data on: every point is scored
    selection = select_on_split("ease-recent", temporal_split(data))
    assert len(selection.tried) == len(GRIDS["ease-recent"]["l2"]) * len(GRIDS["ease-recent"]["half_life"])


@pytest.mark.parametrize(
    "model", [EASEBaseline(l2=1.0), ALSBaseline(factors=4, iterations=20, regularization=0.01)]
)
def test_item_models_recover_the_blocks(model):
    data = _blocks()
    model.fit(data)
    scores = model.score(np.array([0, 1])).astype(np.float64)
    for row, seen, rest in ((0, [0, 1, 2], {3, 4}), (1, [5, 6, 7], {8, 9})):
        scores[row, seen] = -np.inf
        assert set(top_k(scores[row : row + 1], 2)[0].tolist()) == rest


def test_als_is_reproducible():
    data = _blocks()
    first = ALSBaseline(factors=4, seed=7).fit(data).score(np.arange(5))
    second = ALSBaseline(factors=4, seed=7).fit(data).score(np.arange(5))
    assert np.array_equal(first, second)


def test_ease_refuses_a_huge_catalogue():
    with pytest.raises(ValueError, match="max_items=5"):
        EASEBaseline(max_items=5).fit(_blocks())
    with pytest.raises(ValueError, match="l2"):
        EASEBaseline(l2=0.0)


def test_make_baseline():
    assert isinstance(make_baseline("ease", l2=10.0), EASEBaseline)
    assert make_baseline("als", seed=5).seed == 5
    with pytest.raises(ValueError, match="unknown baseline 'svd'"):
        make_baseline("svd")
    with pytest.raises(ValueError, match="ease"):
        make_baseline("ease", factors=3)
    with pytest.raises(RuntimeError, match="fit"):
        PopularityBaseline().score(np.array([0]))
