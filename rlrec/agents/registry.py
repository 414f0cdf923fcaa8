"""The algorithm registry: which class each ``--algo`` names, how its model is saved, its zoo name.

It imports no learner (a class is imported when asked for), so the CLI's parser reads it at once.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any, Literal

from rlrec.envs import MOVIELENS_ID

__all__ = ["ALGOS", "DEFAULT_ENV_ID", "AlgoSpec", "algo_class", "algo_spec"]

#: The env a run trains on unless told otherwise: the seed notebook's.
DEFAULT_ENV_ID = MOVIELENS_ID


@dataclass(frozen=True)
class AlgoSpec:
    """One ``--algo`` choice.

    :param name: the CLI name (also the YAML file stem and the TensorBoard run prefix).
    :param module: module holding the class, imported only when needed.
    :param class_name: the learner class.
    :param family: ``"sb3"`` for Stable-Baselines3 / sb3-contrib models (saved as SB3's zip),
        ``"rlrec"`` for our hand-written learners (saved in our own formats).
    :param model_file: file name of the saved model inside a run's output folder.
    :param zoo_algo: the name RL Baselines3 Zoo uses for it (``python -m rl_zoo3.train --algo``).
    """

    name: str
    module: str
    class_name: str
    family: Literal["sb3", "rlrec"]
    model_file: str
    zoo_algo: str | None = None


ALGOS: dict[str, AlgoSpec] = {
    spec.name: spec
    for spec in (
        AlgoSpec("qlearning", "rlrec.agents.tabular_q", "QLearningAgent", "rlrec", "model.npz"),
        AlgoSpec("dqn", "rlrec.agents.dqn", "DQNAgent", "rlrec", "model.pt"),
        AlgoSpec("slateq", "rlrec.agents.slateq", "SlateQAgent", "rlrec", "model.pt"),
        AlgoSpec("sb3-dqn", "stable_baselines3", "DQN", "sb3", "model.zip", "dqn"),
        AlgoSpec("ppo", "stable_baselines3", "PPO", "sb3", "model.zip", "ppo"),
        AlgoSpec("a2c", "stable_baselines3", "A2C", "sb3", "model.zip", "a2c"),
        AlgoSpec("qrdqn", "sb3_contrib", "QRDQN", "sb3", "model.zip", "qrdqn"),
        # rl-zoo3 (2.9) has no MaskablePPO.
        AlgoSpec("maskable-ppo", "sb3_contrib", "MaskablePPO", "sb3", "model.zip"),
    )
}


def algo_spec(algo: str) -> AlgoSpec:
    """The registry entry of ``algo``; ``ValueError`` naming the known ones when it is unknown."""
    try:
        return ALGOS[algo]
    except KeyError:
        raise ValueError(f"unknown algo {algo!r} (known: {', '.join(ALGOS)})") from None


def algo_class(algo: str) -> Any:
    """The learner class of ``algo`` (imports its module)."""
    spec = algo_spec(algo)
    return getattr(importlib.import_module(spec.module), spec.class_name)
