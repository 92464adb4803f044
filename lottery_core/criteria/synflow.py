"""SynFlow (Tanaka et al. 2020): |θ ⊙ ∂R/∂θ|, R the output sum of the network with every
parameter and BatchNorm buffer made positive, on one all-ones image. Data-free, one shot (the
original iterates 100 prune-rescore rounds at weight level; blocks are scored once).

Computed in float64: in float32 R overflows to inf/NaN on ResNet56 and deeper.
"""
from __future__ import annotations  # annotations name torch types without importing torch

from typing import TYPE_CHECKING

from lottery_core.errors import LotteryError
from lottery_core.options import Option

if TYPE_CHECKING:
    import torch
    import torch.nn as nn

INPUT_SIZE = Option("input_size", int, (3, 32, 32), "synflow: the all-ones image's shape (C, H, W) when no batch "
                    "gives it", low=1, sequence=True)
OPTIONS = (INPUT_SIZE,)


def synflow(model: nn.Module, batches, *,
            input_size: tuple[int, ...] = INPUT_SIZE.default) -> dict[str, torch.Tensor]:
    """|θ ⊙ ∂R/∂θ| in float64; the input has the shape of one image of the batches (else `input_size`)."""
    import torch
    import torch.nn as nn

    from lottery_core.criteria.common import weight_parameters

    if any(m.training for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)):
        raise LotteryError("synflow needs bn_mode='eval' (train-mode BatchNorm on one constant image "
                           "normalizes every activation to its bias)")
    model.double()
    with torch.no_grad():
        for t in model.state_dict().values():
            if t.is_floating_point():
                t.abs_()
    shape = tuple(batches[0][0].shape[1:]) if batches else tuple(input_size)
    weights = weight_parameters(model)
    x = torch.ones(1, *shape, dtype=torch.float64, device=next(model.parameters()).device)
    grads = torch.autograd.grad(model(x).sum(), list(weights.values()))
    return {k: (w.detach() * g).abs() for (k, w), g in zip(weights.items(), grads, strict=True)}
