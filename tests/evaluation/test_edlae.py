"""EDLAE by hand and against EASE at dropout 0; hyperparameters chosen on validation, never on test."""

from __future__ import annotations

import numpy as np
import pytest

from rlrec.data import load_movielens
from rlrec.data.split import temporal_split
from rlrec.evaluation import baselines
from rlrec.evaluation.baselines import EASEBaseline, EDLAEBaseline, select_on_validation
from rlrec.evaluation.protocol import evaluate_baseline
from tests.envs.tiny_data import tiny_dataset

SMALL = "synthetic:n_users=60,n_movies=80,n_ratings=1500,seed=3"


def test_edlae_closed_form_by_hand() -> None:
    # tiny_data's binary matrix over the rated movies 7, 11, 13, 42, 99 (123 has no rating).
    x = np.array([[1, 0, 1, 0, 0], [0, 1, 0, 1, 1], [1, 0, 0, 0, 1]], dtype=float)
    gram = x.T @ x
    l2, p = 2.0, 0.5
    penalty = l2 + p / (1 - p) * np.diag(gram)
    inverse = np.linalg.inv(gram + np.diag(penalty))
    weights = inverse / -np.diag(inverse)
    np.fill_diagonal(weights, 0.0)
    model = EDLAEBaseline(l2=l2, dropout=p).fit(tiny_dataset())
    np.testing.assert_allclose(model.score(np.arange(3))[:, :5], x @ weights, rtol=1e-4, atol=1e-5)
    np.testing.assert_array_equal(model.score(np.arange(3))[:, 5], 0.0)  # nobody rated 123


def test_edlae_at_dropout_zero_is_ease() -> None:
    train = temporal_split(load_movielens(SMALL)).train
    users = np.arange(20)
    np.testing.assert_allclose(
        EDLAEBaseline(l2=300.0, dropout=0.0).fit(train).score(users),
        EASEBaseline(l2=300.0).fit(train).score(users),
        rtol=1e-5, atol=1e-6,
    )  # fmt: skip
    with pytest.raises(ValueError, match="dropout"):
        EDLAEBaseline(dropout=1.0)


def test_selection_reads_the_validation_part_of_train_only(monkeypatch: pytest.MonkeyPatch) -> None:
    split = temporal_split(load_movielens(SMALL))
    seen: list[int] = []
    original = baselines.select_on_split

    def spy(name, inner, k=10):  # type: ignore[no-untyped-def]
        seen.append(inner.train.n_ratings + inner.test.n_ratings)
        return original(name, inner, k)

    monkeypatch.setattr(baselines, "select_on_split", spy)
    chosen = select_on_validation("edlae", split.train)
    assert seen == [split.train.n_ratings]  # the validation split is carved from train, test untouched
    assert set(chosen.params) == {"l2", "dropout"} and len(chosen.tried) == 6
    assert chosen.score == max(score for _, score in chosen.tried)
    result = evaluate_baseline("edlae", split)
    assert result["params"] == chosen.params and result["validation_ndcg@10"] == pytest.approx(chosen.score)
    fixed = evaluate_baseline("ease", split, l2=123.0)
    assert "params" not in fixed  # parameters given: nothing chosen
