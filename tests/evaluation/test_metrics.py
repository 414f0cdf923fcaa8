from __future__ import annotations

import numpy as np
import pytest

from rlrec.data.split import Split, temporal_split
from rlrec.evaluation.metrics import (
    evaluate_scores,
    hit_rate_at_k,
    mrr_at_k,
    ndcg_at_k,
    precision_at_k,
    recall_at_k,
    relevant_users,
    top_k,
)
from tests.evaluation.toy import toy_dataset

RANKED = [5, 3, 8, 1, 2]
RELEVANT = {3, 2, 9}


def test_single_user_metrics_by_hand():
    # hits at ranks 2 and 5 of 5; three relevant movies, one (9) never ranked
    assert precision_at_k(RANKED, RELEVANT, 5) == pytest.approx(2 / 5)
    assert recall_at_k(RANKED, RELEVANT, 5) == pytest.approx(2 / 3)
    assert hit_rate_at_k(RANKED, RELEVANT, 5) == 1.0
    assert mrr_at_k(RANKED, RELEVANT, 5) == pytest.approx(1 / 2)
    dcg = 1 / np.log2(3) + 1 / np.log2(6)
    idcg = 1 + 1 / np.log2(3) + 1 / np.log2(4)  # min(K=5, 3 relevant) = 3 ideal hits
    assert ndcg_at_k(RANKED, RELEVANT, 5) == pytest.approx(dcg / idcg)


def test_cut_off_and_empty_cases():
    # K=2: only [5, 3] counts
    assert precision_at_k(RANKED, RELEVANT, 2) == pytest.approx(1 / 2)
    assert recall_at_k(RANKED, RELEVANT, 2) == pytest.approx(1 / 3)
    assert ndcg_at_k(RANKED, RELEVANT, 2) == pytest.approx((1 / np.log2(3)) / (1 + 1 / np.log2(3)))
    # K=1: the first item misses
    assert hit_rate_at_k(RANKED, RELEVANT, 1) == 0.0
    assert mrr_at_k(RANKED, RELEVANT, 1) == 0.0
    assert ndcg_at_k(RANKED, RELEVANT, 1) == 0.0
    # a perfect ranking
    assert ndcg_at_k([3, 2, 9, 0], RELEVANT, 3) == pytest.approx(1.0)
    # precision divides by K even when fewer movies were ranked
    assert precision_at_k([3], RELEVANT, 4) == pytest.approx(1 / 4)
    assert recall_at_k(RANKED, set(), 5) == 0.0
    assert ndcg_at_k(RANKED, set(), 5) == 0.0
    with pytest.raises(ValueError, match="k must be"):
        precision_at_k(RANKED, RELEVANT, 0)


def test_top_k_breaks_ties_by_index():
    scores = np.array([[1.0, 3.0, 3.0, 2.0, 3.0], [-np.inf, 0.0, 0.0, 0.0, -np.inf]])
    assert top_k(scores, 2).tolist() == [[1, 2], [1, 2]]
    assert top_k(scores, 4).tolist() == [[1, 2, 4, 3], [1, 2, 3, 0]]
    assert top_k(scores, 5).tolist() == [[1, 2, 4, 3, 0], [1, 2, 3, 0, 4]]
    with pytest.raises(ValueError):
        top_k(scores, 6)


def test_top_k_matches_a_stable_sort():
    rng = np.random.default_rng(0)
    scores = rng.integers(0, 4, size=(50, 30)).astype(np.float64)  # many ties
    for k in (1, 5, 29, 30):
        expected = np.argsort(-scores, axis=1, kind="stable")[:, :k]
        assert np.array_equal(top_k(scores, k), expected)


def _hand_split() -> Split:
    # users 0, 1, 2 over movies 0..5
    train = toy_dataset(
        [(0, 0, 3.0, 1), (0, 1, 3.0, 1), (1, 0, 3.0, 1)] + [(2, m, 3.0, 1) for m in range(5)], n_movies=6
    )
    test = toy_dataset(
        [(0, 2, 5.0, 2), (0, 3, 3.0, 2), (1, 4, 4.0, 2), (1, 5, 4.5, 2), (2, 5, 2.0, 2)], n_movies=6
    )
    return Split(train=train, test=test)


def test_evaluate_scores_by_hand():
    split = _hand_split()
    assert relevant_users(split).tolist() == [0, 1]  # user 2's only test rating is 2 stars

    def score_fn(users):
        return np.tile(np.array([6.0, 5, 4, 3, 2, 1]), (len(users), 1))

    result = evaluate_scores(score_fn, split, k=2, batch_size=1)
    # user 0: train {0, 1} masked -> top 2 = [2, 3], relevant {2}: a hit at rank 1 -> all metrics 1
    # user 1: train {0} masked -> top 2 = [1, 2], relevant {4, 5}: nothing
    assert result == pytest.approx(
        {
            "ndcg@2": 0.5,
            "precision@2": 0.25,
            "recall@2": 0.5,
            "hit_rate@2": 0.5,
            "mrr@2": 0.5,
            "coverage@2": 3 / 6,  # movies 1, 2, 3
            "n_users": 2,
        }
    )
    assert list(result) == [
        "ndcg@2",
        "precision@2",
        "recall@2",
        "hit_rate@2",
        "mrr@2",
        "coverage@2",
        "n_users",
    ]


def test_evaluate_scores_rejects_bad_scores():
    split = _hand_split()
    with pytest.raises(ValueError, match="NaN"):
        evaluate_scores(lambda users: np.full((len(users), 6), np.nan), split)
    with pytest.raises(ValueError, match="shape"):
        evaluate_scores(lambda users: np.zeros((len(users), 5)), split)


def test_evaluate_scores_matches_a_per_user_loop():
    rng = np.random.default_rng(1)
    n_users, n_movies = 40, 25
    rows = []
    for user in range(n_users):
        for movie in rng.choice(n_movies, size=rng.integers(1, 15), replace=False):
            rows.append(
                (user, int(movie), float(rng.choice([1.0, 3.0, 4.0, 4.5, 5.0])), int(rng.integers(100)))
            )
    split = temporal_split(toy_dataset(rows, n_movies))
    table = rng.integers(0, 5, size=(n_users, n_movies)).astype(np.float32)  # ties everywhere

    def score_fn(users):
        return table[users]

    for k in (1, 5, 10):
        result = evaluate_scores(score_fn, split, k=k, batch_size=7)
        expected = {name: [] for name in ("ndcg", "precision", "recall", "hit_rate", "mrr")}
        shown = set()
        for user in range(n_users):
            test_movies, test_ratings = split.test.user_row(user)
            relevant = set(test_movies[test_ratings >= 4.0].tolist())
            if not relevant:
                continue
            scores = table[user].astype(np.float64)
            scores[split.train.user_row(user)[0]] = -np.inf
            ranked = np.argsort(-scores, kind="stable")[:k]
            shown.update(ranked.tolist())
            for name, fn in (
                ("ndcg", ndcg_at_k),
                ("precision", precision_at_k),
                ("recall", recall_at_k),
                ("hit_rate", hit_rate_at_k),
                ("mrr", mrr_at_k),
            ):
                expected[name].append(fn(ranked, relevant, k))
        assert result["n_users"] == len(expected["ndcg"]) > 10
        for name, values in expected.items():
            assert result[f"{name}@{k}"] == pytest.approx(np.mean(values)), name
        assert result[f"coverage@{k}"] == pytest.approx(len(shown) / n_movies)
