"""GraSP (Wang et al. 2020): θ ⊙ Hg, how much removing a weight would reduce the gradient flow.

Removing weight θ changes the gradient norm gᵀg by about −2 θ ⊙ Hg, so a weight with a large
positive θ ⊙ Hg carries gradient flow (keep) and one with the most negative value is removed
first. The original code prunes the largest −θ ⊙ Hg, Synaptic-Flow keeps the largest θ ⊙ Hg:
the same ordering, and the one used here (higher = keep).

Signed by design: a block whose residual branch is silenced (last BN γ = β = 0) gets exactly 0 on
its weights (no gradient reaches them), which is NOT the lowest block score whenever other
blocks sum to negative values, so GraSP may keep a block that does nothing.
"""
from __future__ import annotations  # annotations name torch types without importing torch

from typing import TYPE_CHECKING

from lottery_core.options import Option

if TYPE_CHECKING:
    import torch
    import torch.nn as nn

# torch is imported where the criterion scores: the registry reads OPTIONS without it. The
# signature's default is the declaration's (registry.check_declarations checks they agree).
TEMPERATURE = Option("temperature", float, 200.0, "GraSP softmax temperature: logits / T (Wang et al. use 200)",
                     low=0.0, low_open=True)
OPTIONS = (TEMPERATURE,)


def grasp(model: nn.Module, batches, *, temperature: float = TEMPERATURE.default) -> dict[str, torch.Tensor]:
    """θ ⊙ Hg with H, g the Hessian and gradient of the mean loss of logits / `temperature`
    with respect to the conv and linear weights (other parameters held fixed).

    Attention runs on torch's math kernel here: the fused (flash) kernels have no second
    derivative, which the Hessian-vector product needs (same values, up to rounding)."""
    from torch.nn.attention import SDPBackend, sdpa_kernel

    with sdpa_kernel(SDPBackend.MATH):
        return _grasp(model, batches, temperature)


def _grasp(model: nn.Module, batches, temperature: float) -> dict[str, torch.Tensor]:
    import torch

    from lottery_core.criteria.common import grad_of_mean_loss, mean_losses, weight_parameters

    weights = weight_parameters(model)
    params = list(weights.values())
    if len(batches) == 1:  # one graph serves both passes: g is its detached gradient
        (loss,) = mean_losses(model, batches, temperature)
        grads = torch.autograd.grad(loss, params, create_graph=True)
        hg = torch.autograd.grad(_dot([g.detach() for g in grads], grads), params)
    else:
        g = grad_of_mean_loss(model, params, batches, temperature)       # pass 1: g, no graph
        hg = [torch.zeros_like(w) for w in params]
        for loss in mean_losses(model, batches, temperature):            # pass 2: ∇(g · ∇L) = Hg
            grads = torch.autograd.grad(loss, params, create_graph=True)
            for acc, h in zip(hg, torch.autograd.grad(_dot(g, grads), params), strict=True):
                acc += h
    return {k: w.detach() * h for (k, w), h in zip(weights.items(), hg, strict=True)}


def _dot(a: list[torch.Tensor], b: list[torch.Tensor]) -> torch.Tensor:
    return sum((x * y).sum() for x, y in zip(a, b, strict=True))
