"""Mini-batches straight from uint8 tensors in memory: seeded order, batch-wise augmentation.

Everything random in an epoch (the order, each image's crop offset and flip) is drawn up front
from one CPU `torch.Generator` seeded by (seed, epoch). The batches of epoch e are therefore the
same whichever epoch a run started from (resume, learning-rate rewinding), on whichever device,
and a ticket and its dense network see the same images in the same order. Crop, flip, the
uint8 -> float conversion and the normalization are tensor ops over the whole batch on the
device where the images live; there is no per-image Python.
"""
import hashlib
from collections.abc import Iterator, Sequence

import torch
import torch.nn.functional as F

from lottery_core.errors import LotteryError

PAD = 4  # pixels of zero padding before the random crop (the standard CIFAR recipe)


def epoch_generator(seed: int, epoch: int) -> torch.Generator:
    """A CPU generator seeded by (seed, epoch) only: the randomness of one epoch of data."""
    digest = hashlib.sha256(f"lottery-data/{int(seed)}/{int(epoch)}".encode()).digest()
    return torch.Generator().manual_seed(int.from_bytes(digest[:8], "little") >> 1)


def num_batches(n: int, batch_size: int) -> int:
    """Batches per epoch of `train_batches` for n images: only full batches (a last, smaller one is
    dropped, as DataLoader(drop_last=True) does), or one batch of all n when n < batch_size (n > 1).

    Why: a small last batch gives BatchNorm noisy statistics and takes a full-lr step on them.
    ResNet20 on 5,000 CIFAR-10 images (39 batches of 128 + one of 8), 10 one-cycle epochs:
    48.8 % test accuracy with the batch of 8, 55.8 % without (seed 0, benchmarks/recipe.md).
    Shuffling per epoch means every image is still seen, in almost every epoch.
    """
    full = n // batch_size
    if full:
        return full
    return 1 if n > 1 else 0


def train_batches(data, batch_size: int, seed: int, epoch: int, augment: bool = True, device=None,
                  channels_last: bool = False) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Shuffled training batches (x float32 normalized (B, 3, H, W), y int64) of one epoch.

    Order and augmentation (4-pixel zero pad + random crop back to H x W, horizontal flip with
    probability 1/2) depend only on (seed, epoch). Only full batches are yielded (see
    `num_batches`: a smaller last one is dropped). `device` defaults to where `data` lives; batches are moved
    there as uint8 (4x less traffic than float) and converted on arrival.
    """
    images, labels = data.train_images, data.train_labels
    if batch_size < 1:
        raise LotteryError(f"batch_size must be >= 1, got {batch_size}")
    n = len(labels)
    if n == 0:
        raise LotteryError("the training split is empty")
    device = torch.device(device) if device is not None else images.device
    gen = epoch_generator(seed, epoch)
    order = torch.randperm(n, generator=gen)
    if augment:
        offsets = torch.randint(0, 2 * PAD + 1, (n, 2), generator=gen)
        flips = torch.randint(0, 2, (n,), generator=gen).bool()
    order = order.to(images.device, non_blocking=True)
    if augment:
        offsets, flips = offsets.to(device, non_blocking=True), flips.to(device, non_blocking=True)
    scale, shift = normalize_constants(data.mean, data.std, device)
    for start in range(0, num_batches(n, batch_size) * batch_size, batch_size):
        idx = order[start:start + batch_size]
        x = images[idx].to(device, non_blocking=True)
        y = labels[idx].to(device, non_blocking=True)
        if augment:
            x = crop_flip(x, offsets[start:start + batch_size], flips[start:start + batch_size])
        yield to_float(x, scale, shift, channels_last), y


def eval_batches(images: torch.Tensor, labels: torch.Tensor, mean: Sequence[float], std: Sequence[float],
                 batch_size: int = 500, device=None, channels_last: bool = False
                 ) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Batches in order, normalized, without augmentation: (x float32, y int64)."""
    if batch_size < 1:
        raise LotteryError(f"batch_size must be >= 1, got {batch_size}")
    device = torch.device(device) if device is not None else images.device
    scale, shift = normalize_constants(mean, std, device)
    for start in range(0, len(images), batch_size):
        x = images[start:start + batch_size].to(device, non_blocking=True)
        y = labels[start:start + batch_size].to(device, non_blocking=True)
        yield to_float(x, scale, shift, channels_last), y


def crop_flip(x: torch.Tensor, offsets: torch.Tensor, flips: torch.Tensor, pad: int = PAD) -> torch.Tensor:
    """Pad (B, C, H, W) by `pad` zeros, crop H x W at `offsets` (B, 2: row, col in 0..2*pad) and
    mirror (left-right) the crops where `flips` (B,) is True: one gather over the whole batch."""
    b, c, h, w = x.shape
    padded = F.pad(x, (pad, pad, pad, pad))
    hp, wp = h + 2 * pad, w + 2 * pad
    rows = offsets[:, 0:1] + torch.arange(h, device=x.device)                       # (B, H)
    cols = torch.arange(w, device=x.device).expand(b, w)
    cols = torch.where(flips[:, None], w - 1 - cols, cols) + offsets[:, 1:2]       # (B, W)
    index = (rows[:, :, None] * wp + cols[:, None, :]).reshape(b, 1, h * w)        # (B, 1, H*W)
    out = torch.gather(padded.reshape(b, c, hp * wp), 2, index.expand(b, c, h * w))
    return out.reshape(b, c, h, w)


def normalize_constants(mean: Sequence[float], std: Sequence[float], device) -> tuple[torch.Tensor, torch.Tensor]:
    """(scale, shift) with x_uint8 * scale + shift == (x / 255 - mean) / std, shaped (1, C, 1, 1)."""
    m = torch.tensor(mean, dtype=torch.float32).view(1, -1, 1, 1)
    s = torch.tensor(std, dtype=torch.float32).view(1, -1, 1, 1)
    return (1.0 / (255.0 * s)).to(device), (-m / s).to(device)


def to_float(x: torch.Tensor, scale: torch.Tensor, shift: torch.Tensor, channels_last: bool = False) -> torch.Tensor:
    """uint8 (B, C, H, W) -> normalized float32, channels_last in memory when asked."""
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    out = torch.empty(x.shape, dtype=torch.float32, device=x.device, memory_format=fmt)
    out.copy_(x)
    return out.mul_(scale).add_(shift)
