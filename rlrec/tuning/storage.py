"""Where a study lives and how it samples: storage URLs, the per-trial seeded TPE, the study."""

from __future__ import annotations

import importlib.util
import inspect
import random
import time
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import optuna
import sqlalchemy.exc
from optuna.distributions import BaseDistribution
from optuna.samplers import BaseSampler, TPESampler
from optuna.trial import FrozenTrial, TrialState

if TYPE_CHECKING:
    from optuna.storages import BaseStorage


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
#: (heartbeat interval, grace period) in seconds of a tuning worker's trials: a trial silent for
#: the grace period belongs to a killed worker (a trial's heaviest step, a checkpoint, takes ~1 s).
HEARTBEAT = (30, 120)


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


def open_storage(
    url: str | None = None, *, create: bool = True, heartbeat: tuple[int, int] | None = None
) -> BaseStorage:
    """Optuna RDB storage for ``url`` (default :data:`DEFAULT_STORAGE`).

    Creating Optuna's tables in a fresh database is retried: workers started together race for
    it, and the losers see an integrity error (PostgreSQL) or ``table ... already exists``
    (SQLite).

    :param url: SQLAlchemy URL: ``sqlite:///file.db``, ``postgresql://user:pw@host:port/db``,
        ``mysql+pymysql://...``.
    :param create: when ``False`` (reading a finished study), a SQLite file must already exist
        instead of being created empty.
    :raises ValueError: malformed URL, missing driver, unreachable database (one line, password
        hidden).
    :param heartbeat: ``(interval, grace)`` seconds: each running trial records a heartbeat
        every ``interval`` s; one silent for ``grace`` s (its worker was killed) is failed by the
        next worker and retried once with the same hyperparameters (Optuna's
        ``RetryFailedTrialCallback``). None: no heartbeat (reading a study).
    :raises FileNotFoundError: ``create=False`` and the SQLite file does not exist.
    """
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
    errors = sqlalchemy.exc
    schema_races = (errors.IntegrityError, errors.ProgrammingError, errors.OperationalError)
    liveness: dict[str, Any] = {}
    if heartbeat is not None:
        interval, grace = heartbeat
        liveness = {"heartbeat_interval": int(interval), "grace_period": int(grace), **_retry_stale_trials()}
    for attempt in range(_STORAGE_ATTEMPTS):
        try:
            with warnings.catch_warnings():
                # Heartbeats are "experimental" in Optuna since 2.8; the warning is not the user's.
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                return optuna.storages.RDBStorage(normalized, engine_kwargs=engine_kwargs, **liveness)
        except schema_races as exc:
            # Two workers creating Optuna's tables in a fresh database at once: one loses the race
            # (optuna/optuna#1092); the tables exist after a short wait. Any other operational
            # error (a server that is down) is still refused after the attempts.
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


def _retry_stale_trials() -> dict[str, Any]:
    """The storage argument that retries a stale trial once: Optuna 4.9 renamed it."""
    storages = optuna.storages
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        if "heartbeat_stale_trial_callback" in inspect.signature(storages.RDBStorage).parameters:
            return {"heartbeat_stale_trial_callback": storages.RetryHeartbeatStaleTrialCallback(max_retry=1)}
        return {"failed_trial_callback": storages.RetryFailedTrialCallback(max_retry=1)}


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
    metric: str = METRIC,
    heartbeat: tuple[int, int] | None = HEARTBEAT,
) -> optuna.Study:
    """Create the study, or join it when another worker already did (``load_if_exists``).

    :param algo: learner name; recorded in the study so that workers of another learner fail
        loudly instead of mixing search spaces.
    :param data: the ``--data`` source; recorded likewise.
    :param storage: storage URL, default :data:`DEFAULT_STORAGE`.
    :param study_name: default :func:`default_study_name` of ``algo`` and ``data``.
    :param seed: seeds the sampler per trial (:class:`TrialSeededSampler`).
    :param n_evaluations: intermediate evaluations per trial; the pruner waits for a third.
    :param metric: what the study maximises (``ndcg@<k>``); recorded, and a study that maximises
        another metric cannot be joined.
    :param heartbeat: see :func:`open_storage`; default :data:`HEARTBEAT`.
    :raises ValueError: bad storage, or the study exists for another algo or metric.
    """
    name = study_name or default_study_name(algo, data)
    study = optuna.create_study(
        storage=open_storage(storage, heartbeat=heartbeat),
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
            f"--study-name: study {name!r} exists and minimises; rlrec studies maximise {metric}"
        )
    recorded = study.user_attrs.get("algo")
    if recorded is None:
        study.set_user_attr("algo", algo)
        study.set_user_attr("metric", metric)
    elif recorded != algo:
        raise ValueError(f"--study-name: study {name!r} tunes {recorded!r}, not {algo!r}; pick another name")
    elif study.user_attrs.get("metric", METRIC) != metric:
        raise ValueError(
            f"--study-name: study {name!r} maximises {study.user_attrs['metric']}, not {metric}; pick another"
        )
    return study
