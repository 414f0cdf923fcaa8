"""The honest judge: top-K metrics, non-RL baselines, the protocol that ranks any model, and OPE.

``RankingEvalCallback`` (``callbacks.py``, SB3 and torch) and the off-policy modules
(``offline.py``, ``ope.py``) are imported from their modules; this package re-exports what needs
neither.
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
from rlrec.evaluation.protocol import (
    evaluate_baseline,
    evaluate_baseline_on,
    evaluate_model,
    evaluate_run,
)

__all__ = [
    "BASELINES",
    "RELEVANCE_THRESHOLD",
    "ALSBaseline",
    "EASEBaseline",
    "PopularityBaseline",
    "RandomBaseline",
    "Split",
    "evaluate_baseline",
    "evaluate_baseline_on",
    "evaluate_model",
    "evaluate_run",
    "evaluate_scores",
    "hit_rate_at_k",
    "make_baseline",
    "mrr_at_k",
    "ndcg_at_k",
    "precision_at_k",
    "recall_at_k",
    "temporal_split",
]
