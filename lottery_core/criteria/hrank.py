"""HRank (Lin et al. 2020) per block: mean matrix rank of the block's output feature maps."""
import torch
import torch.nn as nn

from lottery_core.criteria.common import reduce_block_outputs


def hrank(model: nn.Module, blocks: list[str], batches) -> dict[str, float]:
    """Rank of every (H, W) output map, averaged over images and channels (higher = richer = keep)."""
    total = dict.fromkeys(blocks, 0.0)
    count = dict.fromkeys(blocks, 0)

    def reduce(name: str, out: torch.Tensor, y: torch.Tensor) -> None:
        ranks = torch.linalg.matrix_rank(out.float())  # (N, C)
        total[name] += float(ranks.sum())
        count[name] += ranks.numel()

    reduce_block_outputs(model, blocks, batches, reduce)
    return {n: total[n] / count[n] for n in blocks}
