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

from rlrec.tuning.spaces import (
    SEARCH_SPACES,
    merge_trial_params,
    policy_kwargs_string,
    suggest_hyperparams,
)
from rlrec.tuning.storage import (
    DEFAULT_N_EVALUATIONS,
    DEFAULT_STORAGE,
    METRIC,
    TrialSeededSampler,
    create_study,
    default_study_name,
    normalize_storage_url,
    open_storage,
    redact_url,
    trial_seed,
)
from rlrec.tuning.study import (
    PruningReporter,
    TrialRecord,
    TuneResult,
    holdout_splits,
    hyperparams_from_trial,
    load_trial,
    parse_trial_ref,
    summarize,
    tune,
    worker_id,
)

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
