"""Gradient attacks through torchattacks, in [0, 1] pixel space (normalization lives inside the model).

    adversarial_accuracy(model, images_uint8, labels, mean, std, attack="pgd", eps=8/255)  # percent

FGSM and PGD are L∞ attacks; PGD takes `steps` steps of size `alpha` from a random start. A new
attack is one builder in `ATTACK_BUILDERS`.
"""
from collections.abc import Callable

import torch
import torch.nn as nn
import torchattacks

from lottery_core.errors import LotteryError, choose
from lottery_core.evaluate import as_float01
from lottery_core.normalize import Normalized

ATTACK_BUILDERS: dict[str, Callable] = {
    "fgsm": lambda model, eps, steps, alpha: torchattacks.FGSM(model, eps=eps),
    "pgd": lambda model, eps, steps, alpha: torchattacks.PGD(model, eps=eps, alpha=alpha, steps=steps,
                                                             random_start=True),
}
ATTACKS = tuple(ATTACK_BUILDERS)
STANDARD = (("fgsm", 2 / 255), ("fgsm", 8 / 255), ("pgd", 2 / 255), ("pgd", 8 / 255))


def check_eps(eps) -> None:
    if not isinstance(eps, int | float) or not 0 <= eps <= 1:
        raise LotteryError(f"epsilon {eps!r} is outside [0, 1] (pixel units: 8/255 = 0.0314)")


def adversarial_accuracy(model: nn.Module, images: torch.Tensor, labels: torch.Tensor, mean, std,
                         attack: str = "pgd", eps: float = 8 / 255, steps: int = 10, alpha: float = 2 / 255,
                         n_images: int | None = None, seed: int = 0, batch_size: int = 250) -> float:
    """Top-1 accuracy (%) on adversarial versions of `images` (uint8 or [0, 1] floats).

    The model (expecting normalized input) is wrapped with its normalization so the attack moves
    pixels within [0, 1]; eval mode during the attack, the previous mode restored after. Seeded
    (PGD's random start).
    """
    choose("attack", attack, ATTACK_BUILDERS)
    check_eps(eps)
    if n_images is not None:
        images, labels = images[:n_images], labels[:n_images]
    if len(images) == 0:
        raise LotteryError("adversarial_accuracy needs at least one image")
    device = next(model.parameters()).device
    wrapped = Normalized(model, mean, std).to(device)
    was_training = model.training
    wrapped.eval()
    correct = 0
    try:
        with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
            torch.manual_seed(seed)
            atk = ATTACK_BUILDERS[attack](wrapped, eps, steps, alpha)
            for start in range(0, len(images), batch_size):
                x = as_float01(images[start:start + batch_size].to(device))
                y = labels[start:start + batch_size].to(device)
                adv = atk(x, y) if eps > 0 else x
                with torch.no_grad():
                    correct += (wrapped(adv).argmax(1) == y).sum().item()
    finally:
        model.train(was_training)
    return 100.0 * correct / len(images)


def standard_attacks(model, images, labels, mean, std, seed: int = 0) -> dict[str, float]:
    """FGSM and PGD at ε = 2/255 and 8/255: {"adv_acc.<attack>.eps<k>": accuracy %}."""
    return {f"adv_acc.{name}.eps{round(eps * 255)}": adversarial_accuracy(model, images, labels, mean, std,
                                                                         attack=name, eps=eps, seed=seed)
            for name, eps in STANDARD}
