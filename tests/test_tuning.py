"""Optuna plumbing of ``rlrec.tuning``: storage URLs, study names, per-trial seeding, pruning, trial records.

These tests drive Optuna with cheap objectives; the learners are exercised in test_tuning_objective.py
and tests/cli/test_tune*.py.
"""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Any

import optuna
import pytest
from optuna.samplers import TPESampler
from optuna.trial import TrialState

from rlrec import tuning
from rlrec.tuning import (
    DEFAULT_STORAGE,
    PruningReporter,
    TrialSeededSampler,
    create_study,
    default_study_name,
    hyperparams_from_trial,
    load_trial,
    normalize_storage_url,
    open_storage,
    parse_trial_ref,
    redact_url,
    trial_seed,
)
from rlrec.tuning import storage as tuning_storage

optuna.logging.set_verbosity(optuna.logging.WARNING)


def _sqlite(tmp_path: Path, name: str = "tune.db") -> str:
    return f"sqlite:///{tmp_path / name}"


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# --------------------------------------------------------------------------- storage URLs
def test_default_storage_is_sqlite_file_in_cwd() -> None:
    assert normalize_storage_url(None) == DEFAULT_STORAGE == "sqlite:///rlrec-tune.db"


@pytest.mark.parametrize("url", ["postgres://u:p@h:5432/db", "postgresql://u:p@h:5432/db"])
def test_postgres_urls_get_an_installed_driver(url: str) -> None:
    import importlib.util

    normalized = normalize_storage_url(url)
    assert normalized.endswith("://u:p@h:5432/db")
    scheme = normalized.split("://")[0]
    if importlib.util.find_spec("psycopg") is None and importlib.util.find_spec("psycopg2") is not None:
        assert scheme == "postgresql+psycopg2"
    else:
        assert scheme.startswith("postgresql")


def test_explicit_driver_and_sqlite_urls_are_kept() -> None:
    assert normalize_storage_url("postgresql+pg8000://u@h/db") == "postgresql+pg8000://u@h/db"
    assert normalize_storage_url(" sqlite:////tmp/x.db ") == "sqlite:////tmp/x.db"


def test_not_a_url_is_a_one_line_error() -> None:
    with pytest.raises(ValueError, match=r"^--storage: 'rlrec-tune\.db' is not a database URL") as info:
        normalize_storage_url("rlrec-tune.db")
    assert "\n" not in str(info.value)


def test_redact_url_hides_only_the_password() -> None:
    assert (
        redact_url("postgresql://alice:s3cr:et@db.example:5432/optuna")
        == "postgresql://alice:***@db.example:5432/optuna"
    )
    assert redact_url("postgresql://alice@db/optuna") == "postgresql://alice@db/optuna"
    assert redact_url("sqlite:///x.db") == "sqlite:///x.db"


def test_unknown_dialect_is_a_one_line_error() -> None:
    with pytest.raises(ValueError, match=r"^--storage: cannot use 'nosuchdb://x'") as info:
        open_storage("nosuchdb://x")
    assert "\n" not in str(info.value)


def test_unreachable_postgres_is_a_one_line_error_without_password() -> None:
    url = f"postgresql://alice:hunter2@127.0.0.1:{_closed_port()}/optuna"
    with pytest.raises(
        ValueError, match=r"^--storage: cannot open postgresql\+?\w*://alice:\*\*\*@127\.0\.0\.1"
    ) as info:
        open_storage(url)
    assert "hunter2" not in str(info.value)
    assert "\n" not in str(info.value)


def test_reading_a_missing_sqlite_file_does_not_create_it(tmp_path: Path) -> None:
    url = _sqlite(tmp_path, "absent.db")
    with pytest.raises(FileNotFoundError, match=r"absent.db"):
        open_storage(url, create=False)
    assert not (tmp_path / "absent.db").exists()


def test_sqlite_in_a_missing_folder_is_a_one_line_error(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"^--storage: cannot open sqlite"):
        open_storage(f"sqlite:///{tmp_path}/no/such/dir/x.db")


# --------------------------------------------------------------------------- names and refs
@pytest.mark.parametrize(
    ("data", "expected"),
    [
        ("synthetic", "dqn-synthetic"),
        ("/srv/data/ml-25m/", "dqn-ml-25m"),
        ("../shared/data/ml-latest-small", "dqn-ml-latest-small"),
        ("synthetic:n_users=60,n_movies=200", "dqn-synthetic:n_users=60,n_movies=200"),
    ],
)
def test_default_study_name_uses_the_data_folder_name(data: str, expected: str) -> None:
    assert default_study_name("dqn", data) == expected


@pytest.mark.parametrize(
    ("ref", "expected"),
    [
        ("mystudy:3", ("mystudy", 3)),
        ("mystudy:best", ("mystudy", None)),
        ("mystudy", ("mystudy", None)),
        ("dqn-synthetic:n_users=60:12", ("dqn-synthetic:n_users=60", 12)),
    ],
)
def test_parse_trial_ref(ref: str, expected: tuple[str, int | None]) -> None:
    assert parse_trial_ref(ref) == expected


@pytest.mark.parametrize("ref", ["mystudy:three", ":3", "mystudy:-1"])
def test_parse_trial_ref_rejects_bad_refs(ref: str) -> None:
    with pytest.raises(ValueError, match=r"^--from-trial: "):
        parse_trial_ref(ref)


# --------------------------------------------------------------------------- seeding
def test_trial_seed_is_a_pure_function_of_seed_and_number() -> None:
    seeds = [trial_seed(0, n) for n in range(50)]
    assert seeds == [trial_seed(0, n) for n in range(50)]
    assert len(set(seeds)) == 50
    assert trial_seed(1, 0) != trial_seed(0, 0)
    assert all(0 <= s < 2**32 for s in seeds)


def _xy(trial: optuna.Trial) -> float:
    x = trial.suggest_float("x", -1.0, 1.0)
    y = trial.suggest_categorical("y", [1, 2, 3, 4, 5, 6, 7, 8])
    return -(x * x) + y


def _two_workers_params(sampler_factory: Any) -> list[dict[str, Any]]:
    """Two workers (two Study objects, same seed) on one storage, taking turns; params in trial order."""
    storage = optuna.storages.InMemoryStorage()
    workers = [
        optuna.create_study(
            study_name="s",
            storage=storage,
            direction="maximize",
            load_if_exists=True,
            sampler=sampler_factory(),
        )
        for _ in range(2)
    ]
    for _ in range(3):
        for worker in workers:
            worker.optimize(_xy, n_trials=1)
    return [trial.params for trial in workers[0].get_trials()]


def test_same_seed_workers_propose_different_params() -> None:
    # The problem being solved: two TPE samplers seeded alike propose the same startup points.
    naive = _two_workers_params(lambda: TPESampler(seed=7))
    assert naive[0] == naive[1]
    ours = _two_workers_params(lambda: TrialSeededSampler(7))
    assert len(ours) == 6
    assert len({p["x"] for p in ours}) == 6


def test_per_trial_seeding_is_reproducible_and_matches_a_tpe_seeded_per_trial() -> None:
    def run(seed: int) -> list[dict[str, Any]]:
        study = optuna.create_study(direction="maximize", sampler=TrialSeededSampler(seed))
        study.optimize(_xy, n_trials=8)
        return [t.params for t in study.trials]

    first = run(3)
    assert first == run(3)
    assert first != run(4)
    # Independent route: trial 0 is TPE's random startup point, i.e. TPESampler(seed=trial_seed(3, 0))'s.
    reference = optuna.create_study(direction="maximize", sampler=TPESampler(seed=trial_seed(3, 0)))
    reference.optimize(_xy, n_trials=1)
    assert reference.trials[0].params == first[0]


# --------------------------------------------------------------------------- study
def test_create_study_is_joined_by_a_second_worker(tmp_path: Path) -> None:
    url = _sqlite(tmp_path)
    first = create_study("dqn", "synthetic", storage=url, seed=0)
    first.optimize(_xy, n_trials=2)
    second = create_study("dqn", "synthetic", storage=url, seed=0)
    second.optimize(_xy, n_trials=3)
    assert first.study_name == second.study_name == "dqn-synthetic"
    assert len(second.get_trials()) == 5
    assert [t.number for t in second.get_trials()] == [0, 1, 2, 3, 4]
    assert second.user_attrs == {"algo": "dqn", "metric": "ndcg@10"}


def test_create_study_refuses_a_study_of_another_algo(tmp_path: Path) -> None:
    url = _sqlite(tmp_path)
    create_study("dqn", "synthetic", storage=url, study_name="shared")
    with pytest.raises(ValueError, match=r"^--study-name: study 'shared' tunes 'dqn', not 'ppo'"):
        create_study("ppo", "synthetic", storage=url, study_name="shared")


def test_create_study_refuses_a_minimising_study(tmp_path: Path) -> None:
    url = _sqlite(tmp_path)
    optuna.create_study(study_name="loss", storage=url, direction="minimize")
    with pytest.raises(ValueError, match=r"minimises"):
        create_study("dqn", "synthetic", storage=url, study_name="loss")


# --------------------------------------------------------------------------- pruning
def test_reporter_prunes_a_trial_below_the_median(tmp_path: Path) -> None:
    study = create_study("dqn", "synthetic", storage=_sqlite(tmp_path), n_evaluations=4)
    # Five (= N_STARTUP_TRIALS) trials whose evaluations read 0.5 at steps 1..4.
    for _ in range(tuning_storage.N_STARTUP_TRIALS):
        trial = study.ask()
        reporter = PruningReporter(trial)
        assert all(reporter(100 * i, {"ndcg@10": 0.5}) for i in range(1, 5))
        study.tell(trial, 0.5)
    # n_warmup_steps = 4 // 3 = 1: the first evaluation may already prune. 0.1 < median 0.5: pruned.
    weak = study.ask()
    reporter = PruningReporter(weak)
    assert reporter(100, {"ndcg@10": 0.1}) is False
    assert reporter.pruned and reporter.n_evaluations == 1
    # 0.9 > 0.5: kept.
    strong = study.ask()
    keep = PruningReporter(strong)
    assert keep(100, {"ndcg@10": 0.9}) is True
    assert not keep.pruned
    assert strong.storage.get_trial(strong._trial_id).intermediate_values == {1: 0.9}


def test_reporter_stops_on_nan(tmp_path: Path) -> None:
    study = create_study("dqn", "synthetic", storage=_sqlite(tmp_path))
    reporter = PruningReporter(study.ask())
    assert reporter(10, {"ndcg@10": float("nan")}) is False
    assert reporter.pruned


# --------------------------------------------------------------------------- trial records
def _fill(url: str, values: list[float | None]) -> None:
    """A study whose trial i stores hyperparams {"learning_rate": i} and value values[i] (None: pruned)."""
    study = create_study("sb3-dqn", "synthetic", storage=url, study_name="s")
    for i, value in enumerate(values):
        trial = study.ask()
        trial.set_user_attr("algo", "sb3-dqn")
        trial.set_user_attr("data", "synthetic")
        trial.set_user_attr("seed", 5)
        trial.set_user_attr("timesteps", 100)
        trial.set_user_attr(
            "hyperparams", {"learning_rate": float(i), "policy_kwargs": "dict(net_arch=[64])"}
        )
        if value is None:
            study.tell(trial, state=TrialState.PRUNED)
        else:
            study.tell(trial, value)


def test_hyperparams_from_trial_by_number_and_best(tmp_path: Path) -> None:
    url = _sqlite(tmp_path)
    _fill(url, [0.1, 0.3, None, 0.2])
    assert hyperparams_from_trial("s:0", url) == (
        "sb3-dqn",
        {"learning_rate": 0.0, "policy_kwargs": "dict(net_arch=[64])"},
    )
    assert hyperparams_from_trial("s:best", url)[1]["learning_rate"] == 1.0
    assert hyperparams_from_trial("s", url)[1]["learning_rate"] == 1.0
    pruned = load_trial("s:2", url)
    assert (pruned.state, pruned.value, pruned.hyperparams["learning_rate"]) == ("PRUNED", None, 2.0)
    best = load_trial("s:best", url)
    assert (best.number, best.value, best.seed, best.timesteps, best.data) == (1, 0.3, 5, 100, "synthetic")


def test_unknown_study_lists_the_known_ones(tmp_path: Path) -> None:
    url = _sqlite(tmp_path)
    _fill(url, [0.1])
    with pytest.raises(ValueError, match=r"^--from-trial: no study 'other' in sqlite:///.*\(studies: s\)$"):
        hyperparams_from_trial("other:0", url)


def test_unknown_trial_names_the_range(tmp_path: Path) -> None:
    url = _sqlite(tmp_path)
    _fill(url, [0.1, 0.2])
    with pytest.raises(ValueError, match=r"^--from-trial: study 's' has no trial 7 \(trials 0\.\.1\)$"):
        hyperparams_from_trial("s:7", url)


def test_best_without_complete_trial_is_an_error(tmp_path: Path) -> None:
    url = _sqlite(tmp_path)
    _fill(url, [None])
    with pytest.raises(ValueError, match=r"has no complete trial yet"):
        hyperparams_from_trial("s:best", url)


def test_trial_without_rlrec_attrs_is_an_error(tmp_path: Path) -> None:
    url = _sqlite(tmp_path)
    study = optuna.create_study(study_name="foreign", storage=url, direction="maximize")
    study.optimize(_xy, n_trials=1)
    with pytest.raises(ValueError, match=r"holds no rlrec hyperparameters"):
        hyperparams_from_trial("foreign:0", url)


def test_default_storage_missing_is_file_not_found(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(FileNotFoundError, match=r"rlrec-tune.db"):
        hyperparams_from_trial("s:0", None)
    assert not (tmp_path / "rlrec-tune.db").exists()


# --------------------------------------------------------------------------- table-creation race
def test_open_storage_retries_when_workers_race_to_create_tables(monkeypatch: pytest.MonkeyPatch) -> None:
    import sqlalchemy.exc

    calls: list[str] = []

    class Racing:
        def __init__(self, url: str, engine_kwargs: dict[str, Any]) -> None:
            calls.append(url)
            if len(calls) < 3:  # the first two attempts lose the race (optuna/optuna#1092)
                raise sqlalchemy.exc.IntegrityError("CREATE TABLE studies", {}, Exception("duplicate key"))

    monkeypatch.setattr(optuna.storages, "RDBStorage", Racing)
    monkeypatch.setattr(tuning_storage.time, "sleep", lambda seconds: None)
    assert isinstance(open_storage("postgresql+psycopg2://u@h/db"), Racing)
    assert len(calls) == 3


def test_open_storage_gives_up_after_a_few_races(monkeypatch: pytest.MonkeyPatch) -> None:
    import sqlalchemy.exc

    def always_racing(url: str, engine_kwargs: dict[str, Any]) -> None:
        raise sqlalchemy.exc.ProgrammingError("CREATE TABLE", {}, Exception("relation already exists"))

    monkeypatch.setattr(optuna.storages, "RDBStorage", always_racing)
    monkeypatch.setattr(tuning_storage.time, "sleep", lambda seconds: None)
    with pytest.raises(ValueError, match=r"^--storage: cannot open postgresql\+psycopg2://u@h/db: .*exists"):
        open_storage("postgresql+psycopg2://u@h/db")


# --------------------------------------------------------------------------- policy_kwargs
@pytest.mark.parametrize(
    ("before", "updates", "after"),
    [
        (None, {"net_arch": [128, 128]}, "dict(net_arch=[128, 128])"),
        ("dict(net_arch=[64])", {"net_arch": [256]}, "dict(net_arch=[256])"),
        # Actor-critic: both branches get the sampled size.
        (
            "dict(net_arch=dict(pi=[64], vf=[64]))",
            {"net_arch": [32, 32]},
            "dict(net_arch={'pi': [32, 32], 'vf': [32, 32]})",
        ),
        # Entries not sampled keep their source text, torch names included.
        (
            "dict(net_arch=[64], n_quantiles=10, optimizer_class=th.optim.Adam, optimizer_kwargs={})",
            {"n_quantiles": 5, "net_arch": [128]},
            "dict(net_arch=[128], n_quantiles=5, optimizer_class=th.optim.Adam, optimizer_kwargs={})",
        ),
        ('{"activation_fn": nn.Tanh}', {"net_arch": [8]}, "dict(activation_fn=nn.Tanh, net_arch=[8])"),
    ],
)
def test_policy_kwargs_string(before: str | None, updates: dict[str, Any], after: str) -> None:
    from rlrec.agents.recipes import parse_policy_kwargs

    assert tuning.policy_kwargs_string(before, updates) == after
    parse_policy_kwargs(after)  # reads back


def test_merge_puts_the_network_where_each_family_wants_it() -> None:
    sampled = {"learning_rate": 0.01, "net_arch": [128], "policy_kwargs.n_quantiles": 5}
    sb3 = tuning.merge_trial_params(
        "qrdqn", {"policy_kwargs": "dict(net_arch=[64], n_quantiles=10)", "gamma": 0.9}, sampled
    )
    assert sb3 == {
        "policy_kwargs": "dict(net_arch=[128], n_quantiles=5)",
        "gamma": 0.9,
        "learning_rate": 0.01,
    }
    ours = tuning.merge_trial_params(
        "dqn", {"net_arch": [64], "gamma": 0.9}, {"learning_rate": 0.01, "net_arch": [128]}
    )
    assert ours == {"net_arch": [128], "gamma": 0.9, "learning_rate": 0.01}
