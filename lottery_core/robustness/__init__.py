"""Robustness: generated CIFAR-10-C corruptions, the official shifted sets, gradient attacks.

    corrupt(images, "fog", 3, seed=0)                      uint8 corrupted copies
    corruption_accuracy(model, images, labels, mean, std)  per corruption / severity / mean (%)
    shifted_accuracy(model, directory, "cifar10_2", mean, std)
    adversarial_accuracy(model, images, labels, mean, std, attack="pgd", eps=8/255)
"""
import numpy as np

from lottery_core.errors import choose
from lottery_core.evaluate import evaluate
from lottery_core.robustness.attacks import (
    ATTACKS,
    adversarial_accuracy,
    check_eps,
    standard_attacks,
)
from lottery_core.robustness.corruptions import (
    CORRUPTIONS,
    SEVERITIES,
    SUBSTITUTES,
    check_severity,
    corrupt,
)
from lottery_core.robustness.shifted import (
    SHIFTED,
    load_cifar10_1,
    load_cifar10_2,
    load_cifar_c,
    shifted_accuracy,
)


def corruption_accuracy(model, images, labels, mean, std, names=CORRUPTIONS, severities=SEVERITIES,
                        seed: int = 0) -> dict:
    """Accuracy (%) on corrupted copies of `images`, generated deterministically from `seed`.

    Returns {"mean": overall mean, "per_corruption": {name: mean over severities},
    "per_severity": {name: {severity: acc}}, "substitutes": {name: what replaced the original}}.
    """
    for name in names:
        choose("corruption", name, CORRUPTIONS)
    for s in severities:
        check_severity(s)
    cpu_images = images.cpu()
    per_severity = {name: {s: evaluate(model, corrupt(cpu_images, name, s, seed).to(images.device), labels,
                                       mean, std)["acc"] for s in severities} for name in names}
    per_corruption = {name: float(np.mean(list(accs.values()))) for name, accs in per_severity.items()}
    return {"mean": float(np.mean(list(per_corruption.values()))), "per_corruption": per_corruption,
            "per_severity": per_severity, "substitutes": {n: SUBSTITUTES[n] for n in names if n in SUBSTITUTES}}


__all__ = ["ATTACKS", "CORRUPTIONS", "SEVERITIES", "SHIFTED", "SUBSTITUTES", "adversarial_accuracy", "check_eps",
           "check_severity", "corrupt", "corruption_accuracy", "load_cifar10_1", "load_cifar10_2", "load_cifar_c",
           "shifted_accuracy", "standard_attacks"]
