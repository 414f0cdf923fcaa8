"""The search: trials, pruning, results and ``tune`` itself."""

from __future__ import annotations

import math
import os
import socket
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState

from rlrec.agents.recipes import load_hyperparams, split_hyperparams
from rlrec.agents.registry import DEFAULT_ENV_ID
from rlrec.data import load_movielens
from rlrec.data.dataset import RatingsDataset
from rlrec.data.split import Split, temporal_split, validation_split
from rlrec.experiments.manager import RunSpec, run_experiment
from rlrec.tuning.spaces import SEARCH_SPACES, suggest_hyperparams
from rlrec.tuning.storage import (
    DEFAULT_N_EVALUATIONS,
    HEARTBEAT,
    METRIC,
    create_study,
    normalize_storage_url,
    open_storage,
    redact_url,
)
from rlrec.utils.io import jsonable
from rlrec.utils.progress import progress_shown
from rlrec.utils.signals import stop_requested, stop_signals


# ----------------------------------------------------------------------------- trials
@dataclass(frozen=True)
class TrialRecord:
    """What a finished trial stored: enough to retrain it anywhere.

    :param study_name: the study.
    :param number: the trial number (``Trial N`` in Optuna's log).
    :param state: Optuna's trial state name (``COMPLETE``, ``PRUNED``, ...).
    :param value: validation NDCG@10, ``None`` unless complete.
    :param algo: learner name.
    :param data: the ``--data`` source the trial used.
    :param seed: training seed.
    :param timesteps: training budget of the trial.
    :param hyperparams: the full hyperparameters the learner got (defaults merged with sampled).
    """

    study_name: str
    number: int
    state: str
    value: float | None
    algo: str
    data: str
    seed: int
    timesteps: int | None
    hyperparams: dict[str, Any] = field(default_factory=dict)


def parse_trial_ref(ref: str) -> tuple[str, int | None]:
    """Split ``STUDY:TRIAL`` into the study name and the trial number (``None`` for ``best``).

    The last ``:`` separates them, so study names may contain ``:`` (default names built from a
    synthetic spec do). ``STUDY`` alone means the best trial.

    :raises ValueError: empty study name or a trial that is neither a number nor ``best``.
    """
    study, sep, trial = ref.rpartition(":")
    if not sep:
        study, trial = ref, "best"
    if not study:
        raise ValueError(f"--from-trial: expected STUDY:TRIAL_NUMBER, got {ref!r}")
    trial = trial.strip()
    if trial.lower() == "best":
        return study, None
    if not trial.isdigit():
        raise ValueError(f"--from-trial: trial must be a number or 'best', got {trial!r} in {ref!r}")
    return study, int(trial)


def _record(study_name: str, trial: FrozenTrial) -> TrialRecord:
    attrs = trial.user_attrs
    if "algo" not in attrs or "hyperparams" not in attrs:
        raise ValueError(
            f"--from-trial: trial {trial.number} of study {study_name!r} holds no rlrec hyperparameters"
        )
    return TrialRecord(
        study_name=study_name,
        number=trial.number,
        state=trial.state.name,
        value=trial.value if trial.state == TrialState.COMPLETE else None,
        algo=str(attrs["algo"]),
        data=str(attrs.get("data", "")),
        seed=int(attrs.get("seed", 0)),
        timesteps=attrs.get("timesteps"),
        hyperparams=dict(attrs["hyperparams"]),
    )


def load_trial(study_ref: str, storage: str | None = None) -> TrialRecord:
    """The trial ``STUDY:TRIAL_NUMBER`` (or ``STUDY:best``) of ``storage``.

    :raises FileNotFoundError: default/SQLite storage file missing.
    :raises ValueError: bad storage, unknown study (the known ones are listed), unknown trial.
    """
    study_name, number = parse_trial_ref(study_ref)
    store = open_storage(storage, create=False)
    names = optuna.get_all_study_names(storage=store)
    if study_name not in names:
        known = ", ".join(sorted(names)[:10]) or "none"
        where = redact_url(normalize_storage_url(storage))
        raise ValueError(f"--from-trial: no study {study_name!r} in {where} (studies: {known})")
    study = optuna.load_study(study_name=study_name, storage=store)
    if number is None:
        if not study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
            raise ValueError(f"--from-trial: study {study_name!r} has no complete trial yet")
        return _record(study_name, study.best_trial)
    trials = study.get_trials(deepcopy=False)
    by_number = {trial.number: trial for trial in trials}
    if number not in by_number:
        span = f"trials 0..{len(trials) - 1}" if trials else "no trials"
        raise ValueError(f"--from-trial: study {study_name!r} has no trial {number} ({span})")
    return _record(study_name, by_number[number])


def hyperparams_from_trial(study_ref: str, storage: str | None = None) -> tuple[str, dict[str, Any]]:
    """``(algo, hyperparams)`` of the trial ``STUDY:TRIAL_NUMBER`` (or ``STUDY:best``).

    The hook of ``rlrec train --from-trial``: the hyperparameters are the full set the trial's
    learner received, so retraining needs no search space.

    :param study_ref: ``STUDY:TRIAL_NUMBER``; the number is the one Optuna prints (``Trial 3``).
    :param storage: storage URL, default :data:`DEFAULT_STORAGE`.
    """
    record = load_trial(study_ref, storage)
    return record.algo, dict(record.hyperparams)


# ----------------------------------------------------------------------------- pruning
class PruningReporter:
    """``on_result`` for the evaluation callback: report each evaluation, stop when pruned.

    The step reported is the evaluation index (1, 2, ...), not the timestep, so the pruner's
    warm-up counts evaluations whatever the learner's rollout length.

    :param trial: the running trial.
    :param metric: key of the metrics dict to report (default :data:`METRIC`).
    """

    def __init__(self, trial: optuna.Trial, metric: str = METRIC) -> None:
        self.trial = trial
        self.metric = metric
        self.n_evaluations = 0
        self.last_value: float | None = None
        self.pruned = False

    def __call__(self, step: int, metrics: dict[str, float]) -> bool:
        """Return ``False`` (stop training) when the pruner says so."""
        value = float(metrics[self.metric])
        self.n_evaluations += 1
        self.last_value = value
        if math.isnan(value):
            self.pruned = True
            return False
        self.trial.report(value, self.n_evaluations)
        if self.trial.should_prune():
            self.pruned = True
            return False
        return True


# ----------------------------------------------------------------------------- results
@dataclass(frozen=True)
class TuneResult:
    """Outcome of one worker's :func:`tune` call.

    :param study_name: the study joined.
    :param storage: the storage URL, password hidden.
    :param n_trials_run: trials this worker ran.
    :param counts: trials of the whole study per state name, all workers together.
    :param best: the study's best complete trial, ``None`` when none completed.
    :param stopped_by: the signal (SIGINT / SIGTERM) that stopped the worker, else None.
    """

    study_name: str
    storage: str
    n_trials_run: int
    counts: dict[str, int]
    best: TrialRecord | None
    stopped_by: int | None = None


def summarize(
    study: optuna.Study, n_trials_run: int, storage: str | None, stopped_by: int | None = None
) -> TuneResult:
    trials = study.get_trials(deepcopy=False)
    counts: dict[str, int] = {}
    for trial in trials:
        counts[trial.state.name] = counts.get(trial.state.name, 0) + 1
    complete = [trial for trial in trials if trial.state == TrialState.COMPLETE]
    best = _record(study.study_name, study.best_trial) if complete else None
    return TuneResult(
        study_name=study.study_name,
        storage=redact_url(normalize_storage_url(storage)),
        n_trials_run=n_trials_run,
        counts=counts,
        best=best,
        stopped_by=stopped_by,
    )


# ----------------------------------------------------------------------------- the search
def worker_id() -> str:
    """``host:pid`` of this process, stored on every trial it runs (who ran what, across machines)."""
    return f"{socket.gethostname()}:{os.getpid()}"


def holdout_splits(dataset: RatingsDataset) -> tuple[Split, Split]:
    """``(split, inner)``: the protocol's train/test split and, inside its train part, fit/validation.

    Both are per-user temporal splits with the protocol's defaults, so validation plays for the
    study the role test plays for ``rlrec evaluate``, on data older than the test ratings.
    """
    split = temporal_split(dataset)
    return split, validation_split(split.train)


def tune(
    algo: str,
    data: str | os.PathLike[str] | RatingsDataset = "synthetic",
    n_trials: int = 10,
    storage: str | None = None,
    study_name: str | None = None,
    timesteps: int | None = None,
    seed: int = 0,
    n_evaluations: int = DEFAULT_N_EVALUATIONS,
    k: int = 10,
    env_id: str | None = None,
    heartbeat: tuple[int, int] | None = HEARTBEAT,
) -> TuneResult:
    """Run ``n_trials`` trials of ``algo``'s search space in the shared study; return the study's state.

    Each trial samples hyperparameters (:data:`SEARCH_SPACES`) on top of the shipped YAML, trains on
    the fit part of :func:`holdout_splits` for ``timesteps`` steps, evaluates NDCG@``k`` on the
    validation part ``n_evaluations`` times (the last at the end) and reports each evaluation to
    the pruner. The trial's value is the last evaluation. Every trial stores ``algo``, ``data``,
    ``seed``, ``timesteps``, ``worker`` and the full ``hyperparams`` as user attributes.

    :param algo: one of ``rlrec.agents.registry.ALGOS``.
    :param data: anything ``load_movielens`` takes; every worker must see the same ratings.
    :param n_trials: trials THIS worker runs; the study's total is the sum over workers.
    :param storage: storage URL (default :data:`DEFAULT_STORAGE`, a SQLite file in the cwd).
    :param study_name: default :func:`default_study_name` of ``algo`` and ``data``.
    :param timesteps: training budget per trial; default the YAML's ``n_timesteps``.
    :param seed: training seed of every trial (all trials see the same env and initial weights'
        seed, so they differ by their hyperparameters only) and the sampler's seed.
    :param n_evaluations: evaluations per trial (pruning points); default 4.
    :param k: the NDCG cut-off; default 10.
    :param env_id: Gymnasium id; default ``rlrec/MovieLens-v0``.
    :param heartbeat: ``(interval, grace)`` seconds of the trials' heartbeat: a trial of a killed
        worker is failed and retried by the next worker (:func:`rlrec.tuning.storage.open_storage`).
    :raises ValueError: bad arguments or storage (before any data is loaded).

    SIGINT / SIGTERM fail the trial in flight (never COMPLETE with a value of a cut training) and
    end the worker; the result's ``stopped_by`` says which signal.
    """
    env_id = env_id or DEFAULT_ENV_ID
    if n_trials < 1:
        raise ValueError(f"--n-trials: must be >= 1, got {n_trials}")
    if timesteps is not None and timesteps < 1:
        raise ValueError(f"--timesteps: must be >= 1, got {timesteps}")
    if n_evaluations < 1:
        raise ValueError(f"n_evaluations: must be >= 1, got {n_evaluations}")
    if algo not in SEARCH_SPACES:
        raise ValueError(f"--algo: no search space for {algo!r} (known: {', '.join(SEARCH_SPACES)})")
    base = load_hyperparams(algo, env_id)
    budget = timesteps if timesteps is not None else split_hyperparams(algo, base).n_timesteps
    if budget is None:
        raise ValueError(f"--timesteps: required, the {algo} YAML gives no n_timesteps for {env_id}")
    data_label = data.name if isinstance(data, RatingsDataset) else os.fspath(data)
    study = create_study(
        algo, data_label, storage, study_name, seed, n_evaluations, metric=f"ndcg@{k}", heartbeat=heartbeat
    )
    dataset = load_movielens(data)
    split, _ = holdout_splits(dataset)
    if not study.user_attrs.get("holdout"):
        study.set_user_attr("holdout", "validation: last 20% of each user's train ratings (test untouched)")

    started = 0

    def objective(trial: optuna.Trial) -> float:
        nonlocal started
        started += 1
        hyperparams = suggest_hyperparams(trial, algo, base)
        record = {"algo": algo, "data": data_label, "seed": seed, "timesteps": budget, "worker": worker_id()}
        for key, value in {**record, "hyperparams": jsonable(hyperparams)}.items():
            trial.set_user_attr(key, value)
        return _run_trial(trial, algo, split.train, hyperparams, int(budget), seed, n_evaluations, k, env_id)

    def stop_when_asked(study: optuna.Study, trial: FrozenTrial) -> None:
        if stop_requested() is not None:
            study.stop()

    # SIGINT / SIGTERM end the trial in flight (FAIL, see _run_trial) and the worker, like a train.
    # FloatingPointError: a diverging learner fails its trial and the worker moves on to the next.
    with stop_signals():
        study.optimize(
            objective, n_trials=n_trials, gc_after_trial=True, catch=(FloatingPointError,),
            callbacks=[stop_when_asked], show_progress_bar=progress_shown(),
        )  # fmt: skip
        stopped_by = stop_requested()
    return summarize(study, started, storage, stopped_by)


def _run_trial(
    trial: optuna.Trial,
    algo: str,
    train_part: RatingsDataset,
    hyperparams: Mapping[str, Any],
    budget: int,
    seed: int,
    n_evaluations: int,
    k: int,
    env_id: str,
) -> float:
    metric = f"ndcg@{k}"
    reporter = PruningReporter(trial, metric)
    with tempfile.TemporaryDirectory(prefix="rlrec-trial-") as output:
        # The run carves the fit / validation split of holdout_splits from the train part.
        spec = RunSpec(
            algo,
            data=train_part,
            env_id=env_id,
            hyperparams=hyperparams,
            timesteps=budget,
            seed=seed,
            holdout=False,
            n_evaluations=n_evaluations,
            keep_best=False,
            on_result=reporter,
            k=k,
            output=output,
            checkpoint_freq=None,
        )
        experiment = run_experiment(spec)
    if experiment.train.interrupted:
        # A value of a cut-short training must never count: Optuna stores a NaN value as FAIL
        # (in one log line, where a raised exception would print its traceback).
        return math.nan
    if reporter.pruned:
        raise optuna.TrialPruned(f"{metric} = {reporter.last_value} at evaluation {reporter.n_evaluations}")
    last = experiment.validation.last_result if experiment.validation is not None else None
    if last is None:  # pragma: no cover - the callback evaluates at the end
        raise RuntimeError("the evaluation callback never ran")
    return float(last[metric])
