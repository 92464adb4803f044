"""KL (Luo & Wu 2020) per block: how much the output distribution changes when the block is off."""
import torch
import torch.nn as nn
import torch.nn.functional as F

from lottery_core.surgery import bypass_blocks


@torch.no_grad()
def kl(model: nn.Module, blocks: list[str], batches) -> dict[str, float]:
    """KL(softmax(dense) || softmax(block switched off)), averaged over images (float64).

    A block whose residual branch outputs zero scores exactly 0."""
    n = sum(len(y) for _, y in batches)
    dense = [F.log_softmax(model(x).double(), 1) for x, _ in batches]
    scores = {}
    for name in blocks:
        with bypass_blocks(model, [name]):
            total = sum(F.kl_div(F.log_softmax(model(x).double(), 1), p, reduction="sum", log_target=True)
                        for (x, _), p in zip(batches, dense, strict=True))
        scores[name] = max(float(total) / n, 0.0)
    return scores
