"""rlrec/MovieLensSlate-v0: the user model by hand, slate validity, checkers, determinism, vector env."""

from __future__ import annotations

import pickle

import gymnasium
import numpy as np
import pytest
from gymnasium.wrappers import TimeLimit

import rlrec  # noqa: F401  (registers the env ids)
from rlrec.data.dataset import build_dataset
from rlrec.envs.slate import MovieLensSlateEnv, MovieLensSlateVectorEnv, attraction, examination

# user 10 rated movies 0..5; movie 6..9 nobody rated
RATINGS = {10: {0: 5.0, 1: 4.0, 2: 3.0, 3: 2.0, 4: 4.5, 5: 1.0}, 20: {6: 4.0, 7: 2.0}}
N_MOVIES = 10
SYNTH = "synthetic:n_users=30,n_movies=60,n_ratings=600,seed=1"


def _toy():
    rows = [(u, m, r) for u, movies in RATINGS.items() for m, r in movies.items()]
    users, movies, ratings = (np.array(c) for c in zip(*rows))
    ids = np.arange(N_MOVIES)
    titles = np.array([f"Title {i}" for i in ids], dtype=object)
    return build_dataset("toy", users, movies, ratings, np.arange(len(rows)), ids, titles,
                         np.array(["Drama"] * N_MOVIES, dtype=object))  # fmt: skip


class _FixedSimulator:
    """Expected rating 5 for even movies, 3 for odd ones."""

    def predict_pairs(self, users, movies):
        return np.where(np.asarray(movies) % 2 == 0, 5.0, 3.0).astype(np.float32)


def test_attraction_and_examination_by_hand() -> None:
    np.testing.assert_allclose(attraction(np.array([2.0, 3.0, 4.0, 4.5, 5.0])), [0, 0, 0.5, 0.75, 1])
    np.testing.assert_allclose(examination("pbm", 4), [1, 1 / 2, 1 / 3, 1 / 4])
    np.testing.assert_allclose(examination("hits", 3), [1, 1, 1])
    np.testing.assert_allclose(examination("cascade", 3), [1, 0, 0])


def test_logged_hits_pay_every_hidden_liked_movie_of_the_slate() -> None:
    env = MovieLensSlateEnv(_toy(), slate_size=3, hidden_fraction=0.5, users=[10])
    obs, _ = env.reset(seed=4)
    hidden = [m for m in RATINGS[10] if obs[m] == 0.0]
    liked = [m for m in hidden if RATINGS[10][m] >= 4.0]
    others = [m for m in range(N_MOVIES) if m not in RATINGS[10]]
    slate = np.array([*liked, *others][:3])
    obs2, reward, _, _, info = env.step(slate)
    expected = np.isin(slate, liked)
    np.testing.assert_array_equal(info["clicks"], expected)
    assert reward == expected.sum() and info["slot_rewards"].tolist() == expected.astype(float).tolist()
    for movie in slate[expected]:
        assert obs2[movie] > 0  # a clicked movie is watched: it shows
    # every movie of the slate is now shown: none can be clicked again
    assert not env.action_masks()[:N_MOVIES][slate].any()


def test_a_repeated_or_visible_movie_is_never_clicked() -> None:
    env = MovieLensSlateEnv(_toy(), slate_size=3, hidden_fraction=0.5, users=[10])
    obs, _ = env.reset(seed=4)
    hidden_liked = [m for m in RATINGS[10] if obs[m] == 0.0 and RATINGS[10][m] >= 4.0]
    visible = [m for m in RATINGS[10] if obs[m] > 0.0]
    movie = hidden_liked[0]
    _, reward, _, _, info = env.step(np.array([movie, movie, visible[0]]))
    assert info["clicks"].tolist() == [True, False, False] and reward == 1.0


def test_simulated_feedback_expected_clicks_by_hand() -> None:
    # Movies 6..9 are new to user 10: expected ratings 5 (6, 8) and 3 (7, 9): attraction 1 and 0.
    for click_model, expected in (("hits", 2.0), ("pbm", 1.0 + 1 / 3), ("cascade", 1.0)):
        env = MovieLensSlateEnv(
            _toy(), slate_size=4, feedback="simulated", click_model=click_model, users=[10],
            simulator=_FixedSimulator(), hidden_fraction=0.5,
        )  # fmt: skip
        env.reset(seed=0)
        slate = np.array([6, 7, 8, 9])
        assert env.unwrapped.expected_clicks(0, slate) == pytest.approx(expected)
        # The clicks drawn follow it: over many fresh sessions the mean matches.
        clicks = []
        for seed in range(300):
            env.reset(seed=seed)
            clicks.append(env.step(slate)[1])
        assert np.mean(clicks) == pytest.approx(expected, abs=0.12)


def test_cascade_clicks_at_most_once() -> None:
    env = MovieLensSlateEnv(SYNTH, slate_size=5, feedback="simulated", click_model="cascade")
    env.reset(seed=0)
    rng = np.random.default_rng(0)
    for _ in range(30):
        _, reward, terminated, _, info = env.step(rng.choice(60, size=5, replace=False))
        assert info["clicks"].sum() <= 1 and reward == info["clicks"].sum()
        if terminated:
            env.reset()


def test_checkers_determinism_pickling_and_render() -> None:
    from gymnasium.utils.env_checker import check_env
    from stable_baselines3.common.env_checker import check_env as sb3_check_env

    check_env(MovieLensSlateEnv(SYNTH), skip_render_check=True)
    sb3_check_env(MovieLensSlateEnv(SYNTH))
    env = gymnasium.make("rlrec/MovieLensSlate-v0", data=SYNTH, render_mode="ansi", feedback="simulated")
    env.reset(seed=3)
    slates = np.random.default_rng(1).integers(0, 60, size=(12, 10))
    clone = None
    out = []
    for i, slate in enumerate(slates):
        if i == 4:
            clone = pickle.loads(pickle.dumps(env))
        out.append(env.step(slate)[1:3])
    assert "Synthetic Movie" in env.render()
    assert clone is not None
    again = [clone.step(slate)[1:3] for slate in slates[4:]]
    assert again == out[4:]
    twin = gymnasium.make("rlrec/MovieLensSlate-v0", data=SYNTH, feedback="simulated")
    twin.reset(seed=3)
    assert [twin.step(slate)[1:3] for slate in slates] == out


def test_vector_env_equals_single_envs() -> None:
    n = 3
    vec = MovieLensSlateVectorEnv(SYNTH, num_envs=n, max_episode_steps=4, feedback="simulated", copy_obs=True)
    singles = [TimeLimit(MovieLensSlateEnv(SYNTH, feedback="simulated"), 4) for _ in range(n)]
    obs, _ = vec.reset(seed=7)
    for i, env in enumerate(singles):
        np.testing.assert_array_equal(obs[i], env.reset(seed=7 + i)[0])
    pending = np.zeros(n, dtype=bool)
    rng = np.random.default_rng(2)
    for _ in range(12):
        slates = np.stack([rng.choice(60, size=10, replace=False) for _ in range(n)])
        obs, rewards, terminated, truncated, infos = vec.step(slates)
        for i, env in enumerate(singles):
            if pending[i]:
                o, r, te, tr = env.reset()[0], 0.0, False, False
            else:
                o, r, te, tr, info = env.step(slates[i])
                np.testing.assert_array_equal(infos["clicks"][i], info["clicks"])
            np.testing.assert_array_equal(obs[i], o)
            assert (rewards[i], terminated[i], truncated[i]) == (r, te, tr)
        pending = terminated | truncated


def test_bad_arguments_and_actions() -> None:
    for kwargs, match in (
        ({"slate_size": 0}, "slate_size"),
        ({"slate_size": 61}, "slate_size"),
        ({"click_model": "dbn"}, "click_model"),
        ({"feedback": "real"}, "feedback"),
        ({"reward_mode": "binary"}, "reward_mode"),
    ):
        with pytest.raises(ValueError, match=match):
            MovieLensSlateEnv(SYNTH, **kwargs)
    env = MovieLensSlateEnv(SYNTH, slate_size=3)
    env.reset(seed=0)
    for action in (np.array([1, 2]), np.array([1.0, 2.0, 3.0]), np.array([1, 2, 60]), 3):
        with pytest.raises(ValueError, match=r"slate|movie indices"):
            env.step(action)
