"""Robustness: generated CIFAR-10-C corruptions, the official shifted sets, gradient attacks.

    corrupt(images_uint8, "fog", 3, seed=0)                      uint8 corrupted copies
    corruption_accuracy(model, images, labels, mean, std)        % per corruption / severity / mean
    corruption_accuracy(..., cache_dir=default_cache_dir())      the same, corrupted sets made once per node
    shifted_accuracy(model, directory, "cifar10_2", mean, std)   % on an official shifted set
    adversarial_accuracy(model, images, labels, mean, std, attack="pgd", eps=8/255)   %

`model` is a bare network that expects normalized input; `mean`/`std` are its normalization.
Images are uint8 (N, 3, 32, 32), labels int64 (N,); work happens on the model's device.

Files: `recipes` (the 15 corruptions), `corruptions` (deterministic corrupted copies),
`corruption_sets` (generated ahead in worker processes), `corruption_cache` (stored once per
node and reused), `corruption_accuracy`, `shifted`
(the official shifted sets), `attacks`, `image_ops` (the batched image operations).
"""
from lottery_core.robustness.attacks import (
    ATTACK_BUILDERS,
    ATTACKS,
    STANDARD,
    adversarial_accuracy,
    check_eps,
    standard_attacks,
)
from lottery_core.robustness.corruption_accuracy import corruption_accuracy
from lottery_core.robustness.corruption_cache import default_cache_dir
from lottery_core.robustness.corruptions import (
    CORRUPTION_FNS,
    CORRUPTIONS,
    SEVERITIES,
    SUBSTITUTES,
    CorruptionUnavailable,
    check_corruption,
    check_severity,
    corrupt,
)
from lottery_core.robustness.shifted import (
    SHIFTED,
    cifar_c_accuracy,
    load_cifar10_1,
    load_cifar10_2,
    load_cifar_c,
    shifted_accuracy,
)

__all__ = ["ATTACKS", "ATTACK_BUILDERS", "CORRUPTIONS", "CORRUPTION_FNS", "SEVERITIES", "SHIFTED", "STANDARD",
           "SUBSTITUTES", "CorruptionUnavailable", "adversarial_accuracy", "check_corruption", "check_eps",
           "check_severity", "cifar_c_accuracy", "corrupt", "corruption_accuracy", "default_cache_dir", "load_cifar10_1",
           "load_cifar10_2", "load_cifar_c", "shifted_accuracy", "standard_attacks"]
