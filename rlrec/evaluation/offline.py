"""Logged data: roll a behaviour policy through an rlrec env and keep it as a Minari dataset.

``rlrec data log`` (:func:`log_dataset`) steps a single-movie env (``MovieLens-v0`` or
``MovieLensSession-v0``) with one of the :data:`BEHAVIOURS` and writes what happened with
``minari.create_dataset_from_buffers``: observations, actions, rewards, ends, and per step the
infos ``propensity`` (the probability the behaviour policy gave the action it took: what
importance weights divide by) and ``state`` (the user index the action was about). Each episode
is reset with its own seed (``seed + episode``), recorded, so that ``recover_environment()``
replays it step for step. Minari (``pip install 'rlrec[offline]'``) writes with its Arrow backend,
which needs only pyarrow.

Behaviour policies, over the movies the env allows (``action_masks()``):

* ``uniform``: every allowed movie alike;
* ``popularity``: ``softmax(log(1 + ratings) / temperature)``, the most rated first;
* ``epsilon-greedy``: a trained model's best movie with probability ``1 - epsilon``, else any;
* ``softmax``: ``softmax(scores / temperature)`` over a trained model's scores.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import gymnasium
import numpy as np

from rlrec import __version__
from rlrec.envs import ENV_IDS, register_envs

__all__ = [
    "BEHAVIOURS",
    "Behaviour",
    "LoggedSteps",
    "dataset_id",
    "log_dataset",
    "logged_steps",
    "make_behaviour",
]

BEHAVIOURS = ("uniform", "popularity", "epsilon-greedy", "softmax")


@dataclass
class Behaviour:
    """A stochastic policy as action probabilities: ``probabilities(observations, states, masks)``
    gives ``(B, n_movies)`` rows that sum to 1 over the allowed movies."""

    name: str
    probabilities: Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray]


def _softmax(scores: np.ndarray, masks: np.ndarray) -> np.ndarray:
    scores = np.where(masks, scores, -np.inf)
    scores = scores - scores.max(axis=1, keepdims=True)
    weights = np.exp(scores)
    return weights / weights.sum(axis=1, keepdims=True)


def make_behaviour(
    name: str,
    scores: Callable[[np.ndarray, np.ndarray], np.ndarray] | None = None,
    counts: np.ndarray | None = None,
    epsilon: float = 0.1,
    temperature: float = 1.0,
) -> Behaviour:
    """One of :data:`BEHAVIOURS`.

    :param scores: ``scores(observations, states) -> (B, n_movies)``, a trained model's (greedy and
        softmax policies).
    :param counts: ratings per movie (the popularity policy).
    :param epsilon: the exploration rate of ``epsilon-greedy``, in [0, 1].
    :param temperature: of the softmax policies, > 0.
    """
    if name not in BEHAVIOURS:
        raise ValueError(f"--policy: {name!r} is not one of {', '.join(BEHAVIOURS)}")
    if not 0.0 <= epsilon <= 1.0 or not temperature > 0:
        raise ValueError(
            f"--epsilon must lie in [0, 1] and --temperature be > 0, got {epsilon}, {temperature}"
        )
    if name in ("epsilon-greedy", "softmax") and scores is None:
        raise ValueError(f"--policy {name}: needs a trained model (--model)")
    if name == "uniform":
        return Behaviour(name, lambda obs, states, masks: masks / masks.sum(axis=1, keepdims=True))
    if name == "popularity":
        if counts is None:
            raise ValueError("--policy popularity: needs the ratings per movie")
        log_counts = np.log1p(np.asarray(counts, dtype=np.float64)) / temperature
        return Behaviour(
            name, lambda obs, states, masks: _softmax(np.broadcast_to(log_counts, masks.shape), masks)
        )
    assert scores is not None
    if name == "softmax":
        return Behaviour(name, lambda obs, states, masks: _softmax(scores(obs, states) / temperature, masks))

    def greedy(obs: np.ndarray, states: np.ndarray, masks: np.ndarray) -> np.ndarray:
        best = np.where(masks, scores(obs, states), -np.inf).argmax(axis=1)
        probs = epsilon * masks / masks.sum(axis=1, keepdims=True)
        probs[np.arange(len(best)), best] += 1.0 - epsilon
        return probs

    return Behaviour(name, greedy)


def dataset_id(env_id: str, policy: str, version: int = 0) -> str:
    """``rlrec/<env>/<policy>-v<version>``, e.g. ``rlrec/MovieLens/uniform-v0`` for MovieLens-v0."""
    env = env_id.split("/")[-1].rsplit("-v", 1)[0]
    return f"rlrec/{env}/{policy}-v{version}"


def log_dataset(
    env_id: str,
    env_kwargs: Mapping[str, Any],
    behaviour: Behaviour,
    n_steps: int,
    seed: int = 0,
    dataset_id_: str | None = None,
    write: bool = True,
    spec: Mapping[str, Any] | None = None,
) -> tuple[Any, list[dict[str, np.ndarray]]]:
    """Roll ``behaviour`` for ``n_steps`` steps (whole episodes: the last one may run past) and keep them.

    :param env_kwargs: the env's arguments, ``data`` included as a source text (a Minari dataset
        records them so ``recover_environment()`` can rebuild the env).
    :param write: write a Minari dataset (else return only the episodes, for OPE in memory).
    :param spec: how the behaviour was made (``policy``, ``epsilon``, ``temperature``, ``model``),
        recorded in the dataset so ``rlrec ope --truth --seeds`` can roll it again.
    :return: ``(MinariDataset or None, episodes)``, an episode as arrays ``observations`` (T + 1),
        ``actions``, ``rewards``, ``terminations``, ``truncations``, ``propensities``, ``states``
        (T each) and ``seed``.
    """
    register_envs()

    if n_steps < 1:
        raise ValueError(f"--steps: must be >= 1, got {n_steps}")
    env = gymnasium.make(env_id, **dict(env_kwargs))
    rng = np.random.default_rng(seed)
    episodes: list[dict[str, Any]] = []
    done_steps = 0
    while done_steps < n_steps:
        episode_seed = seed + len(episodes)
        obs, info = env.reset(seed=episode_seed)
        columns: dict[str, list[Any]] = {k: [] for k in ("actions", "rewards", "terminations", "truncations",
                                                          "propensities", "states")}  # fmt: skip
        observations = [obs]
        while True:
            state = _state_of(info)
            allowed: Any = env.unwrapped.action_masks()  # type: ignore[attr-defined]
            masks = np.asarray(allowed, dtype=bool)[None]
            probs = behaviour.probabilities(obs[None], np.array([state]), masks)[0]
            action = int(rng.choice(len(probs), p=probs))
            obs, reward, terminated, truncated, info = env.step(action)
            for key, value in zip(columns, (action, reward, terminated, truncated, probs[action], state)):
                columns[key].append(value)
            observations.append(obs)
            if terminated or truncated:
                break
        done_steps += len(columns["actions"])
        episodes.append(
            {"seed": episode_seed, "observations": np.asarray(observations, dtype=np.float32),
             **{key: np.asarray(values) for key, values in columns.items()}}
        )  # fmt: skip
    name = dataset_id_ or dataset_id(env_id, behaviour.name)
    dataset = _write(env, episodes, name, {"policy": behaviour.name, **dict(spec or {})}) if write else None
    env.close()
    return dataset, episodes


def _state_of(info: Mapping[str, Any]) -> int:
    """The user an action is about: MovieLens-v0's ``state``, a session's ``user_index``."""
    return int(info["state"] if "state" in info else info["user_index"])


def _write(env: Any, episodes: list[dict[str, Any]], name: str, spec: Mapping[str, Any]) -> Any:
    # Minari is an optional dependency (``rlrec[offline]``): imported where a dataset is written.
    try:
        import minari
        from minari.data_collector import EpisodeBuffer
    except ImportError:
        raise ValueError("rlrec data log: needs Minari: pip install 'rlrec[offline]'") from None
    buffers = [
        EpisodeBuffer(
            id=index,
            seed=episode["seed"],
            observations=episode["observations"],
            actions=episode["actions"],
            rewards=episode["rewards"].astype(np.float64),
            terminations=episode["terminations"],
            truncations=episode["truncations"],
            infos={
                # Minari keeps one info per observation (reset included): the reset row holds 1.
                # Lists, not 1-D arrays: Minari 0.5's Arrow storage cannot read back the shape of
                # an array of scalars.
                "propensity": [1.0, *episode["propensities"].astype(float).tolist()],
                "state": [*episode["states"].astype(int).tolist(), -1],
            },
        )
        for index, episode in enumerate(episodes)
    ]

    def create() -> Any:
        return minari.create_dataset_from_buffers(
            dataset_id=name,
            buffer=buffers,
            env=env.spec,
            eval_env=env.spec,
            algorithm_name="rlrec " + json.dumps(dict(spec), sort_keys=True),
            author="rlrec data log",
            author_email="rlrec data log (no address)",
            code_permalink=f"rlrec {_version()}",
            description=(
                "Logged by rlrec data log. infos['propensity'][t + 1] is the behaviour policy's "
                "probability of actions[t]; infos['state'][t] the user index actions[t] was about."
            ),
            data_format="arrow",
        )

    return _replace_dataset(name, create)


def _replace_dataset(name: str, create: Callable[[], Any]) -> Any:
    """``create()`` the dataset ``name``, replacing an existing one only once the new one is whole.

    Minari writes where ``MINARI_DATASETS_PATH`` says: a new dataset of a taken id is written
    under a staging root beside the real one, then swapped in by two renames; the old one is
    deleted last. A swap cut between its renames is undone by the next write or read
    (:func:`restore_dataset`).
    """
    from minari.storage.datasets_root_dir import get_dataset_path

    target = get_dataset_path(name)
    restore_dataset(name)
    if not target.exists():
        return create()
    root = get_dataset_path()
    staging = root / f".rlrec-staging-{os.getpid()}"
    shutil.rmtree(staging, ignore_errors=True)
    before = os.environ.get("MINARI_DATASETS_PATH")
    os.environ["MINARI_DATASETS_PATH"] = str(staging)
    try:
        create()
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    finally:
        if before is None:
            os.environ.pop("MINARI_DATASETS_PATH", None)
        else:
            os.environ["MINARI_DATASETS_PATH"] = before
    aside = target.with_name(f".{target.name}.replaced-{os.getpid()}")
    target.rename(aside)
    (staging / name).rename(target)
    shutil.rmtree(aside, ignore_errors=True)
    shutil.rmtree(staging, ignore_errors=True)
    import minari

    return minari.load_dataset(name)


def restore_dataset(name: str) -> None:
    """Put back a dataset whose replacement was cut between its two renames (a killed re-log)."""
    from minari.storage.datasets_root_dir import get_dataset_path

    target = get_dataset_path(name)
    leftovers = sorted(target.parent.glob(f".{target.name}.replaced-*"))
    if leftovers and not target.exists():
        leftovers.pop().rename(target)
    for leftover in leftovers:
        shutil.rmtree(leftover, ignore_errors=True)


def recover_env(dataset: Any) -> Any:
    """The env a Minari dataset of rlrec's was logged in, rebuilt from rlrec's own registry.

    Minari's ``recover_environment()`` imports whatever ``entry_point`` the dataset names: a
    shared dataset could run any code that way. Here the id must be one of rlrec's and its
    recorded entry point rlrec's own for that id (else ``ValueError`` in one line); the env is
    made by id, with the recorded keyword arguments checked against the constructor first.
    """
    register_envs()
    spec = dataset.spec.env_spec
    if spec is None:
        raise ValueError(f"{dataset.spec.dataset_id}: the dataset records no environment")
    if spec.id not in ENV_IDS:
        raise ValueError(
            f"{dataset.spec.dataset_id}: env {spec.id!r} is not one of rlrec's ({', '.join(ENV_IDS)})"
        )
    ours = gymnasium.spec(spec.id).entry_point
    if spec.entry_point != ours:
        raise ValueError(
            f"{dataset.spec.dataset_id}: its env entry point {spec.entry_point!r} is not rlrec's "
            f"{ours!r}; rlrec does not run code a dataset names"
        )
    kwargs = dict(spec.kwargs or {})
    for key, value in kwargs.items():
        if not isinstance(key, str) or not _plain(value):
            raise ValueError(f"{dataset.spec.dataset_id}: env argument {key!r} is not plain data")
    limit = spec.max_episode_steps
    return gymnasium.make(spec.id, max_episode_steps=-1 if limit is None else int(limit), **kwargs)


def _plain(value: Any) -> bool:
    """JSON-like data only (what an env argument recorded by ``rlrec data log`` is)."""
    if value is None or isinstance(value, bool | int | float | str):
        return True
    if isinstance(value, list | tuple):
        return all(_plain(item) for item in value)
    if isinstance(value, dict):
        return all(isinstance(key, str) and _plain(item) for key, item in value.items())
    return False


def _version() -> str:
    return __version__


@dataclass
class LoggedSteps:
    """Logged steps as flat arrays (one row per step) plus where each episode starts."""

    observations: np.ndarray
    states: np.ndarray
    actions: np.ndarray
    rewards: np.ndarray
    propensities: np.ndarray
    terminations: np.ndarray
    episode_starts: np.ndarray


def logged_steps(episodes: Any) -> LoggedSteps:
    """Flatten episodes from :func:`log_dataset` or a Minari dataset (``minari.load_dataset(...)``)."""
    rows: dict[str, list[np.ndarray]] = {
        k: [] for k in ("obs", "states", "actions", "rewards", "props", "ends")
    }
    starts = [0]
    for episode in episodes:
        if isinstance(episode, dict):
            obs, states, props = episode["observations"][:-1], episode["states"], episode["propensities"]
            actions, rewards, ends = episode["actions"], episode["rewards"], episode["terminations"]
        else:  # minari EpisodeData
            obs, actions, rewards, ends = (episode.observations[:-1], episode.actions, episode.rewards,
                                           episode.terminations)  # fmt: skip
            states, props = episode.infos["state"][:-1], episode.infos["propensity"][1:]
        for key, value in zip(rows, (obs, states, actions, rewards, props, ends)):
            rows[key].append(np.asarray(value))
        starts.append(starts[-1] + len(actions))
    stacked = {key: np.concatenate(values) for key, values in rows.items()}
    return LoggedSteps(
        observations=stacked["obs"].astype(np.float32),
        states=stacked["states"].astype(np.int64),
        actions=stacked["actions"].astype(np.int64),
        rewards=stacked["rewards"].astype(np.float64),
        propensities=stacked["props"].astype(np.float64),
        terminations=stacked["ends"].astype(bool),
        episode_starts=np.asarray(starts[:-1], dtype=np.int64),
    )
