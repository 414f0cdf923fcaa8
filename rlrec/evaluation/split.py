"""The splits a training run and the evaluation use: the per-user temporal split (it lives in the
data layer, :mod:`rlrec.data.split`, where the synthetic twin fits on its train part too), one
level down for validation, and what ``rlrec train`` trains on.
"""

from __future__ import annotations

from typing import Any

from rlrec.data.dataset import RatingsDataset
from rlrec.data.split import (
    DEFAULT_MIN_RATINGS,
    DEFAULT_TEST_FRACTION,
    Split,
    held_out_counts,
    temporal_split,
)

__all__ = [
    "DEFAULT_MIN_RATINGS",
    "DEFAULT_TEST_FRACTION",
    "Split",
    "held_out_counts",
    "temporal_split",
    "training_data",
    "validation_split",
]


def validation_split(train: RatingsDataset) -> Split:
    """The fit/validation split inside a train part: the same temporal split, one level down.

    What ``rlrec tune`` scores trials on and ``rlrec train --eval-freq`` evaluates on: the last
    20% of each user's train ratings, so that choosing a model never reads the test part.
    """
    return temporal_split(train)


def training_data(
    source: Any, holdout: bool = True, recorded: dict[str, Any] | None = None
) -> tuple[Any, dict[str, Any]]:
    """What a training run sees: the train part of the temporal split of ``source`` (or all of it).

    Used by ``rlrec train`` so that ``rlrec evaluate --model`` later ranks ratings the model never
    saw. Returns ``(data, run_info)``; ``run_info`` is what ``run.json`` records so evaluation (and
    ``--resume``) rebuild the same split.

    :param source: anything ``load_movielens`` takes.
    :param holdout: ``False`` trains on every rating (then the run cannot be evaluated honestly).
    :param recorded: a run's recorded ``run_info`` (on resume): reuse its source and split settings.
    """
    from rlrec.data import load_movielens

    if recorded:
        source = recorded.get("data_source", source)
        settings = recorded.get("split") or {}
        holdout = bool(settings)
    else:
        settings = {}
    label = str(getattr(source, "name", source))
    if not holdout:
        return source, {"data_source": label}
    dataset = load_movielens(source)
    split = temporal_split(
        dataset,
        float(settings.get("test_fraction", DEFAULT_TEST_FRACTION)),
        int(settings.get("min_ratings", DEFAULT_MIN_RATINGS)),
    )
    return split.train, {"split": split.describe(), "data_source": label}
