"""MovieLensEnv on the hand-worked tiny dataset (tests/envs/tiny_data.py) and on the real 2016 data."""

from __future__ import annotations

import pickle
import warnings

import cloudpickle
import gymnasium
import numpy as np
import pytest

import rlrec  # noqa: F401  (registers the env ids)
from rlrec.data.errors import DatasetError
from rlrec.data.simulator import RatingSimulator
from rlrec.envs.movielens import MovieLensEnv
from tests.envs.tiny_data import PROFILES, movie, tiny_dataset, without_user_20

UNRATED = movie(123)  # nobody rated it


def _env(**kwargs) -> MovieLensEnv:
    return MovieLensEnv(tiny_dataset(), **kwargs)


def test_reset_observes_first_user_profile():
    env = _env()
    obs, info = env.reset(seed=0)
    assert obs.dtype == np.float32 and obs.shape == (6,)
    np.testing.assert_array_equal(obs, PROFILES[0])
    assert info == {"user_id": 10, "user_index": 0, "state": 0}
    assert env.observation_space.contains(obs)


def test_seed_rewards_termination_and_cycling():
    env = _env()
    env.reset(seed=0)
    # user 10 never rated 123: paid their mean 3.0, episode goes on, next user is 20
    obs, reward, terminated, truncated, info = env.step(UNRATED)
    assert (reward, terminated, truncated) == (3.0, False, False)
    assert info == {"user_id": 10, "user_index": 0, "movie_id": 123, "rated": False, "state": 1}
    np.testing.assert_array_equal(obs, PROFILES[1])
    # user 20 did not rate 7 either: their mean 3.5
    obs, reward, terminated, _, info = env.step(movie(7))
    assert (reward, terminated, info["user_id"], info["state"]) == (3.5, False, 20, 2)
    np.testing.assert_array_equal(obs, PROFILES[2])
    # user 30 rated 99 with 5.0: paid the rating, terminated; the stream wraps to user 10
    obs, reward, terminated, _, info = env.step(np.int64(movie(99)))
    assert (reward, terminated, info["rated"], info["movie_id"], info["state"]) == (5.0, True, True, 99, 0)
    np.testing.assert_array_equal(obs, PROFILES[0])
    # user 10 rated 13 with 2.0
    _, reward, terminated, _, info = env.step(movie(13))
    assert (reward, terminated, info["user_id"]) == (2.0, True, 10)


def test_user_without_ratings_falls_back_to_2_5():
    env = MovieLensEnv(without_user_20())
    obs, info = env.reset(options={"user_id": 20})
    assert info["state"] == 1
    np.testing.assert_array_equal(obs, np.full(6, 2.5, dtype=np.float32))
    _, reward, terminated, _, _ = env.step(movie(11))  # rated before the filter, not any more
    assert (reward, terminated) == (2.5, False)


def test_rating_reward_mode():
    env = _env(reward_mode="rating")
    env.reset()
    assert env.step(UNRATED)[1:3] == (0.0, False)
    assert env.step(movie(42))[1:3] == (4.0, True)  # user 20 rated 42 with 4.0


def test_simulated_reward_mode_uses_the_fitted_model_in_range():
    data = tiny_dataset()
    simulator = RatingSimulator.fit(data, n_factors=2, n_iters=3)
    env = MovieLensEnv(data, reward_mode="simulated", simulator=simulator)
    env.reset()
    for user in range(3):
        _, reward, terminated, _, _ = env.step(UNRATED)
        assert not terminated and 0.5 <= reward <= 5.0
        assert reward == pytest.approx(float(simulator.predict(user, UNRATED)))
    assert env.step(movie(7))[1:3] == (4.0, True)  # rated movies still pay the true rating
    # fit() arguments instead of a fitted simulator: one is fitted on the env's data with them
    fitted = MovieLensEnv(data, reward_mode="simulated", simulator={"n_factors": 2, "n_iters": 3})
    assert fitted.world.simulator is not None
    np.testing.assert_allclose(fitted.world.simulator.user_factors, simulator.user_factors)


def test_users_restriction():
    env = _env(users=[30, 10])
    _, info = env.reset()
    states = [info["state"]] + [env.step(UNRATED)[4]["state"] for _ in range(4)]
    assert states == [0, 2, 0, 2, 0]  # ascending userId 10, 30, wrapping
    with pytest.raises(DatasetError, match="unknown userId"):
        _env(users=[10, 40])
    with pytest.raises(ValueError, match="empty"):
        _env(users=[])
    with pytest.raises(ValueError, match="not among"):
        env.reset(options={"user_id": 20})
    with pytest.raises(ValueError, match="unknown userId"):
        env.reset(options={"user_id": 99})


def test_reset_options_start_user_and_bad_arguments():
    env = _env()
    obs, info = env.reset(options={"user_id": 30})
    assert info["state"] == 2
    np.testing.assert_array_equal(obs, PROFILES[2])
    assert env.step(UNRATED)[4]["state"] == 0
    with pytest.raises(ValueError, match="action"):
        env.step(6)
    with pytest.raises(ValueError, match="reward_mode"):
        _env(reward_mode="likes")
    with pytest.raises(ValueError, match="user_order"):
        _env(user_order="alphabetical")


def test_random_order_is_seeded_and_stays_in_users():
    def states(seed: int, users=None) -> list[int]:
        env = _env(user_order="random", users=users)
        _, info = env.reset(seed=seed)
        return [info["state"]] + [env.step(UNRATED)[4]["state"] for _ in range(40)]

    assert states(3) == states(3)
    assert states(3) != states(4)  # equal by chance with probability 3^-41
    assert set(states(5, users=[10, 30])) == {0, 2}


def test_action_masks():
    env = _env()
    env.reset()
    env.step(movie(7))
    assert env.action_masks().dtype == bool and env.action_masks().all()
    masked = _env(mask_recommended=True)
    masked.reset()
    masked.step(movie(7))
    masked.step(UNRATED)
    np.testing.assert_array_equal(masked.action_masks(), [False, True, True, True, True, False])
    masked.reset()
    assert masked.action_masks().all()
    for action in range(5):
        masked.step(action)
    assert masked.action_masks().sum() == 1
    masked.step(5)  # every movie recommended once: the mask starts over
    assert masked.action_masks().all()


def test_observations_match_stepped_observations():
    env = _env(user_order="random")
    obs, info = env.reset(seed=1)
    seen, states = [obs], [info["state"]]
    for _ in range(6):
        obs, *_, info = env.step(UNRATED)
        seen.append(obs)
        states.append(info["state"])
    np.testing.assert_array_equal(env.observations(np.array(states)), np.stack(seen))
    out = np.empty((len(states), 6), dtype=np.float32)
    assert env.observations(np.array(states), out=out) is out
    np.testing.assert_array_equal(out, PROFILES[states])
    assert (env.n_states, env.n_movies) == (3, 6)
    np.testing.assert_array_equal(env.user_ids, [10, 20, 30])
    np.testing.assert_array_equal(env.movie_ids, [7, 11, 13, 42, 99, 123])


def test_no_cache_gives_the_same_observations():
    cached, uncached = _env(), _env(memory_budget_mb=0)
    assert cached.world.profiles.cached and not uncached.world.profiles.cached
    np.testing.assert_array_equal(uncached.observations(np.array([2, 0, 2, 1])), PROFILES[[2, 0, 2, 1]])
    assert np.array_equal(uncached.reset()[0], PROFILES[0])
    assert np.array_equal(uncached.step(UNRATED)[0], PROFILES[1])


def test_returned_observations_are_independent_arrays():
    env = _env()
    first, _ = env.reset()
    first[:] = 0.0  # a caller scribbling on its copy must not change the env
    np.testing.assert_array_equal(env.reset()[0], PROFILES[0])


@pytest.mark.parametrize("observation", ["profile", "embedding"])
def test_checkers_raw_env(observation):
    from gymnasium.utils.env_checker import check_env
    from stable_baselines3.common.env_checker import check_env as sb3_check_env

    env = _env(observation=observation, embedding_dim=2)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # any checker warning is a failure
        check_env(env, skip_render_check=True)
        sb3_check_env(_env(observation=observation, embedding_dim=2), warn=True)


@pytest.mark.parametrize("env_id", ["rlrec/MovieLens-v0", "rlrec:rlrec/MovieLens-v0"])
def test_gymnasium_make_both_ids_and_checkers(env_id):
    from gymnasium.utils.env_checker import check_env
    from stable_baselines3.common.env_checker import check_env as sb3_check_env

    env = gymnasium.make(env_id, data=tiny_dataset(), render_mode="ansi")
    assert env.spec is not None and env.spec.max_episode_steps == 1000
    obs, _ = env.reset(seed=0)
    np.testing.assert_array_equal(obs, PROFILES[0])
    check_env(env.unwrapped)
    sb3_check_env(env)


def test_time_limit_truncates_and_can_be_removed():
    env = gymnasium.make("rlrec/MovieLens-v0", data=tiny_dataset(), max_episode_steps=2)
    env.reset()
    assert env.step(UNRATED)[3] is False
    assert env.step(UNRATED)[3] is True
    # -1 removes Gymnasium's TimeLimit (None keeps the registered 1000 in Gymnasium 1.x)
    endless = gymnasium.make("rlrec/MovieLens-v0", data=tiny_dataset(), max_episode_steps=-1)
    endless.reset()
    assert not any(endless.step(UNRATED)[3] for _ in range(1100))


def test_pickle_round_trip_gives_identical_steps():
    env = _env(user_order="random", mask_recommended=True)
    env.reset(seed=7)
    env.step(movie(7))
    clones = [pickle.loads(pickle.dumps(env)), cloudpickle.loads(cloudpickle.dumps(env))]
    assert all(clone.world.profiles.cached for clone in clones)  # the cache is rebuilt, not shipped
    for action in [UNRATED, movie(11), movie(99), 2, UNRATED, 0]:
        expected = env.step(action)
        for clone in clones:
            got = clone.step(action)
            np.testing.assert_array_equal(got[0], expected[0])
            assert got[1:] == expected[1:]
            np.testing.assert_array_equal(clone.action_masks(), env.action_masks())


def test_render_ansi_and_human(capsys):
    env = _env(render_mode="ansi")
    env.reset()
    text = env.render()
    assert text is not None and text.splitlines()[0].startswith("user 10 ")
    env.step(UNRATED)
    lines = env.render().splitlines()
    # user 10's ratings, best first, then the recommendation and its reward
    assert lines[0].startswith("user 10 ") and "Seven" in lines[1] and "4.0" in lines[1]
    assert "Thirteen" in lines[2] and "2.0" in lines[2]
    assert "recommended: Nobody's" in lines[3] and "reward 3.000" in lines[3]
    human = _env(render_mode="human")
    human.reset()
    human.step(movie(13))
    assert "reward 2.000" in capsys.readouterr().out


def test_real_data_user_1_profile(real_data_home):
    env = MovieLensEnv(real_data_home / "ml-latest-small-2016")
    obs, info = env.reset()
    assert info["user_id"] == 1
    movies, _ = env.dataset.user_row(0)
    unrated = np.ones(env.n_movies, dtype=bool)
    unrated[movies] = False
    np.testing.assert_allclose(obs[unrated], 3.6283, atol=1e-4)
    assert obs[env.dataset.movie_index(16)] == 4.0
    assert env.step(env.dataset.movie_index(16))[1:3] == (4.0, True)
