"""SASRec / GRU4Rec baselines: the sequences they read by hand, and what only an order-aware model
can learn: on a world where every user watches movies along one chain, the next movie is the next link."""

from __future__ import annotations

import numpy as np
import pytest

from rlrec.data.dataset import build_dataset
from rlrec.data.split import temporal_split
from rlrec.evaluation.protocol import evaluate_baseline
from rlrec.evaluation.sequential import fit_sequential, sequences_of
from tests.envs.tiny_data import movie, tiny_dataset


def test_sequences_by_hand() -> None:
    # user 20 rated 11 (5.0), 42 (4.0), 99 (1.5) in that order; user 10: 7 (4.0), 13 (2.0).
    sequences = sequences_of(tiny_dataset(), 3)
    np.testing.assert_array_equal(sequences[1, 0], [movie(11) + 1, movie(42) + 1, movie(99) + 1])
    np.testing.assert_allclose(sequences[1, 1], [1.0, 0.8, 0.3])
    np.testing.assert_array_equal(sequences[0, 0], [0, movie(7) + 1, movie(13) + 1])


def _chain_world(n_users: int = 80, n_movies: int = 40, length: int = 12, seed: int = 0):  # type: ignore[no-untyped-def]
    """Every user watches ``length`` consecutive movies of one cycle, from a random start."""
    rng = np.random.default_rng(seed)
    users, movies, times = [], [], []
    for user in range(n_users):
        start = int(rng.integers(n_movies))
        for step in range(length):
            users.append(user + 1)
            movies.append((start + step) % n_movies + 1)
            times.append(step)
    ids = np.arange(1, n_movies + 1)
    return build_dataset(
        "chain", np.array(users), np.array(movies), np.full(len(users), 4.5), np.array(times), ids,
        np.array([f"m{i}" for i in ids], dtype=object), np.array(["Drama"] * n_movies, dtype=object),
    )  # fmt: skip


@pytest.mark.parametrize("name", ["sasrec", "gru4rec"])
def test_an_order_aware_model_learns_the_next_link(name: str) -> None:
    split = temporal_split(_chain_world())
    learned = evaluate_baseline(name, split, max_epochs=20, eval_every=10, dim=32, lr=5e-3)["ndcg@10"]
    popularity = evaluate_baseline("popularity", split)["ndcg@10"]
    assert popularity < 0.3 < learned


def test_epochs_are_chosen_on_validation() -> None:
    model = fit_sequential("gru4rec", _chain_world(n_users=30), max_epochs=6, eval_every=2, dim=16)
    assert [epoch for epoch, _ in model.curve] == [2, 4, 6]
    assert model.epochs == max(model.curve, key=lambda point: point[1])[0]
    fixed = fit_sequential("gru4rec", _chain_world(n_users=30), epochs=3, dim=16)
    assert fixed.epochs == 3 and fixed.curve == []


def test_the_chosen_epochs_are_reported_like_a_grid_choice() -> None:
    split = temporal_split(_chain_world(n_users=30))
    result = evaluate_baseline("gru4rec", split, max_epochs=6, eval_every=2, dim=16)
    # The same fit by hand: same seed, same train part, so the same validation curve.
    model = fit_sequential("gru4rec", split.train, max_epochs=6, eval_every=2, dim=16)
    best_epochs, best_score = max(model.curve, key=lambda point: point[1])
    assert result["params"] == {"epochs": best_epochs}
    assert result["validation_ndcg@10"] == best_score
    assert "params" not in evaluate_baseline("gru4rec", split, epochs=2, dim=16)  # nothing was chosen
