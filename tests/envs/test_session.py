from __future__ import annotations

import pickle
import warnings

import gymnasium
import numpy as np
import pytest

import rlrec  # noqa: F401  (registers the env ids)
from rlrec.data import load_movielens
from rlrec.data.dataset import build_dataset
from rlrec.envs.session import MovieLensSessionEnv, rating_reward

# user 10 rated movies 0..5; user 20 rated two movies; user 30 rated one (too few to hide anything)
RATINGS = {10: {0: 5.0, 1: 4.0, 2: 3.0, 3: 2.0, 4: 1.0, 5: 4.5}, 20: {6: 4.0, 7: 1.0}, 30: {0: 3.0}}
N_MOVIES = 9  # movie 8 is rated by nobody


def _toy():
    rows = [(u, m, r) for u, movies in RATINGS.items() for m, r in movies.items()]
    users, movies, ratings = (np.array(c) for c in zip(*rows))
    ids = np.arange(N_MOVIES)
    titles = np.array([f"m{i}" for i in ids], dtype=object)
    genres = np.array(["Drama"] * N_MOVIES, dtype=object)
    return build_dataset("toy", users, movies, ratings, np.arange(len(rows)), ids, titles, genres)


class _FixedSimulator:
    def predict_pairs(self, user_indices, movie_indices):
        return np.full(np.shape(movie_indices), 3.0, dtype=np.float32)


def _hidden(env: MovieLensSessionEnv, obs: np.ndarray, user_id: int) -> set[int]:
    """Rated movies the observation does not show (ratings are > 0, so visible ones are > 0)."""
    return {m for m in RATINGS[user_id] if obs[m] == 0.0}


def test_reward_mapping():
    assert [rating_reward(r, "binary") for r in (0.5, 3.5, 4.0, 5.0)] == [0.0, 0.0, 1.0, 1.0]
    assert rating_reward(4.0, "rating") == pytest.approx(0.8)
    assert rating_reward(2.5, "simulated") == pytest.approx(0.5)
    with pytest.raises(ValueError, match="reward_mode"):
        rating_reward(4.0, "seed")


def test_hide_reveal_and_mask():
    env = MovieLensSessionEnv(_toy(), hidden_fraction=0.5, users=[10])
    obs, info = env.reset(seed=3)
    assert info["user_id"] == 10 and obs.dtype == np.float32 and obs.shape == (N_MOVIES,)
    hidden = _hidden(env, obs, 10)
    assert len(hidden) == 3 == info["hidden_left"]  # round(0.5 * 6)
    for movie, rating in RATINGS[10].items():
        if movie not in hidden:
            assert obs[movie] == pytest.approx(rating / 5)
    mask = env.action_masks()
    assert set(np.flatnonzero(mask)) == hidden | {6, 7, 8}  # visible movies are not worth recommending
    liked = sorted(m for m in hidden if RATINGS[10][m] >= 4.0)
    disliked = sorted(m for m in hidden if RATINGS[10][m] < 4.0)

    # a movie the user never rated: nothing, and it is masked from now on
    obs2, reward, terminated, truncated, info = env.step(8)
    assert (reward, terminated, truncated, info["hit"]) == (0.0, False, False, False)
    assert np.array_equal(obs2, obs) and not env.action_masks()[8]
    # a visible movie: nothing either
    visible = next(m for m in RATINGS[10] if m not in hidden)
    assert env.step(visible)[1] == 0.0
    # a hidden disliked movie: revealed, 0 in binary mode
    for movie in disliked:
        obs3, reward, terminated, _, info = env.step(movie)
        assert reward == 0.0 and info["hit"] and obs3[movie] == pytest.approx(RATINGS[10][movie] / 5)
        assert not env.action_masks()[movie]
    # hidden liked movies pay 1; the episode ends with the last one (nothing left to earn)
    for i, movie in enumerate(liked):
        obs4, reward, terminated, truncated, info = env.step(movie)
        assert reward == 1.0 and obs4[movie] == pytest.approx(RATINGS[10][movie] / 5)
        assert terminated == (i == len(liked) - 1) and not truncated
    # a repeat changes nothing
    assert env.step(liked[0])[1] == 0.0


def test_hidden_draw_is_random_per_episode_and_seeded():
    env = MovieLensSessionEnv(_toy(), users=[10])
    draws = [frozenset(_hidden(env, env.reset(seed=s)[0], 10)) for s in range(20)]
    assert len(set(draws)) > 5  # C(6, 3) = 20 possible hidden sets
    again = MovieLensSessionEnv(_toy(), users=[10])
    assert draws == [frozenset(_hidden(again, again.reset(seed=s)[0], 10)) for s in range(20)]
    env.reset(seed=0)
    following = [frozenset(_hidden(env, env.reset()[0], 10)) for _ in range(5)]
    again.reset(seed=0)
    assert following == [frozenset(_hidden(again, again.reset()[0], 10)) for _ in range(5)]


def test_rating_and_simulated_modes():
    env = MovieLensSessionEnv(_toy(), reward_mode="rating", users=[10])
    obs, _ = env.reset(seed=1)
    hidden = sorted(_hidden(env, obs, 10))
    assert env.step(8)[1] == 0.0
    for i, movie in enumerate(hidden):
        _, reward, terminated, _, _ = env.step(movie)
        assert reward == pytest.approx(RATINGS[10][movie] / 5)
        assert terminated == (i == len(hidden) - 1)  # "rating": ends when nothing is hidden any more

    sim = MovieLensSessionEnv(_toy(), reward_mode="simulated", users=[10], simulator=_FixedSimulator())
    obs, _ = sim.reset(seed=1)
    hidden = sorted(_hidden(sim, obs, 10))
    assert sim.step(8)[1] == pytest.approx(3.0 / 5)  # the prediction, mapped like a rating
    assert sim.step(hidden[0])[1] == pytest.approx(RATINGS[10][hidden[0]] / 5)  # a real rating wins
    assert sim.step(8)[1] == 0.0  # a repeat pays nothing
    # without a simulator one is fitted on the env's data
    fitted = MovieLensSessionEnv(_toy(), reward_mode="simulated")
    assert fitted.world.simulator is not None
    fitted.reset(seed=0)
    assert 0.1 <= fitted.step(8)[1] <= 1.0


def test_truncation_and_small_users():
    # "rating" mode: the hidden movie pays whatever its rating, so only truncation can end this
    env = gymnasium.wrappers.TimeLimit(MovieLensSessionEnv(_toy(), users=[20], reward_mode="rating"), 2)
    obs, info = env.reset(seed=0)
    assert info["user_id"] == 20 and info["hidden_left"] == 1  # 2 ratings: one shown, one hidden
    _, _, terminated, truncated, _ = env.step(8)
    assert not terminated and not truncated
    _, _, terminated, truncated, _ = env.step(5)
    assert truncated and not terminated
    # "binary" mode: a user whose only hidden movie is disliked has nothing to find: ends at once
    binary = MovieLensSessionEnv(_toy(), users=[20])
    for seed in range(10):
        obs, _ = binary.reset(seed=seed)
        if obs[7] == 0.0:  # movie 7 (1 star) is the hidden one
            assert binary.step(8)[2]
            break
    else:
        pytest.fail("no seed hid movie 7")
    # user 30 (one rating) is never drawn by default, and cannot be asked for
    default = MovieLensSessionEnv(_toy())
    assert default.world.users.tolist() == [0, 1]
    with pytest.raises(ValueError, match="fewer than 2 ratings"):
        MovieLensSessionEnv(_toy(), users=[30])
    with pytest.raises(ValueError, match="not among this env's users"):
        default.reset(options={"user_id": 30})
    assert default.reset(seed=0, options={"user_id": 20})[1]["user_id"] == 20


def test_bad_arguments():
    for kwargs, match in (
        ({"reward_mode": "seed"}, "reward_mode"),
        ({"observation": "embedding"}, "observation"),
        ({"hidden_fraction": 1.0}, "hidden_fraction"),
        ({"hiding": "oldest"}, "hiding"),
        ({"show_misses": "maybe"}, "show_misses"),
        ({"render_mode": "rgb_array"}, "render_mode"),
        ({"users": [7]}, "unknown userId"),
        ({"users": ["abc"]}, "users"),
    ):
        with pytest.raises(ValueError, match=match):
            MovieLensSessionEnv(_toy(), **kwargs)
    env = MovieLensSessionEnv(_toy())
    env.reset(seed=0)
    for action in (N_MOVIES, -1):
        with pytest.raises(ValueError, match="not a movie index"):
            env.step(action)
    for action in (1.5, None, np.array([3]), "3"):
        with pytest.raises(ValueError, match="one movie index"):
            env.step(action)
    with pytest.raises(ValueError, match=r"unknown key.*'user'"):
        env.reset(options={"user": 1})


def test_observations_show_the_whole_history():
    env = MovieLensSessionEnv(_toy())
    full = env.observations(np.array([1, 0]))
    expected = np.zeros((2, N_MOVIES), dtype=np.float32)
    for row, user_id in enumerate((20, 10)):
        for movie, rating in RATINGS[user_id].items():
            expected[row, movie] = rating / 5
    np.testing.assert_allclose(full, expected)
    binary = MovieLensSessionEnv(_toy(), observation="binary")
    assert binary.observations(np.array([1])).tolist() == [[0, 0, 0, 0, 0, 0, 1, 1, 0]]
    obs, _ = binary.reset(seed=0, options={"user_id": 10})
    assert set(np.unique(obs)) <= {0.0, 1.0} and obs.sum() == 3


def _small():
    return load_movielens("synthetic:n_users=30,n_movies=80,n_ratings=700")


def test_checkers():
    from gymnasium.utils.env_checker import check_env
    from stable_baselines3.common.env_checker import check_env as sb3_check_env

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the checkers' warnings are failures here
        check_env(MovieLensSessionEnv(_small()), skip_render_check=True)
        sb3_check_env(MovieLensSessionEnv(_small()), warn=True)
    # SB3's make_vec_env asks for render_mode="rgb_array" and falls back when that is a TypeError
    from stable_baselines3.common.env_util import make_vec_env

    with pytest.warns(UserWarning, match="rgb_array"):
        vec = make_vec_env("rlrec/MovieLensSession-v0", n_envs=2, env_kwargs={"data": _small()})
    assert vec.reset().shape == (2, 80)
    env = gymnasium.make("rlrec/MovieLensSession-v0", data=_small(), render_mode="ansi")
    env.reset(seed=0)
    env.step(0)
    assert "hidden left" in env.render()


def _rollout(env, actions):
    out = []
    for action in actions:
        obs, reward, terminated, truncated, info = env.step(action)
        out.append((obs.copy(), reward, terminated, truncated, info["hidden_left"]))
        if terminated or truncated:
            obs, info = env.reset()
            out.append((obs.copy(), info["user_index"]))
    return out


def _same(a, b):
    assert len(a) == len(b)
    for x, y in zip(a, b):
        assert np.array_equal(x[0], y[0]) and x[1:] == y[1:]


def test_determinism_and_pickling():
    data = _small()
    actions = np.random.default_rng(0).integers(data.n_movies, size=200)
    one, two = (gymnasium.make("rlrec/MovieLensSession-v0", data=data, max_episode_steps=20) for _ in "12")
    one.reset(seed=5)
    two.reset(seed=5)
    _same(_rollout(one, actions[:50]), _rollout(two, actions[:50]))
    clone = pickle.loads(pickle.dumps(one))
    _same(_rollout(one, actions[50:]), _rollout(clone, actions[50:]))
    np.testing.assert_array_equal(one.unwrapped.action_masks(), clone.unwrapped.action_masks())


def test_no_dense_users_by_movies_state():
    env = MovieLensSessionEnv(_small())
    env.reset(seed=0)
    for name, value in [*vars(env).items(), *vars(env.episodes).items()]:
        if isinstance(value, np.ndarray):
            assert value.size <= env.dataset.n_movies, name


def test_recent_hiding_hides_the_latest_ratings_and_never_the_test_part() -> None:
    from rlrec.data.split import temporal_split

    data = load_movielens("synthetic:n_users=40,n_movies=120,n_ratings=1600,seed=2")
    split = temporal_split(data)
    env = MovieLensSessionEnv(split.train, hiding="recent", hidden_fraction=0.25, observation="binary")
    for seed in range(5):
        obs, info = env.reset(seed=seed)
        user = info["user_index"]
        movies, _ = split.train.user_row(user)
        start, stop = split.train.ratings.indptr[user], split.train.ratings.indptr[user + 1]
        order = movies[np.argsort(split.train.recency_rank[start:stop])]
        n_hidden = env.episodes.n_hidden(len(movies))
        assert set(np.flatnonzero(obs)) == set(order[: len(movies) - n_hidden].tolist())  # the oldest shown
        hidden = set(np.flatnonzero(env.episodes.hidden[0]).tolist())
        assert hidden == set(order[len(movies) - n_hidden :].tolist())  # the latest hidden
        test_movies, _ = split.test.user_row(user)
        assert not hidden & set(test_movies.tolist())  # the env holds train only: no test movie leaks
        again, _ = env.reset(seed=seed + 100, options={"user_id": info["user_id"]})
        np.testing.assert_array_equal(again, obs)  # "recent" draws nothing: the same part every time


def test_recent_hiding_with_a_fraction_range_cuts_the_time_line_afresh_each_session() -> None:
    data = _toy()  # user 10 rated movies 0..5 at times 0..5
    env = MovieLensSessionEnv(
        data, hiding="recent", hidden_fraction=[0.1, 0.9], observation="recency", half_life=1.0, users=[10]
    )
    cuts = set()
    for seed in range(40):
        obs, info = env.reset(seed=seed)
        n_hidden = info["hidden_left"]
        shown = 6 - n_hidden
        cuts.add(shown)
        # the oldest `shown` movies are visible, the latest hidden; ages count from the cut
        np.testing.assert_allclose(obs[:shown], 0.5 ** np.arange(shown - 1, -1, -1.0))
        assert not obs[shown:6].any()
        assert set(np.flatnonzero(env.episodes.hidden[0]).tolist()) == set(range(shown, 6))
    assert cuts == {1, 2, 3, 4, 5}  # round(6 * [0.1, 0.9]) hides 1..5: every cut occurs in 40 draws


def test_recency_observation_and_fraction_ranges() -> None:
    data = _toy()
    env = MovieLensSessionEnv(data, observation="recency", half_life=1.0, hidden_fraction=0.5, users=[10])
    full = env.observations(np.array([0]))[0]
    # user 10 rated movies 0..5 at times 0..5 (build order): the latest (5) is 1, each earlier halves
    np.testing.assert_allclose(full[[5, 4, 3, 2, 1, 0]], [1, 0.5, 0.25, 0.125, 0.0625, 0.03125])
    ranged = MovieLensSessionEnv(data, hidden_fraction=[0.2, 0.8], users=[10])
    counts = {ranged.reset(seed=s)[1]["hidden_left"] for s in range(40)}
    assert len(counts) > 2 and min(counts) >= 1 and max(counts) <= 5
    with pytest.raises(ValueError, match="hidden_fraction"):
        MovieLensSessionEnv(data, hidden_fraction=[0.8, 0.2])
    with pytest.raises(ValueError, match="half_life"):
        MovieLensSessionEnv(data, observation="recency", half_life=0)


def test_recency_counts_ages_a_session_on_the_shown_ratings_or_on_all_of_them() -> None:
    """User 10 rated movies 0..5 at times 0..5; half of them hidden each session. ``"shown"``
    ages a visible movie by the visible ratings after it, ``"all"`` by every rating after it
    (hidden ones too), the clock of the whole-history ranking observation."""
    data = _toy()
    options = {"observation": "recency", "half_life": 1.0, "hidden_fraction": 0.5, "users": [10]}
    shown_env = MovieLensSessionEnv(data, **options)
    all_env = MovieLensSessionEnv(data, recency_counts="all", **options)
    gapped = 0
    for seed in range(12):
        shown_obs, _ = shown_env.reset(seed=seed)
        all_obs, _ = all_env.reset(seed=seed)
        visible = np.flatnonzero(shown_obs)
        np.testing.assert_array_equal(np.flatnonzero(all_obs), visible)  # the same session drawn
        assert len(visible) == 3
        latest_first = visible[::-1]
        np.testing.assert_allclose(shown_obs[latest_first], [1.0, 0.5, 0.25])
        np.testing.assert_allclose(all_obs[visible], 0.5 ** (5 - visible))
        gapped += int(not np.array_equal(visible, [3, 4, 5]))
    assert gapped > 0  # some sessions hid a later rating: there the two clocks differ
    np.testing.assert_array_equal(all_env.observations(np.array([0])), shown_env.observations(np.array([0])))
    with pytest.raises(ValueError, match="recency_counts"):
        MovieLensSessionEnv(data, recency_counts="hidden")
