"""The reference: a CIFAR training loop written the obvious way, against which the engine is judged.

torch's default init (ResNet built with init="torch"), SGD with Nesterov momentum, torch's
OneCycleLR stepped every batch, weight decay 5e-4, batch-wise augmentation (4-pixel pad, random
crop, horizontal flip) on uint8 images held in memory, fp32, NCHW, `loss.item()` every step.
No checkpoints, no hooks, no engine code: only the data tensors come from `lottery_core.data`.
"""
import time

import torch
import torch.nn as nn
import torch.nn.functional as F


def augment(images: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """Pad-4 random crop and horizontal flip of a uint8 batch (B, 3, 32, 32), one draw per image."""
    b, _, h, w = images.shape
    padded = F.pad(images, (4, 4, 4, 4))
    dy, dx = torch.randint(0, 9, (2, b), generator=gen)
    crops = torch.stack([padded[i, :, dy[i]:dy[i] + h, dx[i]:dx[i] + w] for i in range(b)])
    flip = torch.rand(b, generator=gen) < 0.5
    crops[flip] = crops[flip].flip(3)
    return crops


def normalize(images: torch.Tensor, mean, std) -> torch.Tensor:
    mean = torch.tensor(mean).view(1, 3, 1, 1)
    std = torch.tensor(std).view(1, 3, 1, 1)
    return (images.float() / 255 - mean) / std


def train_plain(model: nn.Module, data, *, epochs: int, seed: int, batch_size: int = 128, lr: float = 0.1,
                weight_decay: float = 5e-4, pct_start: float = 0.15) -> dict:
    """Train `model` in place; returns test accuracy (%, whole test split) and seconds per step."""
    gen = torch.Generator().manual_seed(seed)
    images, labels = data.train_images, data.train_labels
    steps = len(labels) // batch_size
    optimizer = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9, nesterov=True, weight_decay=weight_decay)
    scheduler = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=lr, epochs=epochs, steps_per_epoch=steps,
                                                    pct_start=pct_start)
    began = time.perf_counter()
    for _ in range(epochs):
        model.train()
        order = torch.randperm(len(labels), generator=gen)
        for i in range(steps):
            idx = order[i * batch_size:(i + 1) * batch_size]
            x = normalize(augment(images[idx], gen), data.mean, data.std)
            loss = F.cross_entropy(model(x), labels[idx])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            scheduler.step()
            loss.item()
    step_s = (time.perf_counter() - began) / (epochs * steps)
    return {"test_acc": evaluate(model, data), "step_s": step_s}


@torch.no_grad()
def evaluate(model: nn.Module, data, batch_size: int = 500) -> float:
    """Top-1 accuracy (%) on the whole test split."""
    model.eval()
    correct = 0
    for start in range(0, len(data.test_labels), batch_size):
        x = normalize(data.test_images[start:start + batch_size], data.mean, data.std)
        correct += int((model(x).argmax(1) == data.test_labels[start:start + batch_size]).sum())
    return 100.0 * correct / len(data.test_labels)
