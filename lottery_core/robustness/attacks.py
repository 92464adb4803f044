"""Gradient attacks through torchattacks, in [0, 1] pixel space (normalization lives inside the model).

    adversarial_accuracy(model, images_uint8, labels, mean, std, attack="pgd", eps=8/255)  # percent
    standard_attacks(model, images, labels, mean, std)  # FGSM and PGD at eps 2/255 and 8/255

Both attacks are L∞. FGSM takes one step of size ε; PGD takes `steps` steps of size `alpha` from
a uniform random start in the ε-ball. A new attack is one builder in `ATTACK_BUILDERS`.
"""
import numbers
from collections.abc import Callable

import torch
import torch.nn as nn
import torchattacks

from lottery_core.errors import LotteryError, choose
from lottery_core.evaluate import as_float01
from lottery_core.normalize import Normalized

ATTACK_BUILDERS: dict[str, Callable[..., Callable]] = {
    "fgsm": lambda model, eps, steps, alpha: torchattacks.FGSM(model, eps=eps),
    "pgd": lambda model, eps, steps, alpha: torchattacks.PGD(model, eps=eps, alpha=alpha, steps=steps,
                                                             random_start=True),
}
ATTACKS = tuple(ATTACK_BUILDERS)
STANDARD = (("fgsm", 2 / 255), ("fgsm", 8 / 255), ("pgd", 2 / 255), ("pgd", 8 / 255))


def check_eps(eps) -> None:
    """LotteryError unless ε is a number in [0, 1] (pixel units of [0, 1] images)."""
    if isinstance(eps, bool) or not isinstance(eps, numbers.Real) or not 0 <= eps <= 1:
        raise LotteryError(f"epsilon {eps!r} is outside [0, 1]; it is in [0, 1] pixel units (8/255 = 0.0314)")


def _check_positive(name: str, value, kind=numbers.Real) -> None:
    if isinstance(value, bool) or not isinstance(value, kind) or not value > 0:
        raise LotteryError(f"{name} must be a positive {'integer' if kind is numbers.Integral else 'number'}, "
                           f"got {value!r}")


def adversarial_accuracy(model: nn.Module, images: torch.Tensor, labels: torch.Tensor, mean, std,
                         attack: str = "pgd", eps: float = 8 / 255, steps: int = 10, alpha: float = 2 / 255,
                         n_images: int | None = None, seed: int = 0, batch_size: int = 250) -> float:
    """Top-1 accuracy (%) on adversarial versions of the first `n_images` of `images` (all if None).

    `images` are uint8 (0..255) or floats in [0, 1]; `model` expects normalized input and is
    wrapped with its normalization so the attack moves pixels within [0, 1], on the model's device.
    Eval mode during the attack, the previous mode restored after. Seeded (PGD's random start); the
    caller's RNG state is left untouched. ε = 0 gives the clean accuracy.
    """
    choose("attack", attack, ATTACK_BUILDERS)
    check_eps(eps)
    _check_positive("steps", steps, numbers.Integral)
    _check_positive("alpha", alpha)
    _check_positive("batch_size", batch_size, numbers.Integral)
    if n_images is not None:
        _check_positive("n_images", n_images, numbers.Integral)
        images, labels = images[:n_images], labels[:n_images]
    if len(images) == 0 or len(images) != len(labels):
        raise LotteryError(f"adversarial_accuracy needs as many labels as images (at least one), "
                           f"got {len(images)} images and {len(labels)} labels")
    device = next(model.parameters()).device
    wrapped = Normalized(model, mean, std).to(device)
    was_training = model.training
    wrapped.eval()
    correct = 0
    try:
        with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
            torch.manual_seed(seed)
            atk = ATTACK_BUILDERS[attack](wrapped, float(eps), int(steps), float(alpha))
            for start in range(0, len(images), batch_size):
                x = as_float01(images[start:start + batch_size].to(device))
                y = labels[start:start + batch_size].to(device)
                adv = atk(x, y) if eps > 0 else x
                with torch.no_grad():
                    correct += (wrapped(adv).argmax(1) == y).sum().item()
    finally:
        model.train(was_training)
    return 100.0 * correct / len(images)


def standard_attacks(model: nn.Module, images: torch.Tensor, labels: torch.Tensor, mean, std,
                     n_images: int | None = None, seed: int = 0, batch_size: int = 250) -> dict[str, float]:
    """FGSM and PGD (10 steps of 2/255) at ε = 2/255 and 8/255 on the same images:
    {"adv_acc.<attack>.eps<ε·255>": accuracy %}, the keys the pipelines log."""
    return {f"adv_acc.{name}.eps{round(eps * 255)}": adversarial_accuracy(
                model, images, labels, mean, std, attack=name, eps=eps, n_images=n_images, seed=seed,
                batch_size=batch_size)
            for name, eps in STANDARD}
