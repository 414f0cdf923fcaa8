"""RatingSimulator: closed forms on the tiny dataset, ridge optimality, held-out quality."""

from __future__ import annotations

import numpy as np
import pytest

from rlrec.data import make_synthetic
from rlrec.data.simulator import RatingSimulator
from tests.envs.tiny_data import MOVIE_IDS, RATINGS, tiny_dataset


def test_biases_only_first_sweep_matches_the_closed_form():
    reg = 0.5
    sim = RatingSimulator.fit(tiny_dataset(), n_factors=0, reg=reg, n_iters=1)
    all_ratings = [r for movies in RATINGS.values() for r in movies.values()]
    mu = sum(all_ratings) / len(all_ratings)  # 23.5 / 7
    assert sim.global_mean == pytest.approx(23.5 / 7)
    # users first, with item biases 0: b_u = sum(r - mu) / (n_u * (1 + reg))
    user_bias = {u: sum(r - mu for r in m.values()) / (len(m) * (1 + reg)) for u, m in RATINGS.items()}
    np.testing.assert_allclose(sim.user_bias, [user_bias[10], user_bias[20], user_bias[30]], rtol=1e-6)
    # then items given those: b_i = sum(r - mu - b_u) / (n_i * (1 + reg)); 0 for movie 123
    for index, movie_id in enumerate(MOVIE_IDS):
        terms = [r - mu - user_bias[u] for u, m in RATINGS.items() for mid, r in m.items() if mid == movie_id]
        expected = sum(terms) / (len(terms) * (1 + reg)) if terms else 0.0
        assert sim.item_bias[index] == pytest.approx(expected, abs=1e-6)
    assert sim.item_bias[5] == 0.0


def test_last_sweep_items_are_the_ridge_solutions():
    data = make_synthetic(n_users=40, n_movies=60, n_ratings=600, seed=1)
    reg = 0.2
    sim = RatingSimulator.fit(data, n_factors=3, reg=reg, n_iters=4)
    by_item = data.ratings.tocsc()
    for item in np.flatnonzero(data.movie_counts)[:15]:
        users = by_item.indices[by_item.indptr[item] : by_item.indptr[item + 1]]
        ratings = by_item.data[by_item.indptr[item] : by_item.indptr[item + 1]]
        # the stacked least-squares problem [F; sqrt(reg n) I] x = [t; 0], solved by lstsq
        features = np.column_stack([sim.user_factors[users], np.ones(len(users))]).astype(np.float64)
        targets = ratings - sim.global_mean - sim.user_bias[users]
        penalty = np.sqrt(reg * len(users)) * np.eye(4)
        solution = np.linalg.lstsq(
            np.vstack([features, penalty]), np.concatenate([targets, np.zeros(4)]), rcond=None
        )[0]
        np.testing.assert_allclose(sim.item_factors[item], solution[:3], atol=1e-5)
        assert sim.item_bias[item] == pytest.approx(solution[3], abs=1e-5)


def test_predictions_are_the_clipped_model():
    sim = RatingSimulator(
        global_mean=3.0,
        user_bias=np.array([0.5, -1.0], dtype=np.float32),
        item_bias=np.array([0.25, 1.0, -3.0], dtype=np.float32),
        user_factors=np.array([[1.0, 0.0], [2.0, 1.0]], dtype=np.float32),
        item_factors=np.array([[0.5, 0.5], [2.0, 0.0], [0.0, 0.0]], dtype=np.float32),
    )
    # user 0: 3 + .5 + [.25, 1, -3] + [.5, 2, 0] = [4.25, 6.5 -> 5, 0.5]
    np.testing.assert_allclose(sim.predict(0, np.array([0, 1, 2])), [4.25, 5.0, 0.5])
    # user 1: 3 - 1 + [.25, 1, -3] + [1.5, 4, 0] = [3.75, 7 -> 5, -1 -> 0.5]
    np.testing.assert_allclose(sim.predict_pairs(np.array([1, 1, 1]), np.array([0, 1, 2])), [3.75, 5.0, 0.5])
    assert sim.predict(1, 0).dtype == np.float32


def test_fit_is_seeded_and_beats_the_baselines_on_held_out_ratings():
    data = make_synthetic(n_users=300, n_movies=300, n_ratings=20000, seed=2)
    test = np.random.default_rng(0).random(data.n_ratings) < 0.2
    train, held_out = data.filter_ratings(~test), data.filter_ratings(test)
    first = RatingSimulator.fit(train, n_factors=8, n_iters=6, seed=3)
    again = RatingSimulator.fit(train, n_factors=8, n_iters=6, seed=3)
    np.testing.assert_array_equal(first.item_factors, again.item_factors)
    biases = RatingSimulator.fit(train, n_factors=0, n_iters=6)
    mean_rmse = float(np.sqrt(np.mean((held_out.ratings.data - train.ratings.data.mean()) ** 2)))
    assert first.rmse(held_out) < biases.rmse(held_out) < mean_rmse


def test_bad_arguments():
    with pytest.raises(ValueError, match="reg"):
        RatingSimulator.fit(tiny_dataset(), reg=0.0)
