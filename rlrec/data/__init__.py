"""Data layer: load, validate, index and generate MovieLens-shaped ratings.

``load_movielens(source)`` is the entry point; it returns a :class:`RatingsDataset`.
"""

from __future__ import annotations

from rlrec.data.dataset import (
    FALLBACK_MEAN,
    LIKED_RATING,
    RATING_MAX,
    RATING_MIN,
    RatingsDataset,
    build_dataset,
)
from rlrec.data.errors import DatasetError
from rlrec.data.fetch import KNOWN_RELEASES, fetch_movielens
from rlrec.data.home import data_home
from rlrec.data.movielens import load_movielens
from rlrec.data.synthetic import make_synthetic, write_movielens_csv
from rlrec.data.truth import SyntheticWorld

__all__ = [
    "FALLBACK_MEAN",
    "KNOWN_RELEASES",
    "LIKED_RATING",
    "RATING_MAX",
    "RATING_MIN",
    "DatasetError",
    "RatingsDataset",
    "SyntheticWorld",
    "build_dataset",
    "data_home",
    "fetch_movielens",
    "load_movielens",
    "make_synthetic",
    "write_movielens_csv",
]
