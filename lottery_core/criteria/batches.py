"""The scoring data: a seeded, class-balanced set of images, normalized, in batches."""
from collections.abc import Sequence

import torch

from lottery_core.criteria.common import Batch
from lottery_core.errors import LotteryError
from lottery_core.evaluate import as_float01
from lottery_core.normalize import Normalize


def scoring_batches(images: torch.Tensor, labels: torch.Tensor, images_per_class: int, seed: int,
                    mean: Sequence[float], std: Sequence[float], batch_size: int = 128,
                    device: torch.device | str | None = None) -> list[Batch]:
    """`images_per_class` images of every class in `labels`, drawn with `seed`, shuffled together
    and cut into batches of `batch_size`: a list of (x, y), x normalized float32 (N, C, H, W) on
    `device` (default: the images' device), y int64.

    `images` are uint8 (0..255) or float in [0, 1]. Same arguments, same batches."""
    if not isinstance(images_per_class, int) or images_per_class < 1:
        raise LotteryError(f"images_per_class must be a positive integer, got {images_per_class!r}")
    if not isinstance(batch_size, int) or batch_size < 1:
        raise LotteryError(f"batch_size must be a positive integer, got {batch_size!r}")
    if images.dim() != 4 or len(images) != len(labels) or len(images) == 0:
        raise LotteryError(f"scoring needs images (N, C, H, W) and N labels, got {tuple(images.shape)} "
                           f"and {tuple(labels.shape)}")
    gen = torch.Generator().manual_seed(seed)
    labels_cpu = labels.cpu().long()
    chosen = []
    for c in torch.unique(labels_cpu).tolist():
        idx = torch.nonzero(labels_cpu == c).flatten()
        if len(idx) < images_per_class:
            raise LotteryError(f"class {c} has {len(idx)} images; images_per_class={images_per_class} needs more")
        chosen.append(idx[torch.randperm(len(idx), generator=gen)[:images_per_class]])
    order = torch.cat(chosen)
    order = order[torch.randperm(len(order), generator=gen)]
    device = torch.device(device) if device is not None else images.device
    normalize = Normalize(mean, std).to(device)
    batches = []
    for start in range(0, len(order), batch_size):
        idx = order[start:start + batch_size]
        x = normalize(as_float01(images[idx.to(images.device)].to(device)))
        batches.append((x, labels_cpu[idx].to(device)))
    return batches
