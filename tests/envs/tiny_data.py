"""A 3-user dataset small enough to work every expected value out by hand.

Movies (id -> index): 7->0, 11->1, 13->2, 42->3, 99->4, 123->5 (nobody rated 123).

    user 10 (index 0): 7: 4.0, 13: 2.0            mean 3.0
    user 20 (index 1): 11: 5.0, 42: 4.0, 99: 1.5  mean 3.5
    user 30 (index 2): 7: 2.0, 99: 5.0            mean 3.5
"""

from __future__ import annotations

import numpy as np

from rlrec.data.dataset import RatingsDataset, build_dataset

MOVIE_IDS = np.array([7, 11, 13, 42, 99, 123])
TITLES = np.array(["Seven", "Eleven", "Thirteen", "Forty-Two", "Ninety-Nine", "Nobody's"], dtype=object)
RATINGS = {10: {7: 4.0, 13: 2.0}, 20: {11: 5.0, 42: 4.0, 99: 1.5}, 30: {7: 2.0, 99: 5.0}}
MEANS = {10: 3.0, 20: 3.5, 30: 3.5}

# Profiles by hand: the rating where rated, the user's mean elsewhere.
PROFILES = np.array(
    [
        [4.0, 3.0, 2.0, 3.0, 3.0, 3.0],
        [3.5, 5.0, 3.5, 4.0, 1.5, 3.5],
        [2.0, 3.5, 3.5, 3.5, 5.0, 3.5],
    ],
    dtype=np.float32,
)


def tiny_dataset() -> RatingsDataset:
    rows = [(u, m, r) for u, movies in RATINGS.items() for m, r in movies.items()]
    users, movies, ratings = (np.array(column) for column in zip(*rows))
    return build_dataset(
        "tiny",
        users,
        movies,
        ratings,
        np.arange(len(rows)),
        MOVIE_IDS,
        TITLES,
        np.array(["Drama"] * len(MOVIE_IDS), dtype=object),
    )


def movie(movie_id: int) -> int:
    """Action (movie index) of a movieId."""
    return int(np.searchsorted(MOVIE_IDS, movie_id))


def without_user_20() -> RatingsDataset:
    """The same users and movies, user 20 keeping no rating (their mean falls back to 2.5)."""
    data = tiny_dataset()
    owner = np.repeat(data.user_ids, data.user_counts)
    return data.filter_ratings(owner != 20)
