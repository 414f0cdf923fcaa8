"""StateTargetValues gives SB3's bootstrap values (the target network on next_observations)."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import torch

from rlrec.data.synthetic import make_synthetic
from rlrec.envs.movielens import MovieLensEnv
from rlrec.nn import CompactReplayBuffer, StateTargetValues, TargetValues


def _filled_buffer(env: MovieLensEnv, n: int, seed: int) -> CompactReplayBuffer:
    rng = np.random.default_rng(seed)
    buffer = CompactReplayBuffer(
        1000, env.observation_space, env.action_space, device="cpu", observations_fn=env.observations
    )
    states = rng.integers(0, env.n_states, size=n)
    next_states = rng.integers(0, env.n_states, size=n)
    buffer.add_transitions(
        env.observations(states), env.observations(next_states), rng.integers(0, env.n_movies, size=n),
        rng.random(n).astype(np.float32), np.zeros(n, dtype=bool), states, next_states,
    )  # fmt: skip
    return buffer


def test_cached_values_equal_the_forward_pass_and_follow_target_updates() -> None:
    env = MovieLensEnv(make_synthetic(n_users=40, n_movies=60, n_ratings=800, seed=3))
    torch.manual_seed(0)
    net = torch.nn.Sequential(
        torch.nn.Linear(env.n_movies, 16), torch.nn.ReLU(), torch.nn.Linear(16, env.n_movies)
    )
    buffer = _filled_buffer(env, 200, seed=1)
    plain, cached = TargetValues(net), StateTargetValues(net, env.observations, env.n_states)
    for _ in range(3):  # the later batches hit states cached by the earlier ones
        batch = buffer.sample(32)
        torch.testing.assert_close(cached(batch), plain(batch))
    assert np.isfinite(cached.values).sum() > 0

    with torch.no_grad():
        net[2].bias.add_(1.0)  # a target sync: every value moves by exactly +1
    stale = cached(batch)
    cached.target_updated()
    torch.testing.assert_close(cached(batch), stale + 1.0)
    torch.testing.assert_close(cached(batch), plain(batch))


def test_batches_not_stored_as_states_fall_back_to_the_forward_pass() -> None:
    space = gym.spaces.Box(0.0, 5.0, shape=(6,), dtype=np.float32)
    buffer = CompactReplayBuffer(100, space, gym.spaces.Discrete(6), device="cpu")
    rng = np.random.default_rng(0)
    obs = rng.random((10, 6)).astype(np.float32)
    buffer.add_transitions(
        obs, obs[::-1].copy(), rng.integers(0, 6, 10), np.ones(10, np.float32), np.zeros(10, bool)
    )
    net = torch.nn.Linear(6, 6)
    cached = StateTargetValues(net, lambda s: np.zeros((len(s), 6), np.float32), n_states=5)
    batch = buffer.sample(8)
    torch.testing.assert_close(cached(batch), net(batch.next_observations).max(dim=1).values.detach())
    assert np.isnan(cached.values).all()  # nothing cached: rows were observations, not states
