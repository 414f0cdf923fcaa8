"""Off-policy estimators against closed-form values on a tiny bandit; behaviours; the truth by hand."""

from __future__ import annotations

import gymnasium
import numpy as np
import pytest

import rlrec  # noqa: F401  (registers the env ids)
from rlrec.evaluation.offline import LoggedSteps, make_behaviour
from rlrec.evaluation.ope import per_decision, per_step, true_value
from tests.envs.tiny_data import PROFILES, tiny_dataset

# Four logged rounds over 2 actions: mu = (0.5, 0.5) everywhere; pi = (0.8, 0.2); rhat = 1 for action
# 0 and 0 for action 1 (a constant model).
ACTIONS = np.array([0, 1, 0, 1])
REWARDS = np.array([1.0, 0.0, 2.0, 1.0])
MU = np.full(4, 0.5)
PI_LOGGED = np.where(ACTIONS == 0, 0.8, 0.2)
RHAT_LOGGED = np.where(ACTIONS == 0, 1.0, 0.0)
DM_VALUES = np.full(4, 0.8 * 1.0 + 0.2 * 0.0)


def test_per_step_estimators_by_hand() -> None:
    est = per_step(REWARDS, MU, PI_LOGGED, DM_VALUES, RHAT_LOGGED, n_bootstrap=200, seed=0)
    w = np.array([1.6, 0.4, 1.6, 0.4])
    assert est["ips"].value == pytest.approx(np.mean(w * REWARDS))  # (1.6 + 0 + 3.2 + 0.4) / 4 = 1.3
    assert est["ips"].value == pytest.approx(1.3)
    assert est["snips"].value == pytest.approx(5.2 / 4.0)
    assert est["dm"].value == pytest.approx(0.8)
    # DR = DM + mean(w (r - rhat)) = 0.8 + (1.6*0 + 0.4*0 + 1.6*1 + 0.4*1) / 4 = 1.3
    assert est["dr"].value == pytest.approx(1.3)
    for estimate in est.values():
        assert estimate.low <= estimate.value <= estimate.high or estimate.low == estimate.high
    with pytest.raises(ValueError, match="propensities"):
        per_step(REWARDS, np.zeros(4), PI_LOGGED, DM_VALUES, RHAT_LOGGED)


def test_per_decision_by_hand() -> None:
    # Two episodes: (r=1, w=2), (r=2, w=0.5) then one of length 1 (r=3, w=1).
    steps = LoggedSteps(
        observations=np.zeros((3, 1), np.float32), states=np.zeros(3, np.int64),
        actions=np.zeros(3, np.int64),
        rewards=np.array([1.0, 2.0, 3.0]), propensities=np.array([0.5, 1.0, 0.5]),
        terminations=np.array([False, True, True]), episode_starts=np.array([0, 2]),
    )  # fmt: skip
    target = np.array([1.0, 0.5, 0.5])  # ratios 2, 0.5, 1
    est = per_decision(steps, target, gamma=0.5, n_bootstrap=50)
    # PDIS: episode 1: 2*1 + 0.5 * (2*0.5) * 2 = 3; episode 2: 1*3 = 3 -> mean 3
    assert est["pdis"].value == pytest.approx(3.0)
    # WPDIS: t=0: weights (2, 1) -> (2*1 + 1*3) / 3 = 5/3; t=1: weights (1, 1) (episode 2 absorbed)
    # -> (1 * 0.5*2 + 1*0) / 2 = 0.5; total 13/6
    assert est["wpdis"].value == pytest.approx(5 / 3 + 0.5)


@pytest.mark.parametrize("name", ["uniform", "popularity", "epsilon-greedy", "softmax"])
def test_behaviour_propensities_sum_to_one_over_the_allowed_movies(name: str) -> None:
    scores = lambda obs, states: np.arange(6, dtype=float)[None].repeat(len(states), 0)  # noqa: E731
    behaviour = make_behaviour(
        name, scores, counts=np.array([5, 1, 0, 2, 9, 3]), epsilon=0.2, temperature=0.5
    )
    masks = np.array([[True] * 6, [True, False, True, False, True, False]])
    probs = behaviour.probabilities(np.zeros((2, 6), np.float32), np.array([0, 1]), masks)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0)
    assert (probs[~masks] == 0).all()
    if name == "epsilon-greedy":  # the best allowed movie gets 1 - eps + eps / |allowed|
        assert probs[0, 5] == pytest.approx(0.8 + 0.2 / 6) and probs[1, 4] == pytest.approx(0.8 + 0.2 / 3)
    with pytest.raises(ValueError, match="--epsilon"):
        make_behaviour(name, scores, counts=np.ones(6), epsilon=1.5)


def test_true_value_is_the_mean_over_users_of_the_expected_reward() -> None:
    env = gymnasium.make("rlrec/MovieLens-v0", data=tiny_dataset(), reward_mode="rating", user_order="random")
    uniform = make_behaviour("uniform")
    # "rating": the rating when rated, else 0; uniform over 6 movies, users 10 / 20 / 30 by hand.
    by_hand = np.mean([(4.0 + 2.0) / 6, (5.0 + 4.0 + 1.5) / 6, (2.0 + 5.0) / 6])
    assert true_value(uniform, env) == pytest.approx(by_hand)
    seed_env = gymnasium.make("rlrec/MovieLens-v0", data=tiny_dataset(), user_order="random")
    # "seed": unrated movies pay the user's mean, so the uniform policy earns each user's profile mean.
    assert true_value(uniform, seed_env) == pytest.approx(float(PROFILES.mean(axis=1).mean()))
