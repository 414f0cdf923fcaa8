"""The batched envs against independent single envs stepped with the same actions."""

from __future__ import annotations

import gymnasium
import numpy as np
import pytest
from gymnasium.vector import AutoresetMode, SyncVectorEnv
from stable_baselines3.common.vec_env import DummyVecEnv, VecCheckNan, VecEnv, VecMonitor

import rlrec  # noqa: F401  (registers the env ids)
from rlrec.data.simulator import RatingSimulator
from rlrec.envs.movielens import MovieLensEnv, MovieLensVectorEnv
from rlrec.envs.sb3_vec import GymnasiumVecEnv
from tests.envs.tiny_data import PROFILES, tiny_dataset

ENV_ID = "rlrec/MovieLens-v0"
DATA = tiny_dataset()
SIMULATOR = RatingSimulator.fit(DATA, n_factors=2, n_iters=3)
VARIANTS = [
    {},
    {"reward_mode": "rating", "mask_recommended": True},
    {"reward_mode": "simulated", "simulator": SIMULATOR},
    {"observation": "embedding", "embedding_dim": 2},
    {"memory_budget_mb": 0},  # profiles built on demand, no cache
]


def _actions(n_envs: int, n_steps: int, seed: int = 0) -> np.ndarray:
    # 6 movies, 2 or 3 of them rated per user: episodes end often, so autoreset gets exercised
    return np.random.default_rng(seed).integers(0, 6, size=(n_steps, n_envs))


@pytest.mark.parametrize("kwargs", VARIANTS)
def test_vector_env_equals_single_envs_sequential(kwargs):
    n_envs, limit = 5, 4
    vector = gymnasium.make_vec(
        ENV_ID,
        num_envs=n_envs,
        vectorization_mode="vector_entry_point",
        data=DATA,
        max_episode_steps=limit,
        **kwargs,
    )
    assert vector.metadata["autoreset_mode"] == AutoresetMode.NEXT_STEP
    singles = [gymnasium.make(ENV_ID, data=DATA, max_episode_steps=limit, **kwargs) for _ in range(n_envs)]
    # sub-env i starts (and restarts) at the i-th user mod 3; a single env is sent there by options
    starts = [{"user_id": [10, 20, 30][i % 3]} for i in range(n_envs)]
    obs, info = vector.reset(seed=11)
    expected = [env.reset(seed=11 + i, options=starts[i]) for i, env in enumerate(singles)]
    np.testing.assert_array_equal(obs, np.stack([o for o, _ in expected]))
    np.testing.assert_array_equal(info["state"], [i["state"] for _, i in expected])
    done = np.zeros(n_envs, dtype=bool)
    n_terminated = n_truncated = 0
    for actions in _actions(n_envs, 40):
        obs, rewards, terminated, truncated, info = vector.step(actions)
        for i, env in enumerate(singles):
            if done[i]:  # NEXT_STEP autoreset: this step only resets
                o, single_info = env.reset(options=starts[i])
                r, te, tr = 0.0, False, False
                assert not info["_movie_id"][i]
            else:
                o, r, te, tr, single_info = env.step(actions[i])
                assert (
                    info["user_id"][i] == single_info["user_id"]
                    and info["movie_id"][i] == single_info["movie_id"]
                )
            np.testing.assert_array_equal(obs[i], o)
            assert (rewards[i], terminated[i], truncated[i]) == (r, te, tr)
            assert info["state"][i] == single_info["state"]
            if kwargs.get("mask_recommended"):
                np.testing.assert_array_equal(vector.action_masks()[i], env.unwrapped.action_masks())
        done = terminated | truncated
        n_terminated += int(terminated.sum())
        n_truncated += int((truncated & ~terminated).sum())
    assert n_terminated > 0 and n_truncated > 0  # both kinds of episode end were compared


@pytest.mark.parametrize("kwargs", VARIANTS)
def test_vector_env_equals_gymnasium_sync_vector_env_random_order(kwargs):
    n_envs = 4
    options = {"data": DATA, "user_order": "random", "max_episode_steps": 3, **kwargs}
    vector = MovieLensVectorEnv(num_envs=n_envs, **options)
    reference = SyncVectorEnv([lambda: gymnasium.make(ENV_ID, **options) for _ in range(n_envs)])
    for got, want in zip(vector.reset(seed=5), reference.reset(seed=5)):
        if isinstance(got, dict):
            np.testing.assert_array_equal(got["state"], want["state"])
        else:
            np.testing.assert_array_equal(got, want)
    saw_reset = False
    for actions in _actions(n_envs, 30, seed=1):
        got, want = vector.step(actions), reference.step(actions)
        for g, w in zip(got[:4], want[:4]):
            np.testing.assert_array_equal(g, w)
        np.testing.assert_array_equal(got[4]["state"], want[4]["state"])
        np.testing.assert_array_equal(got[4]["_movie_id"], want[4]["_movie_id"])
        saw_reset |= not got[4]["_movie_id"].all()
    assert saw_reset


def test_make_vec_time_limit_buffer_and_embedding():
    vector = gymnasium.make_vec(ENV_ID, num_envs=3, vectorization_mode="vector_entry_point", data=DATA)
    assert vector.max_episode_steps == 1000  # the registered limit
    first, _ = vector.reset()
    np.testing.assert_array_equal(first, PROFILES)
    second = vector.step(np.full(3, 5))[0]
    assert second is first  # one preallocated buffer, refilled
    np.testing.assert_array_equal(second, PROFILES[[1, 2, 0]])
    copying = MovieLensVectorEnv(DATA, num_envs=3, copy_obs=True)
    assert copying.reset()[0] is not copying.step(np.full(3, 5))[0]
    # One meaning everywhere: None is the registered limit (as gymnasium.make reads it), -1 none.
    assert copying.max_episode_steps == 1000
    for limit in (None, 1000):
        again = gymnasium.make_vec(
            ENV_ID, num_envs=2, vectorization_mode="vector_entry_point", data=DATA, max_episode_steps=limit
        )
        assert again.max_episode_steps == 1000
    endless = gymnasium.make_vec(
        ENV_ID, num_envs=2, vectorization_mode="vector_entry_point", data=DATA, max_episode_steps=-1
    )
    assert (
        endless.max_episode_steps is None
        and MovieLensVectorEnv(DATA, max_episode_steps=-1).max_episode_steps is None
    )
    endless.reset()
    assert not any(endless.step(np.full(2, 5))[3].any() for _ in range(1100))
    embedded = MovieLensVectorEnv(DATA, num_envs=4, observation="embedding", embedding_dim=2)
    obs, _ = embedded.reset()
    assert obs.shape == (4, 2) and all(embedded.single_observation_space.contains(o) for o in obs)
    assert embedded.n_states == 3 and embedded.observations(np.array([0])).shape == (1, 2)
    with pytest.raises(ValueError, match="actions"):
        embedded.step(np.array([0, 1]))
    rendering = MovieLensVectorEnv(DATA, num_envs=2, render_mode="ansi")
    rendering.reset()
    rendering.step(np.array([5, 5]))
    texts = rendering.render()
    assert texts is not None and len(texts) == 2
    assert texts[0].startswith("user 10 ") and "recommended: Nobody's" in texts[0]
    assert "reward 3.000" in texts[0]
    assert texts[1].startswith("user 20 ") and "reward 3.500" in texts[1]


def _sb3_reference(n_envs: int, limit: int, seed: int) -> DummyVecEnv:
    def make() -> gymnasium.Env:
        return gymnasium.wrappers.TimeLimit(MovieLensEnv(DATA, user_order="random"), limit)

    reference = DummyVecEnv([make for _ in range(n_envs)])
    reference.seed(seed)
    return reference


def _sb3_adapter(num_envs: int, max_episode_steps: int, **kwargs: object) -> GymnasiumVecEnv:
    """The batched MovieLens-v0 env as SB3 sees it under ``rlrec train``."""
    venv = MovieLensVectorEnv(
        DATA, num_envs=num_envs, max_episode_steps=max_episode_steps, autoreset_mode="same_step", **kwargs
    )
    return GymnasiumVecEnv(venv)


def test_sb3_vec_env_equals_dummy_vec_env():
    n_envs, limit, seed = 4, 3, 9
    adapter = _sb3_adapter(n_envs, limit, user_order="random")
    assert isinstance(adapter, VecEnv)
    adapter.seed(seed)
    reference = _sb3_reference(n_envs, limit, seed)
    np.testing.assert_array_equal(adapter.reset(), reference.reset())
    finished = 0
    for actions in _actions(n_envs, 30, seed=2):
        obs, rewards, dones, infos = adapter.step(actions)
        want_obs, want_rewards, want_dones, want_infos = reference.step(actions)
        np.testing.assert_array_equal(obs, want_obs)
        np.testing.assert_array_equal(rewards, want_rewards)
        assert rewards.dtype == want_rewards.dtype
        np.testing.assert_array_equal(dones, want_dones)
        for got, want in zip(infos, want_infos):
            assert got["TimeLimit.truncated"] == want["TimeLimit.truncated"]
            assert got["state"] == want["state"] and got["user_id"] == want["user_id"]
            assert ("terminal_observation" in got) == ("terminal_observation" in want)
            if "terminal_observation" in got:
                np.testing.assert_array_equal(got["terminal_observation"], want["terminal_observation"])
                finished += 1
    assert finished > 0


def test_sb3_vec_env_sequential_starts_and_wrappers():
    adapter = _sb3_adapter(4, 2)
    wrapped = VecMonitor(VecCheckNan(adapter, raise_exception=True))
    np.testing.assert_array_equal(wrapped.reset(), PROFILES[[0, 1, 2, 0]])
    wrapped.step(np.full(4, 5))
    obs, _, dones, infos = wrapped.step(np.full(4, 5))
    assert dones.all() and all(info["TimeLimit.truncated"] for info in infos)
    assert all(info["episode"]["l"] == 2 for info in infos)  # VecMonitor saw full episodes
    np.testing.assert_array_equal(obs, PROFILES[[0, 1, 2, 0]])  # each restarts at its own user
    np.testing.assert_array_equal(infos[1]["terminal_observation"], PROFILES[0])
    assert adapter.get_attr("n_states") == [3] * 4
    np.testing.assert_array_equal(
        adapter.env_method("observations", np.array([2]), indices=[0])[0], PROFILES[[2]]
    )


def test_sb3_learners_run_on_the_adapter():
    from sb3_contrib import MaskablePPO
    from sb3_contrib.common.maskable.utils import get_action_masks, is_masking_supported
    from stable_baselines3 import PPO

    adapter = _sb3_adapter(2, 5, mask_recommended=True)
    PPO("MlpPolicy", adapter, n_steps=8, batch_size=8, n_epochs=1, seed=0, device="cpu").learn(16)
    assert is_masking_supported(adapter)
    adapter.reset()
    adapter.step(np.array([1, 5]))  # neither user 10 nor user 20 rated these: no reset
    masks = get_action_masks(adapter)
    np.testing.assert_array_equal(masks, [[1, 0, 1, 1, 1, 1], [1, 1, 1, 1, 1, 0]])
    adapter.step(np.array([0, 4]))  # user 30 rated movie 99: episode over, mask cleared
    np.testing.assert_array_equal(get_action_masks(adapter), [[0, 0, 1, 1, 1, 1], [1, 1, 1, 1, 1, 1]])
    MaskablePPO("MlpPolicy", adapter, n_steps=8, batch_size=8, n_epochs=1, seed=0, device="cpu").learn(16)
