"""What a trial samples: each learner's search space, merged onto its shipped YAML."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

import optuna
import torch

from rlrec.agents.recipes import parse_policy_kwargs, policy_kwargs_sources
from rlrec.agents.registry import algo_spec

if TYPE_CHECKING:
    pass

# ----------------------------------------------------------------------------- search spaces
#: ``space(trial) -> {yaml key: value}`` in the format of ``rlrec/hyperparams/<algo>.yml``. Two
#: pseudo-keys are placed by :func:`merge_trial_params`: ``net_arch`` (inside ``policy_kwargs``
#: for SB3 models, a constructor argument for ours) and ``policy_kwargs.<key>``.
SearchSpace = Callable[[optuna.Trial], dict[str, Any]]

# Ranges follow RL Baselines3 Zoo's hyperparams_opt.py, narrowed to what trains in minutes on
# MovieLens. Discounts include short horizons: the next user does not depend on the action.
_GAMMAS = [0.5, 0.9, 0.95, 0.99]


def _net_arch(trial: optuna.Trial) -> list[int]:
    width = trial.suggest_categorical("net_width", [64, 128, 256])
    depth = trial.suggest_int("net_depth", 1, 2)
    return [int(width)] * int(depth)


def _exploration(trial: optuna.Trial) -> dict[str, Any]:
    return {
        "exploration_fraction": trial.suggest_float("exploration_fraction", 0.05, 0.5),
        "exploration_final_eps": trial.suggest_float("exploration_final_eps", 0.01, 0.2),
    }


def _space_dqn(trial: optuna.Trial) -> dict[str, Any]:
    return {
        "learning_rate": trial.suggest_float("learning_rate", 1e-5, 1e-2, log=True),
        "gamma": trial.suggest_categorical("gamma", _GAMMAS),
        "batch_size": trial.suggest_categorical("batch_size", [32, 64, 128]),
        "target_update_interval": trial.suggest_categorical("target_update_interval", [100, 500, 1000]),
        **_exploration(trial),
        "net_arch": _net_arch(trial),
    }


def _space_qrdqn(trial: optuna.Trial) -> dict[str, Any]:
    # The output layer has n_movies x n_quantiles units: few quantiles keep it in memory (see qrdqn.yml).
    return {
        **_space_dqn(trial),
        "policy_kwargs.n_quantiles": trial.suggest_categorical("n_quantiles", [5, 10, 20]),
    }


def _space_ppo(trial: optuna.Trial) -> dict[str, Any]:
    return {
        "learning_rate": trial.suggest_float("learning_rate", 1e-5, 1e-3, log=True),
        "gamma": trial.suggest_categorical("gamma", _GAMMAS),
        "n_steps": trial.suggest_categorical("n_steps", [64, 128, 256]),
        "batch_size": trial.suggest_categorical("batch_size", [32, 64]),
        "n_epochs": trial.suggest_categorical("n_epochs", [3, 5, 10]),
        "ent_coef": trial.suggest_float("ent_coef", 1e-6, 1e-1, log=True),
        "clip_range": trial.suggest_categorical("clip_range", [0.1, 0.2, 0.3]),
        "net_arch": _net_arch(trial),
    }


def _space_a2c(trial: optuna.Trial) -> dict[str, Any]:
    return {
        "learning_rate": trial.suggest_float("learning_rate", 1e-5, 1e-2, log=True),
        "gamma": trial.suggest_categorical("gamma", _GAMMAS),
        "n_steps": trial.suggest_categorical("n_steps", [5, 8, 16, 32]),
        "ent_coef": trial.suggest_float("ent_coef", 1e-6, 1e-1, log=True),
        "net_arch": _net_arch(trial),
    }


def _space_qlearning(trial: optuna.Trial) -> dict[str, Any]:
    return {
        "learning_rate": trial.suggest_float("learning_rate", 1e-3, 0.5, log=True),
        "gamma": trial.suggest_categorical("gamma", _GAMMAS),
        **_exploration(trial),
    }


SEARCH_SPACES: dict[str, SearchSpace] = {
    "qlearning": _space_qlearning,
    "dqn": _space_dqn,
    "sb3-dqn": _space_dqn,
    "qrdqn": _space_qrdqn,
    "ppo": _space_ppo,
    "maskable-ppo": _space_ppo,
    "a2c": _space_a2c,
}


def policy_kwargs_string(policy_kwargs: str | Mapping[str, Any] | None, updates: Mapping[str, Any]) -> str:
    """The zoo's ``policy_kwargs`` string with ``updates`` applied, every other entry kept as written.

    A string (``"dict(net_arch=[128, 128])"``) stays JSON-serialisable (Optuna's user attributes)
    and reads back through the factory's ``parse_policy_kwargs``. Entries not updated keep their
    source text (``optimizer_class=th.optim.Adam`` stays so). ``net_arch`` replaces every branch of
    an actor-critic ``dict(pi=..., vf=...)`` so both networks get the sampled size.
    """
    current = parse_policy_kwargs(policy_kwargs) if policy_kwargs else {}  # also validates
    if not policy_kwargs:
        sources: dict[str, str] = {}
    elif isinstance(policy_kwargs, str):
        sources = policy_kwargs_sources(policy_kwargs)
    else:
        sources = {str(key): _source_of(value) for key, value in policy_kwargs.items()}
    for key, value in updates.items():
        if key == "net_arch" and isinstance(current.get("net_arch"), dict):
            value = {branch: list(value) for branch in current["net_arch"]}
        sources[key] = repr(value)
    return "dict(" + ", ".join(f"{key}={source}" for key, source in sources.items()) + ")"


def _source_of(value: Any) -> str:
    if isinstance(value, type):
        namespace = "th.optim" if issubclass(value, torch.optim.Optimizer) else "nn"
        return f"{namespace}.{value.__name__}"
    return repr(value)


def merge_trial_params(algo: str, base: Mapping[str, Any], sampled: Mapping[str, Any]) -> dict[str, Any]:
    """``base`` (the YAML section) with ``sampled`` on top, pseudo-keys put where ``algo`` wants them.

    SB3 models take the network inside ``policy_kwargs``; rlrec's own learners take ``net_arch``.
    """
    merged = dict(base)
    policy_updates: dict[str, Any] = {}
    for key, value in sampled.items():
        if key.startswith("policy_kwargs."):
            policy_updates[key.split(".", 1)[1]] = value
        elif key == "net_arch" and algo_spec(algo).family == "sb3":
            policy_updates["net_arch"] = list(value)
        else:
            merged[key] = value
    if policy_updates:
        merged["policy_kwargs"] = policy_kwargs_string(merged.get("policy_kwargs"), policy_updates)
    return merged


def suggest_hyperparams(trial: optuna.Trial, algo: str, base: Mapping[str, Any]) -> dict[str, Any]:
    """Sample ``algo``'s search space for ``trial`` and merge it onto ``base`` (the shipped YAML).

    :raises ValueError: no search space for ``algo``.
    """
    try:
        space = SEARCH_SPACES[algo]
    except KeyError:
        raise ValueError(
            f"--algo: no search space for {algo!r} (known: {', '.join(SEARCH_SPACES)})"
        ) from None
    return merge_trial_params(algo, base, space(trial))
