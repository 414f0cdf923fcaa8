"""ItemItemQNetwork against the dense formula, its sparse gradient, and the optimizer path it needs."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import torch

from rlrec.nn import ItemItemQNetwork, RowSparseAdam, clip_grad_norm

N = 7


def _net(normalization: str | None = None) -> ItemItemQNetwork:
    net = ItemItemQNetwork(gym.spaces.Box(0.0, 1.0, (N,), np.float32), N, normalization)
    with torch.no_grad():
        net.weight.copy_(torch.arange(N * N, dtype=torch.float32).reshape(N, N) / 10.0)
        net.bias.copy_(torch.arange(N, dtype=torch.float32))
    return net


def _obs() -> torch.Tensor:
    obs = torch.zeros(3, N)
    obs[0, [1, 4]] = torch.tensor([1.0, 0.5])
    obs[1, 6] = 0.25
    return obs  # row 2 shows nothing


@pytest.mark.parametrize("normalization", [None, "sqrt_count"])
def test_q_values_are_the_dense_item_item_formula(normalization: str | None) -> None:
    net = _net(normalization)
    obs = _obs()
    # By hand: Q(s, i) = b_i + sum_j x_j W[j, i], x divided by sqrt(#non-zeros) with sqrt_count.
    scale = torch.tensor([1 / 2**0.5, 1.0, 1.0]) if normalization else torch.ones(3)
    expected = (obs * scale[:, None]) @ net.weight.detach() + net.bias.detach()
    torch.testing.assert_close(net(obs), expected)
    actions = torch.tensor([[0, 3], [2, 5], [6, 1]])
    torch.testing.assert_close(net.q_of_slates(obs, actions), expected.gather(1, actions))
    torch.testing.assert_close(net.q_of(obs, actions[:, 0]), expected.gather(1, actions[:, :1]).reshape(-1))


def test_gradient_is_sparse_on_the_pairs_involved_and_equals_the_dense_one() -> None:
    net = _net("sqrt_count")
    obs, actions = _obs(), torch.tensor([[0, 3], [2, 5], [6, 1]])
    targets = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    ((net.q_of_slates(obs, actions) - targets) ** 2).sum().backward()
    assert net.weight.grad is not None and net.weight.grad.is_sparse
    dense_w = net.weight.detach().clone().requires_grad_()
    dense_b = net.bias.detach().clone().requires_grad_()
    scale = torch.tensor([1 / 2**0.5, 1.0, 1.0])
    q = ((obs * scale[:, None]) @ dense_w + dense_b).gather(1, actions)
    ((q - targets) ** 2).sum().backward()
    torch.testing.assert_close(net.weight.grad.to_dense(), dense_w.grad)
    torch.testing.assert_close(net.bias.grad, dense_b.grad)
    # Only (shown movie j, slate movie i) pairs: rows 1 and 4 x {0, 3}, row 6 x {2, 5}.
    touched = {tuple(pair) for pair in net.weight.grad.coalesce().indices().t().tolist()}
    assert touched == {(1, 0), (1, 3), (4, 0), (4, 3), (6, 2), (6, 5)}


def test_refuses_an_observation_that_is_not_one_entry_per_movie() -> None:
    with pytest.raises(ValueError, match="one observation entry per movie"):
        ItemItemQNetwork(gym.spaces.Box(0.0, 1.0, (N + 1,), np.float32), N)
    with pytest.raises(ValueError, match="input_normalization"):
        ItemItemQNetwork(gym.spaces.Box(0.0, 1.0, (N,), np.float32), N, "l2")


def test_sparse_adam_moves_the_touched_entries_as_adam_and_leaves_the_rest() -> None:
    torch.manual_seed(0)
    ours = torch.nn.Parameter(torch.randn(N, N))
    ref = torch.nn.Parameter(ours.detach().clone())
    opt = RowSparseAdam([ours], lr=0.01, betas=(0.8, 0.99), eps=1e-6)
    adam = torch.optim.Adam([ref], lr=0.01, betas=(0.8, 0.99), eps=1e-6, foreach=False)
    entries = torch.tensor([[0, 3, 3, 6], [2, 1, 1, 6]])  # (3, 1) twice: summed, as autograd does
    before = ours.detach().clone()
    for step in range(4):
        values = torch.randn(4, generator=torch.Generator().manual_seed(step))
        ours.grad = torch.sparse_coo_tensor(entries, values, (N, N), check_invariants=True)
        ref.grad = ours.grad.to_dense()
        opt.step()
        adam.step()
    # The same entries every step: dense Adam's moments elsewhere stay 0, so it leaves them too.
    torch.testing.assert_close(ours, ref, rtol=1e-6, atol=1e-7)
    moved = (ours.detach() != before).nonzero().tolist()
    assert moved == [[0, 2], [3, 1], [6, 6]]


def test_clip_grad_norm_matches_torch_on_dense_and_takes_sparse_gradients() -> None:
    dense = [torch.nn.Parameter(torch.zeros(3, 2)), torch.nn.Parameter(torch.zeros(2))]
    ref = [torch.nn.Parameter(torch.zeros(3, 2)), torch.nn.Parameter(torch.zeros(2))]
    sparse = torch.nn.Parameter(torch.zeros(3, 2))
    grads = [torch.tensor([[3.0, 0.0], [0.0, 4.0], [0.0, 0.0]]), torch.tensor([0.0, 12.0])]
    for param, other, grad in zip(dense, ref, grads, strict=True):
        param.grad, other.grad = grad.clone(), grad.clone()
    assert float(clip_grad_norm(dense, 1.0)) == pytest.approx(13.0)  # sqrt(9 + 16 + 144)
    torch.nn.utils.clip_grad_norm_(ref, 1.0)
    for param, other in zip(dense, ref, strict=True):
        torch.testing.assert_close(param.grad, other.grad)
    # The first gradient as a sparse tensor with a duplicated entry (1.5 + 1.5 = 3): norm 5, so
    # a limit of 1 scales it by 1/5 (and coalesces it in place).
    sparse.grad = torch.sparse_coo_tensor(
        torch.tensor([[0, 0, 1], [0, 0, 1]]), torch.tensor([1.5, 1.5, 4.0]), (3, 2), check_invariants=True
    )
    assert float(clip_grad_norm([sparse], 1.0)) == pytest.approx(5.0)
    assert sparse.grad.is_sparse
    torch.testing.assert_close(sparse.grad.to_dense(), grads[0] / 5.0)
