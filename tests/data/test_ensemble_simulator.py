"""EnsembleSimulator: its spread, penalty and shrinkage against values worked out by hand, and the
guarded prediction reaching the reward an agent sees."""

from __future__ import annotations

import math

import numpy as np
import pytest

from rlrec.data import load_movielens
from rlrec.data.simulator import EnsembleSimulator, RatingSimulator, fit_simulator
from rlrec.envs.session import MovieLensSessionEnv

SYNTH = "synthetic:n_users=30,n_movies=50,n_ratings=500,seed=4"


def _member(movie_bias: list[float]) -> RatingSimulator:
    """Two users, two movies, no factors: the prediction is 3 + the movie's bias."""
    return RatingSimulator(
        global_mean=3.0,
        user_bias=np.zeros(2, np.float32),
        item_bias=np.array(movie_bias, np.float32),
        user_factors=np.zeros((2, 1), np.float32),
        item_factors=np.zeros((2, 1), np.float32),
    )


def _ensemble(penalty: float, shrinkage: float, evidence: list[float]) -> EnsembleSimulator:
    members = [_member([0.0, 1.0]), _member([0.5, 1.0]), _member([1.0, 1.0])]
    return EnsembleSimulator(
        members, penalty, shrinkage, np.array(evidence, np.float32), np.array([3.0, 2.0], np.float32)
    )


def test_spread_and_penalty_by_hand() -> None:
    # Movie 0: the members say 3, 3.5, 4: mean 3.5, population std sqrt(1/6); movie 1: all 4.
    mean, std = _ensemble(0.0, 0.0, [5, 5]).spread(np.array([0, 0]), np.array([0, 1]))
    np.testing.assert_allclose(mean, [3.5, 4.0])
    np.testing.assert_allclose(std, [math.sqrt(1 / 6), 0.0])
    penalised = _ensemble(2.0, 0.0, [5, 5]).predict_pairs(np.array([0, 0]), np.array([0, 1]))
    np.testing.assert_allclose(penalised, [3.5 - 2 * math.sqrt(1 / 6), 4.0], rtol=1e-6)


def test_shrinkage_toward_the_users_mean_by_evidence() -> None:
    users, movies = np.array([0, 1, 0]), np.array([0, 0, 1])
    # Movie 0 has 2 ratings, movie 1 none; shrinkage 2: half of movie 0's value is kept.
    shrunk = _ensemble(0.0, 2.0, [2, 0]).predict_pairs(users, movies)
    np.testing.assert_allclose(shrunk, [(3.5 + 3.0) / 2, (3.5 + 2.0) / 2, 3.0], rtol=1e-6)
    # No evidence: exactly the user's prior; ample evidence: the unshrunk value.
    assert _ensemble(0.0, 50.0, [0, 0]).predict_pairs(np.array([1]), np.array([1]))[0] == 2.0
    ample = _ensemble(0.0, 50.0, [1e9, 1e9]).predict_pairs(np.array([0]), np.array([0]))[0]
    assert ample == pytest.approx(3.5, abs=1e-5)
    # Shrinkage 0 is none at all, whatever the evidence.
    assert _ensemble(0.0, 0.0, [0, 0]).predict_pairs(np.array([1]), np.array([0]))[0] == 3.5


def test_fit_uses_subsamples_and_the_data_for_its_priors() -> None:
    data = load_movielens(SYNTH)
    ensemble = EnsembleSimulator.fit(
        data, n_models=3, penalty=1.0, shrinkage=5.0, prior="user", n_factors=4, seed=1
    )
    assert len(ensemble.members) == 3
    # Each member saw a different subsample: their predictions differ.
    users, movies = np.repeat(np.arange(5), 10), np.tile(np.arange(10), 5)
    first, second = (m.predict_pairs(users, movies) for m in ensemble.members[:2])
    assert not np.allclose(first, second)
    np.testing.assert_array_equal(ensemble.evidence, data.movie_counts.astype(np.float32))
    np.testing.assert_allclose(ensemble.prior, data.user_means, rtol=1e-6)
    with pytest.raises(ValueError, match="penalty"):
        EnsembleSimulator.fit(data, penalty=-1.0)
    assert (EnsembleSimulator.fit(data, n_models=1, n_factors=2).prior == 3.0).all()  # the default prior
    with pytest.raises(ValueError, match="prior"):
        EnsembleSimulator.fit(data, prior=7.0)
    with pytest.raises(ValueError, match="n_models"):
        EnsembleSimulator.fit(data, n_models=0)
    assert isinstance(fit_simulator(data, n_factors=2), RatingSimulator)
    assert isinstance(fit_simulator(data, penalty=0.5, n_factors=2), EnsembleSimulator)


def test_the_penalty_reaches_the_reward_the_agent_sees() -> None:
    """``reward_mode="simulated"``: a recommended movie the user did not rate pays the guarded
    prediction / 5; with a larger penalty it pays less where the members disagree."""
    data = load_movielens(SYNTH)
    options = {"n_models": 4, "n_factors": 4, "shrinkage": 3.0, "seed": 2}
    paid = {}
    for penalty in (0.0, 3.0):
        env = MovieLensSessionEnv(data, reward_mode="simulated", simulator={**options, "penalty": penalty})
        env.reset(seed=0)
        user = int(env.episodes.users[0])
        movie = int(np.flatnonzero(env.action_masks() & (env.episodes.hidden[0] == 0))[0])
        _, reward, *_ = env.step(movie)
        simulator = env.world.simulator
        assert isinstance(simulator, EnsembleSimulator) and simulator.penalty == penalty
        expected = float(simulator.predict_pairs(np.array([user]), np.array([movie]))[0]) / 5
        assert reward == pytest.approx(expected)
        paid[penalty] = reward
        _, std = simulator.spread(np.array([user]), np.array([movie]))
    assert std[0] > 0 and paid[3.0] < paid[0.0]
