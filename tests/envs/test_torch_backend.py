"""``backend="torch"`` against the NumPy backend: same episodes in, same observations, rewards,
terminations and masks out (the episodes are injected, the slate draws replayed), on the CPU."""

from __future__ import annotations

import copy
from typing import Any

import gymnasium
import numpy as np
import pytest
import torch

from rlrec.data import load_movielens
from rlrec.envs.session import MovieLensSessionVectorEnv
from rlrec.envs.slate import MovieLensSlateVectorEnv
from rlrec.envs.torch_backend import TorchEpisodes, TorchVectorEnv, resolve_device

SYNTH = "synthetic:n_users=40,n_movies=80,n_ratings=900,seed=2"
CPU = torch.device("cpu")


def _inject(numpy_episodes: Any, torch_episodes: TorchEpisodes, rows: np.ndarray) -> None:
    """Start ``rows`` of the torch episodes with the users and hidden sets the NumPy ones drew."""
    world = numpy_episodes.world
    users = numpy_episodes.users[rows]
    hidden = np.concatenate(
        [numpy_episodes.hidden[i, world.history(int(u))[0]] > 0 for i, u in zip(rows, users, strict=True)]
    )
    torch_episodes.start(torch.as_tensor(rows), None, torch.as_tensor(users), torch.as_tensor(hidden))


def _assert_same_state(numpy_episodes: Any, torch_episodes: TorchEpisodes) -> None:
    np.testing.assert_allclose(torch_episodes.obs.numpy(), numpy_episodes.obs, rtol=0, atol=1e-6)
    np.testing.assert_array_equal(torch_episodes.mask.numpy(), numpy_episodes.mask)
    np.testing.assert_array_equal(torch_episodes.hidden.numpy(), numpy_episodes.hidden)
    for name in ("users", "hidden_left", "liked_left", "allowed", "steps", "n_hidden_total"):
        np.testing.assert_array_equal(
            getattr(torch_episodes, name).numpy(), getattr(numpy_episodes, name), name
        )
    np.testing.assert_array_equal(torch_episodes.action_masks().numpy(), numpy_episodes.action_masks())


def _actions(rng: np.random.Generator, numpy_episodes: Any, width: int) -> np.ndarray:
    """Often a hidden movie (hits), often an allowed one, sometimes anything (masked movies too)."""
    n, m = numpy_episodes.mask.shape
    out = rng.integers(0, m, size=(n, width))
    for i in range(n):
        hidden = np.flatnonzero(numpy_episodes.hidden[i] > 0)
        allowed = np.flatnonzero(numpy_episodes.mask[i])
        for slot in range(width):
            draw = rng.random()
            if draw < 0.4 and len(hidden):
                out[i, slot] = rng.choice(hidden)
            elif draw < 0.8 and len(allowed):
                out[i, slot] = rng.choice(allowed)
    return out


def _run_both(vector_env_cls: type, steps: int, seed: int, **kwargs: Any) -> None:
    data = load_movielens(SYNTH)
    n = 6
    venv = vector_env_cls(data, num_envs=n, autoreset_mode="disabled", **kwargs)
    venv.reset(seed=seed)
    numpy_episodes = venv.episodes
    torch_episodes = TorchEpisodes(numpy_episodes, CPU)
    rows = np.arange(n)
    _inject(numpy_episodes, torch_episodes, rows)
    _assert_same_state(numpy_episodes, torch_episodes)
    width = getattr(numpy_episodes, "slate_size", None)
    rng = np.random.default_rng(seed)
    for _ in range(steps):
        actions = _actions(rng, numpy_episodes, width or 1)
        rngs = [venv._rng(i) for i in rows]
        # The slate's uniform draws, replayed: copies of the generators draw what step() will.
        draws = np.array([copy.deepcopy(g).random(width) for g in rngs]) if width else None
        flat = actions.reshape(n) if width is None else actions
        np_rewards, np_terminated, np_info = numpy_episodes.step(rows, flat, rngs)
        t_rewards, t_terminated, t_info = torch_episodes.step(
            torch.as_tensor(rows), torch.as_tensor(flat), None if draws is None else torch.as_tensor(draws)
        )
        np.testing.assert_allclose(t_rewards.numpy(), np_rewards, rtol=1e-6, atol=1e-7)
        np.testing.assert_array_equal(t_terminated.numpy(), np_terminated)
        for key in ("user_index", "user_id", "hit", "hidden_left", *(("clicks",) if width else ())):
            np.testing.assert_array_equal(t_info[key].numpy(), np_info[key], key)
        _assert_same_state(numpy_episodes, torch_episodes)
        ended = np.flatnonzero(np_terminated)
        if len(ended):  # new sessions for those, drawn by NumPy and injected
            for i in ended:
                numpy_episodes.start(int(i), venv._rng(int(i)), None)
            _inject(numpy_episodes, torch_episodes, ended)
            _assert_same_state(numpy_episodes, torch_episodes)


@pytest.mark.parametrize(
    "kwargs",
    [
        {},
        {"reward_mode": "rating", "observation": "recency", "hidden_fraction": 0.7, "show_misses": True},
        {"reward_mode": "simulated", "observation": "binary", "hiding": "recent"},
        {"hidden_fraction": [0.3, 0.9], "observation": "recency", "half_life": 3.0},
        {"hidden_fraction": 0.6, "observation": "recency", "half_life": 2.0, "recency_counts": "all"},
    ],
)
def test_session_matches_numpy(kwargs: dict[str, Any]) -> None:
    _run_both(MovieLensSessionVectorEnv, steps=40, seed=5, **kwargs)


@pytest.mark.parametrize(
    "kwargs",
    [
        {},
        {"click_model": "pbm", "feedback": "simulated", "reward_mode": "rating", "show_misses": True},
        {"click_model": "cascade", "feedback": "logged", "reward_mode": "rating", "observation": "recency"},
        {"click_model": "pbm", "feedback": "logged", "slate_size": 3, "hiding": "recent"},
        {"observation": "recency", "recency_counts": "all", "hidden_fraction": 0.8, "slate_size": 5},
    ],
)
def test_slate_matches_numpy(kwargs: dict[str, Any]) -> None:
    _run_both(MovieLensSlateVectorEnv, steps=6, seed=9, **kwargs)


def test_observations_match_numpy() -> None:
    data = load_movielens(SYNTH)
    for observation in ("ratings", "binary", "recency"):
        venv = MovieLensSessionVectorEnv(data, num_envs=2, observation=observation, half_life=4.0)
        torch_episodes = TorchEpisodes(venv.episodes, CPU)
        users = np.array([0, 3, 7, 3])
        np.testing.assert_allclose(
            torch_episodes.observations(torch.as_tensor(users)).numpy(), venv.observations(users), atol=1e-6
        )


def test_drawn_sessions_follow_the_hiding_rules() -> None:
    """Sessions the torch backend draws itself: a share of each history hidden (rounded half up,
    within [1, n-1]), the rest shown; ``"recent"`` hides the latest ratings."""
    data = load_movielens(SYNTH)
    for hiding in ("random", "recent"):
        venv = gymnasium.make_vec(
            "rlrec/MovieLensSession-v0", num_envs=16, data=data, backend="torch", device="cpu",
            hidden_fraction=0.3, hiding=hiding, observation="binary",
        )  # fmt: skip
        assert isinstance(venv, TorchVectorEnv)
        obs, info = venv.reset(seed=1)
        episodes = venv.episodes
        for i in range(16):
            user = int(episodes.users[i])
            movies, ratings = venv.world.history(user)
            n = len(movies)
            n_hidden = min(n - 1, max(1, int(np.floor(0.3 * n + 0.5))))
            hidden = episodes.hidden[i].numpy()
            shown = obs[i].numpy()
            assert np.count_nonzero(hidden) == n_hidden
            np.testing.assert_array_equal(hidden[movies] > 0, shown[movies] == 0)
            np.testing.assert_array_equal(hidden[hidden > 0], ratings[hidden[movies] > 0])
            assert np.count_nonzero(shown) == n - n_hidden
            if hiding == "recent":
                latest = venv.world.recency(user) >= n - n_hidden
                np.testing.assert_array_equal(hidden[movies] > 0, latest)
        assert info["user_id"].tolist() == venv.world.user_ids[episodes.users.numpy()].tolist()
        # The same seed draws the same sessions.
        again, _ = venv.reset(seed=1)
        np.testing.assert_array_equal(again.numpy(), obs.numpy())


def test_vector_env_autoreset_and_truncation() -> None:
    """``same_step``: a session that ends restarts within the step (its last observation in
    ``final_obs``); every session is truncated at the registered 50 steps."""
    data = load_movielens(SYNTH)
    venv = gymnasium.make_vec(
        "rlrec/MovieLensSession-v0", num_envs=4, data=data, backend="torch", device="cpu",
        autoreset_mode="same_step", hidden_fraction=0.5,
    )  # fmt: skip
    obs, _ = venv.reset(seed=0)
    rng = np.random.default_rng(0)
    steps_since = np.zeros(4, dtype=int)
    for _ in range(120):
        hidden = venv.episodes.hidden.numpy().copy()
        before = obs.numpy().copy()
        actions = np.array([rng.choice(np.flatnonzero(row > 0)) if (row > 0).any() else 0 for row in hidden])
        obs, rewards, terminated, truncated, info = venv.step(actions)
        steps_since += 1
        # Every action was a hidden liked movie or a hidden one: reward 1 exactly when liked.
        np.testing.assert_array_equal(rewards.numpy(), (hidden[np.arange(4), actions] >= 4).astype(float))
        done = (terminated | truncated).numpy()
        np.testing.assert_array_equal(truncated.numpy(), steps_since >= 50)
        for i in np.flatnonzero(done):
            final = info["final_obs"][i].numpy()
            assert final[actions[i]] > 0 and before[i, actions[i]] == 0  # the found movie shows
            assert venv.episodes.steps[i] == 0
        steps_since[done] = 0


def test_next_step_autoreset_matches_gymnasium_convention() -> None:
    data = load_movielens(SYNTH)
    venv = gymnasium.make_vec(
        "rlrec/MovieLensSession-v0", num_envs=3, data=data, backend="torch", device="cpu", max_episode_steps=2
    )
    venv.reset(seed=0)
    zeros = np.zeros(3, dtype=np.int64)
    _, _, _, truncated, _ = venv.step(zeros)
    assert not truncated.any()
    _, _, _, truncated, _ = venv.step(zeros)
    assert truncated.all()
    _, rewards, terminated, truncated, info = venv.step(zeros)  # the reset step: action ignored
    assert not (terminated | truncated).any() and (rewards == 0).all()
    assert (venv.episodes.steps == 0).all() and (info["hidden_left"] == venv.episodes.n_hidden_total).all()


def test_bad_arguments_are_clear() -> None:
    data = load_movielens(SYNTH)
    with pytest.raises(ValueError, match="backend"):
        MovieLensSessionVectorEnv(data, num_envs=2, backend="jax")
    with pytest.raises(ValueError, match="needs backend='torch'"):
        MovieLensSessionVectorEnv(data, num_envs=2, device="cuda")
    with pytest.raises(ValueError, match="device"):
        resolve_device("tpu")
    with pytest.raises(TypeError, match="backend"):  # the seed env has no torch backend
        gymnasium.make_vec("rlrec/MovieLens-v0", num_envs=2, data=data, backend="torch")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="no CUDA"):
            resolve_device("cuda")
    venv = MovieLensSessionVectorEnv(data, num_envs=2, backend="torch", device="cpu")
    venv.reset(seed=0)
    with pytest.raises(ValueError, match="movie indices"):
        venv.step(np.array([0, 10_000]))
