"""The one evaluator: accuracy, loss and top-5 of a model, used by the training loop and the final evaluation.

    evaluate(model, images, labels, mean, std)   {"acc", "loss", "top5"} on uint8 or [0, 1] images
    evaluate_batches(forward, batches)           the same over normalized (x, y) batches

acc and top5 are % of the images; loss is the mean cross-entropy (nats per image). top5 is
reported when the model has at least `TOP5_MIN_CLASSES` classes (CIFAR-10 included), wherever the
evaluation runs: per epoch in the loop (`test_top5`, `val_top5`) and at the end (`top5`).
"""
import copy
from collections.abc import Callable, Iterable, Iterator

import torch
import torch.nn as nn
import torch.nn.functional as F

from lottery_core.normalize import Normalize

TOP5_MIN_CLASSES = 5


def as_float01(images: torch.Tensor) -> torch.Tensor:
    """uint8 images (N, C, H, W) in 0..255 -> float32 in [0, 1]; float input is returned as float32."""
    return images.float().div_(255) if images.dtype == torch.uint8 else images.float()


@torch.no_grad()
def evaluate_batches(forward: Callable[[torch.Tensor], torch.Tensor],
                     batches: Iterable[tuple[torch.Tensor, torch.Tensor]]) -> dict[str, float]:
    """acc (%), loss (mean cross-entropy) and, with >= TOP5_MIN_CLASSES classes, top5 (%) of
    `forward` over `batches` of (normalized x, int64 y).

    Sums stay on the labels' device until the end (no host synchronisation per batch); the loss
    is summed in float64 over float32 per-batch sums. The caller sets eval mode (and autocast)."""
    loss = correct = correct5 = None
    n, num_classes = 0, 0
    for x, y in batches:
        if loss is None:
            loss = torch.zeros((), dtype=torch.float64, device=y.device)
            correct = torch.zeros((), dtype=torch.int64, device=y.device)
            correct5 = torch.zeros((), dtype=torch.int64, device=y.device)
        logits = forward(x).float()
        num_classes = logits.shape[1]
        loss += F.cross_entropy(logits, y, reduction="sum")
        correct += (logits.argmax(1) == y).sum()
        if num_classes >= TOP5_MIN_CLASSES:
            correct5 += (logits.topk(5, 1).indices == y[:, None]).any(1).sum()
        n += len(y)
    if n == 0:
        raise ValueError("evaluate needs at least one image")
    metrics = {"acc": 100.0 * int(correct) / n, "loss": float(loss) / n}
    if num_classes >= TOP5_MIN_CLASSES:
        metrics["top5"] = 100.0 * int(correct5) / n
    return metrics


def evaluate(model: nn.Module, images: torch.Tensor, labels: torch.Tensor, mean, std,
             batch_size: int = 500) -> dict[str, float]:
    """`evaluate_batches` of `model` on images held in memory.

    `images` are uint8 (0..255) or float in [0, 1]; they are normalized with `mean`/`std` here,
    batch by batch, on the model's device. The model is put in eval mode and restored.
    """
    if len(images) == 0:
        raise ValueError("evaluate needs at least one image")
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    try:
        return evaluate_batches(model, _normalized(images, labels, Normalize(mean, std).to(device), batch_size))
    finally:
        model.train(was_training)


def _normalized(images: torch.Tensor, labels: torch.Tensor, normalize: Normalize,
                batch_size: int) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    device = normalize.mean.device
    for start in range(0, len(images), batch_size):
        x = normalize(as_float01(images[start:start + batch_size].to(device)))
        yield x, labels[start:start + batch_size].to(device)


def evaluation_copy(model: nn.Module, channels_last: bool = True) -> nn.Module:
    """A copy of `model` for repeated evaluation, in channels_last memory format when asked (about
    1.4x faster inference for CIFAR ResNets on this CPU); the caller's model is left untouched."""
    if not channels_last:
        return model
    return copy.deepcopy(model).to(memory_format=torch.channels_last)
