"""SparseInputExtractor against the dense computation it replaces: forward and gradients."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import torch

from rlrec.nn import SparseInputExtractor


def _batch(rng: np.random.Generator, rows: int, width: int) -> torch.Tensor:
    obs = np.zeros((rows, width), dtype=np.float32)
    for row in range(rows - 1):  # the last row stays all-zero
        cols = rng.choice(width, size=rng.integers(1, 6), replace=False)
        obs[row, cols] = rng.choice([1.0, -1.0, 0.4, 0.9], size=len(cols))
    return torch.from_numpy(obs)


@pytest.mark.parametrize("normalization", [None, "sqrt_count"])
def test_forward_and_gradients_equal_the_dense_linear_map(normalization: str | None) -> None:
    torch.manual_seed(0)
    space = gym.spaces.Box(-1.0, 1.0, shape=(30,), dtype=np.float32)
    extractor = SparseInputExtractor(space, features_dim=7, normalization=normalization)
    obs = _batch(np.random.default_rng(1), 6, 30)

    out = extractor(obs)
    weights = (torch.arange(7, dtype=torch.float32) + 1.0) / 7.0
    (out * weights).sum().backward()

    # Independent route: a dense matmul on a copy of the parameters.
    weight = extractor.weight.detach().clone().requires_grad_(True)
    bias = extractor.bias.detach().clone().requires_grad_(True)
    scaled = obs.clone()
    if normalization == "sqrt_count":
        counts = (obs != 0).sum(dim=1).clamp(min=1).float()
        scaled = obs / counts.sqrt()[:, None]
    expected = torch.relu(scaled @ weight + bias)
    (expected * weights).sum().backward()

    torch.testing.assert_close(out, expected, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(extractor.weight.grad, weight.grad, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(extractor.bias.grad, bias.grad, rtol=1e-5, atol=1e-6)
    # Rows of movies no observation shows get no gradient (what RowSparseAdam relies on).
    unseen = (obs != 0).sum(dim=0) == 0
    assert torch.all(extractor.weight.grad[unseen] == 0)


def test_sqrt_count_by_hand() -> None:
    space = gym.spaces.Box(0.0, 1.0, shape=(4,), dtype=np.float32)
    extractor = SparseInputExtractor(space, features_dim=1, normalization="sqrt_count", activation_fn=None)
    with torch.no_grad():
        extractor.weight.copy_(torch.tensor([[1.0], [2.0], [3.0], [4.0]]))
    out = extractor(torch.tensor([[1.0, 0.0, 0.0, 1.0], [0.0, 1.0, 0.0, 0.0]]))
    # Row 0: (1 + 4) / sqrt(2); row 1: 2 / sqrt(1).
    torch.testing.assert_close(out[:, 0], torch.tensor([5.0 / 2.0**0.5, 2.0]))


def test_dropout_only_in_train_mode() -> None:
    torch.manual_seed(0)
    space = gym.spaces.Box(0.0, 1.0, shape=(20,), dtype=np.float32)
    extractor = SparseInputExtractor(space, features_dim=64, dropout=0.5)
    obs = torch.ones(3, 20)
    extractor.eval()
    torch.testing.assert_close(extractor(obs), extractor(obs))
    extractor.train()
    dropped = extractor(obs)
    assert 0 < int((dropped == 0).sum()) < dropped.numel()


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"normalization": "l2"}, "normalization"),
        ({"dropout": 1.0}, "dropout"),
        ({"features_dim": 0}, "features_dim"),
    ],
)
def test_bad_arguments_are_refused(kwargs: dict, message: str) -> None:
    space = gym.spaces.Box(0.0, 1.0, shape=(5,), dtype=np.float32)
    with pytest.raises(ValueError, match=message):
        SparseInputExtractor(space, **kwargs)


def test_needs_a_flat_box() -> None:
    with pytest.raises(ValueError, match="flat Box"):
        SparseInputExtractor(gym.spaces.Box(0.0, 1.0, shape=(2, 3)))


def test_dense_batches_take_the_same_map() -> None:
    torch.manual_seed(0)
    space = gym.spaces.Box(0.0, 5.0, shape=(40,), dtype=np.float32)
    extractor = SparseInputExtractor(space, features_dim=5, normalization="sqrt_count")
    obs = torch.full((3, 40), 3.5)
    obs[:, :4] = torch.tensor([4.0, 0.0, 5.0, 1.0])  # a profile: a mean everywhere, a few ratings
    out = extractor(obs)
    out.sum().backward()
    weight = extractor.weight.detach().clone().requires_grad_(True)
    scaled = obs / (obs != 0).sum(dim=1, keepdim=True).float().sqrt()
    expected = torch.relu(scaled @ weight + extractor.bias.detach())
    expected.sum().backward()
    torch.testing.assert_close(out, expected)
    torch.testing.assert_close(extractor.weight.grad, weight.grad)
