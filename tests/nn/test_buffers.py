"""CompactReplayBuffer: what ``sample`` returns equals what the env produced, for both envs."""

from __future__ import annotations

import gymnasium
import numpy as np
import pytest
import torch
from gymnasium import spaces
from stable_baselines3.common.buffers import ReplayBuffer

from rlrec.envs.sb3_vec import GymnasiumVecEnv
from rlrec.nn import CompactReplayBuffer
from tests.agents.tiny_world import tiny_dataset

SYNTH = "synthetic:n_users=30,n_movies=80,n_ratings=600,seed=1"


def _sb3_session_env(n_envs: int, **kwargs) -> GymnasiumVecEnv:
    venv = gymnasium.make_vec(
        "rlrec/MovieLensSession-v0",
        num_envs=n_envs,
        vectorization_mode="vector_entry_point",
        autoreset_mode="same_step",
        data=SYNTH,
        **kwargs,
    )
    env = GymnasiumVecEnv(venv)
    env.seed(0)
    return env


def _sb3_movielens_env(n_envs: int):
    from stable_baselines3.common.env_util import make_vec_env

    return make_vec_env(
        lambda: gymnasium.make("rlrec/MovieLens-v0", data=tiny_dataset(), max_episode_steps=3),
        n_envs=n_envs,
        seed=0,
    )


def _roll(env, steps: int, rng: np.random.Generator):
    """SB3's off-policy bookkeeping: next_obs is the terminal observation at an episode end."""
    obs = env.reset()
    for _ in range(steps):
        actions = rng.integers(0, env.action_space.n, size=env.num_envs)
        new_obs, rewards, dones, infos = env.step(actions)
        next_obs = new_obs.copy()
        for i, done in enumerate(dones):
            if done:
                next_obs[i] = infos[i]["terminal_observation"]
        yield obs.copy(), next_obs, actions, rewards, dones, infos
        obs = new_obs


@pytest.mark.parametrize("env_name", ["session", "session-misses", "movielens"])
def test_every_stored_transition_comes_back_exactly(env_name: str) -> None:
    n_envs = 4
    if env_name == "movielens":
        env = _sb3_movielens_env(n_envs)
    else:
        env = _sb3_session_env(n_envs, max_episode_steps=6, show_misses=env_name == "session-misses")
    buffer = CompactReplayBuffer(1000, env.observation_space, env.action_space, device="cpu", n_envs=n_envs)
    # SB3's own buffer, fed the same transitions, is the independent reference.
    reference = ReplayBuffer(1000, env.observation_space, env.action_space, device="cpu", n_envs=n_envs)
    ends = 0
    for transition in _roll(env, 40, np.random.default_rng(0)):
        buffer.add(*transition)
        reference.add(*transition)
        ends += int(transition[4].sum())
    assert ends > 0  # the check spans episode ends
    for index in range(buffer.size()):
        for env_index in range(n_envs):
            slot = np.array([index * n_envs + env_index])
            np.testing.assert_array_equal(
                buffer.observations_at(slot)[0], reference.observations[index, env_index]
            )
            np.testing.assert_array_equal(
                buffer.next_observations_at(slot)[0], reference.next_observations[index, env_index]
            )
    # sample() draws like SB3's (NumPy's global generator): same seed, same batch.
    np.random.seed(7)  # noqa: NPY002
    ours = buffer.sample(32)
    np.random.seed(7)  # noqa: NPY002
    theirs = reference.sample(32)
    for mine, expected in zip(ours, theirs):
        if expected is None:  # fields SB3 leaves empty (n-step discounts)
            assert mine is None
            continue
        assert mine.shape == expected.shape
        torch.testing.assert_close(mine.to(expected.dtype), expected)


def test_wrapping_and_growth_keep_every_live_transition() -> None:
    space = spaces.Box(0.0, 5.0, shape=(50,), dtype=np.float32)
    buffer = CompactReplayBuffer(8, space, spaces.Discrete(50), device="cpu", n_envs=2)
    rng = np.random.default_rng(3)
    kept: dict[int, tuple[np.ndarray, np.ndarray]] = {}
    for step in range(30):  # wraps the 4 rows several times, with growing rows
        obs = np.zeros((2, 50), dtype=np.float32)
        for row in range(2):
            cols = rng.choice(50, size=min(49, 2 + step), replace=False)
            obs[row, cols] = rng.choice([0.5, 1.0, 4.5], size=len(cols))
        nxt = obs.copy()
        nxt[:, step % 50] = 3.0
        buffer.add(obs, nxt, np.array([1, 2]), np.array([0.0, 1.0]), np.array([False, False]), [{}, {}])
        kept[step % 4] = (obs, nxt)
    for row, (obs, nxt) in kept.items():
        slots = np.array([row * 2, row * 2 + 1])
        np.testing.assert_array_equal(buffer.observations_at(slots), obs)
        np.testing.assert_array_equal(buffer.next_observations_at(slots), nxt)


def test_many_distinct_values_switch_to_full_values() -> None:
    space = spaces.Box(-10.0, 10.0, shape=(400,), dtype=np.float32)
    buffer = CompactReplayBuffer(10, space, spaces.Discrete(400), device="cpu")
    rng = np.random.default_rng(0)
    rows = []
    for _ in range(3):
        obs = rng.normal(size=(1, 400)).astype(np.float32)  # dense and all distinct: 1,200 values
        buffer.add(obs, obs, np.array([0]), np.array([0.0]), np.array([False]), [{}])
        rows.append(obs[0])
    np.testing.assert_array_equal(buffer.observations_at(np.arange(3)), np.stack(rows))


def test_timeouts_are_not_terminal() -> None:
    space = spaces.Box(0.0, 1.0, shape=(5,), dtype=np.float32)
    buffer = CompactReplayBuffer(4, space, spaces.Discrete(5), device="cpu", n_envs=2)
    zeros = np.zeros((2, 5), dtype=np.float32)
    infos = [{"TimeLimit.truncated": True}, {}]
    buffer.add(zeros, zeros, np.array([0, 1]), np.array([1.0, 0.0]), np.array([True, True]), infos)
    batch = buffer._get_samples(np.array([0, 0, 0, 0, 0, 0, 0, 0]))
    # Env 0 was cut by the time limit (done 0 in the target), env 1 terminated (done 1).
    actions = batch.actions[:, 0].numpy()
    np.testing.assert_array_equal(batch.dones[:, 0].numpy(), (actions == 1).astype(np.float32))


def test_a_million_session_transitions_fit_in_256_mb() -> None:
    """The size of the recipe's transitions, extrapolated from a real roll (the buffer grows
    with what it holds, so 1M transitions cost 1M x the per-transition bytes)."""
    env = _sb3_session_env(16, hidden_fraction=0.8, observation="binary", show_misses=True)
    buffer = CompactReplayBuffer(16 * 100, env.observation_space, env.action_space, device="cpu", n_envs=16)
    for transition in _roll(env, 100, np.random.default_rng(0)):
        buffer.add(*transition)
    ring = buffer._ring
    per_transition = (buffer.nbytes - ring.nbytes + (ring.head * 3)) / buffer.size() / 16
    # The tiny world's users have ~20 ratings; the bound is about the layout, not this world.
    assert per_transition < 256


def test_needs_a_box_and_hands_out_its_shape() -> None:
    with pytest.raises(ValueError, match="Box observation space"):
        CompactReplayBuffer(10, spaces.Discrete(3), spaces.Discrete(3))
    # A (2, L) sequence observation is stored flat and sampled back in its shape, values intact.
    space = spaces.Box(0.0, 9.0, shape=(2, 4), dtype=np.float32)
    buffer = CompactReplayBuffer(8, space, spaces.Discrete(9), device="cpu")
    obs = np.array([[[0, 3, 5, 7], [0, 0.2, 0.4, 1.0]]], dtype=np.float32)
    next_obs = np.array([[[3, 5, 7, 8], [0.2, 0.4, 1.0, 0.6]]], dtype=np.float32)
    buffer.add_transitions(obs, next_obs, np.array([8]), np.array([1.0]), np.array([False]))
    batch = buffer.latest()
    np.testing.assert_array_equal(batch.observations.numpy(), obs)
    np.testing.assert_array_equal(batch.next_observations.numpy(), next_obs)
