"""Tiny hand-made datasets for the evaluation tests."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from rlrec.data.dataset import RatingsDataset, build_dataset


def toy_dataset(
    rows: Sequence[tuple[int, int, float, int]], n_movies: int, name: str = "toy"
) -> RatingsDataset:
    """A dataset from ``(user_id, movie_id, rating, timestamp)`` rows over movie ids ``0..n_movies-1``."""
    users, movies, ratings, stamps = (np.array(column) for column in zip(*rows))
    movie_ids = np.arange(n_movies)
    return build_dataset(
        name,
        users,
        movies,
        ratings.astype(np.float32),
        stamps.astype(np.int64),
        movie_ids,
        np.array([f"movie {m}" for m in movie_ids], dtype=object),
        np.array(["Drama"] * n_movies, dtype=object),
    )
