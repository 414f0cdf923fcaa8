"""Catalogue policies: one score per movie from a movie-scoring head that can start at a prior.

What every catalogue-sized discrete-action learner needs, for ``PPO``, ``A2C``, ``MaskablePPO``,
``DQN`` and ``QRDQN`` alike, through SB3's ``policy`` argument and a callback:

* :class:`MovieScoringHead` scores movie ``a`` as ``features . E[a] + b[a]``: a per-movie embedding
  and a per-movie bias. ``tie_embeddings=True`` uses the features extractor's input table as
  ``E`` (:class:`rlrec.nn.SparseInputExtractor` has one row per movie): a movie's row is then
  trained both when it is shown and when it is recommended, the tied autoencoder behind
  item-item recommenders.
* The **action prior**: the bias ``b`` starts at what the env's own data says of each movie
  (``env.action_prior()``: the share of its users who liked it, handed over the way an env hands
  ``action_masks()``), as a logit ``log p`` for a softmax policy and as ``p`` for a Q-value (with
  gamma 0 and a binary reward a Q-value is a probability). A fresh policy then ranks like
  popularity and samples popular movies, which are hits often enough to learn from; from a
  uniform softmax over ~10k movies a policy gradient sees a hit once in thousands of steps.
  :class:`ActionPriorCallback` sets it at the start of training (zoo YAML:
  ``callback: rlrec.nn.ActionPriorCallback``); never on validation or test data, since an env
  is built on the data it trains on.
* The head's embedding starts small (std ``init_std``), so the step-0 scores are the prior.

Why a head instead of SB3's default ``Linear``: the same arithmetic, but with a place for the
prior that SB3's orthogonal initialisation does not overwrite, a choice of the embedding's scale,
optional tying, and one class under the actor-critic and the Q-learning policies, so that the
scores the evaluation ranks mean the same thing for every algorithm.
"""

from __future__ import annotations

from typing import Any, cast

import numpy as np
import torch
from sb3_contrib.common.maskable.policies import MaskableActorCriticPolicy
from sb3_contrib.qrdqn.policies import QuantileNetwork
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.policies import ActorCriticPolicy
from stable_baselines3.common.type_aliases import Schedule
from stable_baselines3.dqn.policies import QNetwork as SB3QNetwork
from torch import nn

from rlrec.nn.policies import SlatePolicy, UnseenDQNPolicy, UnseenQRDQNPolicy, mask_seen
from rlrec.nn.sequence import GRUSequenceExtractor, SelfAttentionSequenceExtractor
from rlrec.nn.torch_layers import SparseInputExtractor

__all__ = [
    "ActionPriorCallback",
    "CatalogueActorCriticPolicy",
    "CatalogueDQNPolicy",
    "CatalogueQRDQNPolicy",
    "CatalogueSlatePolicy",
    "MaskableCatalogueActorCriticPolicy",
    "MovieScoringHead",
    "prior_logits",
]

#: Smallest share a prior gives a movie before its logarithm: a movie nobody liked stays finite.
PRIOR_FLOOR = 1e-6


def prior_logits(prior: np.ndarray) -> np.ndarray:
    """``log(max(p, PRIOR_FLOOR))``: a softmax over these samples movie ``a`` with probability
    proportional to ``p[a]`` (for ``p`` above the floor)."""
    return np.log(np.maximum(np.asarray(prior, dtype=np.float64), PRIOR_FLOOR)).astype(np.float32)


def _check_prior(prior: Any, n_movies: int) -> np.ndarray:
    values = np.asarray(prior, dtype=np.float32)
    if values.shape != (n_movies,):
        raise ValueError(
            f"action prior: expected {n_movies} values (one per movie), got shape {values.shape}"
        )
    if not np.isfinite(values).all() or (values < 0).any() or (values > 1).any():
        raise ValueError("action prior: expected shares in [0, 1] (the env's action_prior())")
    return values


class MovieScoringHead(nn.Module):
    """``scores[i, q, a] = features[i] . E[q, a] + b[q, a]``: one score per movie (per output ``q``).

    :param features_dim: width of the features it reads.
    :param n_movies: catalogue size (the number of actions).
    :param n_outputs: scores per movie (QR-DQN's quantiles); default 1. The output is flat,
        ``(B, n_outputs * n_movies)`` with the movie index fastest, the layout SB3's heads have.
    :param tied: a ``(n_movies + offset, features_dim)`` parameter whose rows from ``offset`` on are
        used as ``E`` (the extractor's input table), shared by every output; default None: a
        table of its own.
    :param offset: rows of ``tied`` before the first movie's (1 for a sequence extractor's table,
        whose row 0 is the padding); default 0.
    :param init_std: standard deviation of the initial embedding (own table only); default 0.01,
        so that fresh scores are the bias.
    """

    def __init__(
        self,
        features_dim: int,
        n_movies: int,
        n_outputs: int = 1,
        tied: nn.Parameter | None = None,
        init_std: float = 0.01,
        offset: int = 0,
    ) -> None:
        super().__init__()
        self.features_dim, self.n_movies, self.n_outputs = int(features_dim), int(n_movies), int(n_outputs)
        self.offset = int(offset)
        if tied is not None:
            if tuple(tied.shape) != (self.n_movies + self.offset, self.features_dim):
                raise ValueError(
                    f"tie_embeddings: the extractor's table is {tuple(tied.shape)}, the head needs "
                    f"({self.n_movies + self.offset}, {self.features_dim}) (one row per movie, "
                    "features_dim wide)"
                )
            self.tied: list[nn.Parameter] = [tied]  # a list: not registered twice in the module
            self.embedding = None
        else:
            self.tied = []
            self.embedding = nn.Parameter(
                torch.randn(self.n_outputs * self.n_movies, self.features_dim) * init_std
            )
        self.bias = nn.Parameter(torch.zeros(self.n_outputs * self.n_movies))

    @property
    def weight(self) -> torch.Tensor:
        """``E`` as ``(n_outputs * n_movies, features_dim)``, ``nn.Linear``'s layout."""
        if self.embedding is not None:
            return self.embedding
        table = self.tied[0][self.offset :]
        return table.repeat(self.n_outputs, 1) if self.n_outputs > 1 else table

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return torch.addmm(self.bias, features, self.weight.t())

    @torch.no_grad()
    def set_bias(self, values: np.ndarray) -> None:
        """Every output's bias of movie ``a`` becomes ``values[a]``."""
        tensor = torch.as_tensor(
            np.tile(values, self.n_outputs), dtype=self.bias.dtype, device=self.bias.device
        )
        self.bias.copy_(tensor)


def _head(features_extractor: nn.Module, features_dim: int, n_movies: int, n_outputs: int,
          tie_embeddings: bool, init_std: float) -> MovieScoringHead:  # fmt: skip
    tied: nn.Parameter | None = None
    offset = 0
    if tie_embeddings:
        if isinstance(features_extractor, SparseInputExtractor):
            tied = features_extractor.weight
        elif isinstance(features_extractor, GRUSequenceExtractor | SelfAttentionSequenceExtractor):
            tied, offset = cast(nn.Parameter, features_extractor.embedding.weight), 1
        else:
            raise ValueError(
                "tie_embeddings: needs features_extractor_class=rlrec.nn.SparseInputExtractor "
                "or a sequence extractor (GRUSequenceExtractor, SelfAttentionSequenceExtractor)"
            )
    return MovieScoringHead(features_dim, n_movies, n_outputs, tied, init_std, offset)


class _HeadOptions:
    """The catalogue policies' own arguments, kept by SB3's save (``_get_constructor_parameters``)."""

    _options: tuple[str, ...] = ("tie_embeddings", "head_init_std")

    def __init__(
        self, *args: Any, tie_embeddings: bool = False, head_init_std: float = 0.01,
        mask_observed: bool = False, **kwargs: Any,
    ) -> None:  # fmt: skip
        if mask_observed and "mask_observed" not in self._options:
            raise ValueError(
                f"mask_observed: {type(self).__name__} masks already (action_masks or the observation)"
            )
        self.tie_embeddings, self.head_init_std = bool(tie_embeddings), float(head_init_std)
        self.mask_observed = bool(mask_observed)
        super().__init__(*args, **kwargs)

    #: Whether the head's scores are logits of a softmax (the prior enters as ``log p``) or
    #: Q-values (the prior enters as ``p``).
    _scores_are_logits = False

    def _get_constructor_parameters(self) -> dict[str, Any]:
        data = super()._get_constructor_parameters()  # type: ignore[misc]
        return {**data, **{name: getattr(self, name) for name in self._options}}

    def _heads(self) -> list[MovieScoringHead]:
        return [module for module in cast(nn.Module, self).modules() if isinstance(module, MovieScoringHead)]

    def set_action_prior(self, prior: np.ndarray) -> None:
        """Start every head (a DQN's target network's too) at the prior: ``log prior`` for a
        softmax (:func:`prior_logits`: a policy proportional to it), ``prior`` for a Q-value."""
        heads = self._heads()
        values = _check_prior(prior, heads[0].n_movies)
        for head in heads:
            head.set_bias(prior_logits(values) if self._scores_are_logits else values)


class _CatalogueActorCritic(_HeadOptions):
    """What the two actor-critic catalogue policies add to SB3's: the head as ``action_net``, the
    prior, and (``mask_observed``) no draw of a movie the observation shows."""

    action_net: nn.Module
    optimizer: torch.optim.Optimizer
    mask_observed: bool = False
    _observation: torch.Tensor | None = None
    _scores_are_logits = True

    def _get_action_dist_from_latent(self, latent_pi: torch.Tensor) -> Any:
        if not self.mask_observed or self._observation is None:
            return super()._get_action_dist_from_latent(latent_pi)  # type: ignore[misc]
        logits = mask_seen(self.action_net(latent_pi), self._observation)
        return self.action_dist.proba_distribution(action_logits=logits)  # type: ignore[attr-defined]

    # The three ways SB3 reaches the distribution, each given the observation to mask from.
    def forward(self, obs: torch.Tensor, *args: Any, **kwargs: Any) -> Any:
        self._observation = obs
        return super().forward(obs, *args, **kwargs)  # type: ignore[misc]

    def evaluate_actions(self, obs: torch.Tensor, *args: Any, **kwargs: Any) -> Any:
        self._observation = obs
        return super().evaluate_actions(obs, *args, **kwargs)  # type: ignore[misc]

    def get_distribution(self, obs: torch.Tensor, *args: Any, **kwargs: Any) -> Any:
        self._observation = obs
        return super().get_distribution(obs, *args, **kwargs)  # type: ignore[misc]

    def movie_scores(self, obs: torch.Tensor) -> torch.Tensor:
        """The head's scores of every movie, unmasked (what the evaluation ranks)."""
        features = self.extract_features(obs, self.pi_features_extractor)  # type: ignore[attr-defined]
        return self.action_net(self.mlp_extractor.forward_actor(features))  # type: ignore[attr-defined]

    def _n_movies(self) -> int:
        space: Any = self.action_space  # type: ignore[attr-defined]
        return int(space.n) if hasattr(space, "n") else int(space.nvec[0])  # Discrete, or slates

    def _replace_action_net(self, lr_schedule: Schedule) -> None:
        if self.mlp_extractor.latent_dim_pi != self.features_dim and self.tie_embeddings:  # type: ignore[attr-defined]
            raise ValueError("tie_embeddings: needs net_arch=dict(pi=[], ...) (the actor reads the features)")
        self.action_net = _head(
            self.pi_features_extractor,  # type: ignore[attr-defined]
            self.mlp_extractor.latent_dim_pi,  # type: ignore[attr-defined]
            self._n_movies(),
            1,
            self.tie_embeddings,  # type: ignore[attr-defined]
            self.head_init_std,  # type: ignore[attr-defined]
        )
        # SB3 built the optimizer over the replaced Linear: build it again over the head, as SB3 does.
        policy: Any = self
        self.optimizer = policy.optimizer_class(
            policy.parameters(), lr=lr_schedule(1), **policy.optimizer_kwargs
        )


# The mixin's forward / evaluate_actions / get_distribution take SB3's arguments through *args.
class CatalogueActorCriticPolicy(_CatalogueActorCritic, ActorCriticPolicy):  # type: ignore[misc]
    """SB3's ``ActorCriticPolicy`` (PPO, A2C) whose actor is a :class:`MovieScoringHead`.

    ``PPO(CatalogueActorCriticPolicy, env, policy_kwargs=dict(features_extractor_class=
    SparseInputExtractor, ...))``, or ``policy: rlrec.nn.CatalogueActorCriticPolicy`` in a zoo YAML.

    :param tie_embeddings: score with the extractor's input table (needs ``net_arch`` ``pi=[]``
        and :class:`SparseInputExtractor`); default False.
    :param head_init_std: standard deviation of the head's own embedding; default 0.01.
    :param mask_observed: never draw a movie the observation shows (non-zero entry): with
        ``show_misses`` those are exactly the env's ``action_masks()``, so PPO and A2C get
        MaskablePPO's masking from the observation alone; default False.
    Every other argument is SB3's.
    """

    _options = ("tie_embeddings", "head_init_std", "mask_observed")

    def _build(self, lr_schedule: Schedule) -> None:
        super()._build(lr_schedule)
        self._replace_action_net(lr_schedule)


class MaskableCatalogueActorCriticPolicy(_CatalogueActorCritic, MaskableActorCriticPolicy):  # type: ignore[misc]
    """sb3-contrib's ``MaskableActorCriticPolicy`` (MaskablePPO) with the head of
    :class:`CatalogueActorCriticPolicy` (same arguments); ``action_masks()`` still decide what
    may be drawn."""

    def _build(self, lr_schedule: Schedule) -> None:
        super()._build(lr_schedule)
        self._replace_action_net(lr_schedule)


class CatalogueSlatePolicy(_CatalogueActorCritic, SlatePolicy):  # type: ignore[misc]
    """:class:`rlrec.nn.SlatePolicy` (PPO, A2C on ``MultiDiscrete([n_movies] * K)`` slates) whose
    movie scores come from a :class:`MovieScoringHead`, so that :class:`ActionPriorCallback`
    starts its Plackett-Luce slates at the env's prior (the movies its users liked most).

    Movies the observation shows are never drawn, as with ``SlatePolicy``. Arguments:
    ``tie_embeddings`` and ``head_init_std`` as :class:`CatalogueActorCriticPolicy`; SB3's otherwise.
    """

    _options = ("tie_embeddings", "head_init_std")

    def _build(self, lr_schedule: Schedule) -> None:
        super()._build(lr_schedule)
        self._replace_action_net(lr_schedule)


def _replace_q_head(net: Any, sequential: str, n_outputs: int, tie: bool, init_std: float) -> None:
    """Swap the last ``Linear`` of ``net.<sequential>`` (SB3's Q / quantile MLP) for the head."""
    layers = list(getattr(net, sequential))
    last = layers[-1]
    assert isinstance(last, nn.Linear)
    n_movies = int(net.action_space.n)
    if tie and last.in_features != net.features_dim:
        raise ValueError("tie_embeddings: needs net_arch=[] (the head reads the features)")
    head = _head(net.features_extractor, last.in_features, n_movies, n_outputs, tie, init_std)
    setattr(net, sequential, nn.Sequential(*layers[:-1], head))


class CatalogueDQNPolicy(_HeadOptions, UnseenDQNPolicy):
    """:class:`rlrec.nn.UnseenDQNPolicy` (DQN) whose Q-head is a :class:`MovieScoringHead`.

    The prior starts ``Q(s, a)`` at the share ``p[a]``: with gamma 0 and a binary reward the
    Q-value is the probability of a hit, and ``p`` is its value for a user one knows nothing of.

    :param tie_embeddings: as :class:`CatalogueActorCriticPolicy` (needs ``net_arch=[]``).
    :param head_init_std: as :class:`CatalogueActorCriticPolicy`.
    """

    def make_q_net(self) -> SB3QNetwork:
        net = super().make_q_net()
        _replace_q_head(net, "q_net", 1, self.tie_embeddings, self.head_init_std)
        return net.to(self.device)


class CatalogueQRDQNPolicy(_HeadOptions, UnseenQRDQNPolicy):
    """:class:`rlrec.nn.UnseenQRDQNPolicy` (QR-DQN) whose quantile head is a
    :class:`MovieScoringHead` with one output per quantile; the prior starts every quantile of
    movie ``a`` at ``p[a]`` (arguments as :class:`CatalogueDQNPolicy`)."""

    def make_quantile_net(self) -> QuantileNetwork:
        net = super().make_quantile_net()
        _replace_q_head(net, "quantile_net", net.n_quantiles, self.tie_embeddings, self.head_init_std)
        return net.to(self.device)


class ActionPriorCallback(BaseCallback):
    """Sets a catalogue policy's prior from ``env.action_prior()`` when a fresh model starts training.

    A resumed model (``num_timesteps > 0``) keeps what it learned. In a zoo YAML:
    ``callback: rlrec.nn.ActionPriorCallback``; in code: ``model.learn(n, callback=ActionPriorCallback())``.
    Put it before any callback that evaluates at the start of training.
    """

    def _on_training_start(self) -> None:
        if self.model.num_timesteps > 0:
            return
        policy: Any = self.model.policy
        if not hasattr(policy, "set_action_prior"):
            raise ValueError(
                f"ActionPriorCallback: {type(policy).__name__} has no movie-scoring head "
                "(use rlrec.nn.Catalogue*Policy)"
            )
        prior = self.training_env.env_method("action_prior", indices=[0])[0]
        policy.set_action_prior(prior)

    def _on_step(self) -> bool:
        return True
