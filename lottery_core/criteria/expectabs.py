"""expectABS (DropNet, Min et al. 2020) per block: mean |activation| of the block.

`target="branch"` (default) averages |f(x)|, the residual branch before the addition (a silenced
block scores 0); `target="output"` is the paper's literal reading, |relu(x + f(x))|: the residual
stream, which grows with depth and gives a silenced block the score of the block before it.
"""
from __future__ import annotations  # annotations name torch types without importing torch

from typing import TYPE_CHECKING

from lottery_core.criteria.target import TARGET

if TYPE_CHECKING:
    import torch
    import torch.nn as nn

OPTIONS = (TARGET,)


def expectabs(model: nn.Module, blocks: list[str], batches, *, target: str = TARGET.default) -> dict[str, float]:
    """E|a| over images, channels and positions of each block's `target` ("branch" or "output"),
    in the units of the activations (normalized-input units at the stem)."""
    from lottery_core.criteria.common import reduce_block_outputs

    total = dict.fromkeys(blocks, 0.0)
    count = dict.fromkeys(blocks, 0)

    def reduce(name: str, out: torch.Tensor, y: torch.Tensor) -> None:
        total[name] += float(out.abs().double().sum())
        count[name] += out.numel()

    reduce_block_outputs(model, blocks, batches, reduce, target)
    return {n: total[n] / count[n] for n in blocks}
