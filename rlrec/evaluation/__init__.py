"""The honest judge: top-K metrics, non-RL baselines, the protocol that ranks any model, and OPE.

The package re-exports the metrics and the baselines, which need neither torch nor SB3 (the
CLI's parser reads the baselines' names). What ranks a model (``protocol.py``: ``evaluate_model``,
``evaluate_run``), ranks during training (``callbacks.py``) or evaluates off-policy (``offline.py``,
``ope.py``) is imported from its module.
"""

from __future__ import annotations

from rlrec.data.split import Split, temporal_split
from rlrec.evaluation.baselines import (
    BASELINES,
    ALSBaseline,
    EASEBaseline,
    PopularityBaseline,
    RandomBaseline,
    make_baseline,
)
from rlrec.evaluation.metrics import (
    RELEVANCE_THRESHOLD,
    evaluate_scores,
    hit_rate_at_k,
    mrr_at_k,
    ndcg_at_k,
    precision_at_k,
    recall_at_k,
)

__all__ = [
    "BASELINES",
    "RELEVANCE_THRESHOLD",
    "ALSBaseline",
    "EASEBaseline",
    "PopularityBaseline",
    "RandomBaseline",
    "Split",
    "evaluate_scores",
    "hit_rate_at_k",
    "make_baseline",
    "mrr_at_k",
    "ndcg_at_k",
    "precision_at_k",
    "recall_at_k",
    "temporal_split",
]
