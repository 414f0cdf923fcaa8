"""The algorithm registry and the zoo-format YAMLs (no training here)."""

from __future__ import annotations

import dataclasses
import inspect
import re

import pytest
import torch
import yaml

from rlrec.agents.recipes import hyperparams_file, load_hyperparams, parse_policy_kwargs, split_hyperparams
from rlrec.agents.registry import ALGOS, DEFAULT_ENV_ID, algo_class
from rlrec.envs import SLATE_ID

#: ml-latest-small-2016's catalogue: the observation length of MovieLens-v0 on the seed's data.
N_MOVIES_2016 = 10_329


@pytest.mark.parametrize("algo", list(ALGOS))
def test_every_shipped_yaml_is_zoo_shaped_and_accepted_by_its_class(algo: str) -> None:
    path = hyperparams_file(algo)
    assert path.name == f"{algo}.yml" and path.is_file()
    raw = yaml.safe_load(path.read_text())
    # SlateQ acts on slates only: its one section is the slate env's.
    assert (SLATE_ID if algo == "slateq" else DEFAULT_ENV_ID) in raw
    cls = algo_class(algo)
    config = getattr(cls, "config_class", None)  # our learners take a config dataclass's fields
    params = (
        {f.name for f in dataclasses.fields(config)}
        if config is not None
        else set(inspect.signature(cls.__init__).parameters)
    )
    for env_id, env_section in raw.items():
        assert int(float(env_section["n_timesteps"])) > 0, env_id
        # Every key left after the zoo's own is a keyword of the learner's constructor.
        split = split_hyperparams(algo, load_hyperparams(algo, env_id))
        assert set(split.model_kwargs) - {"policy"} <= params, env_id
    section = raw.get(DEFAULT_ENV_ID, {})
    if ALGOS[algo].family == "sb3":
        assert section["policy"] == "MlpPolicy"
        assert isinstance(section["policy_kwargs"], str)  # the zoo's convention: a string it evals


@pytest.mark.parametrize("algo", ["sb3-dqn", "dqn", "qrdqn", "ppo", "a2c", "maskable-ppo"])
def test_networks_have_the_seed_hidden_size(algo: str) -> None:
    kwargs = split_hyperparams(algo, load_hyperparams(algo)).model_kwargs
    arch = kwargs["net_arch"] if algo == "dqn" else kwargs["policy_kwargs"]["net_arch"]
    layers = [arch] if isinstance(arch, list) else list(arch.values())
    assert all(list(layer) == [64] for layer in layers)


@pytest.mark.parametrize("algo", ["sb3-dqn", "qrdqn"])
def test_sb3_replay_buffers_fit_in_a_few_gigabytes_on_the_seed_data(algo: str) -> None:
    # SB3 stores obs and next_obs as float32: 2 x 4 bytes per movie per transition.
    buffer_size = load_hyperparams(algo)["buffer_size"]
    gigabytes = buffer_size * 2 * N_MOVIES_2016 * 4 / 1e9
    assert gigabytes < 2.0
    default_gigabytes = 1_000_000 * 2 * N_MOVIES_2016 * 4 / 1e9
    assert default_gigabytes > 80  # what the YAML comment warns about


def test_qrdqn_output_layer_stays_small() -> None:
    kwargs = split_hyperparams("qrdqn", load_hyperparams("qrdqn")).model_kwargs["policy_kwargs"]
    weights = 64 * N_MOVIES_2016 * kwargs["n_quantiles"]
    assert weights < 10_000_000
    # sb3-contrib only keeps optimizer_kwargs when optimizer_class is given.
    assert kwargs["optimizer_class"] is torch.optim.Adam
    assert kwargs["optimizer_kwargs"]["eps"] == pytest.approx(0.01 / load_hyperparams("qrdqn")["batch_size"])


def test_overrides_replace_yaml_values_and_numeric_strings_become_floats() -> None:
    # YAML 1.1 reads 1e-3 as a string: the override must still be a number.
    hp = load_hyperparams("sb3-dqn", overrides={"learning_rate": "1e-3", "buffer_size": 500})
    assert hp["learning_rate"] == pytest.approx(1e-3) and isinstance(hp["learning_rate"], float)
    assert hp["buffer_size"] == 500
    assert hp["gamma"] == 0.99  # untouched YAML value


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"learning_rat": 0.1}, "unknown hyperparameter 'learning_rat' for sb3-dqn"),
        ({"normalize": True}, "'normalize' (an RL Zoo option) is not supported"),
        ({"seed": 3}, "unknown hyperparameter 'seed'"),  # set by --seed, not by the YAML
        ({"policy_kwargs": "dict(net_arch=[64]"}, "policy_kwargs: cannot parse"),
        ({"learning_rate": "fast"}, "learning_rate: expected a number or 'lin_<number>'"),
        ({"batch_size": "big"}, "hyperparameter batch_size: expected a number, got 'big'"),
        ({"n_envs": 0}, "hyperparameter n_envs: must be a whole number >= 1, got 0"),
        ({"n_envs": 2.5}, "hyperparameter n_envs: must be a whole number >= 1, got 2.5"),
        ({"gamma": 2}, "hyperparameter gamma: must be a number in [0, 1], got 2"),
        ({"_spaces": 1}, "unknown hyperparameter '_spaces'"),
        ({"device": "tpu"}, "hyperparameter device: 'auto', 'cpu', 'cuda'"),
    ],
)
def test_bad_overrides_name_the_key(overrides: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        split_hyperparams("sb3-dqn", load_hyperparams("sb3-dqn", overrides=overrides))


def test_our_learners_refuse_sb3_policy_keys() -> None:
    with pytest.raises(ValueError, match="unknown hyperparameter 'policy_kwargs' for dqn"):
        load_hyperparams("dqn", overrides={"policy_kwargs": "dict(net_arch=[32])"})


def test_unknown_algo_and_missing_section() -> None:
    with pytest.raises(ValueError, match="unknown algo 'sac'"):
        load_hyperparams("sac")
    with pytest.raises(ValueError, match="no section for 'CartPole-v1'"):
        load_hyperparams("ppo", env_id="CartPole-v1")


def test_split_converts_like_the_zoo() -> None:
    hp = load_hyperparams(
        "ppo", overrides={"learning_rate": "lin_0.001", "n_envs": 2, "env_kwargs": {"reward_mode": "rating"}}
    )
    split = split_hyperparams("ppo", hp)
    assert split.n_envs == 2 and split.env_kwargs == {"reward_mode": "rating"}
    assert split.n_timesteps == 50_000
    schedule = split.model_kwargs["learning_rate"]
    # The zoo's lin_x: x at the start (progress_remaining=1), x/4 three quarters in, 0 at the end.
    assert schedule(1.0) == pytest.approx(1e-3)
    assert schedule(0.25) == pytest.approx(2.5e-4)
    assert schedule(0.0) == pytest.approx(0.0)
    dqn = split_hyperparams("sb3-dqn", load_hyperparams("sb3-dqn", overrides={"train_freq": [1, "episode"]}))
    assert dqn.model_kwargs["train_freq"] == (1, "episode")
    assert dqn.model_kwargs["policy"] == "MlpPolicy"


def test_parse_policy_kwargs_reads_the_zoo_strings_without_eval() -> None:
    parsed = parse_policy_kwargs(
        "dict(net_arch=dict(pi=[64, 64], vf=[32]), activation_fn=nn.Tanh, ortho_init=False,"
        " optimizer_class=th.optim.Adam, optimizer_kwargs=dict(eps=1e-5))"
    )
    assert parsed == {
        "net_arch": {"pi": [64, 64], "vf": [32]},
        "activation_fn": torch.nn.Tanh,
        "ortho_init": False,
        "optimizer_class": torch.optim.Adam,
        "optimizer_kwargs": {"eps": 1e-5},
    }
    assert parse_policy_kwargs('{"net_arch": [8], "n_quantiles": 3}') == {"net_arch": [8], "n_quantiles": 3}
    assert parse_policy_kwargs({"net_arch": [8]}) == {"net_arch": [8]}


@pytest.mark.parametrize(
    "text",
    [
        "__import__('os').system('true')",
        "dict(a=os.system)",
        "dict(a=torch.load)",
        "dict(a=th.nn.init.zeros_)",
        "dict(a=[1, f(2)])",
        "[64, 64]",
        "dict(net_arch=[64]",
    ],
)
def test_parse_policy_kwargs_refuses_code(text: str) -> None:
    with pytest.raises(ValueError, match="policy_kwargs"):
        parse_policy_kwargs(text)
