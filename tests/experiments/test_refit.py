"""``LearnerSetup(refit=True)``: stopping chosen on validation, then a run on all of train ranks test."""

from __future__ import annotations

import json
from pathlib import Path

from rlrec.agents.factory import load_model
from rlrec.agents.recipes import load_hyperparams, split_hyperparams
from rlrec.data import load_movielens
from rlrec.data.split import temporal_split
from rlrec.envs import SESSION_ID
from rlrec.evaluation.protocol import evaluate_model
from rlrec.experiments.benchmark import run_benchmark
from rlrec.experiments.entries import BENCHMARK_SETUPS, resolve_algos

SMALL = "synthetic:n_users=60,n_movies=200,n_ratings=3000"


def _changed_hyperparams(plain_name: str, variant_name: str) -> dict[str, object]:
    """The hyperparameters a variant entry sets differently from the entry it is built on."""
    plain, variant = BENCHMARK_SETUPS[plain_name], BENCHMARK_SETUPS[variant_name]
    return {key: value for key, value in variant.hyperparams.items() if plain.hyperparams.get(key) != value}


def _refit_after_one_evaluation(tmp_path: Path, name: str) -> Path:
    """Benchmarks entry ``name`` for 1,024 steps with one evaluation; its retrain's run folder."""
    report = run_benchmark(SMALL, tmp_path, 1024, algos=[name], baselines=[], n_evaluations=1)
    assert report["results"][name]["refit_timesteps"] == 1024
    return tmp_path / "models" / name / "refit" / BENCHMARK_SETUPS[name].algo


def test_ppo_session_long_is_ppo_session_with_three_times_the_budget() -> None:
    long, plain = BENCHMARK_SETUPS["ppo-session-long"], BENCHMARK_SETUPS["ppo-session"]
    assert (long.algo, long.env_id, long.env_kwargs) == (plain.algo, plain.env_id, plain.env_kwargs)
    budget = split_hyperparams("ppo", load_hyperparams("ppo", SESSION_ID, long.hyperparams)).n_timesteps
    shipped = split_hyperparams("ppo", load_hyperparams("ppo", SESSION_ID, plain.hyperparams)).n_timesteps
    assert (budget, shipped) == (1_200_000, 400_000)


def test_ppo_session_refit_is_ppo_session_long_at_half_the_budget_with_a_refit() -> None:
    refit, long = BENCHMARK_SETUPS["ppo-session-refit"], BENCHMARK_SETUPS["ppo-session-long"]
    assert (refit.algo, refit.env_id, refit.env_kwargs) == (long.algo, long.env_id, long.env_kwargs)
    assert (refit.refit, long.refit) == (True, False)
    budget = split_hyperparams("ppo", load_hyperparams("ppo", SESSION_ID, refit.hyperparams)).n_timesteps
    assert budget == 600_000


def test_refit_trains_on_all_of_train_up_to_the_chosen_step(tmp_path: Path) -> None:
    # 3 evaluations of a 3,072-step budget: the best one is one of 1,024 / 2,048 / 3,072 steps.
    report = run_benchmark(SMALL, tmp_path, 3072, algos=["ppo-session-refit"], baselines=[], n_evaluations=3)
    row = report["results"]["ppo-session-refit"]
    models = tmp_path / "models" / "ppo-session-refit"
    evaluations = json.loads((models / "ppo" / "evaluations.json").read_text())
    best = max(evaluations["evaluations"], key=lambda evaluation: evaluation["ndcg@10"])
    assert row["best_timesteps"] == best["timesteps"] == row["refit_timesteps"]
    assert row["timesteps"] == 3072  # the validation run went on to its budget

    split = temporal_split(load_movielens(SMALL))
    train = split.train
    selection = json.loads((models / "ppo" / "run.json").read_text())
    retrained = json.loads((models / "refit" / "ppo" / "run.json").read_text())
    # Worked out by the split itself: validation trains on train minus its last 20% per user,
    # the refit on every train rating, for exactly the chosen number of steps.
    assert selection["dataset"]["ratings"] == temporal_split(train).train.n_ratings < train.n_ratings
    assert retrained["dataset"]["ratings"] == train.n_ratings
    assert retrained["timesteps_done"] == best["timesteps"]
    assert retrained["run_info"]["refit_of"] == best["timesteps"]

    # The test row is the refit model's: ranked again here from its saved zip.
    model = load_model(
        "ppo", models / "refit" / "ppo" / "model.zip", hyperparams=load_hyperparams("ppo", SESSION_ID)
    )
    metrics = evaluate_model(model, split, env_id=SESSION_ID, env_kwargs=retrained["env_kwargs"], k=10)
    for key in ("ndcg@10", "precision@10", "recall@10", "mrr@10"):
        assert row[key] == metrics[key], key


def test_slateq_item_item_trains_the_item_item_network_on_pages_of_50_and_refits(tmp_path: Path) -> None:
    from rlrec.envs import SLATE_ID
    from rlrec.nn import ItemItemQNetwork

    setup = BENCHMARK_SETUPS["slateq-item-item"]
    recipe = split_hyperparams("slateq", load_hyperparams("slateq", SLATE_ID, setup.hyperparams))
    assert (setup.algo, setup.env_id, setup.refit, setup.env_kwargs) == (
        "slateq",
        SLATE_ID,
        True,
        {"slate_size": 50},
    )
    assert (recipe.n_timesteps, recipe.n_envs, recipe.model_kwargs["network"]) == (500_000, 256, "item_item")

    report = run_benchmark(SMALL, tmp_path, 2048, algos=["slateq-item-item"], baselines=[], n_evaluations=2)
    row = report["results"]["slateq-item-item"]
    assert row["refit_timesteps"] == row["best_timesteps"] in (1024, 2048)
    models = tmp_path / "models" / "slateq-item-item"
    model = load_model("slateq", models / "refit" / "slateq" / "model.pt")
    assert isinstance(model.q_net, ItemItemQNetwork) and model.slate_size == 50
    assert model.q_net.weight.shape == (200, 200) and bool((model.q_net.weight != 0).any())


def test_slateq_item_item_decay_is_the_item_item_entry_with_a_uniform_ridge_on_the_matrix_only(
    tmp_path: Path,
) -> None:
    plain, decay = BENCHMARK_SETUPS["slateq-item-item"], BENCHMARK_SETUPS["slateq-item-item-decay"]
    assert (decay.algo, decay.env_id, decay.refit, decay.env_kwargs) == (
        plain.algo,
        plain.env_id,
        True,
        plain.env_kwargs,
    )
    assert _changed_hyperparams("slateq-item-item", "slateq-item-item-decay") == {
        "n_timesteps": 800_000,
        "weight_decay": 0.5,
        "decoupled_weight_decay": True,
    }

    refit = _refit_after_one_evaluation(tmp_path, "slateq-item-item-decay")
    model = load_model("slateq", refit / "model.pt")
    assert (model.weight_decay, model.decoupled_weight_decay) == (0.5, True)
    decays = {
        tuple(param.shape): group["weight_decay"]
        for group in model.optimizer.param_groups
        for param in group["params"]
    }
    assert decays == {(200, 200): 0.5, (200,): 0.0}  # the pair weights shrink, the per-movie biases not


def test_slateq_item_item_page100_is_the_item_item_entry_on_pages_of_100_over_400k_steps(
    tmp_path: Path,
) -> None:
    plain, page100 = BENCHMARK_SETUPS["slateq-item-item"], BENCHMARK_SETUPS["slateq-item-item-page100"]
    assert (page100.algo, page100.env_id, page100.refit) == (plain.algo, plain.env_id, True)
    assert (plain.env_kwargs, page100.env_kwargs) == ({"slate_size": 50}, {"slate_size": 100})
    assert _changed_hyperparams("slateq-item-item", "slateq-item-item-page100") == {"n_timesteps": 400_000}

    refit = _refit_after_one_evaluation(tmp_path, "slateq-item-item-page100")
    assert load_model("slateq", refit / "model.pt").slate_size == 100
    assert json.loads((refit / "run.json").read_text())["env_kwargs"]["slate_size"] == 100


def test_slateq_item_item_recent_hides_a_fresh_latest_part_of_each_history(tmp_path: Path) -> None:
    plain, recent = BENCHMARK_SETUPS["slateq-item-item"], BENCHMARK_SETUPS["slateq-item-item-recent"]
    assert (recent.algo, recent.env_id, recent.refit) == (plain.algo, plain.env_id, True)
    assert _changed_hyperparams("slateq-item-item", "slateq-item-item-recent") == {"n_timesteps": 300_000}
    assert recent.env_kwargs == {
        "slate_size": 50,
        "hiding": "recent",
        "hidden_fraction": [0.1, 0.9],
        "half_life": 10,
    }
    assert resolve_algos(["best", "ppo-session"]) == ["slateq-item-item-recent", "ppo-session"]

    refit = _refit_after_one_evaluation(tmp_path, "slateq-item-item-recent")
    recorded = json.loads((refit / "run.json").read_text())["env_kwargs"]
    assert (recorded["hiding"], recorded["hidden_fraction"], recorded["half_life"]) == (
        "recent",
        [0.1, 0.9],
        10,
    )
