"""Learners and the training run.

* ``QLearningAgent`` (``rlrec.agents.tabular_q``), ``DQNAgent`` (``rlrec.agents.dqn``) and
  ``SlateQAgent`` (``rlrec.agents.slateq``): our hand-written learners, with SB3's API;
* ``score_movies`` (``rlrec.agents.scoring``): a score per movie from any learner;
* ``ALGOS``, ``load_hyperparams``, ``make_model``, ``load_model`` (``rlrec.agents.factory``): what each
  ``--algo`` names, its zoo-format YAML defaults;
* ``train``, ``load_run`` (``rlrec.agents.training``): one training run end to end.

Names are imported on first use, so that ``import rlrec.agents.factory`` does not pull in torch.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "QLearningAgent": "rlrec.agents.tabular_q",
    "DQNAgent": "rlrec.agents.dqn",
    "SlateQAgent": "rlrec.agents.slateq",
    "score_movies": "rlrec.agents.scoring",
    "ALGOS": "rlrec.agents.factory",
    "algo_class": "rlrec.agents.factory",
    "load_hyperparams": "rlrec.agents.factory",
    "load_model": "rlrec.agents.factory",
    "make_model": "rlrec.agents.factory",
    "LoadedRun": "rlrec.agents.training",
    "TrainResult": "rlrec.agents.training",
    "load_run": "rlrec.agents.training",
    "train": "rlrec.agents.training",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'rlrec.agents' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))
