"""``observation="sequence"``: the last visible movies in time order, worked out by hand on the tiny
dataset; found movies are appended; the vector env and evaluation read the same encoding."""

from __future__ import annotations

import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

from rlrec.data import load_movielens
from rlrec.envs.session import MovieLensSessionEnv, MovieLensSessionVectorEnv
from rlrec.envs.slate import MovieLensSlateEnv
from tests.envs.tiny_data import movie, tiny_dataset

# Timestamps follow the listing: user 20 rated 11 (5.0), then 42 (4.0), then 99 (1.5).


def test_the_sequence_by_hand() -> None:
    env = MovieLensSessionEnv(
        tiny_dataset(), observation="sequence", sequence_length=3, hiding="recent", hidden_fraction=0.34,
        reward_mode="rating",
    )  # fmt: skip
    obs, _ = env.reset(seed=0, options={"user_id": 20})
    # One of three hidden (the latest, 99); shown oldest first, left-padded: [pad, 11, 42].
    np.testing.assert_array_equal(obs[0], [0, movie(11) + 1, movie(42) + 1])
    np.testing.assert_allclose(obs[1], [0.0, 1.0, 0.8])
    obs, reward, *_ = env.step(movie(99))  # the hidden movie is found: watched, appended
    assert reward == pytest.approx(1.5 / 5)
    np.testing.assert_array_equal(obs[0], [movie(11) + 1, movie(42) + 1, movie(99) + 1])
    np.testing.assert_allclose(obs[1], [1.0, 0.8, 0.3])
    obs, *_ = env.step(movie(7))  # not hidden: nothing watched, nothing appended
    np.testing.assert_array_equal(obs[0], [movie(11) + 1, movie(42) + 1, movie(99) + 1])
    # What the evaluation asks from: each user's whole history, the latest sequence_length of it.
    whole = env.observations([1, 0])
    np.testing.assert_array_equal(whole[0, 0], [movie(11) + 1, movie(42) + 1, movie(99) + 1])
    np.testing.assert_array_equal(whole[1, 0], [0, movie(7) + 1, movie(13) + 1])
    np.testing.assert_allclose(whole[1, 1], [0.0, 0.8, 0.4])


def test_show_misses_appends_a_miss_with_minus_one_by_hand() -> None:
    env = MovieLensSessionEnv(
        tiny_dataset(), observation="sequence", sequence_length=3, hiding="recent", hidden_fraction=0.34,
        reward_mode="rating", show_misses=True,
    )  # fmt: skip
    assert env.observation_space.low[1].tolist() == [-1.0] * 3
    obs, _ = env.reset(seed=0, options={"user_id": 20})
    np.testing.assert_array_equal(obs[0], [0, movie(11) + 1, movie(42) + 1])
    obs, reward, *_ = env.step(movie(7))  # not hidden: a miss, appended with -1
    assert reward == 0.0
    np.testing.assert_array_equal(obs[0], [movie(11) + 1, movie(42) + 1, movie(7) + 1])
    np.testing.assert_allclose(obs[1], [1.0, 0.8, -1.0])
    obs, *_ = env.step(movie(7))  # recommended again: not fresh, nothing appended
    np.testing.assert_array_equal(obs[0], [movie(11) + 1, movie(42) + 1, movie(7) + 1])
    obs, *_ = env.step(movie(99))  # the hidden movie: found, appended with its rating
    np.testing.assert_array_equal(obs[0], [movie(42) + 1, movie(7) + 1, movie(99) + 1])
    np.testing.assert_allclose(obs[1], [0.8, -1.0, 0.3])
    check_env(env, skip_render_check=True)


def test_envs_pass_the_checkers_and_the_vector_env_matches_single_envs() -> None:
    data = load_movielens("synthetic:n_users=30,n_movies=60,n_ratings=600,seed=1")
    kwargs = {"observation": "sequence", "sequence_length": 5, "hidden_fraction": 0.5}
    check_env(MovieLensSessionEnv(data, **kwargs), skip_render_check=True)
    check_env(MovieLensSlateEnv(data, slate_size=3, **kwargs), skip_render_check=True)
    vec = MovieLensSessionVectorEnv(data, num_envs=3, copy_obs=True, **kwargs)
    singles = [MovieLensSessionEnv(data, **kwargs) for _ in range(3)]
    obs, _ = vec.reset(seed=4)
    np.testing.assert_array_equal(obs, np.stack([env.reset(seed=4 + i)[0] for i, env in enumerate(singles)]))
    appended = 0
    for _ in range(4):  # recommend hidden movies: each is found and appended
        actions = np.array([np.flatnonzero(env.episodes.hidden[0] > 0)[0] for env in singles])
        obs, _, terminated, truncated, _ = vec.step(actions)
        steps = [env.step(int(actions[i])) for i, env in enumerate(singles)]
        np.testing.assert_array_equal(obs, np.stack([step[0] for step in steps]))
        np.testing.assert_array_equal(obs[:, 0, -1], actions + 1)
        appended += 1
        if (terminated | truncated).any():
            break
    assert appended >= 1


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match="sequence_length"):
        MovieLensSessionEnv(tiny_dataset(), observation="sequence", sequence_length=0)
    with pytest.raises(ValueError, match="sequence"):
        MovieLensSessionVectorEnv(
            tiny_dataset(), num_envs=2, observation="sequence", backend="torch", device="cpu"
        )
