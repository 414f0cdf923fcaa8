"""SB3-native components for catalogue-sized observations, each plugged in where SB3 documents it.

* :class:`SparseInputExtractor`: ``policy_kwargs=dict(features_extractor_class=...)``;
* :class:`RowSparseAdam`: ``policy_kwargs=dict(optimizer_class=...)``;
* :class:`CompactReplayBuffer`: ``replay_buffer_class=...`` of ``DQN`` / ``QRDQN``;
* :class:`UnseenDQNPolicy`, :class:`UnseenQRDQNPolicy`: the ``policy`` of ``DQN`` / ``QRDQN``;
* :class:`SlatePolicy`: the ``policy`` of ``PPO`` / ``A2C`` for slates (``MultiDiscrete``), one
  score per movie and slates drawn without replacement (:class:`SlateDistribution`);
* :class:`TargetValues`, :class:`StateTargetValues`: DQN's bootstrap values of a batch, the
  latter cached per state between hard target syncs (exact, for envs that name their states);
* :class:`CatalogueActorCriticPolicy`, :class:`MaskableCatalogueActorCriticPolicy`,
  :class:`CatalogueDQNPolicy`, :class:`CatalogueQRDQNPolicy`: the ``policy`` of ``PPO`` / ``A2C``,
  ``MaskablePPO``, ``DQN``, ``QRDQN`` with a :class:`MovieScoringHead` (a per-movie embedding and
  bias) that :class:`ActionPriorCallback` starts at the env's ``action_prior()``;
* :class:`GRUSequenceExtractor`, :class:`SelfAttentionSequenceExtractor`: GRU4Rec and SASRec
  as ``features_extractor_class`` over ``observation="sequence"``;
* :class:`CatalogueSlatePolicy`: :class:`SlatePolicy` with the head and the prior;
* :class:`FreshBatch`, :class:`TensorReplayBuffer`: the memories of ``dqn`` / ``slateq`` over
  a torch-backend env (tensors kept on its device);
* :class:`QNetwork`: the Q-network of rlrec's own value learners (``dqn``, ``slateq``), built
  from :class:`SparseInputExtractor`; :class:`ItemItemQNetwork`: their full-rank linear
  item-item one (EASE's form), trained on the entries a batch touches only.

They know SB3 and torch, not rlrec's envs: they read observations and nothing else.
"""

from rlrec.nn.buffers import CompactReplayBuffer
from rlrec.nn.catalogue import (
    ActionPriorCallback,
    CatalogueActorCriticPolicy,
    CatalogueDQNPolicy,
    CatalogueQRDQNPolicy,
    CatalogueSlatePolicy,
    MaskableCatalogueActorCriticPolicy,
    MovieScoringHead,
    prior_logits,
)
from rlrec.nn.item_item import ItemItemQNetwork
from rlrec.nn.optim import RowSparseAdam, clip_grad_norm
from rlrec.nn.policies import (
    QNetwork,
    SlateDistribution,
    SlatePolicy,
    UnseenDQNPolicy,
    UnseenQRDQNPolicy,
    mask_seen,
)
from rlrec.nn.sequence import GRUSequenceExtractor, SelfAttentionSequenceExtractor
from rlrec.nn.targets import StateTargetValues, TargetValues
from rlrec.nn.tensor_buffers import FreshBatch, TensorReplayBuffer
from rlrec.nn.torch_layers import SparseInputExtractor, sqrt_count_scale

__all__ = [
    "ActionPriorCallback",
    "CatalogueActorCriticPolicy",
    "CatalogueDQNPolicy",
    "CatalogueQRDQNPolicy",
    "CatalogueSlatePolicy",
    "CompactReplayBuffer",
    "FreshBatch",
    "GRUSequenceExtractor",
    "ItemItemQNetwork",
    "MaskableCatalogueActorCriticPolicy",
    "MovieScoringHead",
    "QNetwork",
    "RowSparseAdam",
    "SelfAttentionSequenceExtractor",
    "SlateDistribution",
    "SlatePolicy",
    "SparseInputExtractor",
    "StateTargetValues",
    "TargetValues",
    "TensorReplayBuffer",
    "UnseenDQNPolicy",
    "UnseenQRDQNPolicy",
    "clip_grad_norm",
    "mask_seen",
    "prior_logits",
    "sqrt_count_scale",
]
