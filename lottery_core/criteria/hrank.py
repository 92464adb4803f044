"""HRank (Lin et al. 2020) per block: mean matrix rank of the block's feature maps.

`target="branch"` (default) ranks the maps of the residual branch f(x) before the addition, each
divided by its largest possible rank min(H, W) (32/16/8 in the CIFAR ResNet stages), so scores
are in [0, 1] and comparable across stages; a silenced block scores 0. `target="output"` is the
paper's literal reading: the unnormalized rank of the block's output relu(x + f(x)), i.e. of the
residual stream, which is bounded by the stage's resolution (a position artefact) and gives a
silenced block the score of the block before it.
"""
from __future__ import annotations  # annotations name torch types without importing torch

from typing import TYPE_CHECKING

from lottery_core.criteria.target import TARGET

if TYPE_CHECKING:
    import torch
    import torch.nn as nn

OPTIONS = (TARGET,)


def hrank(model: nn.Module, blocks: list[str], batches, *, target: str = TARGET.default) -> dict[str, float]:
    """Rank of every (H, W) map, averaged over images and channels (higher = richer = keep).

    "branch": rank / min(H, W) of f(x), in [0, 1]; "output": rank of relu(x + f(x)), in 0..min(H, W)."""
    from lottery_core.criteria.common import reduce_block_outputs

    total = dict.fromkeys(blocks, 0.0)
    count = dict.fromkeys(blocks, 0)

    import torch

    def reduce(name: str, out: torch.Tensor, y: torch.Tensor) -> None:
        ranks = torch.linalg.matrix_rank(out.float()).double()  # (N, C)
        if target == "branch":
            ranks = ranks / min(out.shape[-2:])
        total[name] += float(ranks.sum())
        count[name] += ranks.numel()

    reduce_block_outputs(model, blocks, batches, reduce, target)
    return {n: total[n] / count[n] for n in blocks}
