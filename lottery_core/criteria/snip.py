"""SNIP (Lee et al. 2019): |θ ⊙ ∂L/∂θ|, the first-order change of the loss if a weight is removed."""
import torch
import torch.nn as nn

from lottery_core.criteria.common import grad_of_mean_loss, weight_parameters


def snip(model: nn.Module, batches) -> dict[str, torch.Tensor]:
    """|θ ⊙ ∇L| with L the mean cross-entropy over all scoring images."""
    weights = weight_parameters(model)
    grads = grad_of_mean_loss(model, list(weights.values()), batches)
    return {k: (w.detach() * g).abs() for (k, w), g in zip(weights.items(), grads, strict=True)}
