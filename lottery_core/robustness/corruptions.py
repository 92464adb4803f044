"""Corrupted copies of CIFAR images, deterministic per seed.

    corrupt(images_uint8, "fog", severity=3, seed=0)  -> uint8 images, same shape and device

The recipes are in `recipes` (one function per corruption). Deterministic: the same images, name,
severity and seed give the same bytes (images are corrupted in blocks of `BLOCK`, each with its own
generator seeded by (seed, name, severity, block)).
"""
import numbers
import zlib

import numpy as np
import torch

from lottery_core.errors import LotteryError, choose
from lottery_core.robustness.recipes import (
    CORRUPTION_FNS,
    CORRUPTIONS,
    SEVERITIES,
    SIZE,
    SUBSTITUTES,
    CorruptionUnavailable,
)

__all__ = ["BLOCK", "CORRUPTIONS", "CORRUPTION_FNS", "SEVERITIES", "SUBSTITUTES", "CorruptionUnavailable",
           "check_corruption", "check_severity", "corrupt"]

BLOCK = 500  # images per generator (bounds memory; part of what a seed means)


def check_severity(severity) -> None:
    """LotteryError unless `severity` is an integer from 1 to 5."""
    if isinstance(severity, bool) or not isinstance(severity, numbers.Integral) or severity not in SEVERITIES:
        raise LotteryError(f"severity {severity!r} is outside 1-5; choose one of: 1, 2, 3, 4, 5")


def check_corruption(name) -> None:
    choose("corruption", name, CORRUPTION_FNS)


def corrupt(images: torch.Tensor, name: str, severity: int, seed: int = 0) -> torch.Tensor:
    """Corrupt uint8 images (N, 3, 32, 32) with `name` at `severity` (1-5): uint8, same shape and device.

    Deterministic for (images, name, severity, seed). Raises CorruptionUnavailable when the
    corruption needs an asset that is missing here (frost textures).
    """
    check_corruption(name)
    check_severity(severity)
    if not isinstance(images, torch.Tensor) or images.dtype != torch.uint8 or images.dim() != 4 \
            or tuple(images.shape[1:]) != (3, SIZE, SIZE):
        got = f"{images.dtype} {tuple(images.shape)}" if isinstance(images, torch.Tensor) else type(images).__name__
        raise LotteryError(f"corrupt needs uint8 images (N, 3, {SIZE}, {SIZE}) as the CIFAR-10-C recipe, got {got}")
    x = images.detach().cpu().permute(0, 2, 3, 1).contiguous().numpy()
    fn, key = CORRUPTION_FNS[name], zlib.crc32(name.encode())
    blocks = [fn(x[start:start + BLOCK].copy(), int(severity),
                 np.random.default_rng([seed, key, int(severity), start // BLOCK]))
              for start in range(0, len(x), BLOCK)]
    out = np.concatenate(blocks) if blocks else x.copy()
    return torch.from_numpy(np.ascontiguousarray(out)).permute(0, 3, 1, 2).contiguous().to(images.device)
