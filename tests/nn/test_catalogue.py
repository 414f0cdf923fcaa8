"""The catalogue policy component: the movie-scoring head against a dense reference, the action
prior against counts worked out by hand, masking, and every algorithm end to end with its zip."""

from __future__ import annotations

import gymnasium
import numpy as np
import pytest
import torch

import rlrec  # noqa: F401  (registers the env ids)
from rlrec.agents.runs import load_run
from rlrec.agents.scoring import score_movies
from rlrec.envs.sb3_vec import GymnasiumVecEnv
from rlrec.experiments.training import train
from rlrec.nn import (
    ActionPriorCallback,
    CatalogueActorCriticPolicy,
    MaskableCatalogueActorCriticPolicy,
    MovieScoringHead,
    SparseInputExtractor,
    prior_logits,
)
from tests.envs.tiny_data import tiny_dataset

SYNTH = "synthetic:n_users=30,n_movies=80,n_ratings=600,seed=1"
SESSION = "rlrec/MovieLensSession-v0"
ALGOS = ["sb3-dqn", "qrdqn", "ppo", "a2c", "maskable-ppo"]


# ------------------------------------------------------------------ the head
@pytest.mark.parametrize("n_outputs", [1, 3])
def test_head_scores_and_gradients_equal_a_dense_linear(n_outputs: int) -> None:
    torch.manual_seed(0)
    head = MovieScoringHead(features_dim=5, n_movies=7, n_outputs=n_outputs, init_std=0.3)
    with torch.no_grad():
        head.bias.copy_(torch.randn(7 * n_outputs))
    reference = torch.nn.Linear(5, 7 * n_outputs)
    with torch.no_grad():
        reference.weight.copy_(head.weight)
        reference.bias.copy_(head.bias)
    features = torch.randn(4, 5)
    target = torch.randn(4, 7 * n_outputs)
    ours, theirs = head(features), reference(features)
    torch.testing.assert_close(ours, theirs)
    ((ours - target) ** 2).sum().backward()
    ((theirs - target) ** 2).sum().backward()
    assert head.embedding is not None and head.embedding.grad is not None
    torch.testing.assert_close(head.embedding.grad, reference.weight.grad)
    torch.testing.assert_close(head.bias.grad, reference.bias.grad)


def test_a_tied_head_scores_with_the_extractor_table_and_trains_it() -> None:
    space = gymnasium.spaces.Box(0.0, 1.0, shape=(6,), dtype=np.float32)
    extractor = SparseInputExtractor(space, features_dim=4, activation_fn=None)
    head = MovieScoringHead(4, 6, tied=extractor.weight)
    obs = torch.tensor([[1.0, 0, 0, 1.0, 0, 0]])
    features = extractor(obs)
    scores = head(features)
    # By hand: features = W[0] + W[3]; score of movie a = features . W[a].
    expected = (extractor.weight[0] + extractor.weight[3]) @ extractor.weight.T
    torch.testing.assert_close(scores[0], expected)
    assert [name for name, _ in head.named_parameters()] == ["bias"]  # the table is not owned twice
    scores[0, 2].backward()
    assert extractor.weight.grad is not None and extractor.weight.grad[2].abs().sum() > 0


def test_set_bias_puts_the_prior_on_every_output() -> None:
    head = MovieScoringHead(3, 4, n_outputs=2)
    head.set_bias(np.array([0.1, 0.2, 0.3, 0.4], dtype=np.float32))
    np.testing.assert_allclose(head.bias.detach().numpy(), [0.1, 0.2, 0.3, 0.4] * 2, rtol=1e-6)


# ------------------------------------------------------------------ the prior
def test_the_prior_is_the_share_of_users_who_liked_each_movie_by_hand() -> None:
    # tiny_data: liked (>= 4) are 7 by user 10, 11 and 42 by user 20, 99 by user 30; 13 and 123 by nobody.
    env = gymnasium.make(SESSION, data=tiny_dataset())
    np.testing.assert_allclose(env.unwrapped.action_prior(), [1 / 3, 1 / 3, 0, 1 / 3, 1 / 3, 0], rtol=1e-6)
    served = gymnasium.make(SESSION, data=tiny_dataset(), users=[10, 20])  # served users only
    np.testing.assert_allclose(served.unwrapped.action_prior(), [1 / 2, 1 / 2, 0, 1 / 2, 0, 0], rtol=1e-6)
    venv = GymnasiumVecEnv(
        gymnasium.make_vec(SESSION, num_envs=3, data=tiny_dataset(), autoreset_mode="same_step")
    )
    np.testing.assert_allclose(venv.env_method("action_prior", indices=[0])[0], env.unwrapped.action_prior())


def test_prior_logits_sample_in_proportion_to_the_share() -> None:
    prior = np.array([0.5, 0.25, 0.25, 0.0])
    probabilities = torch.softmax(torch.as_tensor(prior_logits(prior)), dim=0).numpy()
    np.testing.assert_allclose(probabilities[:3] / probabilities[:3].sum(), [0.5, 0.25, 0.25], rtol=1e-5)
    assert probabilities[3] < 1e-5  # the floor keeps an unliked movie finite, and rare


@pytest.mark.parametrize("algo", ALGOS)
def test_a_fresh_policy_scores_an_empty_history_by_the_prior(tmp_path, algo: str) -> None:
    """learn(0) runs only the callback: the scores of an all-zero observation are the bias alone."""
    from rlrec.agents.factory import make_model
    from rlrec.agents.recipes import load_hyperparams, split_hyperparams
    from rlrec.data import load_movielens
    from rlrec.experiments.training import make_training_env

    recipe = split_hyperparams(algo, load_hyperparams(algo, SESSION, {"n_envs": 2}))
    env = make_training_env(algo, load_movielens(SYNTH), SESSION, recipe.env_kwargs, 2, seed=0)
    model = make_model(algo, env, recipe.model_kwargs, seed=0)
    model.learn(0, callback=ActionPriorCallback())
    prior = env.env_method("action_prior", indices=[0])[0]
    scores = score_movies(model, np.zeros((1, 80), dtype=np.float32))[0]
    expected = prior if algo in ("sb3-dqn", "qrdqn") else prior_logits(prior)
    np.testing.assert_allclose(scores, expected, rtol=1e-5, atol=1e-6)


def test_the_prior_is_not_reset_when_a_run_resumes(tmp_path) -> None:
    first = train(
        "ppo", data=SYNTH, env_id=SESSION, hyperparams={"n_envs": 4}, timesteps=64, output=tmp_path, seed=0
    )
    learned = first.model.policy.action_net.bias.detach().clone()
    resumed = train("ppo", data=None, env_id=SESSION, resume=True, output=tmp_path, timesteps=128)
    assert resumed.model.num_timesteps >= 128
    # Had the callback set the prior again, the bias would be back at log(prior) before updating.
    prior = torch.as_tensor(prior_logits(first.model.get_env().env_method("action_prior", indices=[0])[0]))
    moved_from_learned = (resumed.model.policy.action_net.bias.detach() - learned).abs().max()
    moved_from_prior = (resumed.model.policy.action_net.bias.detach() - prior).abs().max()
    assert moved_from_prior > moved_from_learned


# ------------------------------------------------------------------ masking
def _policy(cls: type, **kwargs: object) -> CatalogueActorCriticPolicy:
    space = gymnasium.spaces.Box(-1.0, 1.0, shape=(6,), dtype=np.float32)
    return cls(
        space, gymnasium.spaces.Discrete(6), lambda _: 1e-3,
        net_arch=dict(pi=[], vf=[]), features_extractor_class=SparseInputExtractor,
        features_extractor_kwargs=dict(features_dim=4), **kwargs,
    )  # fmt: skip


def test_mask_observed_never_draws_a_movie_the_observation_shows() -> None:
    policy = _policy(CatalogueActorCriticPolicy, mask_observed=True)
    obs = torch.tensor([[1.0, 0, -1.0, 0, 0, 0], [0, 0, 0, 0, 0, 1.0]])
    probabilities = policy.get_distribution(obs).distribution.probs
    assert probabilities[0, [0, 2]].sum() == 0 and probabilities[1, 5] == 0
    torch.testing.assert_close(probabilities.sum(dim=1), torch.ones(2))
    actions, _, log_prob = policy(obs)
    assert actions[0] not in (0, 2) and actions[1] != 5 and torch.isfinite(log_prob).all()
    # The evaluation ranks the head's scores unmasked.
    assert torch.isfinite(policy.movie_scores(obs)).all()


def test_maskable_policy_respects_action_masks() -> None:
    policy = _policy(MaskableCatalogueActorCriticPolicy)
    masks = np.array([[True, False, True, False, False, False]])
    distribution = policy.get_distribution(torch.zeros(1, 6), action_masks=masks)
    probabilities = distribution.distribution.probs[0]
    assert probabilities[~masks[0]].sum() == 0
    torch.testing.assert_close(probabilities[masks[0]].sum(), torch.tensor(1.0))


def test_only_actor_critic_policies_take_mask_observed() -> None:
    with pytest.raises(ValueError, match="mask_observed"):
        _policy(MaskableCatalogueActorCriticPolicy, mask_observed=True)


# ------------------------------------------------------------------ every algorithm end to end
@pytest.mark.parametrize("algo", ALGOS)
@pytest.mark.parametrize("tie", [False, True])
def test_every_algorithm_trains_with_the_components_and_reloads_identically(
    tmp_path, algo: str, tie: bool
) -> None:
    overrides: dict[str, object] = {"n_envs": 4, **({"batch_size": 32} if "ppo" in algo else {})}
    if tie:
        arch = "[]" if algo in ("sb3-dqn", "qrdqn") else "dict(pi=[], vf=[])"
        overrides["policy_kwargs"] = (
            f"dict(net_arch={arch}, tie_embeddings=True, features_extractor_class="
            "importlib.import_module('rlrec.nn').SparseInputExtractor, "
            "features_extractor_kwargs=dict(features_dim=16, normalization='sqrt_count'))"
        )
    result = train(
        algo, data=SYNTH, env_id=SESSION, hyperparams=overrides, timesteps=320, seed=0, output=tmp_path
    )
    model = result.model
    heads = [m for m in model.policy.modules() if isinstance(m, MovieScoringHead)]
    assert heads and all((m.embedding is None) == tie for m in heads)
    observations = model.get_env().get_attr("observations")[0](np.arange(6))
    loaded = load_run(result.run_dir).model
    np.testing.assert_array_equal(score_movies(loaded, observations), score_movies(model, observations))
    actions, _ = model.predict(observations, deterministic=True)
    again, _ = loaded.predict(observations, deterministic=True)
    np.testing.assert_array_equal(actions, again)


def test_a_slate_policy_starts_at_the_prior_and_reloads_identically(tmp_path) -> None:
    """CatalogueSlatePolicy: after the prior callback, an empty history's scores are log prior and
    the deterministic slate is the K most liked movies; its zip reloads with the same slates."""
    slate = "rlrec/MovieLensSlate-v0"
    hyperparams = {
        "policy": "rlrec.nn.CatalogueSlatePolicy", "callback": "rlrec.nn.ActionPriorCallback",
        "n_envs": 4, "batch_size": 20, "n_steps": 5,
    }  # fmt: skip
    from rlrec.agents.factory import make_model
    from rlrec.agents.recipes import load_hyperparams, split_hyperparams
    from rlrec.data import load_movielens
    from rlrec.experiments.training import make_training_env

    recipe = split_hyperparams("ppo", load_hyperparams("ppo", slate, hyperparams))
    env = make_training_env("ppo", load_movielens(SYNTH), slate, recipe.env_kwargs, 4, seed=0)
    model = make_model("ppo", env, recipe.model_kwargs, seed=0)
    model.learn(0, callback=ActionPriorCallback())
    prior = model.get_env().env_method("action_prior", indices=[0])[0]
    empty = np.zeros((1, 80), dtype=np.float32)
    np.testing.assert_allclose(score_movies(model, empty)[0], prior_logits(prior), rtol=1e-5, atol=1e-6)
    slate_size = int(model.action_space.nvec.shape[0])
    best = np.argsort(-prior, kind="stable")[:slate_size]
    actions, _ = model.predict(empty, deterministic=True)
    assert len(set(actions[0].tolist())) == slate_size  # ties in the prior may pick either movie
    np.testing.assert_allclose(np.sort(prior[actions[0]]), np.sort(prior[best]))
    trained = train(
        "ppo", data=SYNTH, env_id=slate, hyperparams=hyperparams, timesteps=200, seed=0, output=tmp_path / "t"
    )
    observations = (np.random.default_rng(0).random((5, 80)) < 0.1).astype(np.float32)
    loaded = load_run(trained.run_dir).model
    np.testing.assert_array_equal(
        score_movies(loaded, observations), score_movies(trained.model, observations)
    )
    again, _ = loaded.predict(observations, deterministic=True)
    np.testing.assert_array_equal(trained.model.predict(observations, deterministic=True)[0], again)
