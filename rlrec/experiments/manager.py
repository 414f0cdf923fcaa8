"""One training run, as every entry point asks for it: a :class:`RunSpec` and :func:`run_experiment`.

``rlrec train``, ``rlrec benchmark`` and ``rlrec tune`` each build a :class:`RunSpec` and call
:func:`run_experiment`, the way RL Baselines3 Zoo's scripts call its ``ExperimentManager``. It
decides, once for all of them: which ratings the learner sees (the train part of the per-user
temporal split), the validation part carved from them and how often it is ranked, where the best
model goes, and what a resumed run must keep. :func:`rlrec.experiments.training.train` then does
the run itself (env, model, checkpoints, signals, run record).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from stable_baselines3.common.callbacks import BaseCallback

from rlrec.agents.recipes import load_hyperparams, split_hyperparams
from rlrec.agents.registry import DEFAULT_ENV_ID, algo_spec
from rlrec.agents.runs import RUN_FILE, data_label, default_output, run_dir_of
from rlrec.data import load_movielens
from rlrec.data.dataset import RatingsDataset
from rlrec.data.split import (
    DEFAULT_MIN_RATINGS,
    DEFAULT_TEST_FRACTION,
    Split,
    temporal_split,
    validation_split,
)
from rlrec.envs import SESSION_ID, check_env_kwargs
from rlrec.evaluation.callbacks import RankingEvalCallback
from rlrec.evaluation.metrics import relevant_users
from rlrec.experiments.training import DEFAULT_CHECKPOINT_FREQ, TrainResult, resumable_run, train
from rlrec.utils.progress import status

__all__ = ["DEFAULT_EVAL_FREQ", "ExperimentResult", "RunSpec", "run_experiment", "training_data"]

#: Steps between validation rankings when a run names neither ``eval_freq`` nor ``n_evaluations``,
#: per env id: the session recipes peak and then slip, so their runs keep the best model by
#: default; other envs evaluate only when asked.
DEFAULT_EVAL_FREQ = {SESSION_ID: 100_000}


@dataclass(frozen=True)
class RunSpec:
    """What one training run is: every entry point fills one in, :func:`run_experiment` carries it out.

    :param algo: one of ``rlrec.agents.registry.ALGOS``.
    :param data: anything ``load_movielens`` takes (a ``RatingsDataset`` too). ``None`` on
        ``resume``: the run's own.
    :param env_id: Gymnasium id (default ``rlrec/MovieLens-v0``; on ``resume``, the run's).
    :param env_kwargs: env arguments on top of the YAML's ``env_kwargs``.
    :param hyperparams: values replacing the YAML's.
    :param timesteps: training budget (default the YAML's ``n_timesteps``; on resume the total).
    :param seed: seeds the learner and the env (default 0; on ``resume``, the run's).
    :param holdout: train on the train part of the per-user temporal split of ``data`` (default),
        or on every rating (``False``; also for data that is already a train part).
    :param eval_freq: steps between validation rankings; 0 turns validation off. Default: every
        ``budget // n_evaluations`` steps when ``n_evaluations`` is given, else
        :data:`DEFAULT_EVAL_FREQ` of the env.
    :param n_evaluations: how many validation rankings over the budget (the curve's points).
    :param keep_best: save the best-ranked model as ``best_<model file>`` in the run folder.
    :param references: baselines drawn beside the validation curve (see ``RankingEvalCallback``).
    :param on_result: called after every validation ranking; returning False stops training.
    :param k: the ranking cut-off.
    :param output: parent folder of the run folder (default ``runs/<env name>``).
    :param tensorboard_log: folder of TensorBoard runs (default none).
    :param checkpoint_freq: steps between checkpoints; ``None``: only at the end and on a stop.
    :param resume: continue the run in ``<output>/<algo>`` as recorded.
    :param force: replace a run already there.
    :param progress: show a progress bar.
    :param callbacks: further SB3 callbacks, after the validation ranking.
    :param run_info: further facts for ``run.json`` (they win over the ones the run derives).
    :param eval_users: rank a fixed random sample (drawn with ``seed``) of this many validation
        users at each evaluation instead of all of them (a large world); default all.
    :param device: where the learner's networks live (``"auto"``, ``"cpu"``, ``"cuda"``; the
        ``device`` hyperparameter, recorded in ``run.json``); a torch-backend env
        (``env_kwargs backend=torch``) without a ``device`` of its own runs there too.
    """

    algo: str
    data: Any = "synthetic"
    env_id: str | None = None
    env_kwargs: Mapping[str, Any] = field(default_factory=dict)
    hyperparams: Mapping[str, Any] = field(default_factory=dict)
    timesteps: int | None = None
    seed: int | None = None
    holdout: bool | None = None
    eval_freq: int | None = None
    n_evaluations: int | None = None
    keep_best: bool = True
    references: Sequence[str] | Mapping[str, float] | None = None
    on_result: Callable[[int, dict[str, float]], bool] | None = None
    k: int = 10
    output: str | os.PathLike[str] | None = None
    tensorboard_log: str | os.PathLike[str] | None = None
    checkpoint_freq: int | None = DEFAULT_CHECKPOINT_FREQ
    resume: bool = False
    force: bool = False
    progress: bool = False
    callbacks: Sequence[BaseCallback] = ()
    run_info: Mapping[str, Any] = field(default_factory=dict)
    device: str | None = None
    eval_users: int | None = None

    @property
    def run_dir(self) -> Path:
        """``<output>/<algo>``: the run's folder."""
        output = self.output if self.output is not None else default_output(self.env_id or DEFAULT_ENV_ID)
        return run_dir_of(output, self.algo)

    def resolved_eval_freq(self, env_id: str, budget: int | None) -> int:
        """The one rule for how often validation is ranked (see ``eval_freq``)."""
        if self.eval_freq is not None:
            freq = int(self.eval_freq)
        elif self.n_evaluations is not None and budget is not None:
            freq = max(1, int(budget) // int(self.n_evaluations))
        else:
            freq = DEFAULT_EVAL_FREQ.get(env_id, 0)
        if freq < 0:
            raise ValueError(f"--eval-freq: must be >= 0 (0: no evaluation), got {freq}")
        return freq


@dataclass
class ExperimentResult:
    """:func:`run_experiment`'s answer: the training run and, when validation ran, its ranking.

    :param train: what :func:`rlrec.experiments.training.train` returned.
    :param validation: the validation ranking callback (its ``evaluations``, ``best``), or None.
    """

    train: TrainResult
    validation: RankingEvalCallback | None

    @property
    def best_model_path(self) -> Path | None:
        """The best validation model's file, when one was kept."""
        path = None if self.validation is None else self.validation.best_model_path
        return path if path is not None and path.is_file() else None


def training_data(
    source: Any, holdout: bool = True, recorded: Mapping[str, Any] | None = None
) -> tuple[Any, dict[str, Any]]:
    """What a run trains on: the train part of the temporal split of ``source`` (or all of it).

    So that ``rlrec evaluate --model`` later ranks ratings the model never saw. Returns
    ``(data, run_info)``; ``run_info`` is what ``run.json`` records so that evaluation (and a
    resume) rebuild the same split.

    :param source: anything ``load_movielens`` takes.
    :param holdout: ``False`` trains on every rating (then the run cannot be evaluated honestly).
    :param recorded: a run's recorded ``run_info`` (on resume): its source and split settings.
    """
    settings: Mapping[str, Any] = {}
    if recorded:
        source = recorded.get("data_source", source)
        settings = recorded.get("split") or {}
        holdout = bool(settings)
    label = data_label(source) if not isinstance(source, RatingsDataset) else source.name
    if not holdout:
        return source, {"data_source": label}
    split = temporal_split(
        load_movielens(source),
        float(settings.get("test_fraction", DEFAULT_TEST_FRACTION)),
        int(settings.get("min_ratings", DEFAULT_MIN_RATINGS)),
    )
    return split.train, {"split": split.describe(), "data_source": label}


def resume_conflicts(config: Mapping[str, Any], spec: RunSpec) -> list[str]:
    """What in ``spec`` contradicts the recorded run (as the flags that say it), for ``--resume``."""
    run_info = config.get("run_info") or {}
    recorded_holdout = bool(run_info.get("split"))
    checks: list[tuple[str, Any, Any, bool]] = []
    if spec.data is not None:
        mine = run_info.get("data_source", config.get("data"))
        same = data_label(spec.data) == data_label(mine) or str(spec.data) == str(mine)
        checks.append(("data", spec.data, mine, same))
    if spec.holdout is not None:
        split = "temporal" if spec.holdout else "none"
        checks.append(
            ("split", split, "temporal" if recorded_holdout else "none", spec.holdout == recorded_holdout)
        )
    if spec.env_id is not None:
        checks.append(("env", spec.env_id, config.get("env_id"), spec.env_id == config.get("env_id")))
    if spec.seed is not None:
        checks.append(("seed", spec.seed, config.get("seed"), spec.seed == config.get("seed")))
    if spec.eval_freq is not None:
        mine = int(run_info.get("eval_freq") or 0)
        checks.append(("eval_freq", spec.eval_freq, mine, int(spec.eval_freq) == mine))
    if spec.tensorboard_log is not None:
        mine = config.get("tensorboard_log")
        same = mine is not None and Path(spec.tensorboard_log).resolve() == Path(str(mine))
        checks.append(("tensorboard_log", spec.tensorboard_log, mine, same))
    return [
        f"--{name.replace('_', '-')} {value} (the run's: {mine})"
        for name, value, mine, same in checks
        if not same
    ]


def _recorded_run(spec: RunSpec) -> dict[str, Any]:
    """``--resume``: the run's record, after refusing anything in ``spec`` that contradicts it."""
    config = resumable_run(spec.run_dir, spec.algo, spec.force)
    conflicts = resume_conflicts(config, spec)
    if conflicts:
        run_file = spec.run_dir / RUN_FILE
        raise ValueError(
            f"--resume: {'; '.join(conflicts)} contradicts {run_file}; omit it to continue as recorded"
        )
    return config


def _user_sample(split: Split, size: int | None, seed: int | None) -> np.ndarray | None:
    """``size`` users drawn (with ``seed``) among those the split can judge; None: all of them."""
    if size is None:
        return None
    if int(size) < 1:
        raise ValueError(f"eval_users: must be >= 1, got {size}")
    judged = relevant_users(split)
    if int(size) >= len(judged):
        return None
    rng = np.random.default_rng(0 if seed is None else seed)
    return np.sort(rng.choice(judged, int(size), replace=False))


def run_experiment(spec: RunSpec) -> ExperimentResult:
    """Carry out ``spec``: pick the data, carve validation, train, rank and keep the best model.

    With validation on, the learner trains on the fit part of :func:`rlrec.data.split.validation_split`
    of its data, the validation part is ranked every ``eval_freq`` steps (``eval/ndcg@K`` in
    TensorBoard, ``evaluations.json`` and the best model in the run folder), and the run records
    both splits, so evaluation and a resume rebuild them. The test part is never read here.

    :raises ValueError: a ``spec`` that contradicts itself or, on ``resume``, the recorded run.
    """
    recorded = _recorded_run(spec) if spec.resume else None
    run_info = dict((recorded or {}).get("run_info") or {})
    env_id = recorded["env_id"] if recorded is not None else (spec.env_id or DEFAULT_ENV_ID)
    if recorded is not None:
        data, derived = training_data(None, recorded=run_info) if run_info else (None, {})
        eval_freq = int(run_info.get("eval_freq") or 0)
        eval_env_kwargs = dict(recorded["env_kwargs"])
    else:
        check_env_kwargs(env_id, spec.env_kwargs)  # before any data is loaded
        with status(f"loading {spec.data}"):
            data, derived = training_data(spec.data, holdout=spec.holdout is not False)
        hyperparams = load_hyperparams(spec.algo, env_id, spec.hyperparams)
        recipe = split_hyperparams(spec.algo, hyperparams)
        budget = spec.timesteps if spec.timesteps is not None else recipe.n_timesteps
        eval_freq = spec.resolved_eval_freq(env_id, budget)
        # Rank in the env the learner trains in: the recipe's env_kwargs under the run's own.
        eval_env_kwargs = {**recipe.env_kwargs, **spec.env_kwargs}
        run_info = {**derived, **spec.run_info}
    hyperparams, env_kwargs = dict(spec.hyperparams), dict(spec.env_kwargs)
    if spec.device is not None:
        hyperparams["device"] = spec.device
        if env_kwargs.get("backend") == "torch" and "device" not in env_kwargs:
            env_kwargs["device"] = spec.device
    validation_callback = None
    if eval_freq > 0 and data is not None:
        validation = validation_split(load_movielens(data))
        best = spec.run_dir / f"best_{algo_spec(spec.algo).model_file}" if spec.keep_best else None
        validation_callback = RankingEvalCallback(
            validation,
            eval_freq,
            k=spec.k,
            env_id=env_id,
            env_kwargs=eval_env_kwargs,
            on_result=spec.on_result,
            best_model_path=best,
            references=spec.references,
            users=_user_sample(
                validation, spec.eval_users if recorded is None else run_info.get("eval_users"), spec.seed
            ),
        )
        data = validation.train
        if recorded is None:
            run_info = {**run_info, "validation": validation.describe(), "eval_freq": eval_freq}
            if spec.eval_users is not None:
                run_info["eval_users"] = int(spec.eval_users)
    result = train(
        spec.algo,
        data=data,
        env_id=env_id,
        env_kwargs=env_kwargs,
        hyperparams=hyperparams,
        timesteps=spec.timesteps,
        seed=0 if spec.seed is None else spec.seed,
        tensorboard_log=spec.tensorboard_log,
        output=spec.run_dir.parent,
        progress=spec.progress,
        resume=spec.resume,
        checkpoint_freq=spec.checkpoint_freq,
        callbacks=[*([validation_callback] if validation_callback is not None else []), *spec.callbacks],
        run_info=None if spec.resume else run_info,
        force=spec.force,
    )
    return ExperimentResult(train=result, validation=validation_callback)
