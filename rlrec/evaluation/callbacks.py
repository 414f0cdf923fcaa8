"""``RankingEvalCallback``: held-out NDCG@K and friends in TensorBoard while a learner trains."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.vec_env import VecEnv

from rlrec.agents.factory import save_model
from rlrec.data.split import Split
from rlrec.evaluation.baselines import GRIDS, make_baseline, select_on_split
from rlrec.evaluation.metrics import RELEVANCE_THRESHOLD, evaluate_scores
from rlrec.evaluation.protocol import (
    DEFAULT_EVAL_ENV_ID,
    check_env_on_train,
    make_eval_env,
    model_score_fn,
)
from rlrec.utils.io import save_json
from rlrec.utils.progress import status

__all__ = ["EVALUATIONS_FILE", "REFERENCE_BASELINES", "RankingEvalCallback"]

#: Written beside the best model: every evaluation (steps, training seconds, metrics) and the best.
EVALUATIONS_FILE = "evaluations.json"
#: Baselines whose NDCG@K on the same split is logged beside the learner's (``eval/<name>_ndcg@K``):
#: TensorBoard and ``rlrec plot`` then show at once whether the agent beats them.
REFERENCE_BASELINES = ("popularity", "ease")
#: EASE inverts an ``n_movies x n_movies`` Gram matrix: skipped as a reference above this size.
_EASE_MAX_MOVIES = 20_000


class RankingEvalCallback(BaseCallback):
    """Every ``eval_freq`` environment steps, rank the catalogue for the split's users and log it.

    Records ``eval/ndcg@K``, ``eval/precision@K``, ``eval/recall@K``, ``eval/hit_rate@K``,
    ``eval/mrr@K`` and ``eval/coverage@K`` through the model's SB3 logger, then dumps at
    ``num_timesteps`` (as SB3's ``EvalCallback`` does). Works with SB3 models and with our
    learners, which provide SB3's callback plumbing (``num_timesteps``, ``logger``, ``get_env()``).

    Steps are counted with ``num_timesteps`` (all envs together), like the checkpoints of
    ``rlrec train``, so the frequency does not depend on ``n_envs``.

    :param split: the split the model trains on (its env must hold ``split.train``).
    :param eval_freq: environment steps between evaluations; <= 0 evaluates only at the end.
    :param k: cut-off; default 10.
    :param env: env to read observations from; default: ``model.get_env()`` when it exposes
        ``observations(user_indices)``, else ``env_id`` + ``env_kwargs`` built on ``split.train``.
    :param env_id: see ``env``; default ``rlrec/MovieLens-v0``.
    :param env_kwargs: see ``env``.
    :param batch_size: users per scoring call; default 256.
    :param on_result: ``on_result(num_timesteps, metrics) -> bool`` after each evaluation; return
        False to stop training (Optuna pruning hooks in here).
    :param eval_at_end: evaluate once more when training ends, unless the last evaluation was
        at that very step; default True (the curve then ends at the final model).
    :param best_model_path: where to save the model each time ``ndcg@K`` beats every earlier
        evaluation (SB3's ``EvalCallback(best_model_save_path=...)``; e.g. ``run/best_model.zip``),
        with :data:`EVALUATIONS_FILE` beside it; default None (no saving).
    :param references: baselines fitted once on ``split.train`` and logged with every evaluation
        as ``eval/<name>_ndcg@K`` (constant lines to compare with); default
        :data:`REFERENCE_BASELINES` (EASE only up to 20,000 movies); a mapping
        ``{name: ndcg}`` gives the values directly, ``()`` logs none.
    :param verbose: 1 prints each result.
    :param users: rank only these user indices (the references too): a fixed sample keeps
        evaluations affordable on a large world; default every user with a validation movie.
    """

    def __init__(
        self,
        split: Split,
        eval_freq: int,
        k: int = 10,
        env: Any = None,
        env_id: str | None = None,
        env_kwargs: dict[str, Any] | None = None,
        batch_size: int = 256,
        on_result: Callable[[int, dict[str, float]], bool] | None = None,
        eval_at_end: bool = True,
        best_model_path: str | os.PathLike[str] | None = None,
        references: Sequence[str] | Mapping[str, float] | None = REFERENCE_BASELINES,
        verbose: int = 0,
        users: np.ndarray | None = None,
    ) -> None:
        super().__init__(verbose=verbose)
        if k < 1:
            raise ValueError(f"k must be >= 1, got {k}")
        self.split = split
        self.eval_freq = int(eval_freq)
        self.k = int(k)
        self.eval_env = env
        self.env_id = env_id
        self.env_kwargs = dict(env_kwargs or {})
        self.batch_size = int(batch_size)
        self.on_result = on_result
        self.eval_at_end = eval_at_end
        self.users = None if users is None else np.asarray(users, dtype=np.int64)
        #: ``(num_timesteps, metrics)`` of every evaluation, in order.
        self.evaluations: list[tuple[int, dict[str, float]]] = []
        #: Wall time spent evaluating (to subtract from a training time).
        self.eval_seconds = 0.0
        #: Wall time spent fitting the reference baselines before training (likewise).
        self.reference_seconds = 0.0
        #: Training seconds (evaluations excluded) at each evaluation, aligned with ``evaluations``.
        self.train_seconds: list[float] = []
        self.best_model_path = None if best_model_path is None else Path(best_model_path)
        #: ``(num_timesteps, metrics)`` of the best evaluation so far.
        self.best: tuple[int, dict[str, float]] | None = None
        self._started = time.perf_counter()
        if references is None:
            references = REFERENCE_BASELINES
        self.references = dict(references) if isinstance(references, Mapping) else None
        self._reference_names = tuple(references)
        self._last_eval = 0
        self._owns_env = False

    @property
    def last_result(self) -> dict[str, float] | None:
        return self.evaluations[-1][1] if self.evaluations else None

    def _init_callback(self) -> None:
        if self.eval_env is None:
            train_env = self.model.get_env() if self.env_id is None else None
            if train_env is not None and _has_observations(train_env):
                self.eval_env = train_env
            else:
                self.eval_env = make_eval_env(
                    self.split.train, self.env_id or DEFAULT_EVAL_ENV_ID, self.env_kwargs
                )
                self._owns_env = True
        check_env_on_train(self.eval_env, self.split)
        if self.references is None:
            started = time.perf_counter()
            names = ", ".join(self._reference_names)
            with status(f"fitting the reference baselines ({names}) on the validation part"):
                self.references = self._fit_references()
            self.reference_seconds = time.perf_counter() - started

    def _fit_references(self) -> dict[str, float]:
        values = {}
        for name in self._reference_names:
            if name in GRIDS:
                if self.split.train.n_movies > _EASE_MAX_MOVIES:
                    continue
                # This split is the validation split: the grid's best on it is the level to reach.
                values[name] = select_on_split(name, self.split, k=self.k).score
            else:
                baseline = make_baseline(name).fit(self.split.train)
                metrics = evaluate_scores(baseline.score, self.split, k=self.k, users=self.users)
                values[name] = float(metrics[f"ndcg@{self.k}"])
        return values

    def _on_training_start(self) -> None:
        self._last_eval = self.num_timesteps
        self._started = time.perf_counter()
        self.eval_seconds = 0.0

    def evaluate(self) -> dict[str, float]:
        """Evaluate the current model now, log the result and remember it."""
        started = time.perf_counter()
        metrics = evaluate_scores(
            model_score_fn(self.model, self.eval_env),
            self.split,
            k=self.k,
            batch_size=self.batch_size,
            threshold=RELEVANCE_THRESHOLD,
            users=self.users,
        )
        for key, value in metrics.items():
            if key != "n_users":
                self.logger.record(f"eval/{key}", float(value))
        for name, value in (self.references or {}).items():
            self.logger.record(f"eval/{name}_ndcg@{self.k}", value)
        self.logger.record("time/total_timesteps", self.num_timesteps, exclude="tensorboard")
        self.logger.dump(self.num_timesteps)
        self.evaluations.append((self.num_timesteps, metrics))
        self.train_seconds.append(round(started - self._started - self.eval_seconds, 3))
        key = f"ndcg@{self.k}"
        if self.best is None or metrics[key] > self.best[1][key]:
            self.best = (self.num_timesteps, metrics)
            if self.best_model_path is not None:
                save_model(self.model, self.best_model_path)
        if self.best_model_path is not None:
            self._save_evaluations()
        self.eval_seconds += time.perf_counter() - started
        self._last_eval = self.num_timesteps
        if self.verbose >= 1:
            shown = ", ".join(f"{key}={value:.4f}" for key, value in metrics.items() if key != "n_users")
            print(f"eval at {self.num_timesteps} steps: {shown}")
        return metrics

    def _save_evaluations(self) -> None:
        assert self.best_model_path is not None and self.best is not None
        rows = [
            {"timesteps": steps, "train_seconds": seconds, **metrics}
            for (steps, metrics), seconds in zip(self.evaluations, self.train_seconds)
        ]
        best_steps, best_metrics = self.best
        save_json(
            self.best_model_path.parent / EVALUATIONS_FILE,
            {
                "metric": f"ndcg@{self.k}",
                "best_model": self.best_model_path.name,
                "best": {"timesteps": best_steps, **best_metrics},
                "evaluations": rows,
            },
        )

    def _report(self, metrics: dict[str, float]) -> bool:
        if self.on_result is None:
            return True
        return bool(self.on_result(self.num_timesteps, metrics))

    def _on_step(self) -> bool:
        if self.eval_freq > 0 and self.num_timesteps - self._last_eval >= self.eval_freq:
            return self._report(self.evaluate())
        return True

    def _on_training_end(self) -> None:
        self.num_timesteps = self.model.num_timesteps
        done = bool(self.evaluations) and self.evaluations[-1][0] == self.num_timesteps
        if self.eval_at_end and not done:
            self._report(self.evaluate())
        if self._owns_env:
            self.eval_env.close()
            self.eval_env = None
            self._owns_env = False


def _has_observations(env: Any) -> bool:
    if isinstance(env, VecEnv):
        try:
            return callable(env.get_attr("observations", indices=[0])[0])
        except AttributeError:
            return False
    return callable(getattr(getattr(env, "unwrapped", env), "observations", None))
