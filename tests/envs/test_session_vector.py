"""MovieLensSessionVectorEnv against N single MovieLensSessionEnv (same seeds, same actions) and by hand."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from gymnasium.vector import AutoresetMode
from gymnasium.wrappers import TimeLimit

from rlrec.data import load_movielens
from rlrec.envs.session import MovieLensSessionEnv, MovieLensSessionVectorEnv
from tests.envs.tiny_data import movie, tiny_dataset

SYNTH = "synthetic:n_users=30,n_movies=60,n_ratings=600,seed=1"
KEYS = ("user_index", "user_id", "hit", "rating", "hidden_left")


def _actions(rng: np.random.Generator, masks: np.ndarray) -> np.ndarray:
    """Mostly allowed movies (so hidden ones get found), sometimes any movie (masked ones too)."""
    out = rng.integers(0, masks.shape[1], size=len(masks))
    for i, mask in enumerate(masks):
        if rng.random() < 0.8 and mask.any():
            out[i] = rng.choice(np.flatnonzero(mask))
    return out


@pytest.mark.parametrize(
    ("reward_mode", "observation", "episode_length"),
    [("binary", "ratings", 50), ("rating", "binary", 7), ("simulated", "ratings", 5)],
)
def test_matches_single_envs_next_step(reward_mode: str, observation: str, episode_length: int) -> None:
    data = load_movielens(SYNTH)
    n, seed = 5, 3
    kwargs: dict[str, Any] = {"reward_mode": reward_mode, "observation": observation}
    vec = MovieLensSessionVectorEnv(
        data, num_envs=n, copy_obs=True, max_episode_steps=episode_length, **kwargs
    )
    singles = [
        TimeLimit(MovieLensSessionEnv(data, simulator=vec.world.simulator, **kwargs), episode_length)
        for _ in range(n)
    ]
    obs, infos = vec.reset(seed=seed)
    pending = np.zeros(n, dtype=bool)
    for i, env in enumerate(singles):
        o, info = env.reset(seed=seed + i)
        np.testing.assert_array_equal(obs[i], o)
        assert all(infos[k][i] == info[k] for k in KEYS)
    rng = np.random.default_rng(0)
    ends = 0
    for _ in range(120):
        masks = vec.action_masks()
        actions = _actions(rng, masks)
        obs, rewards, terminated, truncated, infos = vec.step(actions)
        for i, env in enumerate(singles):
            np.testing.assert_array_equal(masks[i], env.unwrapped.action_masks())
            if pending[i]:  # NEXT_STEP: the action is ignored, the session restarts
                o, info = env.reset()
                r, term, trunc = 0.0, False, False
            else:
                o, r, term, trunc, info = env.step(actions[i])
            np.testing.assert_array_equal(obs[i], o)
            assert (rewards[i], terminated[i], truncated[i]) == (r, term, trunc)
            assert all(infos[k][i] == info[k] for k in KEYS), (infos, info)
        pending = terminated | truncated
        ends += int(pending.sum())
    assert ends > 10  # the loop went through many episode ends and restarts


def test_same_step_autoreset_matches_single_envs() -> None:
    data = load_movielens(SYNTH)
    n = 4
    vec = MovieLensSessionVectorEnv(data, num_envs=n, max_episode_steps=4, autoreset_mode="same_step")
    singles = [TimeLimit(MovieLensSessionEnv(data), 4) for _ in range(n)]
    vec.reset(seed=11)
    for i, env in enumerate(singles):
        env.reset(seed=11 + i)
    rng = np.random.default_rng(1)
    finished = 0
    for _ in range(40):
        actions = _actions(rng, vec.action_masks())
        obs, rewards, terminated, truncated, infos = vec.step(actions)
        obs = obs.copy()
        for i, env in enumerate(singles):
            o, r, term, trunc, info = env.step(actions[i])
            assert (rewards[i], terminated[i], truncated[i]) == (r, term, trunc)
            if term or trunc:
                finished += 1
                np.testing.assert_array_equal(infos["final_obs"][i], o)
                assert infos["final_info"]["hit"][i] == info["hit"]
                assert infos["final_info"]["user_index"][i] == info["user_index"]
                o, info = env.reset()
            np.testing.assert_array_equal(obs[i], o)
            assert infos["user_index"][i] == info["user_index"]
    assert finished > 10


def test_by_hand_on_tiny_data() -> None:
    """User 20 rated 11: 5.0, 42: 4.0, 99: 1.5; with hidden_fraction 0.5, round(1.5) = 2 are hidden."""
    vec = MovieLensSessionVectorEnv(tiny_dataset(), num_envs=2, reward_mode="rating", max_episode_steps=3)
    obs, infos = vec.reset(seed=0, options={"user_id": 20})
    assert list(infos["user_id"]) == [20, 20]
    assert list(infos["hidden_left"]) == [2, 2]
    rated = [movie(11), movie(42), movie(99)]
    for i in range(2):
        shown = np.flatnonzero(obs[i])
        assert len(shown) == 1 and shown[0] in rated  # one visible rating, as rating / 5
        assert obs[i, shown[0]] == {movie(11): 1.0, movie(42): 0.8, movie(99): 0.3}[shown[0]]
        assert not vec.action_masks()[i, shown[0]]
    hidden = [[m for m in rated if obs[i, m] == 0] for i in range(2)]
    # Sub-env 0 finds its first hidden movie; sub-env 1 asks for an unrated movie (123).
    _, rewards, terminated, truncated, infos = vec.step(np.array([hidden[0][0], movie(123)]))
    expected = {movie(11): 1.0, movie(42): 0.8, movie(99): 0.3}[hidden[0][0]]
    assert rewards[0] == pytest.approx(expected) and rewards[1] == 0.0
    assert list(infos["hit"]) == [True, False] and list(infos["hidden_left"]) == [1, 2]
    # Repeating a found movie pays nothing; sub-env 1 finds one.
    _, rewards, terminated, _, infos = vec.step(np.array([hidden[0][0], hidden[1][0]]))
    assert rewards[0] == 0.0 and rewards[1] > 0
    assert not terminated.any()
    # Third step: sub-env 0 finds its last hidden movie ("rating" mode: terminated);
    # sub-env 1 wastes its step. Both reach max_episode_steps = 3 and are truncated, as
    # Gymnasium's TimeLimit truncates the last allowed step whether it terminated or not.
    _, rewards, terminated, truncated, _ = vec.step(np.array([hidden[0][1], movie(123)]))
    assert list(terminated) == [True, False] and list(truncated) == [True, True]
    # NEXT_STEP: the following step restarts both, reward 0, whatever the actions.
    obs, rewards, terminated, truncated, infos = vec.step(np.array([0, 0]))
    assert list(rewards) == [0.0, 0.0] and not (terminated | truncated).any()
    # New random users: users 10 and 30 (2 ratings) hide round(1.0) = 1, user 20 hides 2.
    expected_hidden = [{10: 1, 20: 2, 30: 1}[int(u)] for u in infos["user_id"]]
    assert list(infos["hidden_left"]) == expected_hidden and list(infos["hit"]) == [False, False]


def test_observations_is_whole_history() -> None:
    vec = MovieLensSessionVectorEnv(tiny_dataset(), observation="binary")
    full = vec.observations(np.array([1]))
    np.testing.assert_array_equal(np.flatnonzero(full[0]), sorted([movie(11), movie(42), movie(99)]))
    assert set(np.unique(full)) == {0.0, 1.0}


def test_bad_arguments_are_named() -> None:
    with pytest.raises(ValueError, match="num_envs"):
        MovieLensSessionVectorEnv(tiny_dataset(), num_envs=0)
    with pytest.raises(ValueError, match="autoreset_mode"):
        MovieLensSessionVectorEnv(tiny_dataset(), autoreset_mode="sometimes")
    with pytest.raises(ValueError, match="hidden_fraction"):
        MovieLensSessionVectorEnv(tiny_dataset(), hidden_fraction=1.0)
    vec = MovieLensSessionVectorEnv(tiny_dataset(), num_envs=2)
    with pytest.raises(RuntimeError, match="reset"):
        vec.step(np.array([0, 0]))
    vec.reset(seed=0)
    with pytest.raises(ValueError, match="movie indices"):
        vec.step(np.array([0, 6]))
    with pytest.raises(ValueError, match="options\\['user_id'\\]"):
        vec.reset(options={"user_id": 5})
    with pytest.raises(ValueError, match=r"unknown key.*'user'"):
        vec.reset(options={"user": 1})


def test_disabled_autoreset_resets_only_masked() -> None:
    vec = MovieLensSessionVectorEnv(
        tiny_dataset(), num_envs=2, max_episode_steps=1, autoreset_mode=AutoresetMode.DISABLED, copy_obs=True
    )
    vec.reset(seed=0)
    vec.step(np.array([movie(123), movie(123)]))
    vec.reset(options={"reset_mask": np.array([True, False])})
    assert vec.action_masks()[1, movie(123)] == np.False_  # sub-env 1 kept its state
    assert vec.action_masks()[0, movie(123)]  # sub-env 0 restarted: 123 allowed again


def test_make_vec_uses_the_batched_session_env() -> None:
    import gymnasium

    import rlrec  # noqa: F401  (registers the ids)

    env = gymnasium.make_vec(
        "rlrec/MovieLensSession-v0", num_envs=3, vectorization_mode="vector_entry_point", data=SYNTH
    )
    assert isinstance(env.unwrapped, MovieLensSessionVectorEnv)
    obs, _ = env.reset(seed=0)
    assert obs.shape == (3, load_movielens(SYNTH).n_movies)
