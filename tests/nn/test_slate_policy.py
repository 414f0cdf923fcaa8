"""SlateDistribution (Plackett-Luce slates) by hand, and PPO with SlatePolicy on the slate env."""

from __future__ import annotations

import math

import gymnasium
import torch

import rlrec  # noqa: F401  (registers the env ids)
from rlrec.nn import SlateDistribution, SlatePolicy, SparseInputExtractor


def test_log_prob_is_plackett_luce_by_hand() -> None:
    logits = torch.tensor([[0.0, math.log(2.0), math.log(3.0), math.log(4.0)]])  # weights 1, 2, 3, 4
    dist = SlateDistribution(4, 2).proba_distribution(logits)
    # P(3 then 1) = 4/10 * 2/6 ; P(0 then 2) = 1/10 * 3/9
    got = dist.log_prob(torch.tensor([[3, 1]])).item(), dist.log_prob(torch.tensor([[0, 2]])).item()
    assert abs(got[0] - math.log(4 / 10 * 2 / 6)) < 1e-6 and abs(got[1] - math.log(1 / 10 * 3 / 9)) < 1e-6
    # Every ordered pair of distinct movies: the probabilities sum to 1.
    pairs = torch.tensor([[a, b] for a in range(4) for b in range(4) if a != b])
    dist = SlateDistribution(4, 2).proba_distribution(logits.expand(len(pairs), 4))
    assert abs(dist.log_prob(pairs).exp().sum().item() - 1.0) < 1e-6


def test_samples_are_distinct_and_follow_the_first_draw() -> None:
    torch.manual_seed(0)
    logits = torch.log(torch.tensor([[1.0, 2.0, 3.0, 4.0]])).expand(20_000, 4)
    dist = SlateDistribution(4, 3).proba_distribution(logits)
    slates = dist.sample()
    assert all(len(set(row)) == 3 for row in slates.tolist())
    first = torch.bincount(slates[:, 0], minlength=4).float() / len(slates)
    torch.testing.assert_close(first, torch.tensor([0.1, 0.2, 0.3, 0.4]), atol=0.015, rtol=0)
    assert dist.mode()[0].tolist() == [3, 2, 1]


def test_ppo_with_slate_policy_trains_and_never_draws_shown_movies() -> None:
    from stable_baselines3 import PPO

    from rlrec.envs.sb3_vec import GymnasiumVecEnv

    venv = gymnasium.make_vec(
        "rlrec/MovieLensSlate-v0", num_envs=4, vectorization_mode="vector_entry_point",
        autoreset_mode="same_step", data="synthetic:n_users=30,n_movies=80,n_ratings=800,seed=1",
        slate_size=5, feedback="simulated", show_misses=True, max_episode_steps=3,
    )  # fmt: skip
    env = GymnasiumVecEnv(venv)
    model = PPO(
        SlatePolicy, env, n_steps=6, batch_size=24, n_epochs=2, gamma=0.0, seed=0, device="cpu",
        policy_kwargs=dict(net_arch=[], features_extractor_class=SparseInputExtractor,
                           features_extractor_kwargs=dict(features_dim=16)),
    )  # fmt: skip
    assert model.policy.action_net.out_features == 80  # one score per movie, not 5 x 80
    model.learn(48)
    obs = env.reset()
    slates, _ = model.predict(obs, deterministic=True)
    assert slates.shape == (4, 5)
    for row, slate in zip(obs, slates):
        assert len(set(slate.tolist())) == 5 and not (row[slate] != 0).any()
