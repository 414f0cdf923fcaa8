"""GymnasiumVecEnv: the batched session env under SB3's VecEnv conventions; show_misses."""

from __future__ import annotations

import gymnasium
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env as gymnasium_check_env
from stable_baselines3.common.env_checker import check_env

from rlrec.envs.sb3_vec import GymnasiumVecEnv
from rlrec.envs.session import MovieLensSessionEnv

SYNTH = "synthetic:n_users=30,n_movies=80,n_ratings=600,seed=1"


def _venv(n: int, **kwargs):
    return gymnasium.make_vec(
        "rlrec/MovieLensSession-v0",
        num_envs=n,
        vectorization_mode="vector_entry_point",
        autoreset_mode="same_step",
        data=SYNTH,
        **kwargs,
    )


def _single(**kwargs):
    return gymnasium.make("rlrec/MovieLensSession-v0", data=SYNTH, **kwargs)


def test_steps_follow_the_single_envs_with_sb3_conventions() -> None:
    n, length = 3, 4
    env = GymnasiumVecEnv(_venv(n, max_episode_steps=length))
    env.seed(5)
    singles = [_single(max_episode_steps=length) for _ in range(n)]
    expected_obs = np.stack([single.reset(seed=5 + i)[0] for i, single in enumerate(singles)])
    obs = env.reset()
    np.testing.assert_array_equal(obs, expected_obs)
    rng = np.random.default_rng(0)
    seen_end = False
    for _ in range(12):
        actions = rng.integers(0, 80, size=n)
        obs, rewards, dones, infos = env.step(actions)
        for i, single in enumerate(singles):
            s_obs, s_reward, s_term, s_trunc, s_info = single.step(int(actions[i]))
            assert rewards[i] == pytest.approx(s_reward)
            assert dones[i] == (s_term or s_trunc)
            assert infos[i]["TimeLimit.truncated"] == (s_trunc and not s_term)
            assert infos[i]["hit"] == s_info["hit"] and infos[i]["user_id"] == s_info["user_id"]
            if dones[i]:
                seen_end = True
                np.testing.assert_array_equal(infos[i]["terminal_observation"], s_obs)
                s_obs, _ = single.reset()
            np.testing.assert_array_equal(obs[i], s_obs)
    assert seen_end
    masks = env.env_method("action_masks")
    np.testing.assert_array_equal(
        np.stack(masks), np.stack([single.unwrapped.action_masks() for single in singles])
    )


def test_returns_fresh_arrays() -> None:
    env = GymnasiumVecEnv(_venv(2))
    first = env.reset()
    second, *_ = env.step(np.array([0, 1]))
    assert not np.shares_memory(first, second)


def test_refuses_next_step_autoreset() -> None:
    venv = gymnasium.make_vec(
        "rlrec/MovieLensSession-v0", num_envs=2, vectorization_mode="vector_entry_point", data=SYNTH
    )
    with pytest.raises(ValueError, match="SAME_STEP"):
        GymnasiumVecEnv(venv)


def test_show_misses_makes_the_observation_the_mask() -> None:
    env = MovieLensSessionEnv(SYNTH, show_misses=True)
    check_env(env)
    gymnasium_check_env(env, skip_render_check=True)
    obs, _ = env.reset(seed=0)
    assert env.observation_space.low.min() == -1.0
    rng = np.random.default_rng(1)
    for _ in range(20):
        action = int(rng.integers(80))
        was_allowed = bool(env.action_masks()[action])
        obs, _, terminated, truncated, info = env.step(action)
        if was_allowed and not info["hit"]:
            assert obs[action] == -1.0
        np.testing.assert_array_equal(obs != 0, ~env.action_masks())
        if terminated or truncated:
            obs, _ = env.reset()


def test_show_misses_vector_equals_single() -> None:
    venv = _venv(2, show_misses=True, max_episode_steps=5)
    singles = [_single(show_misses=True, max_episode_steps=5) for _ in range(2)]
    obs, _ = venv.reset(seed=3)
    for i, single in enumerate(singles):
        np.testing.assert_array_equal(obs[i], single.reset(seed=3 + i)[0])
    rng = np.random.default_rng(2)
    for _ in range(4):
        actions = rng.integers(0, 80, size=2)
        obs, *_ = venv.step(actions)
        for i, single in enumerate(singles):
            np.testing.assert_array_equal(obs[i], single.step(int(actions[i]))[0])


def test_show_misses_must_be_a_bool() -> None:
    with pytest.raises(ValueError, match="show_misses"):
        MovieLensSessionEnv(SYNTH, show_misses="maybe")  # type: ignore[arg-type]
