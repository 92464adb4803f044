"""Clean accuracy of a model on images held in memory."""
import torch
import torch.nn as nn
import torch.nn.functional as F

from lottery_core.normalize import Normalize


def as_float01(images: torch.Tensor) -> torch.Tensor:
    """uint8 images (N, C, H, W) in 0..255 -> float32 in [0, 1]; float input is returned as float32."""
    return images.float().div_(255) if images.dtype == torch.uint8 else images.float()


@torch.no_grad()
def evaluate(model: nn.Module, images: torch.Tensor, labels: torch.Tensor, mean, std,
             batch_size: int = 500) -> dict[str, float]:
    """Top-1 accuracy (%), top-5 accuracy (%, when there are >= 5 classes) and mean loss.

    `images` are uint8 (0..255) or float in [0, 1]; they are normalized with `mean`/`std` here,
    batch by batch, on the model's device. The model is put in eval mode and restored.
    """
    if len(images) == 0:
        raise ValueError("evaluate needs at least one image")
    device = next(model.parameters()).device
    normalize = Normalize(mean, std).to(device)
    was_training = model.training
    model.eval()
    correct = correct5 = 0
    loss = 0.0
    num_classes = None
    try:
        for start in range(0, len(images), batch_size):
            x = normalize(as_float01(images[start:start + batch_size].to(device)))
            y = labels[start:start + batch_size].to(device)
            logits = model(x).float()
            num_classes = logits.shape[1]
            loss += F.cross_entropy(logits, y, reduction="sum").item()
            correct += (logits.argmax(1) == y).sum().item()
            if num_classes >= 5:
                correct5 += (logits.topk(5, 1).indices == y[:, None]).any(1).sum().item()
    finally:
        model.train(was_training)
    n = len(images)
    metrics = {"acc": 100.0 * correct / n, "loss": loss / n}
    if num_classes and num_classes >= 5:
        metrics["top5"] = 100.0 * correct5 / n
    return metrics
