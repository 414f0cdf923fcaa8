"""What a ratings dataset looks like: the statistics ``rlrec data compare`` prints side by side.

Each is a plain function of a :class:`RatingsDataset`, computed exactly (no sampling):

* ``popularity_gini``: Gini coefficient of the number of ratings per movie (0: every movie as
  popular, 1: one movie takes all), over every movie of the catalogue, rated or not;
* ``unrated_share``: share of the catalogue's movies nobody rated;
* ``activity_median`` / ``activity_gini``: median and Gini of the number of ratings per user;
* ``liked_share``: share of ratings >= 4 (the "liked" threshold);
* ``whole_star_share``: share of ratings on whole stars (1.0, 2.0, ... 5.0), the rest on halves;
* ``rating_shares``: share of each rating value;
* ``popularity_drift``: 1 minus the Spearman correlation between the movies' rating counts in
  the first and the second half of the ratings in time (0: the same movies stay popular).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from rlrec.data.dataset import LIKED_RATING, RatingsDataset

__all__ = [
    "SCALAR_STATISTICS",
    "activity_gini",
    "activity_median",
    "describe",
    "gini",
    "liked_share",
    "popularity_drift",
    "popularity_gini",
    "rating_shares",
    "unrated_share",
    "whole_star_share",
]


def gini(values: np.ndarray) -> float:
    """Gini coefficient of non-negative values: ``sum_i (2i - n - 1) x_(i) / (n sum x)`` over the
    ascending values ``x_(1) <= ... <= x_(n)``; 0 for no values or an all-zero array."""
    x = np.sort(np.asarray(values, dtype=np.float64))
    n, total = len(x), float(x.sum())
    if n == 0 or total == 0.0:
        return 0.0
    ranks = np.arange(1, n + 1)
    return float(np.sum((2 * ranks - n - 1) * x) / (n * total))


def popularity_gini(dataset: RatingsDataset) -> float:
    return gini(dataset.movie_counts)


def unrated_share(dataset: RatingsDataset) -> float:
    return float(np.mean(dataset.movie_counts == 0)) if dataset.n_movies else 0.0


def activity_median(dataset: RatingsDataset) -> float:
    return float(np.median(dataset.user_counts)) if dataset.n_users else 0.0


def activity_gini(dataset: RatingsDataset) -> float:
    return gini(dataset.user_counts)


def liked_share(dataset: RatingsDataset) -> float:
    data = dataset.ratings.data
    return float(np.mean(data >= LIKED_RATING)) if len(data) else 0.0


def whole_star_share(dataset: RatingsDataset) -> float:
    data = dataset.ratings.data.astype(np.float64)
    return float(np.mean(data == np.round(data))) if len(data) else 0.0


def rating_shares(dataset: RatingsDataset) -> dict[str, float]:
    """``{"0.5": share, ..., "5.0": share}`` over the rating values that occur."""
    values, counts = np.unique(dataset.ratings.data, return_counts=True)
    return {f"{value:.1f}": float(count) / dataset.n_ratings for value, count in zip(values, counts)}


def popularity_drift(dataset: RatingsDataset) -> float:
    """1 - Spearman(counts in the first half of time, counts in the second half), movies rated in both."""
    if dataset.n_ratings < 2:
        return 0.0
    middle = np.median(dataset.timestamps)
    early = dataset.timestamps <= middle
    movies = dataset.ratings.indices
    first = np.bincount(movies[early], minlength=dataset.n_movies)
    second = np.bincount(movies[~early], minlength=dataset.n_movies)
    both = (first > 0) & (second > 0)
    if both.sum() < 3:
        return 0.0

    a, b = _mean_ranks(first[both]), _mean_ranks(second[both])
    return float(1.0 - np.corrcoef(a, b)[0, 1])


def _mean_ranks(x: np.ndarray) -> np.ndarray:
    """Ranks from 0, ties sharing their mean rank (Spearman's convention)."""
    order = np.argsort(x, kind="stable")
    ranks = np.empty(len(x))
    ranks[order] = np.arange(len(x))
    _, inverse = np.unique(x, return_inverse=True)
    return (np.bincount(inverse, weights=ranks) / np.bincount(inverse))[inverse]


#: The scalar statistics, in the order ``rlrec data compare`` prints them.
SCALAR_STATISTICS = {
    "popularity_gini": popularity_gini,
    "unrated_share": unrated_share,
    "activity_median": activity_median,
    "activity_gini": activity_gini,
    "liked_share": liked_share,
    "whole_star_share": whole_star_share,
    "popularity_drift": popularity_drift,
}


def describe(dataset: RatingsDataset) -> dict[str, Any]:
    """Every statistic of the module docstring, plus the sizes, JSON-ready."""
    return {
        "users": dataset.n_users,
        "movies": dataset.n_movies,
        "ratings": dataset.n_ratings,
        **{name: fn(dataset) for name, fn in SCALAR_STATISTICS.items()},
        "rating_shares": rating_shares(dataset),
    }
