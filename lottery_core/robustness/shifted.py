"""Readers for the official shifted test sets, and accuracy on them.

    CIFAR-10-C / CIFAR-100-C   <dir>/<corruption>.npy (50,000 x 32 x 32 x 3 uint8: severities 1-5 x 10,000)
                               and <dir>/labels.npy
    CIFAR-10.1                 <dir>/cifar10.1_v6_data.npy, cifar10.1_v6_labels.npy (v4 also read)
    CIFAR-10.2                 <dir>/cifar102_test.npz with arrays 'images' and 'labels'
"""
from pathlib import Path

import numpy as np
import torch

from lottery_core.errors import LotteryError, choose
from lottery_core.evaluate import evaluate
from lottery_core.robustness.corruptions import CORRUPTIONS, check_severity

SHIFTED = ("cifar10_c", "cifar100_c", "cifar10_1", "cifar10_2")


def _require(path: Path) -> Path:
    if not path.is_file():
        raise LotteryError(f"missing file {path} (expected in the official layout)")
    return path


def _tensors(images: np.ndarray, labels: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
    if images.ndim != 4 or images.shape[-1] != 3 or len(images) != len(labels):
        raise LotteryError(f"expected N x H x W x 3 images and N labels, got {images.shape} and {labels.shape}")
    x = torch.from_numpy(np.ascontiguousarray(images.astype(np.uint8))).permute(0, 3, 1, 2).contiguous()
    return x, torch.from_numpy(labels.astype(np.int64))


def load_cifar_c(directory, corruption: str, severity: int) -> tuple[torch.Tensor, torch.Tensor]:
    """One corruption at one severity from the official CIFAR-10-C / CIFAR-100-C files."""
    choose("corruption", corruption, CORRUPTIONS)
    check_severity(severity)
    directory = Path(directory)
    images = np.load(_require(directory / f"{corruption}.npy"), mmap_mode="r")
    labels = np.load(_require(directory / "labels.npy"))
    per = len(images) // 5
    part = slice((severity - 1) * per, severity * per)
    return _tensors(np.asarray(images[part]), labels[part])


def load_cifar10_1(directory, version: str = "v6") -> tuple[torch.Tensor, torch.Tensor]:
    directory = Path(directory)
    return _tensors(np.load(_require(directory / f"cifar10.1_{version}_data.npy")),
                    np.load(_require(directory / f"cifar10.1_{version}_labels.npy")))


def load_cifar10_2(directory, split: str = "test") -> tuple[torch.Tensor, torch.Tensor]:
    with np.load(_require(Path(directory) / f"cifar102_{split}.npz")) as data:
        return _tensors(data["images"], data["labels"])


def shifted_accuracy(model, directory, kind: str, mean, std, corruptions=CORRUPTIONS,
                     severities=(1, 2, 3, 4, 5)) -> float:
    """Top-1 accuracy (%) on a shifted set; for CIFAR-C the mean over corruptions and severities
    present in `directory` (at least one must be)."""
    choose("shifted set", kind, SHIFTED)
    device = next(model.parameters()).device
    if kind in ("cifar10_1", "cifar10_2"):
        x, y = load_cifar10_1(directory) if kind == "cifar10_1" else load_cifar10_2(directory)
        return evaluate(model, x.to(device), y.to(device), mean, std)["acc"]
    present = [c for c in corruptions if (Path(directory) / f"{c}.npy").is_file()]
    if not present:
        raise LotteryError(f"no <corruption>.npy file of CIFAR-C in {directory}")
    accs = [evaluate(model, *(t.to(device) for t in load_cifar_c(directory, c, s)), mean, std)["acc"]
            for c in present for s in severities]
    return float(np.mean(accs))
