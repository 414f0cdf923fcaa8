"""Held-out ranking evaluation: temporal split, top-K metrics, baselines, protocol, benchmark.

``RankingEvalCallback`` and ``run_benchmark`` are imported on first use: they pull in
Stable-Baselines3 and torch, which the split, the metrics and the baselines do not need.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

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
from rlrec.evaluation.split import Split, temporal_split

if TYPE_CHECKING:
    from rlrec.evaluation.benchmark import run_benchmark
    from rlrec.evaluation.callbacks import RankingEvalCallback

__all__ = [
    "BASELINES",
    "RELEVANCE_THRESHOLD",
    "ALSBaseline",
    "EASEBaseline",
    "PopularityBaseline",
    "RandomBaseline",
    "RankingEvalCallback",
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
    "run_benchmark",
    "temporal_split",
]


def __getattr__(name: str) -> Any:
    if name == "RankingEvalCallback":
        from rlrec.evaluation.callbacks import RankingEvalCallback

        return RankingEvalCallback
    if name == "run_benchmark":
        from rlrec.evaluation.benchmark import run_benchmark

        return run_benchmark
    raise AttributeError(f"module 'rlrec.evaluation' has no attribute {name!r}")
