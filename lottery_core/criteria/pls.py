"""PLS-VIP (Jordao et al. 2020, discriminative layer pruning) per block.

Each block's activation is global-average-pooled; a 1-component PLS projection onto the one-hot
labels turns it into one latent feature per image; the stacked latent features (images x blocks)
go through a PLS with `components` components onto the labels, and each block's score is the
Variable Importance in Projection (VIP, Wold et al.) of its column. Σ VIP² = number of blocks.

`target="branch"` (default) pools the residual branch f(x) before the addition (a silenced block
is constant, latent 0, VIP 0); `target="output"` is the paper's literal reading, the block
output relu(x + f(x)): the residual stream, where a silenced block repeats the block before it.
"""
from __future__ import annotations  # annotations name torch types without importing torch

from typing import TYPE_CHECKING

import numpy as np

from lottery_core.criteria.target import TARGET
from lottery_core.errors import LotteryError
from lottery_core.options import Option

if TYPE_CHECKING:
    import torch
    import torch.nn as nn

COMPONENTS = Option("components", int, 2, "pls: PLS components of the block-importance fit", low=1)
OPTIONS = (COMPONENTS, TARGET)


def pls(model: nn.Module, blocks: list[str], batches, *, components: int = COMPONENTS.default,
        target: str = TARGET.default) -> dict[str, float]:
    """VIP score (dimensionless, Σ VIP² = len(blocks)) of every block's 1-component PLS
    representation of its pooled `target` ("branch" or "output"); higher = more discriminative."""
    import torch
    from sklearn.cross_decomposition import PLSRegression  # scikit-learn is slow to import

    from lottery_core.criteria.common import reduce_block_outputs

    y = torch.cat([y for _, y in batches]).cpu()
    classes = torch.unique(y)
    if len(classes) < 2 or len(y) < 3:
        raise LotteryError(f"criterion 'pls' needs at least 3 images of at least 2 classes, got "
                           f"{len(y)} images of {len(classes)} classes")
    targets = (y[:, None] == classes[None, :]).double().numpy()
    pooled: dict[str, list[torch.Tensor]] = {n: [] for n in blocks}
    reduce_block_outputs(model, blocks, batches,
                         lambda name, out, _: pooled[name].append(out.double().mean((2, 3)).cpu()), target)
    latent = np.zeros((len(y), len(blocks)))
    for j, name in enumerate(blocks):
        x = torch.cat(pooled[name]).numpy()
        if np.ptp(x, axis=0).max() > 0:  # a constant activation carries nothing: latent 0
            latent[:, j] = PLSRegression(n_components=1).fit(x, targets).transform(x)[:, 0]
    k = min(components, len(blocks), len(y) - 1)
    return dict(zip(blocks, vip(PLSRegression(n_components=k).fit(latent, targets)).tolist(), strict=True))


def vip(fitted) -> np.ndarray:
    """VIP_j = sqrt(p Σ_a SS_a (w_ja / ‖w_a‖)² / Σ_a SS_a), SS_a = ‖t_a‖² ‖q_a‖² (Y variance explained)."""
    w, t, q = fitted.x_weights_, fitted.x_scores_, fitted.y_loadings_
    ss = (t ** 2).sum(0) * (q ** 2).sum(0)
    norms = np.linalg.norm(w, axis=0)
    share = (w / np.where(norms > 0, norms, 1)) ** 2
    total = ss.sum()
    return np.sqrt(w.shape[0] * share @ ss / total) if total > 0 else np.zeros(w.shape[0])
