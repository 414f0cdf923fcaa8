"""Hyperparameter search with Optuna: ``rlrec tune`` and ``rlrec train --from-trial``.

One study maximises held-out NDCG@10. Every worker that opens the same storage URL and study
name joins the same study, so scaling out is "start more workers": on one machine the default
SQLite file is enough, across machines point every worker at one PostgreSQL database
(``--storage postgresql://user:password@host:5432/db``).

Choices, with their reasons:

* Storage: Optuna's RDB storage behind a SQLAlchemy URL, SQLite file ``rlrec-tune.db`` in the
  working directory by default. One kind of storage everywhere (SQLite locally, PostgreSQL or
  MySQL to scale out) means one code path and one ``--storage`` flag for ``tune`` and
  ``train --from-trial``.
* Sampler: TPE, re-seeded for every trial from ``(seed, trial.number)``. Trial numbers are handed
  out by the storage, unique within a study, so two workers started with the same ``--seed``
  never propose the same parameters, while a single worker stays reproducible. TPE's
  ``constant_liar`` keeps parallel workers away from the points running trials already explore.
* Pruning: ``MedianPruner`` on the intermediate evaluations (RL Baselines3 Zoo's setting:
  ``n_startup_trials=5``, ``n_warmup_steps = n_evaluations // 3``).
* Held-out data: the study never sees the test ratings. The per-user temporal split of
  ``--data`` gives (train, test); a second temporal split of train gives (fit, validation);
  trials learn on fit and are scored on validation. ``rlrec train --from-trial`` then retrains
  the winner on train and ``rlrec evaluate`` scores it on test, once.
"""

from __future__ import annotations

import math
import os
import random
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import optuna
from optuna.distributions import BaseDistribution
from optuna.samplers import BaseSampler, TPESampler
from optuna.trial import FrozenTrial, TrialState

from rlrec.data.dataset import RatingsDataset
from rlrec.utils.io import jsonable

if TYPE_CHECKING:
    from optuna.storages import BaseStorage

    from rlrec.evaluation.split import Split

__all__ = [
    "DEFAULT_N_EVALUATIONS",
    "DEFAULT_STORAGE",
    "METRIC",
    "SEARCH_SPACES",
    "PruningReporter",
    "TrialRecord",
    "TrialSeededSampler",
    "TuneResult",
    "create_study",
    "default_study_name",
    "holdout_splits",
    "hyperparams_from_trial",
    "load_trial",
    "merge_trial_params",
    "normalize_storage_url",
    "open_storage",
    "parse_trial_ref",
    "policy_kwargs_string",
    "redact_url",
    "suggest_hyperparams",
    "summarize",
    "trial_seed",
    "tune",
    "worker_id",
]

#: Default storage: a SQLite file in the working directory, shared by the workers of one machine.
DEFAULT_STORAGE = "sqlite:///rlrec-tune.db"
#: Metric the study maximises (key of the evaluation callback's metrics).
METRIC = "ndcg@10"
#: Intermediate evaluations per trial, i.e. pruning points (RL Baselines3 Zoo uses 2 to 20).
DEFAULT_N_EVALUATIONS = 4
#: TPE's random start and the pruner's grace period, in trials (RL Baselines3 Zoo's value).
N_STARTUP_TRIALS = 5
#: Attempts at opening a fresh RDB storage: workers racing to create Optuna's tables collide.
_STORAGE_ATTEMPTS = 5


# ----------------------------------------------------------------------------- storage
def redact_url(url: str) -> str:
    """``url`` with its password replaced by ``***``, for error messages and logs."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        return url
    credentials, at, host = rest.rpartition("@")
    if not at or ":" not in credentials:
        return url
    user = credentials.split(":", 1)[0]
    return f"{scheme}://{user}:***@{host}"


def _importable(module: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(module) is not None


def normalize_storage_url(url: str | None) -> str:
    """A storage URL SQLAlchemy accepts; ``None`` gives :data:`DEFAULT_STORAGE`.

    ``postgres://`` (Heroku's spelling) becomes ``postgresql://``, and a bare ``postgresql://``
    names the psycopg2 driver when psycopg 3 (SQLAlchemy 2.1's default driver) is missing but
    psycopg2 is there (``pip install 'rlrec[postgres]'`` installs psycopg2).

    :raises ValueError: not a ``scheme://...`` URL.
    """
    if url is None:
        return DEFAULT_STORAGE
    url = url.strip()
    scheme, sep, rest = url.partition("://")
    if not sep or not scheme:
        raise ValueError(
            f"--storage: {url!r} is not a database URL (expected e.g. sqlite:///rlrec-tune.db or "
            "postgresql://user:password@host:5432/db)"
        )
    if scheme == "postgres":
        scheme = "postgresql"
    if scheme == "postgresql" and not _importable("psycopg") and _importable("psycopg2"):
        scheme = "postgresql+psycopg2"
    return f"{scheme}://{rest}"


def _sqlite_file(url: str) -> Path | None:
    """The file behind a ``sqlite:///path`` URL (``None`` for other databases or in-memory)."""
    scheme, _, rest = url.partition("://")
    if scheme.split("+")[0] != "sqlite":
        return None
    path = rest[1:] if rest.startswith("/") else rest
    path = path.split("?", 1)[0]
    return Path(path) if path and path != ":memory:" else None


def open_storage(url: str | None = None, *, create: bool = True) -> BaseStorage:
    """Optuna RDB storage for ``url`` (default :data:`DEFAULT_STORAGE`).

    :param url: SQLAlchemy URL: ``sqlite:///file.db``, ``postgresql://user:pw@host:port/db``,
        ``mysql+pymysql://...``.
    :param create: when ``False`` (reading a finished study), a SQLite file must already exist
        instead of being created empty.
    :raises ValueError: malformed URL, missing driver, unreachable database (one line, password
        hidden).
    :raises FileNotFoundError: ``create=False`` and the SQLite file does not exist.
    """
    import sqlalchemy.exc

    normalized = normalize_storage_url(url)
    shown = redact_url(normalized)
    sqlite_file = _sqlite_file(normalized)
    if sqlite_file is not None and not create and not sqlite_file.is_file():
        raise FileNotFoundError(f"--storage: no study database {sqlite_file} (run `rlrec tune` first)")
    # pool_pre_ping: long trials leave pooled PostgreSQL connections idle long enough for a server
    # or a proxy to drop them; SQLite's timeout lets workers of one machine wait for the lock.
    engine_kwargs: dict[str, Any] = (
        {"connect_args": {"timeout": 60}} if sqlite_file is not None else {"pool_pre_ping": True}
    )
    for attempt in range(_STORAGE_ATTEMPTS):
        try:
            return optuna.storages.RDBStorage(normalized, engine_kwargs=engine_kwargs)
        except (sqlalchemy.exc.IntegrityError, sqlalchemy.exc.ProgrammingError) as exc:
            # Two workers creating Optuna's tables in a fresh database at once: one loses the race
            # (optuna/optuna#1092); the tables exist after a short wait.
            if attempt == _STORAGE_ATTEMPTS - 1:
                raise ValueError(f"--storage: cannot open {shown}: {_first_line(exc)}") from exc
            time.sleep(0.2 + random.random() * 0.5)
        except sqlalchemy.exc.ArgumentError as exc:
            raise ValueError(f"--storage: cannot use {shown!r}: {_first_line(exc)}") from exc
        except sqlalchemy.exc.SQLAlchemyError as exc:
            raise ValueError(f"--storage: cannot open {shown}: {_first_line(exc)}") from exc
        except ImportError as exc:
            raise ValueError(
                f"--storage: no database driver for {shown} "
                "(PostgreSQL needs psycopg2: pip install 'rlrec[postgres]')"
            ) from exc
    raise AssertionError("unreachable")  # pragma: no cover


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def default_study_name(algo: str, data: str) -> str:
    """``<algo>-<data>``, with only the last component of a data path.

    Workers on different machines often hold the same data under different folders; naming the
    study after the folder's name (not its full path) lets them join one study by default.
    """
    source = data.rstrip("/\\")
    tail = source.replace("\\", "/").rsplit("/", 1)[-1] or source
    return f"{algo}-{tail}"


# ----------------------------------------------------------------------------- sampler
def trial_seed(seed: int, trial_number: int) -> int:
    """Seed of one trial's sampler: a hash of ``(seed, trial_number)``, a 32-bit integer."""
    return int(np.random.SeedSequence([int(seed) % 2**63, int(trial_number)]).generate_state(1)[0])


def _default_tpe(seed: int) -> BaseSampler:
    return TPESampler(seed=seed, n_startup_trials=N_STARTUP_TRIALS, constant_liar=True)


class TrialSeededSampler(BaseSampler):
    """A sampler re-created for every trial, seeded by :func:`trial_seed` of the trial's number.

    A sampler seeded once per worker would make two workers started with the same seed propose
    the same parameters in lockstep; seeding per worker needs a worker index nobody hands out.
    The trial number is unique in the study (the storage assigns it), reproducible in a serial
    run, and everything else TPE uses (the finished trials) comes from the storage.

    :param seed: the study's seed (``rlrec tune --seed``).
    :param factory: builds the per-trial sampler from its seed; default TPE with
        ``n_startup_trials=5`` (RL Zoo) and ``constant_liar=True``.
    """

    def __init__(self, seed: int, factory: Callable[[int], BaseSampler] | None = None) -> None:
        self.seed = int(seed)
        self._factory = factory or _default_tpe
        self._samplers: dict[int, BaseSampler] = {}

    def _sampler(self, trial: FrozenTrial) -> BaseSampler:
        sampler = self._samplers.get(trial.number)
        if sampler is None:
            sampler = self._samplers[trial.number] = self._factory(trial_seed(self.seed, trial.number))
        return sampler

    def infer_relative_search_space(
        self, study: optuna.Study, trial: FrozenTrial
    ) -> dict[str, BaseDistribution]:
        return self._sampler(trial).infer_relative_search_space(study, trial)

    def sample_relative(
        self, study: optuna.Study, trial: FrozenTrial, search_space: dict[str, BaseDistribution]
    ) -> dict[str, Any]:
        return self._sampler(trial).sample_relative(study, trial, search_space)

    def sample_independent(
        self, study: optuna.Study, trial: FrozenTrial, param_name: str, param_distribution: BaseDistribution
    ) -> Any:
        return self._sampler(trial).sample_independent(study, trial, param_name, param_distribution)

    def before_trial(self, study: optuna.Study, trial: FrozenTrial) -> None:
        self._sampler(trial).before_trial(study, trial)

    def after_trial(
        self, study: optuna.Study, trial: FrozenTrial, state: TrialState, values: Sequence[float] | None
    ) -> None:
        self._sampler(trial).after_trial(study, trial, state, values)
        self._samplers.pop(trial.number, None)

    def reseed_rng(self) -> None:
        """Nothing to do: every trial's sampler is seeded from its trial number."""


def create_study(
    algo: str,
    data: str,
    storage: str | None = None,
    study_name: str | None = None,
    seed: int = 0,
    n_evaluations: int = DEFAULT_N_EVALUATIONS,
) -> optuna.Study:
    """Create the study, or join it when another worker already did (``load_if_exists``).

    :param algo: learner name; recorded in the study so that workers of another learner fail
        loudly instead of mixing search spaces.
    :param data: the ``--data`` source; recorded likewise.
    :param storage: storage URL, default :data:`DEFAULT_STORAGE`.
    :param study_name: default :func:`default_study_name` of ``algo`` and ``data``.
    :param seed: seeds the sampler per trial (:class:`TrialSeededSampler`).
    :param n_evaluations: intermediate evaluations per trial; the pruner waits for a third.
    :raises ValueError: bad storage, or the study exists for another algo.
    """
    name = study_name or default_study_name(algo, data)
    study = optuna.create_study(
        storage=open_storage(storage),
        study_name=name,
        direction="maximize",
        load_if_exists=True,
        sampler=TrialSeededSampler(seed),
        pruner=optuna.pruners.MedianPruner(
            n_startup_trials=N_STARTUP_TRIALS, n_warmup_steps=max(1, n_evaluations // 3)
        ),
    )
    if study.direction != optuna.study.StudyDirection.MAXIMIZE:
        raise ValueError(
            f"--study-name: study {name!r} exists and minimises; rlrec studies maximise {METRIC}"
        )
    recorded = study.user_attrs.get("algo")
    if recorded is None:
        study.set_user_attr("algo", algo)
        study.set_user_attr("metric", METRIC)
    elif recorded != algo:
        raise ValueError(f"--study-name: study {name!r} tunes {recorded!r}, not {algo!r}; pick another name")
    return study


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
    from rlrec.agents.factory import parse_policy_kwargs

    current = parse_policy_kwargs(policy_kwargs) if policy_kwargs else {}  # also validates
    sources = _entry_sources(policy_kwargs) if policy_kwargs else {}
    for key, value in updates.items():
        if key == "net_arch" and isinstance(current.get("net_arch"), dict):
            value = {branch: list(value) for branch in current["net_arch"]}
        sources[key] = repr(value)
    return "dict(" + ", ".join(f"{key}={source}" for key, source in sources.items()) + ")"


def _entry_sources(policy_kwargs: str | Mapping[str, Any]) -> dict[str, str]:
    """``{key: source text of its value}`` of a ``dict(...)`` / ``{...}`` string (or a mapping)."""
    import ast

    if not isinstance(policy_kwargs, str):
        return {str(key): _source_of(value) for key, value in policy_kwargs.items()}
    text = policy_kwargs.strip()
    tree = ast.parse(text, mode="eval").body
    if isinstance(tree, ast.Call):
        pairs = [(str(kw.arg), kw.value) for kw in tree.keywords]
    else:
        assert isinstance(tree, ast.Dict)  # parse_policy_kwargs accepted it: dict(...) or {...}
        pairs = [(str(ast.literal_eval(k)), v) for k, v in zip(tree.keys, tree.values) if k is not None]
    return {key: ast.get_source_segment(text, node) or "" for key, node in pairs}


def _source_of(value: Any) -> str:
    if isinstance(value, type):
        import torch

        namespace = "th.optim" if issubclass(value, torch.optim.Optimizer) else "nn"
        return f"{namespace}.{value.__name__}"
    return repr(value)


def merge_trial_params(algo: str, base: Mapping[str, Any], sampled: Mapping[str, Any]) -> dict[str, Any]:
    """``base`` (the YAML section) with ``sampled`` on top, pseudo-keys put where ``algo`` wants them.

    SB3 models take the network inside ``policy_kwargs``; rlrec's own learners take ``net_arch``.
    """
    from rlrec.agents.factory import algo_spec

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
    """

    study_name: str
    storage: str
    n_trials_run: int
    counts: dict[str, int]
    best: TrialRecord | None


def summarize(study: optuna.Study, n_trials_run: int, storage: str | None) -> TuneResult:
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
    )


# ----------------------------------------------------------------------------- the search
def worker_id() -> str:
    """``host:pid`` of this process, stored on every trial it runs (who ran what, across machines)."""
    import os
    import socket

    return f"{socket.gethostname()}:{os.getpid()}"


def holdout_splits(dataset: RatingsDataset) -> tuple[Split, Split]:
    """``(split, inner)``: the protocol's train/test split and, inside its train part, fit/validation.

    Both are per-user temporal splits with the protocol's defaults, so validation plays for the
    study the role test plays for ``rlrec evaluate``, on data older than the test ratings.
    """
    from rlrec.evaluation.split import temporal_split, validation_split

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
) -> TuneResult:
    """Run ``n_trials`` trials of ``algo``'s search space in the shared study; return the study's state.

    Each trial samples hyperparameters (:data:`SEARCH_SPACES`) on top of the shipped YAML, trains on
    the fit part of :func:`holdout_splits` for ``timesteps`` steps, evaluates NDCG@``k`` on the
    validation part ``n_evaluations`` times (the last at the end) and reports each evaluation to
    the pruner. The trial's value is the last evaluation. Every trial stores ``algo``, ``data``,
    ``seed``, ``timesteps``, ``worker`` and the full ``hyperparams`` as user attributes.

    :param algo: one of ``rlrec.agents.factory.ALGOS``.
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
    :raises ValueError: bad arguments or storage (before any data is loaded).
    """
    from rlrec.agents.factory import DEFAULT_ENV_ID, load_hyperparams, split_hyperparams
    from rlrec.data import load_movielens

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
    study = create_study(algo, data_label, storage, study_name, seed, n_evaluations)
    dataset = load_movielens(data)
    _, inner = holdout_splits(dataset)
    if not study.user_attrs.get("holdout"):
        study.set_user_attr("holdout", "validation: last 20% of each user's train ratings (test untouched)")

    def objective(trial: optuna.Trial) -> float:
        hyperparams = suggest_hyperparams(trial, algo, base)
        record = {"algo": algo, "data": data_label, "seed": seed, "timesteps": budget, "worker": worker_id()}
        for key, value in {**record, "hyperparams": jsonable(hyperparams)}.items():
            trial.set_user_attr(key, value)
        return _run_trial(trial, algo, inner, hyperparams, int(budget), seed, n_evaluations, k, env_id)

    # FloatingPointError: a diverging learner fails its trial and the worker moves on to the next.
    study.optimize(objective, n_trials=n_trials, gc_after_trial=True, catch=(FloatingPointError,))
    return summarize(study, n_trials, storage)


def _run_trial(
    trial: optuna.Trial,
    algo: str,
    inner: Split,
    hyperparams: Mapping[str, Any],
    budget: int,
    seed: int,
    n_evaluations: int,
    k: int,
    env_id: str,
) -> float:
    import tempfile

    from rlrec.agents.training import train
    from rlrec.evaluation.callbacks import RankingEvalCallback

    metric = f"ndcg@{k}"
    reporter = PruningReporter(trial, metric)
    eval_freq = max(1, budget // n_evaluations)
    evaluation = RankingEvalCallback(inner, eval_freq=eval_freq, k=k, on_result=reporter)
    with tempfile.TemporaryDirectory(prefix="rlrec-trial-") as output:
        train(
            algo,
            inner.train,
            env_id=env_id,
            hyperparams=hyperparams,
            timesteps=budget,
            seed=seed,
            output=output,
            checkpoint_freq=None,
            callbacks=[evaluation],
        )
    if reporter.pruned:
        raise optuna.TrialPruned(f"{metric} = {reporter.last_value} at evaluation {reporter.n_evaluations}")
    if evaluation.last_result is None:  # pragma: no cover - the callback evaluates at the end
        raise RuntimeError("the evaluation callback never ran")
    return float(evaluation.last_result[metric])
