"""An Adam that updates only the rows a batch touched (SB3's ``optimizer_class``).

A Q-network or policy over a catalogue has two ``n_movies x width`` matrices: the input table
(:class:`rlrec.nn.SparseInputExtractor`) and the output layer. A DQN batch of 64 transitions
puts gradient on the rows of the ~2,000 movies its observations show and of its 64 actions;
Adam still reads and writes all 2 x 2.6M weights and both moment buffers every step, which is
most of a gradient step's time on 2 CPU cores. :class:`RowSparseAdam` applies Adam's update to
the rows with a non-zero gradient only ("lazy" Adam, the update of ``torch.optim.SparseAdam``),
and plain Adam to everything else.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from typing import Any

import torch

__all__ = ["RowSparseAdam", "clip_grad_norm"]


class RowSparseAdam(torch.optim.Optimizer):
    """Adam, but a large matrix whose gradient is zero on most rows is updated on its other rows only.

    A parameter is treated row by row when it is 2-D with at least ``min_rows`` rows and at most
    ``max_touched`` of its rows have a non-zero gradient (a sparse gradient, as from
    ``nn.Embedding(sparse=True)``, always is, and one sparse in both dimensions, as from
    :class:`~rlrec.nn.ItemItemQNetwork`, is updated entry by entry); every other parameter gets
    exactly Adam's update (``torch.optim.Adam`` without amsgrad). On the touched
    rows the update is Adam's, with the parameter's own step count for the bias correction;
    untouched rows keep their weights and moments (so they do not drift on stale momentum,
    unlike dense Adam).

    Usable from SB3 as ``policy_kwargs=dict(optimizer_class=RowSparseAdam,
    optimizer_kwargs=dict(...))``; SB3 passes ``lr`` from the learning-rate schedule and
    updates it in ``param_groups`` as it does for Adam.

    :param params: parameters or parameter groups, as every torch optimizer.
    :param lr: step size; default 1e-3 (Adam's).
    :param betas: Adam's moment decays; default (0.9, 0.999).
    :param eps: Adam's denominator term; default 1e-8.
    :param min_rows: smallest row count for the row-wise update; default 1,024 (small layers gain
        nothing from it).
    :param max_touched: largest share of touched rows for the row-wise update (above it the dense
        update is as cheap); default 0.5.
    :param weight_decay: L2 penalty; default 0. Coupled (added to the gradient, as
        ``torch.optim.Adam``'s), it acts on a row-wise or entry-wise update's touched weights only,
        so a weight decays each time a batch uses it: a penalty that grows with how often a movie
        is seen, the popularity-scaled ridge of EDLAE (Steck, 2020), not a uniform one.
    :param decoupled_weight_decay: AdamW's decay instead (``torch.optim.Adam``'s flag of that
        name): every weight of the parameter, touched or not, is multiplied by ``1 - lr *
        weight_decay`` each step, a uniform ridge like EASE's; default False.
    """

    def __init__(
        self,
        params: Iterable[Any],
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        min_rows: int = 1024,
        max_touched: float = 0.5,
        weight_decay: float = 0.0,
        decoupled_weight_decay: bool = False,
    ) -> None:
        if not lr >= 0.0:
            raise ValueError(f"lr must be >= 0, got {lr}")
        if not (0.0 <= betas[0] < 1.0 and 0.0 <= betas[1] < 1.0):
            raise ValueError(f"betas must be in [0, 1), got {betas}")
        if not eps > 0.0:
            raise ValueError(f"eps must be > 0, got {eps}")
        if not weight_decay >= 0.0:
            raise ValueError(f"weight_decay must be >= 0, got {weight_decay}")
        defaults = dict(
            lr=lr,
            betas=tuple(betas),
            eps=eps,
            min_rows=int(min_rows),
            max_touched=max_touched,
            weight_decay=float(weight_decay),
            decoupled_weight_decay=bool(decoupled_weight_decay),
        )
        super().__init__(params, defaults)

    def __setstate__(self, state: dict[str, Any]) -> None:
        # Optimizer states saved before weight_decay existed load with none, as torch's Adam does.
        super().__setstate__(state)
        for group in self.param_groups:
            group.setdefault("weight_decay", 0.0)
            group.setdefault("decoupled_weight_decay", False)

    @torch.no_grad()
    def step(self, closure: Callable[[], float] | None = None) -> float | None:  # type: ignore[override]
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            beta1, beta2 = group["betas"]
            for param in group["params"]:
                if param.grad is None:
                    continue
                state = self.state[param]
                if not state:
                    state["step"] = 0
                    state["exp_avg"] = torch.zeros_like(param, memory_format=torch.preserve_format)
                    state["exp_avg_sq"] = torch.zeros_like(param, memory_format=torch.preserve_format)
                state["step"] += 1
                step = state["step"]
                bias1 = 1.0 - beta1**step
                bias2_sqrt = math.sqrt(1.0 - beta2**step)
                if group["decoupled_weight_decay"] and group["weight_decay"]:
                    param.mul_(1.0 - group["lr"] * group["weight_decay"])
                rows, grad = self._touched_rows(param, group)
                if rows is None:
                    _adam(param, grad, state["exp_avg"], state["exp_avg_sq"], group, bias1, bias2_sqrt)
                    continue
                exp_avg, exp_avg_sq = state["exp_avg"][rows], state["exp_avg_sq"][rows]
                weights = param[rows]
                _adam(weights, grad, exp_avg, exp_avg_sq, group, bias1, bias2_sqrt)
                param[rows] = weights
                state["exp_avg"][rows] = exp_avg
                state["exp_avg_sq"][rows] = exp_avg_sq
        return loss

    @staticmethod
    def _touched_rows(
        param: torch.Tensor, group: dict[str, Any]
    ) -> tuple[torch.Tensor | tuple[torch.Tensor, ...] | None, torch.Tensor]:
        """(rows or entries, their gradient) for the sparse update, or (None, the dense gradient)."""
        grad = param.grad
        assert grad is not None
        if grad.is_sparse:
            grad = grad.coalesce()
            return tuple(grad.indices()), grad.values()
        if param.dim() != 2 or param.shape[0] < group["min_rows"]:
            return None, grad
        rows = grad.ne(0).any(dim=1).nonzero().squeeze(1)
        if rows.numel() > group["max_touched"] * param.shape[0]:
            return None, grad
        return rows, grad[rows]


def _adam(
    param: torch.Tensor,
    grad: torch.Tensor,
    exp_avg: torch.Tensor,
    exp_avg_sq: torch.Tensor,
    group: dict[str, Any],
    bias1: float,
    bias2_sqrt: float,
) -> None:
    """Adam's update in place, the formula of ``torch.optim.Adam`` (its weight decay, no amsgrad)."""
    beta1, beta2 = group["betas"]
    if group["weight_decay"] and not group["decoupled_weight_decay"]:
        grad = grad.add(param, alpha=group["weight_decay"])
    exp_avg.lerp_(grad, 1.0 - beta1)
    exp_avg_sq.mul_(beta2).addcmul_(grad, grad, value=1.0 - beta2)
    denom = (exp_avg_sq.sqrt() / bias2_sqrt).add_(group["eps"])
    param.addcdiv_(exp_avg, denom, value=-group["lr"] / bias1)


@torch.no_grad()
def clip_grad_norm(parameters: Iterable[torch.Tensor], max_norm: float) -> torch.Tensor:
    """``torch.nn.utils.clip_grad_norm_`` (the 2-norm of all gradients together, scaled down to
    ``max_norm``) that also takes sparse gradients, which torch's refuses; they are coalesced
    in place (a duplicate entry is one entry of the gradient). All-dense gradients go to torch's."""
    parameters = list(parameters)
    if not any(param.grad is not None and param.grad.is_sparse for param in parameters):
        return torch.nn.utils.clip_grad_norm_(parameters, max_norm)
    grads = []
    for param in parameters:
        if param.grad is None:
            continue
        if param.grad.is_sparse:
            param.grad = param.grad.coalesce()
            grads.append(param.grad.values())
        else:
            grads.append(param.grad)
    total = torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(grad) for grad in grads]))
    scale = (max_norm / (total + 1e-6)).clamp(max=1.0)
    for grad in grads:
        grad.mul_(scale)
    return total
