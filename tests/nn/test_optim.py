"""RowSparseAdam against torch's Adam: the touched rows move exactly as Adam moves them."""

from __future__ import annotations

import pytest
import torch

from rlrec.nn import RowSparseAdam


def _pair(rows: int = 2048, width: int = 4) -> tuple[torch.nn.Parameter, torch.nn.Parameter]:
    torch.manual_seed(0)
    big = torch.nn.Parameter(torch.randn(rows, width))
    small = torch.nn.Parameter(torch.randn(width))
    return big, small


def _grads(step: int, rows: int, width: int, touched: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(100 + step)
    big = torch.zeros(rows, width)
    big[touched] = torch.randn(len(touched), width, generator=gen)
    return big, torch.randn(width, generator=gen)


def _step_side_by_side(
    ours: torch.optim.Optimizer,
    theirs: torch.optim.Optimizer,
    pairs: list[tuple[torch.nn.Parameter, torch.nn.Parameter]],
    steps: int,
    touched: torch.Tensor,
) -> None:
    """``steps`` steps of both optimizers on the same gradients (``_grads``), ours on the first
    parameter of each pair and theirs on the second."""
    (big, ref_big), (small, ref_small) = pairs
    for step in range(steps):
        g_big, g_small = _grads(step, big.shape[0], big.shape[1], touched)
        big.grad, ref_big.grad = g_big.clone(), g_big.clone()
        small.grad, ref_small.grad = g_small.clone(), g_small.clone()
        ours.step()
        theirs.step()


def test_touched_rows_follow_adam_and_the_others_stay() -> None:
    big, small = _pair()
    ref_big, ref_small = (torch.nn.Parameter(p.detach().clone()) for p in (big, small))
    ours = RowSparseAdam([big, small], lr=0.01, betas=(0.8, 0.99), eps=1e-6)
    adam = torch.optim.Adam([ref_big, ref_small], lr=0.01, betas=(0.8, 0.99), eps=1e-6, foreach=False)
    touched = torch.tensor([3, 17, 500, 2047])
    before = big.detach().clone()
    _step_side_by_side(ours, adam, [(big, ref_big), (small, ref_small)], 5, touched)
    # Always the same rows touched: Adam's moments on the others stay 0, so Adam leaves them too.
    torch.testing.assert_close(big, ref_big, rtol=1e-6, atol=1e-7)
    torch.testing.assert_close(small, ref_small, rtol=1e-6, atol=1e-7)
    untouched = torch.ones(2048, dtype=torch.bool)
    untouched[touched] = False
    assert torch.equal(big[untouched], before[untouched])


def test_rows_touched_earlier_do_not_drift_on_momentum() -> None:
    big, _ = _pair()
    ours = RowSparseAdam([big], lr=0.1)
    big.grad = torch.zeros_like(big)
    big.grad[5] = 1.0
    ours.step()
    after_first = big.detach().clone()
    big.grad = torch.zeros_like(big)
    big.grad[6] = 1.0
    ours.step()
    assert torch.equal(big[5], after_first[5])  # dense Adam would move row 5 again
    # Row 6 got its first update at step 2: m = 0.1, v = 0.001, bias-corrected with step 2.
    m_hat, v_hat = 0.1 / (1 - 0.9**2), 0.001 / (1 - 0.999**2)
    expected = after_first[6] - 0.1 * m_hat / (v_hat**0.5 + 1e-8)
    torch.testing.assert_close(big[6], expected)


def test_many_touched_rows_take_the_dense_update() -> None:
    big, _ = _pair(rows=2048)
    ref = torch.nn.Parameter(big.detach().clone())
    ours, adam = (
        RowSparseAdam([big], lr=0.01, max_touched=0.5),
        torch.optim.Adam([ref], lr=0.01, foreach=False),
    )
    for step in range(3):
        grad = torch.randn(2048, 4, generator=torch.Generator().manual_seed(step))
        grad[: 2048 // 4] = 0.0  # 75% touched: dense path, every row as Adam (momentum included)
        big.grad, ref.grad = grad.clone(), grad.clone()
        ours.step()
        adam.step()
    torch.testing.assert_close(big, ref, rtol=1e-6, atol=1e-7)


def test_sparse_gradients_are_accepted() -> None:
    torch.manual_seed(0)
    table = torch.nn.Embedding(3000, 4, sparse=True)
    ref = torch.nn.Embedding(3000, 4, sparse=False)
    ref.weight.data.copy_(table.weight.data)
    ours, adam = RowSparseAdam(table.parameters(), lr=0.01), torch.optim.Adam(ref.parameters(), lr=0.01)
    index = torch.tensor([4, 4, 9, 2999])
    table(index).sum().backward()
    ref(index).sum().backward()
    ours.step()
    adam.step()
    torch.testing.assert_close(table.weight, ref.weight, rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize(
    ("decoupled", "reference"), [(False, torch.optim.Adam), (True, torch.optim.AdamW)], ids=["adam", "adamw"]
)
def test_weight_decay_on_a_dense_update_is_torchs(decoupled: bool, reference: type) -> None:
    big, small = _pair(rows=16)  # under min_rows: the dense update
    ref_big, ref_small = (torch.nn.Parameter(p.detach().clone()) for p in (big, small))
    ours = RowSparseAdam([big, small], lr=0.01, weight_decay=0.1, decoupled_weight_decay=decoupled)
    theirs = reference([ref_big, ref_small], lr=0.01, weight_decay=0.1, foreach=False)
    _step_side_by_side(ours, theirs, [(big, ref_big), (small, ref_small)], 3, torch.arange(16))
    torch.testing.assert_close(big, ref_big, rtol=1e-6, atol=1e-7)
    torch.testing.assert_close(small, ref_small, rtol=1e-6, atol=1e-7)


def test_weight_decay_on_sparse_entries_acts_on_the_touched_ones_only() -> None:
    weight = torch.nn.Parameter(torch.full((1100, 3), 2.0))
    ours = RowSparseAdam([weight], lr=0.01, weight_decay=0.1)
    # Entry (4, 1) is touched with a zero data gradient: only the penalty moves it. Its gradient
    # is 0.1 * 2 = 0.2, and Adam's first bias-corrected step is lr * g / |g| = 0.01 (eps aside).
    weight.grad = torch.sparse_coo_tensor(
        torch.tensor([[4], [1]]), torch.tensor([0.0]), weight.shape, check_invariants=True
    )
    ours.step()
    expected = torch.full((1100, 3), 2.0)
    expected[4, 1] = 2.0 - 0.01 * 0.2 / (0.2 + 1e-8)
    torch.testing.assert_close(weight.detach(), expected, rtol=0, atol=1e-7)


def test_decoupled_weight_decay_shrinks_every_entry_of_a_sparse_update() -> None:
    weight = torch.nn.Parameter(torch.full((1100, 3), 2.0))
    ours = RowSparseAdam([weight], lr=0.01, weight_decay=0.1, decoupled_weight_decay=True)
    weight.grad = torch.sparse_coo_tensor(
        torch.tensor([[4, 7], [1, 0]]), torch.tensor([0.0, 1.0]), weight.shape, check_invariants=True
    )
    ours.step()
    # Every entry: 2 * (1 - 0.01 * 0.1) = 1.998. Entry (7, 0) then takes Adam's first step of
    # lr * g / |g| = 0.01 (eps aside); entry (4, 1), with a zero gradient, no more.
    expected = torch.full((1100, 3), 1.998)
    expected[7, 0] = 1.998 - 0.01 * 1.0 / (1.0 + 1e-8)
    torch.testing.assert_close(weight.detach(), expected, rtol=0, atol=1e-6)


def test_a_state_saved_without_weight_decay_loads_with_none() -> None:
    big, _ = _pair(rows=16)
    ours = RowSparseAdam([big], lr=0.01, weight_decay=0.5)
    state = ours.state_dict()
    del state["param_groups"][0]["weight_decay"], state["param_groups"][0]["decoupled_weight_decay"]
    ours.load_state_dict(state)
    assert ours.param_groups[0]["weight_decay"] == 0.0
    assert ours.param_groups[0]["decoupled_weight_decay"] is False


@pytest.mark.parametrize(
    "kwargs", [{"lr": -1.0}, {"betas": (1.0, 0.9)}, {"eps": 0.0}, {"weight_decay": -0.1}]
)
def test_bad_arguments(kwargs: dict) -> None:
    with pytest.raises(ValueError):
        RowSparseAdam([torch.nn.Parameter(torch.zeros(2))], **kwargs)
