"""magnitude: |θ| (ℓ1), in weight units. Data-free; at block level (sum) it grows with the stage's width.

It reads only weights, so it cannot see a silenced block: zeroing a block's last BN (γ = β = 0)
makes its branch output 0 but leaves its conv weights, and its score, unchanged.
"""
import torch
import torch.nn as nn

from lottery_core.criteria.common import weight_parameters


def magnitude(model: nn.Module, batches) -> dict[str, torch.Tensor]:
    """|θ| of every conv and linear weight."""
    return {k: w.detach().abs() for k, w in weight_parameters(model).items()}
