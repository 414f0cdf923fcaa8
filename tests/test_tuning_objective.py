"""``rlrec.tuning.tune`` end to end on a tiny synthetic data set: real learners, real evaluation."""

from __future__ import annotations

from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

from rlrec.agents.recipes import parse_policy_kwargs
from rlrec.data import load_movielens
from rlrec.evaluation.protocol import evaluate_model
from rlrec.experiments.training import train
from rlrec.tuning import SEARCH_SPACES, hyperparams_from_trial, load_trial, suggest_hyperparams, tune

optuna.logging.set_verbosity(optuna.logging.WARNING)

DATA = "synthetic:n_users=60,n_movies=200,n_ratings=3000"
TIMESTEPS = 300


@pytest.fixture(scope="module")
def tuned(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, optuna.Study]:
    """Two workers (one after the other, same seed) run 2 + 1 sb3-dqn trials in one SQLite study."""
    url = f"sqlite:///{tmp_path_factory.mktemp('tune') / 'tune.db'}"
    tune("sb3-dqn", DATA, n_trials=2, storage=url, timesteps=TIMESTEPS, seed=0)
    result = tune("sb3-dqn", DATA, n_trials=1, storage=url, timesteps=TIMESTEPS, seed=0)
    assert result.n_trials_run == 1
    assert sum(result.counts.values()) == 3
    return url, optuna.load_study(study_name=result.study_name, storage=url)


def test_trials_store_what_retraining_needs(tuned: tuple[str, optuna.Study]) -> None:
    _, study = tuned
    trials = study.get_trials()
    assert len(trials) == 3 and study.study_name == f"sb3-dqn-{DATA}"
    assert {t.state for t in trials} <= {TrialState.COMPLETE, TrialState.PRUNED}
    for trial in trials:
        attrs = trial.user_attrs
        assert (attrs["algo"], attrs["data"], attrs["seed"], attrs["timesteps"]) == (
            "sb3-dqn",
            DATA,
            0,
            TIMESTEPS,
        )
        hp = attrs["hyperparams"]
        # The sampled values are in the stored hyperparameters, the network inside policy_kwargs.
        for key in ("learning_rate", "gamma", "batch_size", "exploration_fraction", "target_update_interval"):
            assert hp[key] == trial.params[key]
        assert (
            parse_policy_kwargs(hp["policy_kwargs"])["net_arch"]
            == [trial.params["net_width"]] * trial.params["net_depth"]
        )
        # YAML values the space does not touch are kept (sb3-dqn.yml).
        assert hp["buffer_size"] == 10000 and hp["train_freq"] == 4
        # Evaluations were reported to the pruner, numbered 1, 2, ...
        steps = sorted(trial.intermediate_values)
        assert steps == list(range(1, len(steps) + 1)) and steps
    # Same seed on both workers, yet three different proposals.
    assert len({t.params["learning_rate"] for t in trials}) == 3


def test_trial_value_is_validation_ndcg_and_retraining_reproduces_it(tuned: tuple[str, optuna.Study]) -> None:
    url, study = tuned
    complete = [t for t in study.get_trials() if t.state == TrialState.COMPLETE]
    assert complete, "no complete trial to check"
    trial = complete[0]
    algo, hyperparams = hyperparams_from_trial(f"{study.study_name}:{trial.number}", url)
    # Independent route: the fit/validation split by hand (two temporal splits), train, evaluate.
    from rlrec.data.split import temporal_split

    inner = temporal_split(temporal_split(load_movielens(DATA)).train)
    result = train(
        algo,
        inner.train,
        hyperparams=hyperparams,
        timesteps=TIMESTEPS,
        seed=0,
        output=str(Path(url.removeprefix("sqlite:///")).parent / "retrain"),
        checkpoint_freq=None,
    )
    metrics = evaluate_model(result.model, inner, env=result.model.get_env())
    assert metrics["ndcg@10"] == pytest.approx(trial.value, abs=1e-12)
    assert load_trial(f"{study.study_name}:best", url).value == max(float(t.value or 0.0) for t in complete)


@pytest.mark.parametrize("algo", sorted(SEARCH_SPACES))
def test_every_search_space_yields_hyperparams_the_learner_accepts(algo: str) -> None:
    from rlrec.agents.recipes import hyperparams_file, load_hyperparams, split_hyperparams

    if not hyperparams_file(algo).is_file():
        pytest.fail(f"{algo}: no shipped YAML {hyperparams_file(algo)}")
    base = load_hyperparams(algo)
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=1))
    for _ in range(5):
        trial = study.ask()
        merged = suggest_hyperparams(trial, algo, base)
        # Accepted by the same validation as --hyperparams, and splits into constructor arguments.
        checked = load_hyperparams(algo, overrides=merged)
        run = split_hyperparams(algo, checked)
        assert run.model_kwargs["learning_rate"] == trial.params["learning_rate"]
        if "net_width" in trial.params:
            arch = [trial.params["net_width"]] * trial.params["net_depth"]
            kwargs = run.model_kwargs.get("policy_kwargs") or {}
            found = kwargs.get("net_arch", run.model_kwargs.get("net_arch"))
            assert found == arch or found == {"pi": arch, "vf": arch}
        study.tell(trial, 0.0)


def test_tune_rejects_bad_arguments_before_loading_data(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'x.db'}"
    with pytest.raises(ValueError, match=r"^--n-trials: must be >= 1"):
        tune("sb3-dqn", "no/such/folder", n_trials=0, storage=url)
    with pytest.raises(ValueError, match=r"^--timesteps: must be >= 1"):
        tune("sb3-dqn", "no/such/folder", n_trials=1, timesteps=0, storage=url)
    with pytest.raises(ValueError, match=r"^--storage: "):
        tune("sb3-dqn", "no/such/folder", n_trials=1, storage="nosuchdb://x")
