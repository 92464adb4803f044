"""Readers for the official shifted test sets, and accuracy on them.

    CIFAR-10-C / CIFAR-100-C  <dir>/<corruption>.npy: uint8 (50000, 32, 32, 3), severities 1-5 in
                              blocks of 10,000 (the test set in order); <dir>/labels.npy (50000,)
    CIFAR-10.1                <dir>/cifar10.1_<version>_data.npy (N, 32, 32, 3) uint8 and
                              <dir>/cifar10.1_<version>_labels.npy; version v6 (2,000 images), v4, v7
    CIFAR-10.2                <dir>/cifar102_<split>.npz, arrays 'images' (N, 32, 32, 3) uint8 and
                              'labels'; split test (2,000 images) or train (10,000)

Every reader returns (images uint8 (N, 3, 32, 32), labels int64 (N,)) on the CPU; a missing file
raises LotteryError naming the file expected.
"""
import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn

from lottery_core.errors import LotteryError, choose
from lottery_core.evaluate import evaluate, evaluation_copy
from lottery_core.robustness.corruptions import (
    CORRUPTIONS,
    SEVERITIES,
    check_corruption,
    check_severity,
)

SHIFTED = ("cifar10_c", "cifar100_c", "cifar10_1", "cifar10_2")
CIFAR10_1_VERSIONS = ("v4", "v6", "v7")
CIFAR10_2_SPLITS = ("test", "train")


def _require(path: Path) -> Path:
    if not path.is_file():
        raise LotteryError(f"missing file {path} (the official layout expects it there)")
    return path


def _tensors(images: np.ndarray, labels: np.ndarray, source: Path) -> tuple[torch.Tensor, torch.Tensor]:
    labels = np.asarray(labels).reshape(-1)
    if images.ndim != 4 or images.shape[-1] != 3 or len(images) != len(labels):
        raise LotteryError(f"{source}: expected N x H x W x 3 images and N labels, got {images.shape} "
                           f"and {labels.shape}")
    if images.dtype != np.uint8:
        raise LotteryError(f"{source}: expected uint8 images, got {images.dtype}")
    x = torch.from_numpy(np.array(images, copy=True)).permute(0, 3, 1, 2).contiguous()  # off the mmap
    return x, torch.from_numpy(labels.astype(np.int64))


def load_cifar_c(directory, corruption: str, severity: int) -> tuple[torch.Tensor, torch.Tensor]:
    """One corruption at one severity from the official CIFAR-10-C / CIFAR-100-C files."""
    check_corruption(corruption)
    check_severity(severity)
    directory = Path(directory)
    path = _require(directory / f"{corruption}.npy")
    images = np.load(path, mmap_mode="r")  # 150 MB per file: read only the severity asked for
    labels = np.load(_require(directory / "labels.npy"), mmap_mode="r")
    if len(images) % 5 or len(labels) != len(images):
        raise LotteryError(f"{path}: expected 5 severities of equal size and as many labels, got "
                           f"{len(images)} images and {len(labels)} labels")
    per = len(images) // 5
    part = slice((severity - 1) * per, severity * per)
    return _tensors(np.asarray(images[part]), np.asarray(labels[part]), path)


def load_cifar10_1(directory, version: str = "v6") -> tuple[torch.Tensor, torch.Tensor]:
    choose("CIFAR-10.1 version", version, CIFAR10_1_VERSIONS)
    directory = Path(directory)
    data = _require(directory / f"cifar10.1_{version}_data.npy")
    return _tensors(np.load(data), np.load(_require(directory / f"cifar10.1_{version}_labels.npy")), data)


def load_cifar10_2(directory, split: str = "test") -> tuple[torch.Tensor, torch.Tensor]:
    choose("CIFAR-10.2 split", split, CIFAR10_2_SPLITS)
    path = _require(Path(directory) / f"cifar102_{split}.npz")
    with np.load(path) as data:  # the other keys (label_names, keywords) are not read
        missing = [key for key in ("images", "labels") if key not in data.files]
        if missing:
            raise LotteryError(f"{path} lacks the array(s) {', '.join(missing)} (has: {', '.join(data.files)})")
        return _tensors(data["images"], data["labels"], path)


def cifar_c_accuracy(model: nn.Module, directory, mean, std, corruptions: Sequence[str] = CORRUPTIONS,
                     severities: Sequence[int] = SEVERITIES, batch_size: int = 500,
                     channels_last: bool = True) -> dict:
    """Accuracy (%) on the official CIFAR-10-C / CIFAR-100-C files, in the shape of
    `corruption_accuracy`'s report: {"mean", "per_corruption", "per_severity"}. Every file asked
    for must be there (checked before any evaluation). Evaluated through `evaluation_copy`."""
    directory = Path(directory)
    for name in corruptions:
        check_corruption(name)
        _require(directory / f"{name}.npy")
    for s in severities:
        check_severity(s)
    _require(directory / "labels.npy")
    device = next(model.parameters()).device
    net = evaluation_copy(model, channels_last)
    fmt = torch.channels_last if channels_last else torch.contiguous_format

    def accuracy(name: str, severity: int) -> float:
        x, y = load_cifar_c(directory, name, severity)
        return evaluate(net, x.to(device).contiguous(memory_format=fmt), y.to(device), mean, std,
                        batch_size=batch_size)["acc"]

    per_severity = {name: {s: accuracy(name, s) for s in severities} for name in corruptions}
    per_corruption = {name: float(np.mean(list(accs.values()))) for name, accs in per_severity.items()}
    overall = float(np.mean(list(per_corruption.values()))) if per_corruption else math.nan
    return {"mean": overall, "per_corruption": per_corruption, "per_severity": per_severity}


def shifted_accuracy(model: nn.Module, directory, kind: str, mean, std, corruptions: Sequence[str] = CORRUPTIONS,
                     severities: Sequence[int] = SEVERITIES, version: str = "v6", batch_size: int = 500,
                     channels_last: bool = True) -> float:
    """Top-1 accuracy (%) on a shifted set in `directory`: `kind` is one of SHIFTED. For CIFAR-C,
    the mean over `corruptions` x `severities` (all 15 x 5 by default; each file must exist).
    CIFAR-10.1 reads `version`, CIFAR-10.2 its test split."""
    choose("shifted set", kind, SHIFTED)
    if kind in ("cifar10_c", "cifar100_c"):
        return cifar_c_accuracy(model, directory, mean, std, corruptions, severities, batch_size,
                                channels_last)["mean"]
    x, y = load_cifar10_1(directory, version) if kind == "cifar10_1" else load_cifar10_2(directory)
    device = next(model.parameters()).device
    return evaluate(model, x.to(device), y.to(device), mean, std, batch_size=batch_size)["acc"]
