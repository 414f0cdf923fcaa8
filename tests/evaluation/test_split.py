from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rlrec.data.split import held_out_counts, temporal_split
from tests.evaluation.toy import toy_dataset


def _pairs(dataset, user):  # (movie id, timestamp) pairs of one user
    movies, _ = dataset.user_row(user)
    start = dataset.ratings.indptr[user]
    stamps = dataset.timestamps[start : start + len(movies)]
    return {(int(dataset.movie_ids[m]), int(t)) for m, t in zip(movies, stamps)}


def test_hand_made_split():
    rows = [
        # user 1: 6 ratings; the two latest are movie 9 (t=60) and, on the t=50 tie, movie 7 beats movie 3
        (1, 3, 4.0, 50), (1, 7, 2.0, 50), (1, 9, 5.0, 60), (1, 1, 3.0, 10), (1, 2, 3.5, 20), (1, 4, 1.0, 30),
        # user 2: 4 ratings < min_ratings=5 -> all train
        (2, 1, 4.0, 1), (2, 2, 4.0, 2), (2, 3, 4.0, 3), (2, 4, 4.0, 4),
        # user 3: exactly 5 ratings -> ceil(0.2 * 5) = 1 in test
        (3, 5, 4.0, 5), (3, 6, 4.0, 4), (3, 7, 4.0, 3), (3, 8, 4.0, 2), (3, 9, 4.0, 1),
    ]  # fmt: skip
    split = temporal_split(toy_dataset(rows, n_movies=10))
    # user 1: ceil(0.2 * 6) = 2 -> movie 9 (t=60) and movie 7 (t=50, higher index than 3 on the tie)
    assert _pairs(split.test, 0) == {(9, 60), (7, 50)}
    assert _pairs(split.train, 0) == {(3, 50), (1, 10), (2, 20), (4, 30)}
    assert _pairs(split.test, 1) == set()
    assert len(_pairs(split.train, 1)) == 4
    assert _pairs(split.test, 2) == {(5, 5)}
    # ratings travel with their movie
    test_movies, test_ratings = split.test.user_row(0)
    assert dict(zip(split.test.movie_ids[test_movies].tolist(), test_ratings.tolist())) == {7: 2.0, 9: 5.0}


def test_held_out_counts_round_up_without_float_noise():
    counts = np.array([1, 4, 5, 6, 10, 15, 35, 100])
    # 0.2 * 15 is 3.0000000000000004 in binary floating point; the split must still hold out 3.
    expected = [0, 0, 1, 2, 2, 3, 7, 20]
    assert held_out_counts(counts, 0.2, 5).tolist() == expected
    assert held_out_counts(np.array([5]), 0.9, 5).tolist() == [4]  # ceil(4.5) = 5 would leave no train rating


def test_bad_arguments():
    dataset = toy_dataset([(1, 0, 4.0, 1)], n_movies=2)
    for fraction in (0.0, 1.0, -0.1, 1.5):
        with pytest.raises(ValueError, match="test_fraction"):
            temporal_split(dataset, test_fraction=fraction)
    with pytest.raises(ValueError, match="min_ratings"):
        temporal_split(dataset, min_ratings=0)


@st.composite
def _random_rows(draw):
    n_users = draw(st.integers(1, 6))
    n_movies = draw(st.integers(1, 12))
    rows = []
    for user in range(n_users):
        movies = draw(st.lists(st.integers(0, n_movies - 1), min_size=1, max_size=n_movies, unique=True))
        for movie in movies:
            # few distinct timestamps, so ties are common
            rows.append((user, movie, draw(st.sampled_from([1.0, 2.5, 4.0, 5.0])), draw(st.integers(0, 3))))
    return rows, n_movies


@settings(max_examples=60, deadline=None)
@given(_random_rows(), st.sampled_from([0.1, 0.2, 0.25, 0.5]), st.integers(1, 6))
def test_split_properties(data, fraction, min_ratings):
    rows, n_movies = data
    dataset = toy_dataset(rows, n_movies)
    split = temporal_split(dataset, fraction, min_ratings)
    assert split.train.ratings.shape == split.test.ratings.shape == dataset.ratings.shape
    for user in range(dataset.n_users):
        train, test, full = _pairs(split.train, user), _pairs(split.test, user), _pairs(dataset, user)
        train_movies, test_movies = {m for m, _ in train}, {m for m, _ in test}
        assert not train_movies & test_movies  # no leakage
        assert train | test == full  # nothing lost
        n = len(full)
        expected = 0 if n < min_ratings else min(n - 1, math.ceil(Fraction(str(fraction)) * n))
        assert len(test) == expected
        if test:
            # the test part is the latest, ties broken by movie id
            assert max((t, m) for m, t in train) < min((t, m) for m, t in test)
    # same ratings values on both sides
    total = split.train.ratings + split.test.ratings
    assert (total != dataset.ratings).nnz == 0
    again = temporal_split(dataset, fraction, min_ratings)
    assert (again.test.ratings != split.test.ratings).nnz == 0
    assert np.array_equal(again.test.timestamps, split.test.timestamps)
