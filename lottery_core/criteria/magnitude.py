"""magnitude: |θ| (ℓ1). Data-free; at block level it grows with the stage's width."""
import torch
import torch.nn as nn

from lottery_core.criteria.common import weight_parameters


def magnitude(model: nn.Module, batches) -> dict[str, torch.Tensor]:
    """|θ| of every conv and linear weight."""
    return {k: w.detach().abs() for k, w in weight_parameters(model).items()}
