"""The synthetic twin: deterministic, its truth is the fitted model, reachable from --data."""

from __future__ import annotations

import numpy as np
import pytest

from rlrec.data import load_movielens, make_synthetic
from rlrec.data.simulator import RatingSimulator
from rlrec.data.split import temporal_split

REAL = "synthetic:n_users=60,n_movies=120,n_ratings=2400,seed=5,whole_star_share=0.8"


def test_twin_is_deterministic_and_shaped_like_its_source() -> None:
    real = load_movielens(REAL)
    a, b = make_synthetic(like=real, seed=1), make_synthetic(like=real, seed=1)
    c = make_synthetic(like=real, seed=2)
    for left, right in ((a.ratings, b.ratings),):
        np.testing.assert_array_equal(left.indices, right.indices)
        np.testing.assert_array_equal(left.data, right.data)
    np.testing.assert_array_equal(a.timestamps, b.timestamps)
    assert not np.array_equal(a.ratings.data, c.ratings.data) or not np.array_equal(
        a.ratings.indices, c.ratings.indices
    )
    assert a.n_users == real.n_users and a.n_movies == real.n_movies and a.n_ratings == real.n_ratings
    np.testing.assert_array_equal(a.user_counts, real.user_counts)  # every real user has a twin
    np.testing.assert_array_equal(a.movie_ids, real.movie_ids)


def test_twin_truth_reproduces_the_model_fitted_on_the_train_part() -> None:
    real = load_movielens(REAL)
    twin = make_synthetic(like=real, seed=3)
    model = RatingSimulator.fit(temporal_split(real).train, n_factors=32, seed=3)
    world = twin.truth
    assert world is not None
    for user in (0, 7, 59):
        np.testing.assert_allclose(
            world.preference(user), model.predict(user, np.arange(real.n_movies)), atol=1e-4
        )
    best = world.best_movies(7, 5)
    assert best.tolist() == np.argsort(-world.score(7), kind="stable")[:5].tolist()


def test_like_is_taken_wherever_data_is() -> None:
    data = load_movielens("synthetic:like=synthetic,seed=4")
    again = make_synthetic(like=load_movielens("synthetic"), seed=4)
    np.testing.assert_array_equal(data.ratings.data, again.ratings.data)
    assert data.truth is not None
    with pytest.raises(ValueError, match="no-such-release"):
        load_movielens("synthetic:like=no-such-release")
