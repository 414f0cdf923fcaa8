"""Per-user temporal train/test split: learn from each user's past, rank their future.

Every user keeps their own time line: the last ``test_fraction`` of a user's ratings (by
timestamp) form the test part, the rest the train part. Splitting per user (rather than at one
global date) keeps every user in both parts, which the ranking protocol needs; splitting by time
(rather than at random) stops a model from seeing the future it is asked to predict.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from rlrec.data.dataset import RatingsDataset

__all__ = [
    "DEFAULT_MIN_RATINGS",
    "DEFAULT_TEST_FRACTION",
    "Split",
    "held_out_counts",
    "temporal_split",
    "validation_split",
]

#: Share of each user's ratings held out for test (the issue's default).
DEFAULT_TEST_FRACTION = 0.2
#: Users with fewer ratings than this stay wholly in train (the issue's default).
DEFAULT_MIN_RATINGS = 5


@dataclass(frozen=True)
class Split:
    """Train and test parts over the same users x movies universe.

    :param train: the ratings envs, learners and baselines may see.
    :param test: the held-out ratings the protocol ranks against.
    :param test_fraction: share of each eligible user's ratings in ``test``.
    :param min_ratings: users with fewer ratings stay wholly in ``train``.
    """

    train: RatingsDataset
    test: RatingsDataset
    test_fraction: float = DEFAULT_TEST_FRACTION
    min_ratings: int = DEFAULT_MIN_RATINGS

    def describe(self) -> dict[str, Any]:
        """What a results file needs to say about the split (JSON-ready)."""
        return {
            "split": "per-user temporal",
            "test_fraction": self.test_fraction,
            "min_ratings": self.min_ratings,
            "train_ratings": self.train.n_ratings,
            "test_ratings": self.test.n_ratings,
            "test_users": int(np.count_nonzero(self.test.user_counts)),
        }


def held_out_counts(counts: np.ndarray, test_fraction: float, min_ratings: int) -> np.ndarray:
    """Number of test ratings per user: ``ceil(test_fraction * n)``, 0 when ``n < min_ratings``.

    The product is rounded to 9 decimals before ``ceil`` because binary floating point makes
    ``0.2 * 15 = 3.0000000000000004``, which a bare ``ceil`` would turn into 4. At least one
    rating always stays in train (only binds when ``test_fraction`` is close to 1).
    """
    counts = np.asarray(counts, dtype=np.int64)
    n_test = np.ceil(np.round(test_fraction * counts, 9)).astype(np.int64)
    n_test = np.minimum(n_test, counts - 1)
    n_test[counts < min_ratings] = 0
    return np.maximum(n_test, 0)


def temporal_split(
    dataset: RatingsDataset,
    test_fraction: float = DEFAULT_TEST_FRACTION,
    min_ratings: int = DEFAULT_MIN_RATINGS,
) -> Split:
    """Hold out the latest ratings of every user.

    Each user's ratings are ordered by timestamp, ties broken by movie index, so the split is a
    pure function of the data. The last ``ceil(test_fraction * n)`` go to test.

    :param dataset: the full ratings.
    :param test_fraction: share of each user's ratings to hold out, in (0, 1); default 0.2
        (the issue's value).
    :param min_ratings: users with fewer ratings stay wholly in train; default 5 (the issue's).
    :return: ``Split(train, test)``, both over ``dataset``'s users and movies.
    """
    if not 0.0 < float(test_fraction) < 1.0:
        raise ValueError(f"test_fraction must be in (0, 1), got {test_fraction}")
    if int(min_ratings) < 1:
        raise ValueError(f"min_ratings must be >= 1, got {min_ratings}")
    counts = dataset.user_counts
    rows = np.repeat(np.arange(dataset.n_users, dtype=np.int64), counts)
    n_test = held_out_counts(counts, test_fraction, min_ratings)
    is_test = dataset.recency_rank >= (counts - n_test)[rows]
    fraction_label = f"{float(test_fraction):g}"
    return Split(
        train=dataset.filter_ratings(~is_test, name=dataset.name),
        test=dataset.filter_ratings(is_test, name=f"{dataset.name} (test {fraction_label})"),
        test_fraction=float(test_fraction),
        min_ratings=int(min_ratings),
    )


def validation_split(train: RatingsDataset) -> Split:
    """The fit/validation split inside a train part: the same temporal split, one level down.

    What ``rlrec tune`` scores trials on and ``rlrec train --eval-freq`` evaluates on: the last
    20% of each user's train ratings, so that choosing a model never reads the test part.
    """
    return temporal_split(train)
