"""CKA per block: 1 − linear CKA of penultimate features with the block switched off versus on."""
import torch
import torch.nn as nn

from lottery_core.errors import LotteryError
from lottery_core.similarity import linear_cka, penultimate_features
from lottery_core.surgery import bypass_blocks


@torch.no_grad()
def cka(model: nn.Module, blocks: list[str], batches) -> dict[str, float]:
    """1 − CKA(features without the block, dense features): 0 = the block changes nothing."""
    if sum(len(y) for _, y in batches) < 2:
        raise LotteryError("criterion 'cka' needs at least 2 scoring images")

    def features() -> torch.Tensor:
        return torch.cat([penultimate_features(model, x)[0] for x, _ in batches])

    dense = features()
    scores = {}
    for name in blocks:
        with bypass_blocks(model, [name]):
            scores[name] = max(1.0 - linear_cka(features(), dense), 0.0)
    return scores
