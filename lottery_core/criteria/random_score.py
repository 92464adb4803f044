"""random: seeded uniform scores in [0, 1), the control every criterion is compared against."""
from __future__ import annotations  # annotations name torch types without importing torch

from typing import TYPE_CHECKING

from lottery_core.options import Option

if TYPE_CHECKING:
    import torch
    import torch.nn as nn

SEED = Option("seed", int, 0, "seed of the draws (the pipelines pass the run's draw seed)", low=0)
OPTIONS = (SEED,)


def random_weights(model: nn.Module, batches, *, seed: int = SEED.default) -> dict[str, torch.Tensor]:
    """One uniform draw per weight, in named_parameters() order, from a generator seeded with `seed`."""
    import torch

    from lottery_core.criteria.common import weight_parameters

    gen = torch.Generator().manual_seed(seed)
    return {k: torch.rand(w.shape, generator=gen, dtype=torch.float64).to(w.device)
            for k, w in weight_parameters(model).items()}


def random_blocks(model: nn.Module, blocks: list[str], batches, *, seed: int = SEED.default) -> dict[str, float]:
    """One uniform draw per block (forward order), seeded: not the sum of per-weight draws,
    which would favour big blocks."""
    import torch

    gen = torch.Generator().manual_seed(seed)
    return dict(zip(blocks, torch.rand(len(blocks), generator=gen, dtype=torch.float64).tolist(), strict=True))
