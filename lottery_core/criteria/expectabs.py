"""expectABS (DropNet, Min et al. 2020) per block: mean |activation| of the block's output."""
import torch
import torch.nn as nn

from lottery_core.criteria.common import reduce_block_outputs


def expectabs(model: nn.Module, blocks: list[str], batches) -> dict[str, float]:
    """E|a| over images, channels and positions of each block's output."""
    total = dict.fromkeys(blocks, 0.0)
    count = dict.fromkeys(blocks, 0)

    def reduce(name: str, out: torch.Tensor, y: torch.Tensor) -> None:
        total[name] += float(out.abs().double().sum())
        count[name] += out.numel()

    reduce_block_outputs(model, blocks, batches, reduce)
    return {n: total[n] / count[n] for n in blocks}
